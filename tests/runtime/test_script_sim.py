"""The caller script and the simulated channel's caller model."""

import asyncio

import pytest
from rt_helpers import flow_from_text, run_call

from engine.runtime.channel import CallHangup, PlayItem
from engine.runtime.clock import VirtualClock, parse_start
from engine.runtime.script import ScriptError, format_script, parse_script
from engine.runtime.sim import SimChannel, SimOptions, estimate_seconds


def test_parse_script_tokens():
    toks = parse_script("1 12345678# wait:6 !2 timeout speak:1.5s w:500ms hangup")
    assert [t.kind for t in toks] == ["keys", "keys", "wait", "keys", "timeout", "speak", "wait", "hangup"]
    assert toks[1].keys == "12345678#" and toks[2].seconds == 6.0 and toks[3].now is True
    assert toks[5].seconds == 1.5 and toks[6].seconds == 0.5
    assert format_script(toks) == "1 12345678# wait:6 !2 timeout speak:1.5 wait:0.5 hangup"
    assert parse_script(format_script(toks)) == toks
    assert parse_script("") == [] and parse_script(None) == []


@pytest.mark.parametrize("text, col, words", [
    ("1 2 x", 5, "unknown token 'x'"),
    ("12a", 1, "key 'a' is not a phone key"),
    ("wait:soon", 1, "wait needs a duration"),
    ("1  speak:", 4, "speak needs a duration"),
    ("wait:100000", 1, "more than a day"),
])
def test_parse_script_errors_say_where(text, col, words):
    with pytest.raises(ScriptError) as e:
        parse_script(text)
    assert e.value.column == col and words in str(e.value)


def test_estimate_seconds():
    assert estimate_seconds(PlayItem(text="您好，欢迎致电示范医院。")) == pytest.approx(12 * 0.22, abs=0.01)
    assert estimate_seconds(PlayItem(text="Welcome to the demo line.")) == pytest.approx(21 * 0.065, abs=0.01)
    assert estimate_seconds(PlayItem(tone="%(200,100,440)")) == pytest.approx(0.3)
    assert estimate_seconds(PlayItem(prompt_id="x")) == 2.0


def test_estimate_reads_wav_length(tmp_path):
    import struct
    import wave

    p = tmp_path / "a.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<h", 0) * 12000)
    assert estimate_seconds(PlayItem(text="x", path=str(p), source="recording")) == 1.5


def _drive(coro):
    return asyncio.run(coro)


def test_polite_keys_wait_for_the_ivr_to_listen():
    clock = VirtualClock()
    ch = SimChannel("5", clock, options=SimOptions(prompt_seconds=3))
    assert _drive(ch.play([PlayItem(text="a")], True)) is None      # not pressed during the prompt
    assert clock.monotonic() == 3.0
    assert _drive(ch.read_key(5)) == "5" and clock.monotonic() == 3.0


def test_wait_then_keys_and_timeouts():
    clock = VirtualClock()
    ch = SimChannel("wait:8 7", clock)
    assert _drive(ch.read_key(5)) is None and clock.monotonic() == 5.0   # first timeout
    assert _drive(ch.read_key(5)) == "7" and clock.monotonic() == 8.0    # pressed at 8 s


def test_timeout_token_consumes_exactly_one_wait():
    clock = VirtualClock()
    ch = SimChannel("timeout 4", clock)
    assert _drive(ch.read_key(2.5)) is None and clock.monotonic() == 2.5
    assert _drive(ch.read_key(2.5)) == "4" and clock.monotonic() == 2.5


def test_barge_in_key_interrupts_at_its_time_and_stays_queued():
    clock = VirtualClock()
    ch = SimChannel("wait:1.2 !9", clock, options=SimOptions(prompt_seconds=5))
    assert _drive(ch.play([PlayItem(text="a")], True)) == "9"
    assert clock.monotonic() == 1.2 and ch.pending_keys() == "9"
    assert _drive(ch.read_key(0)) == "9"


def test_hangup_during_prompt_raises_at_its_time():
    clock = VirtualClock()
    ch = SimChannel("wait:2 hangup", clock, options=SimOptions(prompt_seconds=5))
    with pytest.raises(CallHangup) as e:
        _drive(ch.play([PlayItem(text="a")], False))
    assert e.value.cause == "NORMAL_CLEARING" and clock.monotonic() == 2.0
    assert ch.hungup
    with pytest.raises(CallHangup):                 # and every later operation too
        _drive(ch.read_key(1))


def test_collect_protocol_on_sim_channel():
    clock = VirtualClock()
    ch = SimChannel("12 wait:2 3#9", clock)
    r = _drive(ch.collect((), min_digits=1, max_digits=6, terminator="#", first_timeout=5, inter_digit=3))
    assert (r.digits, r.keys, r.reason) == ("123", "123#", "terminator")
    assert ch.pending_keys() == "9"


def test_script_end_means_silence():
    flow = flow_from_text("""
flow: t
languages: [en]
start: m
states:
  m:
    menu: {prompt: m, options: {1: bye}, attempts: 2, timeout: 4s}
    next: {failed: bye}
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "")
    assert [e["result"] for e in res.record.events if e["type"] == "input"] == ["no_input", "no_input"]
    assert res.record.duration == 2 * (2 + 4)


def test_parse_start():
    assert parse_start("2025-03-03T09:30").isoformat() == "2025-03-03T09:30:00+08:00"
    assert parse_start("2025-03-03 09:30+00:00").utcoffset().total_seconds() == 0
    with pytest.raises(ValueError):
        parse_start("next tuesday")


def test_loop_clock_follows_a_virtual_time_loop():
    from engine.runtime.clock import LoopClock
    from engine.testing.vclock import run_virtual

    async def main():
        clock = LoopClock(parse_start("2025-03-03T10:00"))
        t0 = clock.monotonic()
        await clock.sleep(5)
        return clock.monotonic() - t0, clock.now()

    elapsed, now = run_virtual(main)
    assert elapsed == pytest.approx(5.0)
    assert now.isoformat().startswith("2025-03-03T10:00:05")


def test_virtual_clock_rejects_naive_start():
    import datetime as dt

    with pytest.raises(ValueError):
        VirtualClock(dt.datetime(2025, 1, 1))
