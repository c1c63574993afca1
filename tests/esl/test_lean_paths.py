"""The allocation- and hop-free paths of the connection layer: executions without futures
unless asked for, reply slots with plain callbacks, one wait for `hangup()`, synchronous hangup
callbacks, copy-on-write handler lists, and the parser working on the received chunk itself."""

import asyncio

import pytest

from engine.channel.esl import (ChannelHangup, CommandError, ConnectionLost, ESLTimeout,
                                ProtocolError)
from engine.channel.esl.parser import Parser, parse_event_plain
from engine.testing import CallerScript, fswire
from esl_helpers import answer_only, drive_call, run
from test_connection import OK, read_command, with_peer

UUID = "7f4de4bc-1111-2222-3333-444455556666"


def test_execution_futures_are_created_on_demand_and_already_resolved():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "silence_stream://300")
        ev = await exe.wait(10)
        untouched = (exe._reply_fut, exe._started_fut, exe._completion_fut)
        assert exe.started.done() and exe.completion.result() is ev
        assert exe.reply.result().ok()
        assert exe.is_started and exe.is_complete
        return untouched, ev.get("Application")

    untouched, app = run(lambda: drive_call(scenario)).value
    assert untouched == (None, None, None) and app == "playback"


def test_wait_on_a_finished_execution_does_not_yield():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "silence_stream://300")
        ev = await exe.wait(10)
        coro = exe.wait(10)
        with pytest.raises(StopIteration) as stop:
            coro.send(None)                 # completes in its first step: no loop iteration
        return stop.value.value is ev

    assert run(lambda: drive_call(scenario)).value


def test_public_futures_follow_the_execution_when_taken_early():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "silence_stream://300")
        started, completion, reply = exe.started, exe.completion, exe.reply
        await started
        assert (await reply).ok() and not completion.done()
        ev = await completion
        return ev is await exe.wait(10)

    assert run(lambda: drive_call(scenario)).value


def test_concurrent_waits_and_cancelling_one_of_them():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "silence_stream://2000")
        a = asyncio.create_task(exe.wait(10))
        b = asyncio.create_task(exe.wait(10))
        await asyncio.sleep(0.5)
        a.cancel()
        ev = await b
        assert a.cancelled()
        return ev is await exe.wait(1)

    assert run(lambda: drive_call(scenario)).value


def test_a_short_concurrent_wait_times_out_alone():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "silence_stream://2000")
        long = asyncio.create_task(exe.wait(10))
        with pytest.raises(ESLTimeout, match="no CHANNEL_EXECUTE_COMPLETE within 0.5 s"):
            await exe.wait(0.5)
        # the timeout abandoned the execution (as before): the other wait ends at its deadline
        with pytest.raises(ESLTimeout):
            await long
        return exe.event_uuid in conn._executions

    assert run(lambda: drive_call(scenario)).value is False


def test_cancelled_wait_leaves_the_execution_waitable():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "silence_stream://1000")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(exe.wait(10), 0.2)
        ev = await exe.wait(10)
        return ev.get("Application-UUID") == exe.event_uuid

    assert run(lambda: drive_call(scenario)).value


def test_hangup_grace_attaches_a_late_completion():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("record", "/tmp/lean.wav 30 200 5")
        try:
            await exe.wait(60, hangup_grace=2.0)
        except ChannelHangup as exc:
            return exc.completion is not None and exc.completion is exe.completion.result()
        return "no hangup"

    res = run(lambda: drive_call(scenario, caller=CallerScript().hangup(on="record", after=1.0)))
    assert res.value is True


def test_socket_loss_before_the_execute_reply_fails_execution_and_reply():
    async def script(reader, writer):
        assert await read_command(reader) == "sendmsg"
        writer.transport.abort()

    async def client(conn):
        conn.channel_uuid = UUID
        exe = conn.execute_nowait("playback", "x.wav")
        with pytest.raises(ConnectionLost):
            await exe.wait(60)
        with pytest.raises(ConnectionLost):
            await exe.reply
        return len(conn._replies), len(conn._executions)

    assert run(lambda: with_peer(script, client)) == (0, 0)


