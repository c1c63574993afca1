"""The FreeSWITCH channel against the emulator over real TCP (virtual clock): every fact of
the capture READMEs that the channel depends on, and the commands it sends.  The capture
behind each test is named in its docstring (tests/fixtures/esl, docs/esl.md)."""

import asyncio

import pytest

from engine.channel.freeswitch import BEEP, M_BARGE, M_OTHER, FsOptions, media_arg
from engine.runtime.channel import (CallHangup, ChannelError, ConferenceFailed, PlayItem, TransferFailed,
                                    TransferTarget)
from engine.testing import Agent, CallerScript, run_virtual
from serve_helpers import drive_channel

TONE1 = "tone_stream://%(1000,0,440)"
TONE3 = "tone_stream://%(3000,0,440)"


def item(arg, text="x"):
    return PlayItem(text, None, arg.split("tone_stream://", 1)[1], "p", "zh-CN", "tone") \
        if arg.startswith("tone_stream://") else PlayItem(text, arg, None, "p", "zh-CN", "cache")


def drive(scenario, **kw):
    return run_virtual(lambda: drive_channel(scenario, **kw))


def loop_time(emu, ev):
    """The emulator loop's time at which an event was stamped."""
    return int(ev["Event-Date-Timestamp"]) / 1e6 - emu.start_epoch + emu.t0


def ok(res):
    if res.error is not None:
        raise res.error
    return res.value


# ---------------------------------------------------------------- handshake (p, q2)

def test_handshake_answer_and_first_prompt_in_one_write():
    """p: connect, myevents, linger, the RECORD_* / conference events, answer and the first
    prompt written at once; replies come back in order; the prompt starts one frame after
    the connect (answer and playback run back to back, p.log)."""
    from engine.channel.freeswitch import M_BARGE

    async def scenario(ch):
        return await ch.play([item(TONE1)])

    res = drive(scenario, opening=[("set", "playback_terminators=any", M_OTHER), ("answer", None, M_OTHER),
                                   ("playback", TONE1, M_BARGE)])
    assert ok(res) is None
    first = res.writes[0].decode()
    assert first.startswith("connect\n\nmyevents\n\nlinger\n\n"
                            "event plain RECORD_START RECORD_STOP CUSTOM conference::maintenance\n\n")
    assert [x[0] for x in res.executes()] == ["set", "answer", "playback"]
    assert first.count("sendmsg") == 3, "the handshake and the first prompt are one write"
    assert len(res.writes) == 1, "the adopted speculative prompt is not sent again"
    starts = [e for e in res.call.events("CHANNEL_EXECUTE") if e.get("Application") == "playback"]
    answered = [e for e in res.call.events("CHANNEL_EXECUTE_COMPLETE") if e.get("Application") == "answer"]
    assert starts[0]["Event-Date-Timestamp"] == answered[0]["Event-Date-Timestamp"]
    # the emulator parks on its first frame and runs the queue on the next one: the prompt
    # starts on the first frame at which FreeSWITCH runs anything at all
    park = res.call.events("CHANNEL_PARK")[0]
    assert int(starts[0]["Event-Date-Timestamp"]) - int(park["Event-Date-Timestamp"]) == 20_000


def test_every_execute_is_event_locked_except_the_conference():
    """q1/q2/q3: without event-lock a queued prompt would play nested (reversed); the
    conference goes without it so a scheduled warning can nest into it (o)."""
    async def scenario(ch):
        await ch.play([item(TONE1), item(TONE1)])
        await ch.set_var("x", "1")
        return await ch.conference("r1", limit=2, warn_before=1, warning=[item(TONE1)])

    res = drive(scenario)
    assert isinstance(res.error, CallHangup) and res.error.cause == "ALLOTTED_TIMEOUT"
    for app, arg, lock in res.executes():
        assert lock == (app != "conference"), (app, arg)


def test_caller_data_from_the_connect_reply():
    """1, 9: the connect reply carries the channel: Unique-ID, caller, destination, variables."""
    async def scenario(ch):
        return ch.call_id, ch.caller_raw, ch.destination, ch.variables.get("ivrflow_flow")

    res = drive(scenario, call_kwargs={"caller_number": "13900000001", "destination": "95100",
                                       "variables": {"ivrflow_flow": "hospital"}})
    cid, caller, dest, flow = ok(res)
    assert cid == res.call.uuid and caller == "13900000001" and dest == "95100" and flow == "hospital"


