"""Each fact of the capture READMEs, checked through our connection layer against the emulator
over real TCP (virtual clock). The capture backing each test is named in its docstring."""

import asyncio

import pytest

from engine.channel.esl import (ChannelHangup, ESLTimeout, ExecutionFlushed, OutboundConnection,
                                serve_outbound)
from engine.testing import Agent, CallerScript, FreeSwitchEmulator
from esl_helpers import PAGD_1, PAGD_G5, PAGD_H, answer_only, drive_call, hangup_app, run

TONE3 = "tone_stream://%(3000,0,440)"
TONE1 = "tone_stream://%(1000,0,660)"


def call(scenario, caller=None, **kw):
    kw.setdefault("emu_kwargs", {"frame_ms": 20})

    async def main():
        return await drive_call(scenario, caller=caller, **kw)
    result = run(main)
    if result.error is not None and not isinstance(result.error, ChannelHangup):
        raise result.error
    return result


def ms(a, b):
    return (int(b["Event-Date-Timestamp"]) - int(a["Event-Date-Timestamp"])) / 1000.0


# ---------------------------------------------------------------- event-lock (q1, q2, q3)

@pytest.mark.parametrize("lock", [False, True])
def test_back_to_back_prompts_play_in_order_only_with_event_lock(lock):
    """q3 (no event-lock: #2 nests and plays first) and q2 (event-lock: in order)."""
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3, event_lock=lock)
        second = conn.execute_nowait("playback", TONE1, event_lock=lock)
        a, b = await first.wait(10), await second.wait(10)
        return a, b, first.started.result(), second.started.result()

    res = call(scenario)
    done1, done2, start1, start2 = res.value
    order = [e.application_uuid for e in res.events("CHANNEL_EXECUTE_COMPLETE")
             if e.get("Application") == "playback"]
    if lock:
        assert order == [done1.application_uuid, done2.application_uuid]
        assert ms(start1, done1) == 3000 and ms(start2, done2) == 1000
        assert ms(done1, start2) >= 0
    else:
        assert order == [done2.application_uuid, done1.application_uuid]
        assert ms(start1, done1) == 4000          # paused while #2 played nested
        assert ms(start2, done2) == 1000


def test_prompt_sent_during_a_prompt_nests_without_event_lock():
    """q1: 0.5 s into a 3 s prompt a second one (no event-lock) runs at once, nested."""
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3, event_lock=False)
        await first.started
        await asyncio.sleep(0.5)
        second = await conn.execute("playback", TONE1, event_lock=False, timeout=10)
        return first.started.result(), second, await first.wait(10)

    start1, done2, done1 = call(scenario).value
    assert ms(start1, done2) < ms(start1, done1) and ms(start1, done1) == 4000


# ---------------------------------------------------------------- barge-in (g1..g5)

@pytest.mark.parametrize("setting,key,stops", [
    (None, "5", False),          # g1: unset -> only '*' stops
    (None, "*", True),           # g4
    ("any", "5", True),          # g2
    ("none", "*", False),        # g3 (none: nothing stops)
    ("#", "#", True),
])
def test_barge_in_needs_playback_terminators(setting, key, stops):
    """g1-g4: which key stops a playback; the DTMF event is delivered either way."""
    async def scenario(conn):
        await answer_only(conn)
        if setting is not None:
            await conn.set_var("playback_terminators", setting)
        dtmf = conn.subscribe("DTMF")
        start = conn.expect("CHANNEL_EXECUTE")
        done = await conn.execute("playback", TONE3, timeout=10)
        return await start, done, await dtmf.get(timeout=1)

    start, done, dtmf = call(scenario, CallerScript().press(key, on="playback", after=0.5)).value
    assert done["Application-Response"] == "FILE PLAYED"
    assert dtmf["DTMF-Digit"] == key
    if stops:
        assert ms(start, done) == pytest.approx(520, abs=20)
        assert done.variable("playback_terminator_used") == key
        assert done.variable("playback_ms") == "2048"        # read-ahead, not 520 (g2)
    else:
        assert ms(start, done) == 3000
        assert done.variable("playback_terminator_used") is None


def test_key_during_playback_is_consumed_not_typeahead():
    """g5: the 5 pressed during a playback is gone for the next read; only the DTMF event
    (subscribed from the start of the call) keeps it."""
    async def scenario(conn):
        dtmf = conn.subscribe("DTMF")
        await answer_only(conn)
        await conn.execute("playback", TONE3, timeout=10)
        read = await conn.execute("play_and_get_digits", PAGD_G5, timeout=10)
        return read, dtmf.get_nowait()

    read, typed = call(scenario, CallerScript().press("5", on="playback", after=0.5)).value
    assert read.variable("read_result") == "failure"
    assert read.variable("typeahead") is None
    assert typed is not None and typed["DTMF-Digit"] == "5"


