"""Failure paths of the connection layer: no wait can hang. Scripted raw TCP peers (exact
control of what FreeSWITCH would send) and the emulator, on the virtual clock."""

import asyncio

import pytest

from engine.channel.esl import (ChannelHangup, CommandError, ConnectionLost, ESLConnection,
                                ESLTimeout, ProtocolError)
from engine.testing import CallerScript, fswire
from esl_helpers import answer_only, drive_call, run

OK = fswire.command_reply("+OK")


async def with_peer(script, client):
    """Run `script(reader, writer)` as the server side and `client(conn)` against it."""
    async def handle(reader, writer):
        try:
            await script(reader, writer)
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass                               # the test is over (loop shutdown / client gone)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = await ESLConnection.open("127.0.0.1", port)
    try:
        return await client(conn)
    finally:
        conn.close()
        server.close()


async def read_command(reader):
    data = await reader.readuntil(b"\n\n")
    return data.decode().split("\n", 1)[0]


def test_reply_timeout_keeps_fifo_order():
    """A late reply is consumed by its own (timed-out) slot, not given to the next command."""
    async def script(reader, writer):
        assert await read_command(reader) == "api slow"
        assert await read_command(reader) == "api fast"
        await asyncio.sleep(5)
        writer.write(fswire.api_response("slow-result"))
        writer.write(fswire.api_response("fast-result"))
        await asyncio.sleep(5)

    async def client(conn):
        with pytest.raises(ESLTimeout):
            await conn.api("slow", timeout=1)
        return await conn.api("fast", timeout=10)

    assert run(lambda: with_peer(script, client)) == "fast-result"


def test_socket_drop_fails_every_pending_wait_at_once():
    async def script(reader, writer):
        await read_command(reader)
        await asyncio.sleep(1)
        writer.transport.abort()

    async def client(conn):
        loop = asyncio.get_running_loop()
        sub = conn.subscribe("DTMF")
        waiter = conn.expect("CHANNEL_HANGUP")
        t0 = loop.time()
        with pytest.raises(ConnectionLost):
            await conn.api("never answered", timeout=100)
        elapsed = loop.time() - t0
        with pytest.raises(ConnectionLost):
            await sub.get(timeout=100)
        with pytest.raises(ConnectionLost):
            await conn.wait_event(waiter, timeout=100)
        with pytest.raises(ConnectionLost):
            conn.send_nowait("api status")
        return elapsed

    assert run(lambda: with_peer(script, client)) == pytest.approx(1.0)


def test_garbage_from_the_peer_is_a_protocol_error():
    async def script(reader, writer):
        await read_command(reader)
        writer.write(b"Content-Type: api/response\nContent-Length: banana\n\n")
        await asyncio.sleep(5)

    async def client(conn):
        with pytest.raises(ProtocolError, match="Content-Length"):
            await conn.api("status", timeout=10)
        await conn.wait_closed(timeout=1)
        return conn.closed

    assert run(lambda: with_peer(script, client))


def test_eof_inside_a_frame():
    async def script(reader, writer):
        await read_command(reader)
        writer.write(b"Content-Type: api/response\nContent-Length: 100\n\nonly part")
        await asyncio.sleep(0.5)

    async def client(conn):
        with pytest.raises(ConnectionLost, match="inside a frame"):
            await conn.api("status", timeout=10)
        return True

    assert run(lambda: with_peer(script, client))


def test_rude_rejection():
    async def script(reader, writer):
        writer.write(b"Content-Type: text/rude-rejection\nContent-Length: 14\n\nAccess Denied\n")
        await asyncio.sleep(1)

    async def client(conn):
        with pytest.raises(ConnectionLost, match="Access Denied"):
            await conn.api("status", timeout=10)
        return True

    assert run(lambda: with_peer(script, client))