# ---------------------------------------------------------------- barge-in, type-ahead (g1-g5)

def test_barge_in_stops_the_prompt_and_the_key_stays_queued():
    """g2: with playback_terminators=any a key stops the playback at once; it is the input."""
    async def scenario(ch):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = await ch.play([item(TONE3)])
        return k, loop.time() - t0, await ch.read_key(1)

    res = drive(scenario, caller=CallerScript().press("5", on="playback", after=0.5))
    k, took, read = ok(res)
    assert k == "5" and read == "5"
    assert took < 0.6
    done = [e for e in res.call.events("CHANNEL_EXECUTE_COMPLETE") if e.get("Application") == "playback"][0]
    assert done.variable("playback_terminator_used") == "5"


def test_prompt_that_cannot_be_interrupted_plays_on_and_drops_keys():
    """g3: playback_terminators=none plays to the end; the key's DTMF event still arrives and
    is dropped (keys during a non-interruptible prompt are discarded, docs/runtime.md)."""
    async def scenario(ch):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        k = await ch.play([item(TONE3)], barge_in=False)
        return k, loop.time() - t0, ch.pending_keys(), ch.discarded

    res = drive(scenario, caller=CallerScript().press("5", on="playback", after=0.5))
    k, took, pending, discarded = ok(res)
    assert k is None and took >= 3.0 and pending == "" and discarded == 1
    assert ("set", "playback_terminators=none", True) in res.executes()
    assert len(res.call.events("DTMF")) == 1


def test_terminators_are_only_sent_when_they_change():
    """g1/g4: unset means '*' only; ivrflow sets `any` once and `none` only around prompts
    that cannot be interrupted."""
    async def scenario(ch):
        await ch.play([item(TONE1)])
        await ch.play([item(TONE1)])
        await ch.play([item(TONE1)], barge_in=False)
        await ch.play([item(TONE1)], barge_in=False)
        await ch.play([item(TONE1)])

    res = drive(scenario)
    ok(res)
    sets = [a for app, a, _ in res.executes() if app == "set"]
    assert sets == ["playback_terminators=any", "playback_terminators=none", "playback_terminators=any"]


def test_keys_between_prompts_are_type_ahead_and_skip_interruptible_prompts():
    """g5: FreeSWITCH keeps no type-ahead, but every key reaches us as a DTMF event; a key
    queued before an interruptible prompt means the prompt is not played at all."""
    async def scenario(ch):
        await ch.play([item(TONE1)], barge_in=False)
        await asyncio.sleep(0.5)            # the caller presses while nothing plays
        n = len([1 for e in ch.conn.disconnect_notices])
        k = await ch.play([item(TONE3)])
        return k, n, await ch.read_key(0)

    res = drive(scenario, caller=CallerScript().press("7", at=1.2))
    k, _, read = ok(res)
    assert k == "7" and read == "7"
    assert [a for app, a, _ in res.executes() if app == "playback"] == [TONE1]


def test_digits_beyond_the_maximum_come_later_and_a_late_terminator_is_dropped():
    """1.log: the '#' after a full-length entry arrives as its own DTMF event afterwards; it
    belongs to the entry (dropped), other extra digits are type-ahead."""
    async def scenario(ch):
        r1 = await ch.collect((), min_digits=4, max_digits=4, terminator="#", first_timeout=5,
                              inter_digit=3)
        r2 = await ch.collect((), min_digits=1, max_digits=1, terminator=None, first_timeout=2,
                              inter_digit=0)
        return r1, r2

    res = drive(scenario, caller=CallerScript().press("1234#", at=0.5).press("9", at=1.5))
    r1, r2 = ok(res)
    assert (r1.digits, r1.reason) == ("1234", "max")
    assert (r2.digits, r2.reason) == ("9", "max")
    assert [e["DTMF-Digit"] for e in res.call.events("DTMF")] == list("1234#9")