# ---------------------------------------------------------------- play_and_get_digits (1, 2, h, h2)

def test_digits_beyond_max_arrive_after_the_completion():
    """1.log: 1234# with max 4 -> digits=1234, and the # comes as a DTMF event afterwards."""
    async def scenario(conn):
        await answer_only(conn)
        seen = conn.subscribe(["DTMF", "CHANNEL_EXECUTE_COMPLETE"])
        read = await conn.execute("play_and_get_digits", PAGD_1, timeout=10)
        await asyncio.sleep(0.1)
        return read, [(e.name, e.get("DTMF-Digit")) for e in iter(seen.get_nowait, None)]

    read, seen = call(scenario, CallerScript().press("1234#", on="play_and_get_digits")).value
    assert read.variable("digits") == "1234" and read.variable("read_result") == "success"
    assert seen == [("DTMF", "1"), ("DTMF", "2"), ("DTMF", "3"), ("DTMF", "4"),
                    ("CHANNEL_EXECUTE_COMPLETE", None), ("DTMF", "#")]


def test_no_input_is_failure_without_variable():
    """2.log: no key -> read_result=failure and no variable_digits."""
    async def scenario(conn):
        await answer_only(conn)
        return await conn.execute("play_and_get_digits", PAGD_1, timeout=10)

    read = call(scenario).value
    assert read.variable("read_result") == "failure" and read.variable("digits") is None


@pytest.mark.parametrize("keys,choice", [("772", "2"), ("777", None)])
def test_all_invalid_tries_still_report_success(keys, choice):
    """h / h2: retries produce no events; after 3 invalid tries read_result is still
    'success' and only the missing variable tells."""
    caller = CallerScript()
    for key, after in zip(keys, (0.8, 2.3, 3.8)):
        caller.press(key, on="play_and_get_digits", after=after)

    async def scenario(conn):
        await answer_only(conn)
        return await conn.execute("play_and_get_digits", PAGD_H, timeout=20)

    res = call(scenario, caller)
    read = res.value
    assert read.variable("read_result") == "success"
    assert read.variable("choice") == choice
    assert read.variable("choice_invalid") == "7"
    assert read["Application-Response"] == "_none_"
    assert [e.name for e in res.events() if e.name in ("CHANNEL_EXECUTE", "DTMF")
            and e.get("Application", "play_and_get_digits") == "play_and_get_digits"] == \
        ["CHANNEL_EXECUTE", "DTMF", "DTMF", "DTMF"]


# ---------------------------------------------------------------- record (i, i2, i3)

@pytest.mark.parametrize("subscribe", [False, True])
def test_record_events_only_when_subscribed(subscribe, tmp_path):
    """i: RECORD_START/STOP are not part of myevents."""
    path = tmp_path / "rec.wav"

    async def scenario(conn):
        await answer_only(conn)
        return await conn.execute("record", f"{path} 10 200 2", timeout=20)

    res = call(scenario, CallerScript().speak(1.5, on="record", after=0.1),
               events=["RECORD_START", "RECORD_STOP"] if subscribe else ())
    names = [e.name for e in res.events()]
    assert ("RECORD_START" in names and "RECORD_STOP" in names) == subscribe
    done = res.value
    assert done.variable("record_ms") == "1500" and done.variable("record_seconds") == "1"
    assert done.variable("silence_hits_exhausted") == "true"
    assert done.variable("record_file_size") == "24044" == str(path.stat().st_size)