def test_err_reply_to_an_execute_fails_it_without_waiting():
    async def script(reader, writer):
        await read_command(reader)
        writer.write(fswire.command_reply("-ERR no such channel"))
        await asyncio.sleep(100)

    async def client(conn):
        conn.channel_uuid = UUID
        loop = asyncio.get_running_loop()
        exe = conn.execute_nowait("playback", "x.wav")
        t0 = loop.time()
        with pytest.raises(CommandError, match="no such channel"):
            await exe.wait(60)
        return loop.time() - t0 < 1, exe.event_uuid in conn._executions, exe.reply.result().ok()

    assert run(lambda: with_peer(script, client)) == (True, False, False)


def hangup_event(uuid: str, cause: str = "NORMAL_CLEARING") -> bytes:
    return fswire.event_plain([("Event-Name", "CHANNEL_HANGUP"), ("Unique-ID", uuid),
                               ("Hangup-Cause", cause)])


def test_hangup_waits_for_reply_then_event():
    async def script(reader, writer):
        assert await read_command(reader) == "sendmsg"
        await asyncio.sleep(1)
        writer.write(OK)
        await asyncio.sleep(1)
        writer.write(hangup_event(UUID, "CALL_REJECTED"))
        await asyncio.sleep(100)

    async def client(conn):
        conn.channel_uuid = UUID
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        info = await conn.hangup("CALL_REJECTED", timeout=10)
        return info.cause, loop.time() - t0, await conn.hangup()

    cause, elapsed, again = run(lambda: with_peer(script, client))
    assert cause == "CALL_REJECTED" and elapsed == pytest.approx(2.0) and again.cause == cause


def test_hangup_event_before_its_reply():
    async def script(reader, writer):
        await read_command(reader)
        writer.write(hangup_event(UUID) + OK)
        await asyncio.sleep(100)

    async def client(conn):
        conn.channel_uuid = UUID
        return (await conn.hangup(timeout=10)).cause

    assert run(lambda: with_peer(script, client)) == "NORMAL_CLEARING"


def test_hangup_err_reply_and_timeouts():
    async def script(reader, writer):
        await read_command(reader)
        writer.write(fswire.command_reply("-ERR nope"))
        await read_command(reader)                  # no reply at all
        await read_command(reader)
        writer.write(OK)                            # late reply to the 2nd, then +OK to the 3rd
        writer.write(OK)
        await asyncio.sleep(100)

    async def client(conn):
        conn.channel_uuid = UUID
        with pytest.raises(CommandError, match="sendmsg: -ERR nope"):
            await conn.hangup(timeout=5)
        with pytest.raises(ESLTimeout, match="no reply to 'sendmsg' within 3 s"):
            await conn.hangup(timeout=3)
        with pytest.raises(ESLTimeout, match="did not hang up within 4 s"):
            await conn.hangup(timeout=4)
        return len(conn._replies)

    assert run(lambda: with_peer(script, client)) == 0


def test_on_hangup_is_called_inside_the_reader_and_at_once_when_known():
    async def script(reader, writer):
        await read_command(reader)
        writer.write(fswire.api_response("+OK") + hangup_event(UUID, "USER_BUSY"))
        await asyncio.sleep(100)

    async def client(conn):
        conn.channel_uuid = UUID
        seen = []
        conn.on_hangup(lambda info, exc: seen.append(("cb", info.cause, exc)))
        removed = conn.on_hangup(lambda info, exc: seen.append(("removed", info, exc)))
        removed()
        conn.on("CHANNEL_HANGUP", lambda ev: seen.append(("event", ev.name, None)))
        await conn.api("status", timeout=5)
        n = len(seen)                 # both callbacks ran in the same read as the reply
        conn.on_hangup(lambda info, exc: seen.append(("late", info.cause, exc)))
        return n, seen

    n, seen = run(lambda: with_peer(script, client))
    assert n == 2 and seen == [("event", "CHANNEL_HANGUP", None), ("cb", "USER_BUSY", None),
                               ("late", "USER_BUSY", None)]


def test_on_hangup_gets_connection_lost_when_the_socket_closes_first():
    async def script(reader, writer):
        await asyncio.sleep(1)
        writer.transport.abort()

    async def client(conn):
        conn.channel_uuid = UUID
        seen = []
        conn.on_hangup(lambda info, exc: seen.append((info, type(exc))))
        await conn.wait_closed(5)
        conn.on_hangup(lambda info, exc: seen.append((info, type(exc))))
        with pytest.raises(ConnectionLost):
            await conn.wait_hangup(timeout=5)
        return seen

    assert run(lambda: with_peer(script, client)) == [(None, ConnectionLost)] * 2