@pytest.mark.parametrize("keys,label", [
    ([("1234#", 0.5)], "typed at once: the '#' is still in FreeSWITCH's queue"),
    ([("1234", 0.5), ("#", 0.8)], "the '#' comes while the next prompt plays"),
])
def test_a_late_terminator_does_not_cut_the_next_prompt(keys, label):
    """A terminator after a full-length entry belongs to the entry.  FreeSWITCH would let it stop
    the next prompt (playback_terminators=any; its playback dequeues the key), so that prompt
    is started with every key but '#' as terminators: it plays to the end, as in the simulator,
    and the '#' is dropped; the prompt after it barges on any key again."""
    async def scenario(ch):
        r = await ch.collect((), min_digits=4, max_digits=4, terminator="#", first_timeout=5,
                             inter_digit=3)
        first = await ch.play([item(TONE1)])
        second = await ch.play([item(TONE3)])
        return r, first, second

    caller = CallerScript()
    for k, at in keys:
        caller.press(k, at=at)
    caller.press("5", on="playback", nth=2, after=0.5)
    res = drive(scenario, caller=caller)
    r, first, second = ok(res)
    assert (r.digits, r.reason) == ("1234", "max"), label
    assert first is None, label                     # played to the end, not stopped by '#'
    assert second == "5", label
    done = [e for e in res.call.events("CHANNEL_EXECUTE_COMPLETE") if e.get("Application") == "playback"]
    assert done[0].variable("playback_terminator_used") is None and done[0].variable("playback_ms") == "1000"
    assert done[1].variable("playback_terminator_used") == "5"
    sets = [a for app, a, _ in res.executes() if app == "set" and a.startswith("playback_terminators=")]
    assert sets[-2:] == ["playback_terminators=0123456789*ABCD", "playback_terminators=any"], label
    assert [e["DTMF-Digit"] for e in res.call.events("DTMF")] == list("1234#5"), label


def test_an_entry_wakes_the_call_once_and_times_out_between_keys():
    """Keys are applied as their DTMF events are read: a 4-digit entry typed one key per frame
    wakes the waiting collect once (when complete), not once per key; a pause longer than the
    inter-digit timeout ends an entry with what was typed (timeout), as Channel.collect does."""
    import sys

    waits = []        # futures the channel creates to wait for keys

    async def scenario(ch):
        loop = asyncio.get_running_loop()
        real_create = loop.create_future

        def counting():
            if sys._getframe(1).f_code.co_name in ("collect", "read_key"):
                waits.append(loop.time())
            return real_create()
        loop.create_future = counting
        try:
            r1 = await ch.collect((), min_digits=4, max_digits=4, terminator="#", first_timeout=5,
                                  inter_digit=3)
            n1 = len(waits)
            r2 = await ch.collect((), min_digits=1, max_digits=4, terminator="#", first_timeout=5,
                                  inter_digit=1)
            t2 = loop.time()
        finally:
            del loop.create_future
        return r1, n1, r2, t2

    res = drive(scenario, caller=CallerScript().press("1234", at=0.5).press("56", at=1.0))
    r1, n1, r2, t2 = ok(res)
    assert (r1.digits, r1.keys, r1.reason) == ("1234", "1234", "max")
    assert n1 == 1, "one wake-up for the whole entry"
    assert (r2.digits, r2.keys, r2.reason) == ("56", "56", "timeout")
    sixth = loop_time(res.emu, res.call.events("DTMF")[-1])
    assert abs(t2 - (sixth + 1.0)) < 0.05, "the inter-digit timeout runs from the last key"


def test_a_hangup_in_the_middle_of_an_entry_ends_the_collect():
    async def scenario(ch):
        return await ch.collect((), min_digits=4, max_digits=8, terminator="#", first_timeout=5,
                                inter_digit=3)

    res = drive(scenario, caller=CallerScript().press("12", at=0.5).hangup(at=1.0))
    assert isinstance(res.error, CallHangup) and res.error.cause == "NORMAL_CLEARING"
    assert not res.channel.listening


def test_a_late_terminator_does_not_end_the_next_read():
    """The '#' after a full-length entry is dropped even when it arrives while the next read
    already waits (no prompt between): that read goes on waiting for a real key."""
    async def scenario(ch):
        r1 = await ch.collect((), min_digits=2, max_digits=2, terminator="#", first_timeout=5,
                              inter_digit=3)
        r2 = await ch.collect((), min_digits=1, max_digits=1, terminator=None, first_timeout=5,
                              inter_digit=0)
        return r1, r2, ch.keys.text()

    res = drive(scenario, caller=CallerScript().press("12#", at=0.5).press("7", at=2.0))
    r1, r2, left = ok(res)
    assert (r1.digits, r1.reason) == ("12", "max")
    assert (r2.digits, r2.reason) == ("7", "max") and left == ""