def test_record_stopped_by_terminator_and_fill_cng():
    """i2 (# stops the recording, record_ms counts audio only) and i3 (record_fill_cng)."""
    async def scenario(conn):
        await answer_only(conn)
        await conn.set_var("playback_terminators", "#")
        first = await conn.execute("record", "/nonexistent-dir/a.wav 10 200 2", timeout=20)
        await conn.set_var("record_fill_cng", "true")
        second = await conn.execute("record", "/nonexistent-dir/b.wav 10 200 2", timeout=20)
        return first, second

    # i2.log: the '#' sent 1 s in comes out with the next frame (1020 ms) and record_ms=900:
    # the tone had reached the recorder 120 ms in
    caller = CallerScript().speak(1.5, on="record", after=0.12).press("#", on="record", after=1.0)
    caller.speak(1.5, on="record", nth=2, after=0.0)
    first, second = call(scenario, caller, emu_kwargs={"frame_ms": 20,
                                                       "write_recordings": False}).value
    assert first.variable("playback_terminator_used") == "#"
    assert first.variable("record_ms") == "900" and first.variable("record_seconds") == "0"
    assert first.variable("silence_hits_exhausted") == "false"
    # 1.5 s audio + 2 s silence kept, less the frame that exhausted the silence hits (i3:
    # a 3640 ms run reports record_ms=3620)
    assert int(second.variable("record_ms")) == 3480


# ---------------------------------------------------------------- hangups (3, 4, 9, o, l)

def test_hangup_during_playback_fails_the_wait_promptly():
    """3.log: CHANNEL_HANGUP comes before the playback's completion (PLAYBACK ERROR)."""
    async def scenario(conn):
        await answer_only(conn)
        loop = asyncio.get_running_loop()
        with pytest.raises(ChannelHangup) as info:
            await conn.execute("playback", TONE3, timeout=30)
        return info.value, loop.time(), conn.hangup_info()

    res = call(scenario, CallerScript().hangup(on="playback", after=0.5))
    exc, when, info = res.value
    hangup = res.events("CHANNEL_HANGUP")[0]
    assert exc.cause == "NORMAL_CLEARING" and exc.event is not None and exc.completion is None
    assert info.via == "event"
    assert when - res.started < 1.0                       # not the 3 s of the prompt
    pb = res.completion("playback")
    assert pb["Application-Response"] == "PLAYBACK ERROR"
    assert res.events().index(hangup) < res.events().index(pb)


def test_hangup_grace_attaches_the_late_completion():
    """3.log / 4.log: with a grace period the completion after the hangup is kept."""
    async def scenario(conn):
        await answer_only(conn)
        with pytest.raises(ChannelHangup) as info:
            await conn.execute("play_and_get_digits", PAGD_1, timeout=30, hangup_grace=1.0)
        return info.value

    exc = call(scenario, CallerScript().hangup(on="play_and_get_digits", after=1.0)).value
    assert exc.completion is not None
    assert exc.completion.variable("read_result") == "failure"


def test_disconnect_notice_first_and_queued_command_never_runs():
    """9.log: the notice comes before the hangup; the queued playback never executes; our
    wait ends at once with ChannelHangup."""
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", TONE3)
        with pytest.raises(ChannelHangup) as info:
            await exe.wait(30)
        return info.value, exe, conn.hangup_info()

    res = call(scenario, CallerScript().hangup(on="answer", after=0.001),
               call_kwargs={"notice_position": "before_hangup"})
    exc, exe, info = res.value
    assert "disconnect-notice" in str(exc) and exc.event is None      # woken by the notice
    # the CHANNEL_HANGUP that follows still gives what is remembered its cause
    assert info.via == "event" and info.cause == "NORMAL_CLEARING"
    assert not exe.started.done()
    assert [e.get("Application") for e in res.events("CHANNEL_EXECUTE")] == ["answer"]


def test_already_hung_up_channel_refuses_new_executes():
    async def scenario(conn):
        await answer_only(conn)
        await conn.wait_hangup(timeout=5)
        with pytest.raises(ChannelHangup):
            conn.execute_nowait("playback", TONE1)
        return True

    assert call(scenario, CallerScript().hangup(on="answer", after=0.1)).value


def test_sched_hangup_and_broadcast():
    """o.log: the warning plays nested (FreeSWITCH's own Application-UUID), the hangup cause
    is ALLOTTED_TIMEOUT, the prompt completes with PLAYBACK ERROR after the notice."""
    async def scenario(conn):
        await answer_only(conn)
        await conn.execute("sched_hangup", "+3 ALLOTTED_TIMEOUT", timeout=5)
        await conn.execute("sched_broadcast", "+1 tone_stream://%(500,0,300) aleg", timeout=5)
        with pytest.raises(ChannelHangup) as info:
            await conn.execute("playback", "tone_stream://%(10000,0,440)", event_lock=False,
                               timeout=30, hangup_grace=1.0)
        return info.value

    res = call(scenario, call_kwargs={"notice_position": "after_hangup"})
    exc = res.value
    assert exc.cause == "ALLOTTED_TIMEOUT"
    assert exc.completion["Application-Response"] == "PLAYBACK ERROR"
    plays = [e for e in res.events("CHANNEL_EXECUTE") if e.get("Application") == "playback"]
    assert plays[1]["Application-Data"] == "tone_stream://%(500,0,300)"
    assert plays[1].application_uuid not in {e.application_uuid for e in plays[:1]}
    hangup_at = res.events("CHANNEL_HANGUP")[0]
    start = plays[0]
    assert 2000 <= ms(start, hangup_at) <= 3000       # whole-second scheduler
    assert res.events("CHANNEL_HANGUP_COMPLETE")[0]["Hangup-Cause"] == "ALLOTTED_TIMEOUT"


