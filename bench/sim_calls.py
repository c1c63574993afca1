"""Simulated calls per second on one flow (one core, one event loop).

    python bench/sim_calls.py [FLOW] [--calls N] [--db none|memory|both]

Default flow: flows/hospital.yaml, else the runtime's test fixture.  Callers follow random
scripts built from the flow's own menu keys and valid entries (fixed seed), so calls take
varied paths.  'memory' runs every call on one shared in-memory database seeded with the demo
data (as production shares one database); 'none' runs without a store (actions needing it go
to the error path).  Figures: calls/s by wall clock and by CPU time, steps and events per call,
and how the calls ended.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.flow import compile_file, ir  # noqa: E402
from engine.runtime import Interpreter, SimChannel, SimOptions, VirtualClock, make_resolver  # noqa: E402
from engine.runtime.script import Token, parse_script  # noqa: E402
from engine.scenario.explore import valid_entry  # noqa: E402


def load(flow_arg: str | None):
    if flow_arg is None:
        hosp = ROOT / "flows" / "hospital.yaml"
        flow_arg = str(hosp) if hosp.exists() else str(ROOT / "tests/runtime/fixtures/demo.yaml")
    registry = None
    if "tests/runtime/fixtures" in flow_arg:
        sys.path.insert(0, str(ROOT / "tests" / "runtime"))
        import rt_helpers

        registry = rt_helpers.registry()
    if registry is None:
        from engine.actions import default_registry

        registry = default_registry()
    flow, diags = compile_file(flow_arg, registry=registry)
    if flow is None:
        sys.exit("the flow does not compile:\n" + "\n".join(d.headline() for d in diags))
    return flow_arg, flow, registry


def scripts(flow: ir.Flow, n: int, seed: int = 7) -> list[list[Token]]:
    words: list[str] = []
    for s in flow.all_states():
        if s.kind == "menu":
            words += list(s.spec.options)
        elif s.kind == "collect":
            v = valid_entry(s.spec)
            if v is not None:
                words.append(v + (s.spec.terminator if s.spec.terminator and len(v) < s.spec.max_digits else ""))
        elif s.kind == "record":
            words += ["speak:4 #"]
    words += list(flow.global_keys) + ["timeout"]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks = [rng.choice(words) for _ in range(rng.randint(2, 10))]
        if rng.random() < 0.15:
            toks.insert(rng.randint(0, len(toks)), "hangup")
        out.append(parse_script(" ".join(toks)))
    return out


class CurrentClock:
    """The store's clock: whichever simulated call is running (calls run one after another)."""

    clock = VirtualClock()

    def now(self):
        return self.clock.now()


def run(flow, registry, calls: int, store) -> dict:
    resolver, _ = make_resolver(flow)
    interp = Interpreter(flow, registry=registry, resolver=resolver, store=store)
    pool = scripts(flow, 500)
    loop = asyncio.new_event_loop()
    opts = SimOptions()

    async def one(tokens):
        clock = CurrentClock.clock = VirtualClock()
        ch = SimChannel(tokens, clock, options=opts)
        return await interp.run(ch, clock)

    for i in range(50):                     # warm up (template caches, first DB touches)
        loop.run_until_complete(one(pool[i % len(pool)]))
    ends: Counter = Counter()
    steps = events = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(calls):
        r = loop.run_until_complete(one(pool[i % len(pool)]))
        ends[r.record.disposition] += 1
        steps += r.record.steps
        events += len(r.record.events)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    loop.close()
    return {"calls": calls, "wall": wall, "cpu": cpu, "steps": steps / calls, "events": events / calls, "ends": ends}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("flow", nargs="?")
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--db", choices=["none", "memory", "both"], default="both")
    a = ap.parse_args()
    logging.getLogger("ivrflow.runtime").addHandler(logging.NullHandler())
    logging.getLogger("ivrflow.runtime").propagate = False
    path, flow, registry = load(a.flow)
    print(f"flow {path}: {sum(1 for _ in flow.all_states())} states; {a.calls} calls per run")
    modes = ["none", "memory"] if a.db == "both" else [a.db]
    for mode in modes:
        if mode == "none":
            r = run(flow, registry, a.calls, None)
        else:
            from engine.scenario.db import MemoryDatabases

            dbs = MemoryDatabases()
            with dbs.database(CurrentClock()) as store:
                r = run(flow, registry, a.calls, store)
            dbs.close()
        ends = ", ".join(f"{k} {v}" for k, v in r["ends"].most_common())
        print(f"  store={mode:<6} {r['calls'] / r['wall']:8.0f} calls/s wall  {r['calls'] / r['cpu']:8.0f} calls/s CPU"
              f"  {r['steps']:.1f} steps/call  {r['events']:.1f} events/call  ({ends})")


if __name__ == "__main__":
    main()