def test_no_input_times_out_on_our_clock():
    """2: no key -> no input after the first-digit timeout; nothing waits on FreeSWITCH."""
    async def scenario(ch):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        r = await ch.collect((), min_digits=1, max_digits=4, terminator="#", first_timeout=4, inter_digit=2)
        return r, loop.time() - t0

    r, took = ok(drive(scenario))
    assert r.reason == "no_input" and r.digits == "" and 4.0 <= took < 4.1


# ---------------------------------------------------------------- hangups (3, 4, 9, l, o)

def test_hangup_during_a_prompt_raises_at_once():
    """3: CHANNEL_HANGUP comes before the playback's completion (PLAYBACK ERROR): the wait
    ends on the hangup, with its cause."""
    async def scenario(ch):
        await ch.play([item(TONE3)])

    res = drive(scenario, caller=CallerScript().hangup(on="playback", after=1.0))
    assert isinstance(res.error, CallHangup) and res.error.cause == "NORMAL_CLEARING"
    hangup = res.call.events("CHANNEL_HANGUP")[0]
    done = [e for e in res.call.events("CHANNEL_EXECUTE_COMPLETE") if e.get("Application") == "playback"][0]
    assert done["Application-Response"] == "PLAYBACK ERROR"
    assert loop_time(res.emu, hangup) <= res.t_end < loop_time(res.emu, done) + 1e-6
    assert res.channel.hungup and res.channel.hangup_cause == "NORMAL_CLEARING"


def test_hangup_while_reading_raises_promptly():
    """4: a hangup during a read (no prompt playing) ends the wait at once, not at the timeout."""
    async def scenario(ch):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            await ch.read_key(30)
        except CallHangup as h:
            return h.cause, loop.time() - t0

    cause, took = ok(drive(scenario, caller=CallerScript().hangup(at=1.0, cause="NORMAL_CLEARING")))
    assert cause == "NORMAL_CLEARING" and took < 1.1


@pytest.mark.parametrize("position", ["before_hangup", "after_hangup", "after_hangup_complete"])
def test_disconnect_notice_anywhere_still_gives_the_cause(position):
    """9 (notice first), l/o (right after CHANNEL_HANGUP), 1 (after HANGUP_COMPLETE)."""
    async def scenario(ch):
        await ch.play([item(TONE3)])

    res = drive(scenario, caller=CallerScript().hangup(on="playback", after=0.5, cause="USER_BUSY"),
                emu_kwargs={"notice_position": position})
    assert isinstance(res.error, CallHangup) and res.error.cause == "USER_BUSY"


def test_dropped_socket_ends_every_wait():
    """No notice, no hangup event: the socket just closes; the read ends at once."""
    async def scenario(ch):
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, lambda: res_call[0].session.transport.abort())
        try:
            await ch.read_key(60)
        except CallHangup as h:
            return h.cause

    res_call = []

    async def main():
        from serve_helpers import drive_channel as dc
        from engine.testing import FreeSwitchEmulator
        emu = FreeSwitchEmulator(frame_ms=20)
        orig = emu.place_call

        async def place(*a, **k):
            call = await orig(*a, **k)
            res_call.append(call)
            return call
        emu.place_call = place
        try:
            return await dc(scenario, emu=emu)
        finally:
            await emu.close()

    res = run_virtual(main)
    assert ok(res) == "ESL_CONNECTION_LOST"


def test_operations_after_the_hangup_raise_at_once():
    async def scenario(ch):
        try:
            await ch.read_key(30)
        except CallHangup:
            pass
        out = []
        for op in (lambda: ch.play([item(TONE1)]), lambda: ch.read_key(5), lambda: ch.set_var("a", "b"),
                   lambda: ch.transfer(TransferTarget("8001"))):
            try:
                await op()
            except CallHangup as h:
                out.append(h.cause)
        await ch.hangup()                  # never raises
        return out

    assert ok(drive(scenario, caller=CallerScript().hangup(at=0.5))) == ["NORMAL_CLEARING"] * 4


def test_our_hangup_sends_the_cause():
    """j: `sendmsg call-command: hangup` with the cause."""
    async def scenario(ch):
        await ch.hangup("CALL_REJECTED")
        return ch.hungup

    res = drive(scenario)
    assert ok(res) is True
    hang = [c for c in res.commands() if c.get("call-command") == "hangup"]
    assert hang and hang[0]["hangup-cause"] == "CALL_REJECTED"
    assert res.call.events("CHANNEL_HANGUP")[0]["Hangup-Cause"] == "CALL_REJECTED"