def test_events_after_the_disconnect_notice_are_still_read():
    """l / o: the notice can precede del-member, completions and HANGUP_COMPLETE."""
    async def scenario(conn):
        await answer_only(conn)
        late = conn.expect("CHANNEL_HANGUP_COMPLETE", abort_on_hangup=False)
        with pytest.raises(ChannelHangup):
            await conn.execute("playback", TONE3, timeout=30)
        return await conn.wait_event(late, timeout=5), list(conn.disconnect_notices)

    done, notices = call(scenario, CallerScript().hangup(on="playback", after=0.2),
                         call_kwargs={"notice_position": "after_hangup"}).value
    assert done.name == "CHANNEL_HANGUP_COMPLETE" and len(notices) == 1


# ---------------------------------------------------------------- uuid_break (n, n2, n3)

def test_break_all_flushes_queued_apps_which_never_report():
    """n2: the queued, event-locked #2 never reports; our own break_media(all=True) ends its
    wait with ExecutionFlushed; a break from elsewhere leaves only the timeout."""
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3)
        second = conn.execute_nowait("playback", TONE1)
        third = conn.execute_nowait("playback", TONE1)
        await first.started
        await asyncio.sleep(0.5)
        await conn.api(f"uuid_break {conn.channel_uuid} all")   # as another client would
        done = await first.wait(10)
        with pytest.raises(ESLTimeout):
            await second.wait(6)
        await conn.break_media(all=True)
        with pytest.raises(ExecutionFlushed):
            await third.wait(6)
        return done

    res = call(scenario)
    assert res.value["Application-Response"] == "FILE PLAYED"
    assert len([e for e in res.events("CHANNEL_EXECUTE")
                if e.get("Application") == "playback"]) == 1


def test_plain_break_lets_the_next_one_start():
    """n / n3: the broken prompt says FILE PLAYED, the queued one then plays in full."""
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3)
        second = conn.execute_nowait("playback", TONE1)
        await first.started
        await asyncio.sleep(0.5)
        await conn.break_media()
        return await first.wait(10), await second.wait(10), second.started.result()

    done1, done2, start2 = call(scenario).value
    assert done1["Application-Response"] == done2["Application-Response"] == "FILE PLAYED"
    assert ms(start2, done2) == 1000


# ---------------------------------------------------------------- linger (1, 11)

def test_bare_linger_never_closes_the_socket():
    """1.log: Linger-Time -1; FreeSWITCH keeps the socket open, we close it."""
    async def scenario(conn):
        await answer_only(conn)
        await hangup_app(conn)
        await asyncio.sleep(60)
        return conn.closed, conn.disconnect_notices[0].headers["Linger-Time"]

    res = call(scenario, conn_kwargs={"close_after_disconnect": None}, drain=0)
    assert res.value == (False, "-1")
    assert res.call.session.closed.done()             # closed by us once the handler ended


def test_outbound_connection_closes_itself_after_the_notice():
    async def scenario(conn):
        await answer_only(conn)
        await hangup_app(conn)
        await conn.wait_closed(timeout=10)
        return conn.closed

    assert call(scenario, conn_kwargs={"close_after_disconnect": 2.0}, drain=0).value


