"""Load benchmark of `ivrflow serve`: many emulated calls over loopback TCP against one process.

    python bench/serve_load.py            # ~2.5 minutes; prints the figures
    python bench/serve_load.py --quick    # a smaller run (~1.5 minutes)

Three runs, each a fresh server process, the load generator (the project's FreeSWITCH emulator
with its 20 ms media clock) in this process:

  A. `ivrflow serve` (the real command, flows bench/flows, call records to the spool file) with
     about 2,000 calls in progress: p50/p99 latency from an event's arrival to the next command
     (the server's own histogram, /metrics), the emulator-side round trip (welcome's completion
     written -> next prompt received), setup to the first prompt, calls per second, CPU and
     resident memory per call.
  F. the same load on bench/serve_floor.py, a minimal hand-written asyncio handler of the same
     call: the floor for CPU per call and latency.
  B. `ivrflow serve` ramped to the maximum concurrency asked (5,000): every call must be
     answered, reach its menu and end with a record; then the emulator hangs up all at once.

The call (bench/flows/bench.yaml): welcome, a menu answered by barge-in (1), a 4-digit entry
ended by '#' barging into its prompt, a result, goodbye - 5 prompts, 5 keys, ~26 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.serve.metrics import parse_histogram, quantile  # noqa: E402
from engine.testing import CallerScript, FreeSwitchEmulator  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
IVRFLOW = str(ROOT / ".venv" / "bin" / "ivrflow")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def http_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


class Probe:
    """Emulator-side timings per call: connect, first prompt received / started, and the
    round trip from the welcome's completion (written) to the next prompt (received)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.connect_at: dict[str, float] = {}
        self.first_cmd: list[float] = []
        self.first_start: list[float] = []
        self.rtt: list[float] = []
        self.menu_reached = 0
        self._welcome_done: dict[str, float] = {}
        self._seen_cmd: set[str] = set()
        self._seen_start: set[str] = set()
        self._plays: dict[str, int] = {}

    def __call__(self, what: str, obj, app: str) -> None:
        now = self.loop.time()
        if what == "command":
            chan = obj.channel
            if chan is None or app != "playback":
                return
            uid = chan.uuid
            if uid not in self._seen_cmd:
                self._seen_cmd.add(uid)
                if uid in self.connect_at:
                    self.first_cmd.append(now - self.connect_at[uid])
            done = self._welcome_done.pop(uid, None)
            if done is not None:
                self.rtt.append(now - done)
        elif app == "playback" and what in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
            uid = obj.uuid
            if what == "CHANNEL_EXECUTE":
                n = self._plays[uid] = self._plays.get(uid, 0) + 1
                if n == 1 and uid in self.connect_at:
                    self.first_start.append(now - self.connect_at[uid])
                if n == 2:
                    self.menu_reached += 1
            elif self._plays.get(uid) == 1:
                self._welcome_done[uid] = now


async def load(port: int, *, rate: float, calls: int, welcome: float, result: float,
               sample=None, hangup_all_after: float | None = None) -> dict:
    """Place `calls` calls at `rate` per second; wait for them to end (or hang them all up)."""
    loop = asyncio.get_running_loop()
    media = {"/srv/ivrflow-bench/welcome.wav": welcome * 1000, "/srv/ivrflow-bench/menu.wav": 3000.0,
             "/srv/ivrflow-bench/account.wav": 3000.0, "/srv/ivrflow-bench/result.wav": result * 1000}
    emu = FreeSwitchEmulator(frame_ms=20, media=media, keep_wire=False, coalesce_writes=True)
    probe = Probe(loop)
    emu.probe = probe
    placed, failed = [], 0
    t0 = loop.time()
    c0 = time.process_time()
    peak = 0

    async def one(i: int) -> None:
        nonlocal failed
        caller = CallerScript().press("1", on="playback", nth=2, after=0.5) \
            .press("1234#", on="playback", nth=3, after=1.0)
        try:
            uid = f"00000000-0000-4000-8000-{i:012d}"
            probe.connect_at[uid] = loop.time()
            call = await emu.place_call("127.0.0.1", port, caller=caller, uuid=uid, timeout=30)
            placed.append(call)
        except (OSError, asyncio.TimeoutError):
            failed += 1

    tasks = []
    for i in range(calls):
        delay = t0 + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(i)))
        if sample is not None and i % max(1, int(rate)) == 0:
            peak = max(peak, await sample())
    await asyncio.gather(*tasks)
    ramp = loop.time() - t0
    if hangup_all_after is not None:
        await asyncio.sleep(hangup_all_after)
        if sample is not None:
            peak = max(peak, await sample())
        up = [c for c in placed if not c.channel.hungup]
        for c in up:
            c.hangup("NORMAL_CLEARING")
    done = 0
    for c in placed:
        try:
            await c.wait_hangup(120)
            done += 1
        except asyncio.TimeoutError:
            pass
    await asyncio.sleep(0.5)
    elapsed = loop.time() - t0
    cpu = time.process_time() - c0
    await emu.close()
    return {"placed": len(placed), "failed_connect": failed, "ended": done, "ramp": ramp, "elapsed": elapsed,
            "probe": probe, "emulator_cpu": cpu, "peak": peak}