def test_flushed_application_never_reports_but_the_wait_ends():
    """n2: `uuid_break <uuid> all` (here from the inbound side) flushes a queued prompt, which
    never reports; our wait ends at its deadline with a ChannelError, not never."""
    async def scenario(ch):
        first = ch._exec("playback", TONE3, M_BARGE)
        loop = asyncio.get_running_loop()

        def flush():
            ch.conn._loop.create_task(ch.conn.break_media(all=False))
            res_emu[0].find_channel(ch.call_id).request_break(flush=True)
        loop.call_later(0.5, flush)
        t0 = loop.time()
        try:
            await ch.play([item(TONE1)])
        except ChannelError as e:
            return str(e), loop.time() - t0, first.completion.done()

    res_emu = []

    async def main():
        from engine.testing import FreeSwitchEmulator
        emu = FreeSwitchEmulator(frame_ms=20)
        res_emu.append(emu)
        try:
            return await drive_channel(scenario, emu=emu)
        finally:
            await emu.close()

    msg, took, first_done = ok(run_virtual(main))
    assert "did not complete" in msg and first_done
    assert 30 <= took <= 40           # 1 s prompt: deadline 1.5 x + 30 s


# ---------------------------------------------------------------- record (i, i2, i3)

def test_record_stops_on_silence_with_the_caller_voice_length(tmp_path):
    """i/i3: RECORD_START/STOP are subscribed; record_fill_cng=true keeps the silence in the
    file; the length without the trailing silence is returned."""
    path = str(tmp_path / "rec-1.wav")

    async def scenario(ch):
        return await ch.record(path, max_seconds=10, silence_seconds=2, terminator="#")

    res = drive(scenario, caller=CallerScript().speak(1.5, on="record", after=0.0))
    r = ok(res)
    assert r.reason == "silence" and abs(r.seconds - 1.5) < 0.1
    assert ("set", "record_fill_cng=true", True) in res.executes()
    assert ("set", "playback_terminators=#", True) in res.executes()
    assert (("record", f"{path} 10 200 2", True)) in res.executes()
    names = [e.name for e in res.call.events() if e.name.startswith("RECORD_")]
    assert names == ["RECORD_START", "RECORD_STOP"]
    import wave
    with wave.open(path) as w:
        assert w.getframerate() == 8000 and abs(w.getnframes() / 8000 - 3.5) < 0.1


def test_record_stopped_by_the_terminator(tmp_path):
    """i2: the record terminator is `playback_terminators`; the DTMF comes before RECORD_STOP."""
    async def scenario(ch):
        return await ch.record(str(tmp_path / "r.wav"), max_seconds=10, silence_seconds=3, terminator="#")

    r = ok(drive(scenario, caller=CallerScript().speak(3, on="record").press("#", on="record", after=1.0)))
    assert r.reason == "terminator" and abs(r.seconds - 1.0) < 0.1


def test_record_reaches_its_maximum(tmp_path):
    async def scenario(ch):
        return await ch.record(str(tmp_path / "r.wav"), max_seconds=4, silence_seconds=3, terminator="#")

    r = ok(drive(scenario, caller=CallerScript().speak(10, on="record")))
    assert r.reason == "max" and abs(r.seconds - 4.0) < 0.1


def test_hangup_while_recording_keeps_what_was_recorded(tmp_path):
    """A recording cut by the caller's hangup still reports its length (hangup grace)."""
    async def scenario(ch):
        return await ch.record(str(tmp_path / "r.wav"), max_seconds=30, silence_seconds=5, terminator="#")

    res = drive(scenario, caller=CallerScript().speak(10, on="record").hangup(on="record", after=2.5))
    assert isinstance(res.error, CallHangup)
    assert res.error.partial.reason == "hangup" and abs(res.error.partial.seconds - 2.5) < 0.1


def test_typed_ahead_keys_are_dropped_when_recording_starts(tmp_path):
    async def scenario(ch):
        await asyncio.sleep(0.5)
        before = ch.pending_keys()
        r = await ch.record(str(tmp_path / "r.wav"), max_seconds=3, silence_seconds=2, terminator="#")
        return before, r, ch.pending_keys()

    before, r, after = ok(drive(scenario, caller=CallerScript().press("12", at=0.1)))
    assert before == "12" and after == "" and r.reason == "silence"


# ---------------------------------------------------------------- transfer and bridge (j, k)

