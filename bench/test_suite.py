"""Time of a full `ivrflow test` run of the example suites.

    python bench/test_suite.py [PATH...]      (default: flows/)

Runs the command as a user would (a fresh Python process, `ivrflow test` or, before the lead
attaches it, `engine.runtime.cli.test`), three times; prints the wall time of each run, the
number of cases, and the in-process time per case.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(paths: list[str]) -> list[str]:
    exe = shutil.which("ivrflow")
    if exe:
        probe = subprocess.run([exe, "test", "--help"], capture_output=True, cwd=ROOT)
        if probe.returncode == 0:
            return [exe, "test", *paths]
    code = "from engine.runtime.cli import test; test(prog_name='ivrflow test')"
    return [sys.executable, "-c", code, *paths]


def main() -> None:
    paths = sys.argv[1:] or ["flows"]
    cmd = command(paths + ["--json", "--no-coverage"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times, out = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, cwd=ROOT, env=env)
        times.append(time.perf_counter() - t0)
        out = p
    if out.returncode == 2:
        sys.exit(f"ivrflow test could not run the suites:\n{out.stderr.decode()[-2000:]}")
    data = json.loads(out.stdout)
    cases = [c for s in data["suites"] for c in s["cases"]]
    n = len(cases)
    case_ms = [c["ms"] for c in cases]
    print(f"ivrflow test {' '.join(paths)}: {len(data['suites'])} suites, {n} cases, "
          f"{data['failed']} failing, coverage {data['coverage']['total']}%")
    print(f"  wall time per full run: {', '.join(f'{t:.2f} s' for t in times)} "
          f"(median {statistics.median(times):.2f} s)")
    if n:
        print(f"  in-process per case: median {statistics.median(case_ms):.1f} ms, max {max(case_ms):.1f} ms "
              f"(the first case of a run also builds the seeded database template)")


if __name__ == "__main__":
    main()
