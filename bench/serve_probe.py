"""Where a served call's CPU goes: bench/serve_load.py's phase A (400 calls in progress, about
40 s) against `ivrflow serve` and against the floor, each server process running under a probe
that charges the thread CPU time of every event-loop callback to what it ran.

    python bench/serve_probe.py            # both; prints ms of CPU per call by callback kind

Kinds: socket reads (`_read_ready`: recv, parse, dispatch, and whatever the handler does inside
the read - all of the floor's work), the call's task (each wake-up of `OutboundServer._run`:
interpreter, channel, ESL writes, the call record and logs), the selector (`select`), and the
rest of each loop turn.  The probe itself costs a few microseconds per callback.

Internally: `--probed SCRIPT ARGS...` runs SCRIPT with the probe installed and writes the
accounting to $PROBE_OUT when it exits (this is how the server processes are started).
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def probed(argv: list[str]) -> None:
    """Run the script argv[0] with argv[1:] under the callback CPU probe."""
    import asyncio
    import atexit
    import runpy
    import selectors
    import time
    from asyncio import base_events, events

    tt = time.thread_time
    acc: collections.Counter = collections.Counter()
    n: collections.Counter = collections.Counter()
    run = events.Handle._run

    def kind(cb) -> str:
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, asyncio.Task):
            return "task " + getattr(owner.get_coro(), "__qualname__", "?")
        return getattr(cb, "__qualname__", None) or type(cb).__name__

    def _run(self) -> None:
        t = tt()
        run(self)
        k = kind(self._callback)
        acc[k] += tt() - t
        n[k] += 1

    select = selectors.EpollSelector.select

    def _select(self, timeout=None):
        t = tt()
        r = select(self, timeout)
        acc["<select>"] += tt() - t
        n["<select>"] += 1
        return r

    run_once = base_events.BaseEventLoop._run_once

    def _run_once(self) -> None:
        t = tt()
        run_once(self)
        acc["<loop turn>"] += tt() - t
        n["<loop turn>"] += 1

    events.Handle._run = _run
    selectors.EpollSelector.select = _select
    base_events.BaseEventLoop._run_once = _run_once

    def dump() -> None:
        with open(os.environ["PROBE_OUT"], "w", encoding="utf-8") as fh:
            json.dump({"seconds": dict(acc), "count": dict(n)}, fh)

    atexit.register(dump)
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


def main() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    sys.path.insert(0, str(ROOT))
    import serve_load as S
    from engine.serve.cli import quiet_gc

    S._raise_nofile()
    quiet_gc()
    real_popen = S.subprocess.Popen
    out: dict[str, Path] = {}

    def popen(args, **kw):
        which = "ivrflow" if args[0] == S.IVRFLOW else "floor"
        env = dict(kw.pop("env", None) or os.environ, PROBE_OUT=str(out[which]))
        args = [S.PY, __file__, "--probed", *args[(0 if which == "ivrflow" else 1):]]
        return real_popen(args, env=env, **kw)

    S.subprocess.Popen = popen
    print("bench/serve_probe.py: 400 calls in progress, ~15 s each; CPU per call by callback kind")
    with tempfile.TemporaryDirectory(prefix="ivrflow-probe-") as d:
        tmp = Path(d)
        results = {}
        for which in ("ivrflow", "floor"):
            out[which] = tmp / f"{which}.json"
            if which == "ivrflow":
                proc, port, mport = S.start_ivrflow(tmp)
            else:
                (proc, port), mport = S.start_floor(), None
            r = S.run_phase(which, which, port, proc.pid, mport, conc=400, welcome=6.0, result=6.0, hold=3.0)
            S.stop(proc)
            data = json.loads(out[which].read_text(encoding="utf-8"))
            results[which] = (r["ended"], r["cpu"], data)
    for which, (ended, cpu, data) in results.items():
        sec, cnt = data["seconds"], data["count"]
        per = 1000.0 / max(1, ended)
        reads = sum(v for k, v in sec.items() if k.endswith("_read_ready"))
        nreads = sum(v for k, v in cnt.items() if k.endswith("_read_ready"))
        task = sum(v for k, v in sec.items() if k.startswith("task OutboundServer."))
        ntask = sum(v for k, v in cnt.items() if k.startswith("task OutboundServer."))
        turn, sel = sec.get("<loop turn>", 0.0), sec.get("<select>", 0.0)
        other = turn - sel - sum(v for k, v in sec.items() if not k.startswith("<"))
        print(f"  {which}: {ended} calls, process CPU {cpu * per:.2f} ms per call")
        print(f"    socket reads      {reads * per:5.2f} ms per call ({nreads / max(1, ended):.1f} reads)")
        print(f"    the call's task   {task * per:5.2f} ms per call ({ntask / max(1, ended):.1f} wake-ups)")
        print(f"    selector          {sel * per:5.2f} ms per call ({cnt.get('<loop turn>', 0) / max(1, ended):.1f} loop turns)")
        print(f"    other callbacks   {(turn - sel - reads - task - max(0.0, other)) * per:5.2f} ms per call")
        print(f"    rest of the turns {max(0.0, other) * per:5.2f} ms per call")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--probed":
        probed(sys.argv[2:])
    else:
        main()