def test_transfer_to_an_extension(tmp_path):
    """j: `transfer <ext> XML <context>` ends the socket application, the new extension runs."""
    async def scenario(ch):
        await ch.transfer(TransferTarget("5001", context="default"))
        return ch.transferred, ch.hungup

    res = drive(scenario)
    assert ok(res) == (True, False)
    assert ("transfer", "5001 XML default", True) in res.executes()
    assert [e["Channel-State"] for e in res.call.events("CHANNEL_STATE")][:2] == ["CS_ROUTING", "CS_EXECUTE"]


def test_a_confined_call_transfers_only_within_its_context():
    """`ivrflow_transfer_context` set by the dialplan (public callers): `to: X` goes to
    `X XML <that context>` whatever the configured default, a flow's other context and dial
    strings (which bypass every context) fail the transfer and send nothing; queues still work."""

    async def scenario(ch):
        refused = []
        for target in (TransferTarget("user/1001"), TransferTarget("886", context="default")):
            try:
                await ch.transfer(target)
            except TransferFailed as e:
                refused.append(str(e))
        await ch.transfer(TransferTarget("1001"))
        return refused, ch.transferred

    res = drive(scenario, call_kwargs={"variables": {"ivrflow_transfer_context": "ivrflow_public"}},
                emu_kwargs={"dialplan": {"1001": [("answer", ""), ("park", "")]}},
                options=FsOptions(default_context="default"))
    refused, transferred = ok(res)
    assert refused == [
        "dial string 'user/1001' refused: this call's transfers are confined to context "
        "'ivrflow_public' (ivrflow_transfer_context)",
        "context 'default' refused: this call's transfers are confined to context "
        "'ivrflow_public' (ivrflow_transfer_context)"]
    assert transferred
    ex = res.executes()
    assert not [e for e in ex if e[0] == "bridge"]
    assert [e for e in ex if e[0] == "transfer"] == [("transfer", "1001 XML ivrflow_public", True)]


def test_transfer_to_a_queue_carries_the_priority():
    async def scenario(ch):
        await ch.transfer(TransferTarget(queue="operators", priority=90))

    res = drive(scenario, emu_kwargs={"dialplan": {"operators": [("answer", ""), ("park", "")]}},
                options=FsOptions(queue_context="ivrflow_queues"))
    ok(res)
    ex = res.executes()
    assert ("set", "ivrflow_queue_priority=90", True) in ex
    assert ex[-1] == ("transfer", "operators XML ivrflow_queues", True)


def test_transfer_to_no_extension_is_a_hangup_with_the_cause():
    """FreeSWITCH hangs up a call routed nowhere: NO_ROUTE_DESTINATION."""
    async def scenario(ch):
        await ch.transfer(TransferTarget("9999"))

    res = drive(scenario)
    assert isinstance(res.error, CallHangup) and res.error.cause == "NO_ROUTE_DESTINATION"


def test_bridge_to_a_dial_string():
    """k: `bridge` with continue_on_fail; the call is the agent's once CHANNEL_BRIDGE arrives."""
    async def scenario(ch):
        await ch.transfer(TransferTarget("user/1001"))
        gone = await ch.wait_gone(60)
        return ch.bridged, gone

    res = drive(scenario, emu_kwargs={"agents": {"user/1001": Agent(answer_delay=1.0, talk=5.0)}})
    assert ok(res) == (True, True)
    ex = res.executes()
    assert ("set", "continue_on_fail=true", True) in ex and ("set", "hangup_after_bridge=true", True) in ex
    assert ex[-1] == ("bridge", "user/1001", True)


def test_bridge_that_fails_leaves_the_caller_on_the_line():
    async def scenario(ch):
        try:
            await ch.transfer(TransferTarget("user/1002"))
        except TransferFailed as e:
            await ch.play([item(TONE1)])
            return str(e), ch.hungup

    msg, hung = ok(drive(scenario, emu_kwargs={"agents": {"user/1002": Agent(fail_cause="NO_ANSWER")}}))
    assert "NO_ANSWER" in msg and not hung


# ---------------------------------------------------------------- conference (5-8, l, l2, o, o2)