def test_linger_n_closes_after_the_second_notice():
    """11.log: `linger 2` -> second notice (disconnect, goodbye body), then FreeSWITCH closes.
    mod_event_socket compares whole epoch seconds: the goodbye comes at the start of second
    floor(hangup) + 2 + 1; in 11.log the hangup was at ...689.697 and the goodbye 2.306 s
    after the first notice (this call starts so its hangup falls at the same fraction)."""
    async def scenario(conn):
        await answer_only(conn)
        await hangup_app(conn)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await conn.wait_closed(timeout=10)
        return loop.time() - t0, loop.time(), [n.headers.get("Content-Disposition")
                                               for n in conn.disconnect_notices], \
            conn.disconnect_notices

    res = call(scenario, linger=2, conn_kwargs={"close_after_disconnect": None}, drain=0,
               emu_kwargs={"frame_ms": 20, "start_epoch": 1795434689.64})
    waited, closed_at, kinds, notices = res.value
    assert kinds == ["linger", "disconnect"]
    assert notices[0].headers["Linger-Time"] == "2"
    assert notices[1].body.startswith("Disconnected, goodbye.")
    hangup = int(res.events("CHANNEL_HANGUP")[0]["Event-Date-Timestamp"]) / 1e6
    closed_epoch = res.emu.start_epoch + (closed_at - res.emu.t0)
    assert closed_epoch == pytest.approx(int(hangup) + 3, abs=0.005)
    assert 2.25 <= waited <= 2.35


# ---------------------------------------------------------------- transfer, bridge (j, k)

def test_transfer_keeps_the_connection():
    """j: transfer ends the socket app, not the connection; later executes nest in the new
    dialplan's playback; hangup works; the notice comes only at hangup."""
    async def scenario(conn):
        await answer_only(conn)
        socket_end = conn.expect("CHANNEL_EXECUTE_COMPLETE",
                                 predicate=lambda e: e.get("Application") == "socket")
        await conn.execute("transfer", "5001 XML default", timeout=5)
        socket_done = await conn.wait_event(socket_end, timeout=5)
        await asyncio.sleep(1)
        later = await conn.execute("playback", "tone_stream://%(300,0,800)", event_lock=False,
                                   timeout=5)
        notices_before = len(conn.disconnect_notices)
        info = await conn.hangup(timeout=5)
        return socket_done, later, notices_before, info

    socket_done, later, notices_before, info = call(scenario).value
    assert socket_done["Application-Response"] == "_none_"
    assert later["Application-Response"] == "FILE PLAYED"
    assert notices_before == 0 and info.cause == "NORMAL_CLEARING"


def test_bridge_returns_control_when_hangup_after_bridge_is_false():
    """k: UNBRIDGE, then the bridge completion with bridge_hangup_cause / DIALSTATUS."""
    async def scenario(conn):
        await answer_only(conn)
        await conn.set_var("hangup_after_bridge", "false")
        bridge = await conn.execute("bridge", "loopback/5001/default", timeout=30)
        after = await conn.execute("playback", TONE1, timeout=5)
        return bridge, after

    res = call(scenario, emu_kwargs={"frame_ms": 20, "agents": {
        "loopback/5001/default": Agent(talk=2.0)}})
    bridge, after = res.value
    assert bridge["Application-Response"] == "_none_"
    assert bridge.variable("bridge_hangup_cause") == "NORMAL_CLEARING"
    assert bridge.variable("DIALSTATUS") == "SUCCESS" and bridge["Answer-State"] == "answered"
    assert after["Application-Response"] == "FILE PLAYED"
    names = [e.name for e in res.events()]
    assert names.index("CHANNEL_BRIDGE") < names.index("CHANNEL_UNBRIDGE")
    b = res.events("CHANNEL_BRIDGE")[0]
    assert ms(b, res.events("CHANNEL_UNBRIDGE")[0]) == pytest.approx(2000, abs=25)


def test_bridge_failure_reports_dialstatus():
    async def scenario(conn):
        await answer_only(conn)
        return await conn.execute("bridge", "loopback/9999/default", timeout=30)

    res = call(scenario, emu_kwargs={"agents": {
        "loopback/9999/default": Agent(fail_cause="NO_ANSWER", answer_delay=5)}})
    assert res.value.variable("DIALSTATUS") == "NOANSWER"
    assert not res.events("CHANNEL_BRIDGE")


# ---------------------------------------------------------------- pipelining, frames (p)

def test_handshake_and_first_prompt_go_out_in_one_write():
    """p: connect, myevents, linger and two executes in one write, replies in order."""
    writes = []

    async def scenario(conn):
        conn.trace = lambda direction, data: writes.append(data) if direction == "send" \
            else None
        hs = await conn.handshake(executes=[("answer", None), ("playback", TONE1)])
        return hs, [await e.wait(10) for e in hs.executions]

    res = call(scenario, handshake=False)
    hs, done = res.value
    assert len(writes) >= 1
    first = writes[0].decode()
    assert first.startswith("connect\n\nmyevents\n\nlinger\n\nsendmsg\n")
    assert first.count("sendmsg\n") == 2 and "execute-app-name: playback" in first
    assert hs.channel.caller_number == "13800000001" and hs.channel.destination == "5000"
    assert hs.channel.variable("socket_host") == "127.0.0.1"
    assert [m.reply_text for m in res.messages[:5]] == [
        "+OK\n", "+OK Events Enabled", "+OK will linger", "+OK", "+OK"]
    assert [d["Application"] for d in done] == ["answer", "playback"]


