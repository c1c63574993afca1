"""bench/serve_inproc.py's harness: the real Server (or the floor) and the emulator joined by
in-memory transports complete the benchmark's call, so its profiles describe working calls."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import serve_inproc  # noqa: E402
from engine.testing.vclock import run_virtual  # noqa: E402


@pytest.mark.parametrize("floor", [False, True])
def test_every_call_completes_its_flow(tmp_path, floor):
    wire: list[bytes] = []
    done, completed, cpu = run_virtual(
        lambda: serve_inproc.scenario(6, 3, tmp_path / "spool.jsonl", serve_inproc._NoProfile(), wire,
                                      floor=floor), stall_timeout=30)
    assert (done, completed) == (6, 6)
    assert cpu > 0 and wire, "the first call's bytes to the server were kept"
    if not floor:
        lines = (tmp_path / "spool.jsonl").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 6, "one call record per call"