def test_conference_member_flags_on_the_wire():
    """l: `conference room@profile+flags{moderator}`; a listener is `mute`; a member none."""
    async def scenario(ch):
        out = []
        for role in ("moderator", "listener", "member"):
            ch.conn._loop.call_later(1.0, lambda: None)
            task = asyncio.ensure_future(ch.conference("room9", role=role))
            await asyncio.sleep(1.0)
            await ch.conn.api("conference room9 kick all")
            out.append(await task)
        return out

    res = drive(scenario, options=FsOptions(conference_profile="ivrflow_expert"))
    results = ok(res)
    assert [r.reason for r in results] == ["kicked"] * 3
    assert all(0.9 < r.seconds < 1.1 for r in results)
    confs = [a for app, a, _ in res.executes() if app == "conference"]
    assert confs == ["room9@ivrflow_expert+flags{moderator}", "room9@ivrflow_expert+flags{mute}",
                     "room9@ivrflow_expert"]
    assert ("set", "hangup_after_conference=false", True) in res.executes()


def test_conference_limit_warns_then_cuts_with_allotted_timeout():
    """o/o2: sched_broadcast plays the warning nested in the conference, sched_hangup cuts the
    call (whole seconds, never after the paid time); member time from add/del-member."""
    async def scenario(ch):
        return await ch.conference("paid1", limit=10.6, warn_before=3, warning=[item(TONE1)])

    res = drive(scenario)
    err = res.error
    assert isinstance(err, CallHangup) and err.cause == "ALLOTTED_TIMEOUT"
    assert err.partial.reason == "limit" and 9.0 <= err.partial.seconds <= 10.6
    ex = res.executes()
    assert ("sched_hangup", "+10 ALLOTTED_TIMEOUT", True) in ex
    assert ("sched_broadcast", f"+7 {TONE1} aleg", True) in ex
    nested = [e for e in res.call.events("CHANNEL_EXECUTE")
              if e.get("Application") == "playback" and e.get("Application-Data") == TONE1]
    assert len(nested) == 1, "the warning played inside the conference"
    conf_start = [e for e in res.call.events("CHANNEL_EXECUTE") if e.get("Application") == "conference"][0]
    assert int(nested[0]["Event-Date-Timestamp"]) > int(conf_start["Event-Date-Timestamp"])


def test_leaving_the_room_cancels_the_scheduled_hangup():
    """l2 + sched_del: the expert (moderator, endconf) leaves, the caller's conference returns
    with the call up; the pending sched_hangup is deleted, the call goes on."""
    async def scenario(ch):
        loop = asyncio.get_running_loop()

        async def expert():
            await asyncio.sleep(1.0)
            await inbound_api(ch, "originate {origination_uuid=e1}user/1101 "
                                  "&conference(paid2@default+flags{moderator|endconf})")
        loop.create_task(expert())
        r = await ch.conference("paid2", limit=30, warn_before=10, warning=[item(TONE1)])
        await asyncio.sleep(40)                 # past the limit: nothing happens any more
        return r, ch.hungup

    async def inbound_api(ch, cmd):
        emu = ch_emu[0]
        emu.run_job("job-1", cmd)

    ch_emu = []

    async def main():
        from engine.testing import FreeSwitchEmulator
        emu = FreeSwitchEmulator(frame_ms=20, agents={"user/1101": Agent(answer_delay=0.5, talk=6.0)})
        ch_emu.append(emu)
        try:
            return await drive_channel(scenario, emu=emu)
        finally:
            await emu.close()

    res = run_virtual(main)
    r, hung = ok(res)
    assert r.reason == "ended" and 7.0 < r.seconds < 8.0 and not hung   # expert in at 1.5 s, out at 7.5 s
    assert any(c["cmd"].startswith("api sched_del ") for c in res.commands())


def test_a_conference_that_refuses_the_caller_is_a_failure():
    """A conference application that returns without add-member (e.g. a missing profile)."""
    async def scenario(ch):
        try:
            await ch.conference("bad1", profile="nosuchprofile")
        except ConferenceFailed as e:
            return str(e)

    async def main():
        from engine.testing import FreeSwitchEmulator
        from engine.testing import fsapps
        emu = FreeSwitchEmulator(frame_ms=20)
        orig = fsapps.APPS["conference"]

        async def refuse(ctx, arg):
            if "nosuchprofile" in arg:
                return "_none_"
            return await orig.handler(ctx, arg)
        fsapps.APPS["conference"] = fsapps.AppSpec(refuse, parses_events=True)
        try:
            return await drive_channel(scenario, emu=emu)
        finally:
            fsapps.APPS["conference"] = orig
            await emu.close()

    assert "refused" in ok(run_virtual(main))