@pytest.mark.parametrize("frame_ms", [0, 20])
def test_frame_clock_option(frame_ms):
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", TONE1)
        loop = asyncio.get_running_loop()
        await exe.reply
        sent = loop.time()
        await exe.started
        return loop.time() - sent, await exe.wait(5)

    delay, done = call(scenario, emu_kwargs={"frame_ms": frame_ms}).value
    if frame_ms:
        assert 0 < delay <= 0.020 + 1e-6
        assert int(done["Event-Date-Timestamp"]) % 1000 == 116   # on the 20 ms grid
    else:
        assert delay == 0


# ---------------------------------------------------------------- variables, handlers

def test_set_and_get_var():
    async def scenario(conn):
        await answer_only(conn)
        await conn.set_var("ivr_lang", "zh")
        return await conn.get_var("ivr_lang"), await conn.get_var("nothing_here")

    assert call(scenario).value == ("zh", None)


def test_async_handler_waiting_for_another_event_does_not_block_the_reader():
    """greenswitch deadlocks here: a handler that waits for a later event."""
    async def scenario(conn):
        seen = asyncio.get_running_loop().create_future()

        async def on_execute(ev):
            if ev.get("Application") == "playback":
                done = await conn.wait_event("CHANNEL_EXECUTE_COMPLETE", timeout=10)
                seen.set_result(done.get("Application"))
        conn.on("CHANNEL_EXECUTE", on_execute)
        await answer_only(conn)
        result = await conn.execute("playback", TONE1, timeout=10)
        return await asyncio.wait_for(seen, 1), result

    seen, result = call(scenario).value
    assert seen == "playback" and result["Application-Response"] == "FILE PLAYED"


def test_blocking_execute_matches_by_uuid_not_by_name():
    """greenswitch returned a blocking playback on an earlier non-blocking playback's
    completion; we match Application-UUID."""
    async def scenario(conn):
        await answer_only(conn)
        background = conn.execute_nowait("playback", TONE1, event_lock=False)
        await background.started
        blocking = await conn.execute("playback", TONE3, event_lock=True, timeout=10)
        return background, blocking

    background, blocking = call(scenario).value
    assert blocking.application_uuid != background.completion.result().application_uuid
    assert blocking["Application-Data"] == TONE3


def test_real_clock_mode_works_too():
    """The same emulator on a normal event loop (real time, 30 ms prompt)."""
    async def main():
        emu = FreeSwitchEmulator(frame_ms=0)
        done = asyncio.get_running_loop().create_future()

        async def handler(conn: OutboundConnection):
            await conn.handshake()
            await conn.execute("answer", timeout=2)
            done.set_result(await conn.execute("playback", "silence_stream://30", timeout=2))
        server = await serve_outbound(handler)
        await emu.place_call("127.0.0.1", server.port)
        result = await asyncio.wait_for(done, 5)
        await server.close(grace=1)
        await emu.close()
        return result

    assert asyncio.run(main())["Application-Response"] == "FILE PLAYED"


def test_real_clock_frame_mode_reads_keys():
    """On a normal loop with the 20 ms frame clock (what bench/serve_load.py runs) a key barges
    into a playback: real time moves on between taking a frame's input and handling it."""
    async def main():
        emu = FreeSwitchEmulator(frame_ms=20)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        async def handler(conn: OutboundConnection):
            await conn.handshake()
            await conn.execute("answer", timeout=2)
            await conn.set_var("playback_terminators", "any", timeout=2)
            t0 = loop.time()
            ev = await conn.execute("playback", "tone_stream://%(2000,0,440)", timeout=5)
            done.set_result((ev, loop.time() - t0))
        server = await serve_outbound(handler)
        await emu.place_call("127.0.0.1", server.port,
                             caller=CallerScript().press("5", on="playback", after=0.1))
        result = await asyncio.wait_for(done, 5)
        await server.close(grace=1)
        await emu.close()
        return result

    ev, took = asyncio.run(main())
    assert ev.variable("playback_terminator_used") == "5"
    assert took < 1.5, "the key stopped the 2 s prompt"
