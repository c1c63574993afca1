"""Coverage: which states and transitions (outcome edges) a set of calls exercised."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from engine.flow import ir

from engine.runtime.record import CallRecord

__all__ = ["Coverage", "merge_table"]


def _qual(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


class Coverage:
    """Accumulates call records of one flow."""

    def __init__(self, flow: ir.Flow):
        self.flow = flow
        self.states = {(s.scope, s.name): s for s in flow.all_states()}
        self.edges = {(s.scope, s.name, t.outcome): (s, t) for s in flow.all_states() for t in s.transitions}
        self.state_hits: Counter = Counter()
        self.edge_hits: Counter = Counter()
        self.handler_hits: Counter = Counter()
        self.calls = 0

    def add(self, rec: CallRecord | dict) -> None:
        events = rec.events if isinstance(rec, CallRecord) else rec["events"]
        self.calls += 1
        for e in events:
            t = e["type"]
            if t == "state":
                self.state_hits[(e["scope"], e["state"])] += 1
            elif t == "transition":
                self.edge_hits[(e["scope"], e["state"], e["edge"])] += 1
            elif t == "jump":
                self.handler_hits[e["via"]] += 1

    def add_all(self, recs: Iterable[CallRecord | dict]) -> None:
        for r in recs:
            self.add(r)

    # -- figures ------------------------------------------------------------------------------------
    @property
    def states_covered(self) -> int:
        return sum(1 for k in self.states if self.state_hits[k])

    @property
    def edges_covered(self) -> int:
        return sum(1 for k in self.edges if self.edge_hits[k])

    def percent(self) -> float:
        total = len(self.states) + len(self.edges)
        return 100.0 if total == 0 else 100.0 * (self.states_covered + self.edges_covered) / total

    def uncovered(self) -> list[dict]:
        out = []
        for k, s in self.states.items():
            if not self.state_hits[k]:
                out.append({"what": "state", "state": _qual(*k), "pos": str(s.position), "_sort": s.position})
        for k, (s, t) in self.edges.items():
            if not self.edge_hits[k]:
                out.append({"what": "transition", "state": _qual(k[0], k[1]), "outcome": t.outcome, "to": t.target,
                            "pos": str(t.position), "_sort": t.position})
        out.sort(key=lambda d: (d["_sort"].line, d["_sort"].col, d["what"]))
        for d in out:
            del d["_sort"]
        return out

    def handlers(self) -> dict:
        """Implicit routes (global keys, on.error, on.failed, on.hangup): defined -> times taken."""
        defined = [f"key {k}" for k in self.flow.global_keys]
        defined += [f"on.{h}" for h in ("error", "failed", "hangup") if getattr(self.flow, f"on_{h}")]
        return {h: self.handler_hits.get(h, 0) for h in defined}

    def to_json(self) -> dict:
        return {
            "flow": self.flow.name,
            "file": self.flow.file,
            "calls": self.calls,
            "states": {"total": len(self.states), "covered": self.states_covered},
            "transitions": {"total": len(self.edges), "covered": self.edges_covered},
            "percent": round(self.percent(), 1),
            "handlers": self.handlers(),
            "uncovered": self.uncovered(),
            "state_hits": {_qual(*k): self.state_hits[k] for k in self.states},
        }


def merge_table(covs: Iterable[Coverage], *, uncovered: bool = True) -> str:
    covs = list(covs)
    rows = []
    w = max([len(c.flow.file) for c in covs] + [4])
    rows.append(f"{'flow':<{w}}  {'states':>14}  {'transitions':>14}  {'total':>6}")
    ts = tc = es = ec = 0
    for c in covs:
        s, sc, e, e_c = len(c.states), c.states_covered, len(c.edges), c.edges_covered
        ts, tc, es, ec = ts + s, tc + sc, es + e, ec + e_c
        rows.append(f"{c.flow.file:<{w}}  {_frac(sc, s):>14}  {_frac(e_c, e):>14}  {c.percent():>5.1f}%")
    if len(covs) > 1:
        tot = 100.0 if ts + es == 0 else 100.0 * (tc + ec) / (ts + es)
        rows.append(f"{'TOTAL':<{w}}  {_frac(tc, ts):>14}  {_frac(ec, es):>14}  {tot:>5.1f}%")
    if uncovered:
        for c in covs:
            unc = c.uncovered()
            if unc:
                rows.append(f"not covered in {c.flow.file}:")
                for u in unc:
                    if u["what"] == "state":
                        rows.append(f"  {u['pos']}: state {u['state']}")
                    else:
                        rows.append(f"  {u['pos']}: transition {u['state']} --{u['outcome']}--> {u['to']}")
            handlers = {h: n for h, n in c.handlers().items() if not n}
            if handlers:
                rows.append(f"  (routes never taken in {c.flow.file}: {', '.join(handlers)})")
    return "\n".join(rows)


def total_percent(covs: Iterable[Coverage]) -> float:
    covs = list(covs)
    total = sum(len(c.states) + len(c.edges) for c in covs)
    got = sum(c.states_covered + c.edges_covered for c in covs)
    return 100.0 if total == 0 else 100.0 * got / total


def _frac(a: int, b: int) -> str:
    pct = 100.0 if b == 0 else 100.0 * a / b
    return f"{a}/{b} {pct:5.1f}%"