# ---------------------------------------------------------------- variables, media, speak (m)

def test_set_and_get_channel_variables():
    async def scenario(ch):
        await ch.set_var("ivrflow_note", "hello")
        return await ch.get_var("ivrflow_note"), await ch.get_var("never_set")

    res = drive(scenario)
    assert ok(res) == ("hello", None)
    assert any(c["cmd"].startswith("api uuid_getvar ") for c in res.commands())


def test_bad_variable_names_and_arguments_are_refused():
    async def scenario(ch):
        out = []
        for op in (lambda: ch.set_var("a b", "1"), lambda: ch.set_var("x", "line\nbreak"),
                   lambda: ch.get_var("no spaces")):
            try:
                await op()
            except ChannelError as e:
                out.append(type(e).__name__)
        return out

    assert ok(drive(scenario)) == ["ChannelError"] * 3


def test_text_without_audio_is_synthesized_on_demand_or_spoken():
    """A media item with only text: the synthesizer first, FreeSWITCH `speak` if configured
    (m), else an error routed by the flow's error handling."""
    async def synth(text, lang):
        return "/tmp/does-not-exist.wav" if text == "A" else None

    async def scenario(ch):
        out = []
        for text in ("A", "B"):
            try:
                await ch.play([PlayItem(text, None, None, None, "zh-CN", "none")])
                out.append("played")
            except ChannelError as e:
                out.append(str(e))
        return out

    res = drive(scenario, channel_kwargs={"synth": synth}, options=FsOptions(speak="tts_commandline"))
    assert ok(res)[1] == "played"
    assert "FILE NOT FOUND" in ok(res)[0]
    assert ("speak", "tts_commandline|cmn-latn-pinyin|B", True) in res.executes()
    res = drive(scenario, channel_kwargs={"synth": synth})
    assert "no audio" in ok(res)[1]


def test_media_arguments():
    assert media_arg(PlayItem("x", "/p/a.wav")) == "/p/a.wav"
    assert media_arg(PlayItem(None, None, "beep")) == BEEP
    assert media_arg(PlayItem(None, None, "%(500,0,800)")) == "tone_stream://%(500,0,800)"
    assert media_arg(PlayItem("only text")) is None


def test_lazy_headers_answer_like_the_eager_parse():
    """The ESL layer keeps event header blocks whole and splits them on demand (speed); the
    answers must be the eager parse's: first value, any case, decoded, variables by prefix."""
    from engine.channel.esl.parser import parse_header_block
    block = (b"Event-Name: CHANNEL_EXECUTE\nUnique-ID: u1\nvariable_a: 1\nvariable_b: x%20y\n"
             b"EVENT-NAME: other\nvariable_a: 2\nApplication-Data: a:b%3Ac\nEmpty: ")
    lazy, eager = parse_header_block(block, lazy=True), parse_header_block(block)
    assert lazy._text is not None and eager._text is None      # the fast path was taken
    for name in ("Event-Name", "event-name", "EVENT-NAME", "Unique-ID", "variable_b", "Empty",
                 "Application-Data", "missing", "a:b", "Unique-ID\n"):
        assert lazy.get(name) == eager.get(name), name
        assert (name in lazy) == (name in eager), name
    assert lazy.prefixed("variable_") == eager.prefixed("variable_") == {"a": "1", "b": "x y"}
    assert lazy.items() == eager.items() and lazy.get_all("variable_a") == ["1", "2"]
    weird = b"Event-Name: X\nName With Space: 1\n"
    assert parse_header_block(b"Event-Name: X\nA\tB: 1", lazy=True)._text is None   # falls back
    import pytest as _p
    from engine.channel.esl.errors import ProtocolError
    with _p.raises(ProtocolError):
        parse_header_block(weird, lazy=True)


def test_url_encode_is_freeswitch_switch_url_encode():
    """The fast encoder gives what the byte loop of switch_url_encode gives, for any text."""
    from hypothesis import given, settings, strategies as st
    from engine.channel.esl.parser import _URL_UNSAFE, url_encode

    def reference(value):
        return "".join(f"%{b:02X}" if b < 32 or b > 126 or b in _URL_UNSAFE else chr(b)
                       for b in value.encode("utf-8"))

    @settings(max_examples=300, deadline=None)
    @given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=60))
    def check(value):
        assert url_encode(value) == reference(value)
    check()