def test_background_job_before_its_reply_is_kept():
    async def script(reader, writer):
        data = (await reader.readuntil(b"\n\n")).decode()
        job = data.split("Job-UUID: ")[1].split("\n")[0]
        host = fswire.Host("core")
        writer.write(fswire.event_plain(host.core("BACKGROUND_JOB", 1) + [("Job-UUID", job)],
                                        "+OK done\n"))
        writer.write(fswire.command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
        await asyncio.sleep(1)

    async def client(conn):
        return await conn.bgapi("status", timeout=5)

    assert run(lambda: with_peer(script, client)) == "+OK done\n"


def test_background_job_with_a_job_uuid_of_its_own():
    """If FreeSWITCH ignored our Job-UUID, the reply's one is used (event kept meanwhile)."""
    async def script(reader, writer):
        await reader.readuntil(b"\n\n")
        host = fswire.Host("core")
        writer.write(fswire.event_plain(host.core("BACKGROUND_JOB", 1) + [("Job-UUID", "j-2")],
                                        "+OK other\n"))
        writer.write(fswire.command_reply("+OK Job-UUID: j-2", [("Job-UUID", "j-2")]))
        await asyncio.sleep(1)

    async def client(conn):
        return await conn.bgapi("status", timeout=5)

    assert run(lambda: with_peer(script, client)) == "+OK other\n"


def test_subscription_overflow_drops_instead_of_blocking():
    async def script(reader, writer):
        await read_command(reader)
        host = fswire.Host("core")
        writer.write(fswire.api_response("+OK"))
        for i in range(20):
            writer.write(fswire.event_plain(host.core("DTMF", i) + [("DTMF-Digit", str(i % 10))]))
        writer.write(fswire.event_plain(host.core("CHANNEL_HANGUP", 99)))
        await asyncio.sleep(1)

    async def client(conn):
        sub = conn.subscribe("DTMF", maxsize=5)
        hangup = conn.expect("CHANNEL_HANGUP")
        await conn.api("go")
        await conn.wait_event(hangup, timeout=5)
        return sub.pending(), sub.dropped

    assert run(lambda: with_peer(script, client)) == (5, 15)


def test_event_wait_timeout():
    async def script(reader, writer):
        await asyncio.sleep(10)

    async def client(conn):
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ESLTimeout):
            await conn.wait_event("DTMF", timeout=3)
        return loop.time() - t0

    assert run(lambda: with_peer(script, client)) == pytest.approx(3.0)


def test_closing_ourselves_fails_waits():
    async def script(reader, writer):
        await asyncio.sleep(10)

    async def client(conn):
        fut = conn.send_nowait("api status")
        conn.close()
        with pytest.raises(ConnectionLost, match="closed by us"):
            await fut
        return True

    assert run(lambda: with_peer(script, client))


def test_execute_of_an_unknown_application_times_out():
    """FreeSWITCH reports nothing for an invalid application: only the deadline ends it."""
    async def scenario(conn):
        await answer_only(conn)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(ESLTimeout):
            await conn.execute("no_such_app", "x", timeout=7)
        return loop.time() - t0, len(conn._executions)

    res = run(lambda: drive_call(scenario))
    assert res.value == (pytest.approx(7.0), 0)


def test_err_reply_to_sendmsg_raises_command_error():
    async def scenario(conn):
        await answer_only(conn)
        with pytest.raises(CommandError, match="invalid session id"):
            await conn.execute("playback", "silence_stream://10",
                               uuid="00000000-0000-0000-0000-000000000000", timeout=5)
        return True

    assert run(lambda: drive_call(scenario)).value


def test_dropped_socket_during_a_prompt():
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", "tone_stream://%(3000,0,440)")
        await exe.started
        loop = asyncio.get_running_loop()
        loop.call_later(0.5, conn._transport.abort)       # the network goes away
        t0 = loop.time()
        with pytest.raises(ConnectionLost):
            await exe.wait(60)
        return loop.time() - t0

    assert run(lambda: drive_call(scenario, drain=0)).value == pytest.approx(0.5)


def test_hangup_wins_over_the_later_socket_close():
    async def scenario(conn):
        await answer_only(conn)
        with pytest.raises(ChannelHangup):
            await conn.execute("playback", "tone_stream://%(3000,0,440)", timeout=60)
        return conn.hangup_info().cause

    res = run(lambda: drive_call(scenario, linger=False, drain=0,
                                 caller=CallerScript().hangup(on="playback", after=0.1)))
    assert res.value == "NORMAL_CLEARING"
