"""Counters, gauges and histograms rendered in the Prometheus text format (version 0.0.4)."""

from __future__ import annotations

import bisect
import math
import resource
import time
from typing import Iterable

__all__ = ["Histogram", "Metrics", "LATENCY_BUCKETS", "SETUP_BUCKETS", "quantile", "parse_histogram"]

#: event arrival -> next command written (seconds)
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015,
                   0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1.0)
#: TCP accept -> first prompt written (seconds)
SETUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Iterable[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """The q-quantile, interpolated inside its bucket like Prometheus' histogram_quantile
        (inf beyond the last bound)."""
        return quantile(self.bounds, self.counts, q)

    def lines(self, name: str) -> list[str]:
        out, acc = [], 0
        for bound, n in zip(self.bounds, self.counts):
            acc += n
            out.append(f'{name}_bucket{{le="{bound:g}"}} {acc}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{name}_sum {self.sum:.6f}")
        out.append(f"{name}_count {self.count}")
        return out


class Metrics:
    """What `/metrics` shows.  Updated by the server; cheap enough for every event."""

    def __init__(self) -> None:
        self.started = time.time()
        self.active = 0
        self.accepted = 0
        self.by_disposition: dict[str, int] = {}
        self.step_latency = Histogram(LATENCY_BUCKETS)
        self.setup = Histogram(SETUP_BUCKETS)
        self.reloads = {"ok": 0, "rejected": 0}
        self.cdr_failures = 0
        self.cdr_spooled = 0
        self.flows_loaded = 0
        self.draining = False

    def ended(self, disposition: str | None) -> None:
        key = disposition or "unknown"
        self.by_disposition[key] = self.by_disposition.get(key, 0) + 1

    def render(self) -> str:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        lines = [
            "# HELP ivrflow_calls_active Calls being handled now.",
            "# TYPE ivrflow_calls_active gauge",
            f"ivrflow_calls_active {self.active}",
            "# HELP ivrflow_calls_accepted_total Calls accepted since the start.",
            "# TYPE ivrflow_calls_accepted_total counter",
            f"ivrflow_calls_accepted_total {self.accepted}",
            "# HELP ivrflow_calls_total Calls ended, by disposition.",
            "# TYPE ivrflow_calls_total counter",
        ]
        for disp in sorted(self.by_disposition):
            lines.append(f'ivrflow_calls_total{{disposition="{disp}"}} {self.by_disposition[disp]}')
        lines += [
            "# HELP ivrflow_step_latency_seconds From an event's arrival to the next command sent.",
            "# TYPE ivrflow_step_latency_seconds histogram",
            *self.step_latency.lines("ivrflow_step_latency_seconds"),
            "# HELP ivrflow_setup_seconds From the connection to the first prompt sent.",
            "# TYPE ivrflow_setup_seconds histogram",
            *self.setup.lines("ivrflow_setup_seconds"),
            "# HELP ivrflow_flow_reloads_total Flow reloads, by result.",
            "# TYPE ivrflow_flow_reloads_total counter",
            f'ivrflow_flow_reloads_total{{result="ok"}} {self.reloads["ok"]}',
            f'ivrflow_flow_reloads_total{{result="rejected"}} {self.reloads["rejected"]}',
            "# HELP ivrflow_flows_loaded Flows being served.",
            "# TYPE ivrflow_flows_loaded gauge",
            f"ivrflow_flows_loaded {self.flows_loaded}",
            "# HELP ivrflow_cdr_write_failures_total Call records the database refused (then spooled).",
            "# TYPE ivrflow_cdr_write_failures_total counter",
            f"ivrflow_cdr_write_failures_total {self.cdr_failures}",
            "# HELP ivrflow_draining 1 while shutting down (new calls refused).",
            "# TYPE ivrflow_draining gauge",
            f"ivrflow_draining {1 if self.draining else 0}",
            "# HELP process_cpu_seconds_total User and system CPU time.",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {ru.ru_utime + ru.ru_stime:.3f}",
            "# HELP process_resident_memory_bytes Resident memory.",
            "# TYPE process_resident_memory_bytes gauge",
            f"process_resident_memory_bytes {_rss_bytes()}",
        ]
        return "\n".join(lines) + "\n"


def quantile(bounds: tuple, counts: list, q: float) -> float:
    total = sum(counts)
    if not total:
        return 0.0
    rank = q * total
    seen, lower = 0, 0.0
    for bound, n in zip(tuple(bounds) + (math.inf,), counts):
        if n and seen + n >= rank:
            if math.isinf(bound):
                return math.inf
            return lower + (bound - lower) * (rank - seen) / n
        seen += n
        lower = bound
    return math.inf


def parse_histogram(text: str, name: str) -> tuple[tuple, list]:
    """(bounds, per-bucket counts) of a histogram in Prometheus text (cumulative buckets)."""
    import re
    pairs = []
    for m in re.finditer(name + r'_bucket\{le="([^"]+)"\} (\d+)', text):
        pairs.append((math.inf if m.group(1) == "+Inf" else float(m.group(1)), int(m.group(2))))
    bounds = tuple(b for b, _ in pairs if not math.isinf(b))
    cum = [c for _, c in pairs]
    counts = [c - (cum[i - 1] if i else 0) for i, c in enumerate(cum)]
    return bounds, counts


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        import os
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
