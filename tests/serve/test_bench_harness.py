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


def test_the_floor_and_ivrflow_make_the_same_call(tmp_path, monkeypatch):
    """The floor is a fair comparison only if FreeSWITCH sees the same call from both: the same
    applications in the same order (the result protected from the late '#'), ended at the same
    time."""
    seen = []
    place = serve_inproc.FreeSwitchEmulator.place_call

    async def recording(self, *a, **k):
        call = await place(self, *a, **k)
        seen.append(call)
        return call
    monkeypatch.setattr(serve_inproc.FreeSwitchEmulator, "place_call", recording)

    def one(floor):
        seen.clear()
        run_virtual(lambda: serve_inproc.scenario(1, 1, tmp_path / f"s{floor}.jsonl",
                                                  serve_inproc._NoProfile(), floor=floor),
                    stall_timeout=30)
        ch = seen[0].channel
        return ch.app_history, ch.hangup_us - seen[0].emu.start_epoch * 1e6

    ivr, floor = one(False), one(True)
    assert ivr[0] == floor[0]
    assert ("set", "playback_terminators=0123456789*ABCD") in ivr[0]
    assert abs(ivr[1] - floor[1]) < 1000          # µs: the same frames
