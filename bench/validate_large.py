"""Validation time of a generated large flow (load + schema + compile + all checks).

    python bench/validate_large.py [--states 2000] [--runs 5]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.actions import Action, Registry, Result  # noqa: E402
from engine.flow import compile_text  # noqa: E402


async def _run(ctx, params):
    return Result("found")


LOOKUP = Action(name="bench.lookup", summary="bench", params={"type": "object", "properties": {"code": {"type": "string"}}},
                outcomes=("found", "missing"), sets={"found": ("answer",)}, run=_run)


def generate(n: int) -> str:
    """A flow of n states: menus fanning out to collects, actions, branches and says, all reachable."""
    lines = ["flow: big", "languages: [zh-CN, en]", "start: s0", "on:", "  keys: {\"*\": s0}", "states:"]
    for i in range(n):
        nxt, nxt2 = (i + 1) % n, (i + 7) % n
        k = i % 5
        if i == n - 1:
            lines += [f"  s{i}:", "    hangup: true"]
        elif k == 0:
            lines += [f"  s{i}:", "    menu:", f"      prompt: p{i}", f"      options: {{1: s{nxt}, 2: s{nxt2}, 3: s{n - 1}}}",
                      "      timeout: 5s", "      attempts: 3", f"    next: {{failed: s{n - 1}}}"]
        elif k == 1:
            lines += [f"  s{i}:", f"    collect: {{prompt: c{i}, into: v{i}, digits: 4..8, terminator: \"#\"}}",
                      f"    next: {{ok: s{nxt}, failed: s{n - 1}}}"]
        elif k == 2:
            lines += [f"  s{i}:", "    action: bench.lookup", f"    params: {{code: \"{{{{ v{i - 1} | default(caller_raw) }}}}\"}}",
                      f"    next: {{found: s{nxt}, missing: s{n - 1}}}"]
        elif k == 3:
            lines += [f"  s{i}:", "    branch:", f"      - {{if: \"answer is defined and answer > {i}\", then: s{nxt}}}", f"    next: s{nxt}"]
        else:
            lines += [f"  s{i}:", f"    say: \"第{i}步 {{{{ caller_raw }}}}\"", f"    next: s{nxt}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    text = generate(a.states)
    reg = Registry([LOOKUP])
    times, cpu = [], []
    for _ in range(a.runs):
        from engine import templating

        for f in (templating.parse_template, templating.parse_expression, templating.analyse):
            f.cache_clear()
        t0, c0 = time.perf_counter(), time.process_time()
        flow, diags = compile_text(text, "big.yaml", reg)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        errors = [d for d in diags if d.severity == "error"]
        if errors:
            print("\n".join(d.headline() for d in errors[:10]))
            sys.exit(1)
    print(f"validate a {a.states}-state flow ({len(text.splitlines())} lines, {len(text) // 1024} KiB): "
          f"wall median {statistics.median(times) * 1000:.0f} ms (best {min(times) * 1000:.0f} ms), "
          f"CPU median {statistics.median(cpu) * 1000:.0f} ms, over {a.runs} runs; target < 1000 ms")
    print(f"first run in this process (schema validator compiled once): {times[0] * 1000:.0f} ms")


if __name__ == "__main__":
    main()