def start_ivrflow(tmp: Path) -> tuple[subprocess.Popen, int, int]:
    port, mport = free_port(), free_port()
    cfg = tmp / "serve.yaml"
    cfg.write_text(f"""
listen: 127.0.0.1:{port}
flows: {ROOT / 'bench' / 'flows'}
db: none
metrics: 127.0.0.1:{mport}
prompts: {{tts: none}}
reload: {{interval: 0}}
logging: {{format: json, level: INFO}}
cdr_spool: {tmp / 'cdr-spool.jsonl'}
""", encoding="utf-8")
    log = open(tmp / "serve.log", "ab")
    proc = subprocess.Popen([IVRFLOW, "serve", "--config", str(cfg)], stdout=log, stderr=log, cwd=tmp,
                            preexec_fn=_raise_nofile)
    deadline = time.monotonic() + 30
    while True:
        try:
            if json.loads(http_get(mport, "/health"))["status"] == "ok":
                return proc, port, mport
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("ivrflow serve did not start: see " + str(tmp / "serve.log"))
        time.sleep(0.1)


def start_floor() -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([PY, str(ROOT / "bench" / "serve_floor.py"), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, text=True, preexec_fn=_raise_nofile)
    json.loads(proc.stdout.readline())
    return proc, port


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def run_phase(label: str, target: str, port: int, pid: int, mport: int | None, *, conc: int, welcome: float,
              result: float, hold: float, hangup_all_after: float | None = None, ramp: float | None = None) -> dict:
    duration = welcome + 3.0 + result            # welcome, menu cut at 0.5 s, entry, result
    rate = conc / (ramp or duration)
    calls = int(rate * (duration + hold)) if hangup_all_after is None else conc
    rss0 = rss_bytes(pid)
    cpu0 = cpu_seconds(pid)
    before = http_get(mport, "/metrics") if mport else ""
    peak_rss = [rss0]

    async def sample() -> int:
        peak_rss.append(rss_bytes(pid))
        if mport:
            return int(metric(await asyncio.to_thread(http_get, mport, "/metrics"), "ivrflow_calls_active"))
        return 0

    print(f"  {label}: {calls} calls at {rate:.0f}/s, each ~{duration:.0f} s"
          + (f", all hung up {hangup_all_after:g} s after the last" if hangup_all_after is not None else "")
          + f" -> ~{conc} in progress ...", flush=True)
    res = asyncio.run(load(port, rate=rate, calls=calls, welcome=welcome, result=result, sample=sample,
                           hangup_all_after=hangup_all_after))
    cpu = cpu_seconds(pid) - cpu0
    after = http_get(mport, "/metrics") if mport else ""
    out = {"label": label, "target": target, "calls": calls, "rate": rate, "duration": duration, **res,
           "cpu": cpu, "rss0": rss0, "rss_peak": max(peak_rss)}
    if mport:
        b0, c0 = parse_histogram(before, "ivrflow_step_latency_seconds")
        b1, c1 = parse_histogram(after, "ivrflow_step_latency_seconds")
        counts = [x - (c0[i] if i < len(c0) else 0) for i, x in enumerate(c1)]
        out["lat"] = (b1, counts)
        out["completed"] = metric(after, 'ivrflow_calls_total{disposition="completed"}') - \
            metric(before, 'ivrflow_calls_total{disposition="completed"}')
    return out


def report(r: dict, floor_stats: dict | None = None) -> None:
    p = r["probe"]
    if floor_stats is not None:
        lat = (tuple(floor_stats["latency"]["bounds"]), floor_stats["latency"]["counts"])
        completed = floor_stats["completed"]
    else:
        lat, completed = r["lat"], r["completed"]
    n = max(1, r["ended"])
    print(f"    calls: {r['placed']} placed ({r['failed_connect']} refused), {r['ended']} ended, "
          f"{completed:.0f} completed the whole flow; {r['placed'] / r['ramp']:.0f} calls/s set up, "
          f"{r['ended'] / r['elapsed']:.0f} calls/s over {r['elapsed']:.0f} s")
    print(f"    latency event -> next command (server): p50 {1000 * quantile(*lat, 0.5):.2f} ms, "
          f"p99 {1000 * quantile(*lat, 0.99):.2f} ms ({sum(lat[1])} samples)")
    print(f"    round trip welcome done -> next prompt received (emulator): p50 {1000 * pct(p.rtt, .5):.2f} ms, "
          f"p99 {1000 * pct(p.rtt, .99):.2f} ms")
    print(f"    setup: first prompt received {1000 * pct(p.first_cmd, .5):.2f} / "
          f"{1000 * pct(p.first_cmd, .99):.2f} ms (p50/p99) after the connect, started "
          f"{1000 * pct(p.first_start, .5):.0f} / {1000 * pct(p.first_start, .99):.0f} ms "
          f"(the emulator parks on its 1st frame, runs the queue on the 2nd)")
    print(f"    server CPU {r['cpu']:.1f} s = {1000 * r['cpu'] / n:.2f} ms per call; resident memory "
          f"{r['rss0'] / 2**20:.0f} -> {r['rss_peak'] / 2**20:.0f} MiB "
          f"({(r['rss_peak'] - r['rss0']) / max(1, r['peak'] or r['placed']) / 1024:.0f} KiB per call in progress); "
          f"emulator CPU {r['emulator_cpu']:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller and shorter (~1.5 minutes)")
    ap.add_argument("--concurrent", type=int, default=2000, help="calls in progress for runs A and F")
    ap.add_argument("--max", type=int, default=5000, help="calls in progress for run B (0: skip)")
    a = ap.parse_args()
    _raise_nofile()
    from engine.serve.cli import quiet_gc
    quiet_gc()                       # the load generator is Python too: no collector pauses
    conc, top = (a.concurrent, a.max) if not a.quick else (min(a.concurrent, 400), min(a.max, 1000))
    print(f"ivrflow serve load benchmark ({os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"fd limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]})", flush=True)
    with tempfile.TemporaryDirectory(prefix="ivrflow-bench-") as d:
        tmp = Path(d)
        proc, port, mport = start_ivrflow(tmp)
        try:
            ra = run_phase("A  ivrflow serve", "ivrflow", port, proc.pid, mport, conc=conc,
                           welcome=6.0 if a.quick else 9.0, result=6.0 if a.quick else 9.0, hold=3.0)
            report(ra)
            rb = None
            if top:
                # calls long enough to all be up at once; then the callers all hang up together
                ramp = 20.0 if a.quick else 40.0
                rb = run_phase("B  ivrflow serve, maximum", "ivrflow", port, proc.pid, mport, conc=top,
                               welcome=ramp - 5.0, result=ramp, hold=0.0, hangup_all_after=5.0, ramp=ramp)
                report(rb)
                print(f"    peak calls in progress (server's own gauge): {rb['peak']}; "
                      f"{rb['probe'].menu_reached} of {rb['placed']} calls reached their menu")
        finally:
            stop(proc)
        fproc, fport = start_floor()
        try:
            rf = run_phase("F  floor (bench/serve_floor.py)", "floor", fport, fproc.pid, None, conc=conc,
                           welcome=6.0 if a.quick else 9.0, result=6.0 if a.quick else 9.0, hold=3.0)
        finally:
            fstats = json.loads(stop(fproc).strip().splitlines()[-1])
        report(rf, fstats)
        ratio = (ra["cpu"] / max(1, ra["ended"])) / max(1e-9, rf["cpu"] / max(1, rf["ended"]))
        print(f"  CPU per call, ivrflow / floor: {ratio:.2f}x")


if __name__ == "__main__":
    main()