def test_handlers_may_add_and_remove_handlers_while_dispatching():
    async def script(reader, writer):
        await read_command(reader)
        for digit in "12":
            writer.write(fswire.event_plain([("Event-Name", "DTMF"), ("Unique-ID", UUID),
                                             ("DTMF-Digit", digit)]))
        writer.write(fswire.api_response("+OK"))
        await asyncio.sleep(100)

    async def client(conn):
        calls = []

        def once(ev):
            calls.append(("once", ev.get("DTMF-Digit")))
            remove_once()
            conn.on("DTMF", lambda e: calls.append(("added", e.get("DTMF-Digit"))))

        remove_once = conn.on("DTMF", once)
        conn.on("DTMF", lambda ev: calls.append(("always", ev.get("DTMF-Digit"))))
        msgs = []
        remove_msg = conn.on_message(lambda m: msgs.append(m.content_type))
        await conn.api("status", timeout=5)
        remove_msg()
        remove_msg()                    # twice: harmless
        return calls, msgs, conn._message_handlers

    calls, msgs, left = run(lambda: with_peer(script, client))
    assert calls == [("once", "1"), ("always", "1"), ("always", "2"), ("added", "2")]
    assert msgs == ["text/event-plain", "text/event-plain", "api/response"] and left == ()


# ---------------------------------------------------------------- parser


def _stream() -> bytes:
    ev = fswire.event_plain([("Event-Name", "CHANNEL_EXECUTE_COMPLETE"), ("Unique-ID", UUID),
                             ("Application", "playback"),
                             ("variable_x", "a b:c%d\u00e9")])
    job = fswire.event_plain([("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", "j1")],
                             body="+OK done\n\n")
    plainish = fswire.event_plain([("Event-Name", "LOG")], body="A: b\n\n")
    return (fswire.command_reply("+OK") + ev + b"\n" + job + fswire.api_response("x" * 300)
            + plainish + fswire.event_plain_text("Event-Name: CUSTOM\r\nX: y\r\n")
            + fswire.command_reply("+OK bye"))


def _summary(msgs):
    return [(m.content_type, m.raw_body, m.event and m.event.name,
             m.event and m.event.headers.items(), m.event and m.event.body,
             m.headers.items()) for m in msgs]


def test_any_chunking_gives_the_same_messages():
    data = _stream()
    whole = _summary(Parser().feed(data))
    assert len(whole) == 7
    assert whole[2][4] == "+OK done\n\n" and whole[4][4] == "A: b\n\n"
    for step in (1, 2, 3, 7, 64, 333):
        parser = Parser()
        msgs = []
        for i in range(0, len(data), step):
            msgs += parser.feed(data[i:i + step])
        assert _summary(msgs) == whole, step
        assert parser.buffered == 0 and not parser.in_message
    for cut in range(len(data)):
        parser = Parser()
        assert _summary(parser.feed(data[:cut]) + parser.feed(data[cut:])) == whole, cut


def test_plain_event_fast_path_keeps_the_checks():
    with pytest.raises(ProtocolError, match="Content-Length says 5"):
        parse_event_plain(b"Event-Name: X\nContent-Length: 5\n\n")
    with pytest.raises(ProtocolError, match="without Event-Name"):
        parse_event_plain(b"Unique-ID: 1\n\n")
    with pytest.raises(ProtocolError, match="malformed"):
        parse_event_plain(b"Event-Name: X\n: empty name\n\n")
    assert parse_event_plain(b"Event-Name: X\nContent-Length: 0\n\n").body == ""
    assert parse_event_plain(b"Event-Name: X\nA: 1\n\n").body is None
    ev = parse_event_plain(b"Event-Name: X\nContent-Length: 6\n\nA: b\n\n")
    assert ev.body == "A: b\n\n" and ev.get("A") is None


def test_event_uuids_are_version_4_uuids_unique_within_and_across_connections():
    import uuid as uuidlib

    from engine.channel.esl.connection import ESLConnection

    async def main():
        a, b = ESLConnection(), ESLConnection()
        return [a._next_event_uuid() for _ in range(3)], [b._next_event_uuid() for _ in range(3)]

    first, second = asyncio.run(main())
    every = first + second
    assert len(set(every)) == 6
    assert all(uuidlib.UUID(u).version == 4 and str(uuidlib.UUID(u)) == u for u in every)
    assert first[0][:24] != second[0][:24]
