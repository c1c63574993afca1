"""Inbound client against the emulator's inbound port: auth, api, bgapi, originate (which dials
our outbound server, as in the captures), event subscriptions and reconnect."""

import asyncio

import pytest

from engine.channel.esl import (AuthError, CommandError, ConnectionLost, InboundClient,
                                serve_outbound)
from engine.channel.esl.inbound import parse_conference_list
from engine.testing import FreeSwitchEmulator
from esl_helpers import answer_only, run


async def started(**kw):
    emu = FreeSwitchEmulator(**kw)
    port = await emu.start_inbound()
    return emu, port


def test_auth_api_and_errors():
    async def main():
        emu, port = await started()
        async with InboundClient("127.0.0.1", port) as client:
            version = await client.api("version")
            with pytest.raises(CommandError, match="Command not found"):
                await client.api("no_such_command")
            raw = await client.api("no_such_command", check=False)
            with pytest.raises(CommandError, match="No such channel"):
                await client.uuid_kill("00000000-0000-0000-0000-000000000000")
        await emu.close()
        return version, raw

    version, raw = run(main)
    assert version.startswith("FreeSWITCH Version 1.10.12")
    assert raw == "-ERR no_such_command Command not found!\n"


def test_wrong_password_and_unreachable():
    async def main():
        emu, port = await started(password="secret")
        with pytest.raises(AuthError, match="-ERR invalid"):
            await InboundClient("127.0.0.1", port, password="ClueCon").connect()
        await emu.close()
        with pytest.raises(ConnectionLost):
            await InboundClient("127.0.0.1", port, connect_timeout=1).connect()
        return True

    assert run(main)


def test_originate_dials_our_outbound_server_and_bgapi_matches_jobs():
    """a_inbound + 1.log: bgapi originate -> BACKGROUND_JOB "+OK <uuid>"; the B leg runs
    `socket` to our server; the inbound side sees the channel's events."""
    async def main():
        loop = asyncio.get_running_loop()
        calls = []
        released = loop.create_future()

        async def handler(conn):
            hs = await conn.handshake()
            await answer_only(conn)
            calls.append(hs.channel)
            if len(calls) == 2:
                released.set_result(None)
            await conn.wait_hangup(timeout=60)

        server = await serve_outbound(handler)
        emu, port = await started(dialplan={"5000": [("socket",
                                                      f"127.0.0.1:{server.port} async full")]})
        async with InboundClient("127.0.0.1", port,
                                 events=["CHANNEL_ANSWER", "CHANNEL_HANGUP"]) as client:
            answers = client.subscribe("CHANNEL_ANSWER")
            a, b = await asyncio.gather(
                client.originate("loopback/5000/default", variables={
                    "origination_caller_id_number": "13800000001"}),
                client.originate("loopback/5000/default", variables={
                    "origination_caller_id_number": "13800000002"}))
            await asyncio.wait_for(released, 10)
            answered = [await answers.get(timeout=5), await answers.get(timeout=5)]
            hangup = client.subscribe("CHANNEL_HANGUP")
            await client.uuid_kill(a)
            gone = await hangup.get(timeout=5)
            await client.uuid_kill(b)
        await server.close(grace=2)
        await emu.close()
        return a, b, calls, answered, gone

    a, b, calls, answered, gone = run(main)
    assert a != b
    assert sorted(c.caller_number for c in calls) == ["13800000001", "13800000002"]
    assert {c.variable("origination_uuid") for c in calls} == {a, b}
    assert {e.unique_id for e in answered} == {c.unique_id for c in calls}
    assert gone["Hangup-Cause"] == "NORMAL_CLEARING"


def test_originate_failure_is_a_command_error():
    async def main():
        emu, port = await started()
        async with InboundClient("127.0.0.1", port) as client:
            with pytest.raises(CommandError, match="NO_ROUTE_DESTINATION"):
                await client.originate("loopback/7777/default")
            with pytest.raises(ValueError):
                await client.originate("loopback/5000/default", variables={"x": "a,b"})
        await emu.close()
        return True

    assert run(main)


def test_reconnect_after_the_connection_drops():
    async def main():
        emu, port = await started()
        client = await InboundClient("127.0.0.1", port, events=["CHANNEL_HANGUP"],
                                     min_backoff=0.5).connect()
        sub = client.subscribe("BACKGROUND_JOB")
        first = client.conn
        pending = asyncio.ensure_future(first.wait_event("DTMF", timeout=100))
        for session in list(emu.sessions):
            session.transport.abort()           # FreeSWITCH restarts / network blip
        with pytest.raises(ConnectionLost):
            await pending
        with pytest.raises(ConnectionLost):
            await client.api("version", timeout=0.1)    # not back yet
        version = await client.api("version", timeout=10)  # waits for the reconnect
        job = await client.bgapi("version", timeout=5)
        event = await sub.get(timeout=5)                 # subscription survived
        await client.close()
        await emu.close()
        return client.connects, client.conn is not first, version, job, event

    connects, new_conn, version, job, event = run(main)
    assert connects == 2 and new_conn
    assert version == job == event.body


def test_parse_conference_list_from_capture_text():
    body = ("9;loopback/5000-b;617a71b6-862d-4235-9974-dba660eaf569;;13900000003;hear|speak;"
            "0;0;100\n8;loopback/5000-b;1f0622eb-85b1-4ba5-b115-503fffc08e52;;13900000002;"
            "hear;0;0;100\n")
    members = parse_conference_list(body)
    assert [m.member_id for m in members] == [9, 8]
    assert members[1].muted and not members[0].muted and members[0].energy == 100


def test_json_event_format():
    """`event json ...`: text/event-json frames parse into the same Event objects."""
    from engine.channel.esl import ESLConnection

    async def main():
        emu, port = await started()
        conn = await ESLConnection.open("127.0.0.1", port)
        await conn.auth("ClueCon")
        reply = await conn.enable_events(["BACKGROUND_JOB"], fmt="json")
        body = await conn.bgapi("version", timeout=5)
        await conn.exit()
        await emu.close()
        return reply.reply_text, body

    reply, body = run(main)
    assert reply == "+OK event listener enabled json"
    assert body.startswith("FreeSWITCH Version")


def test_inbound_execute_on_a_parked_channel():
    """sendmsg <uuid> from an inbound connection: runs nested in park, matched by
    Application-UUID; a kill during the next one ends its wait with ChannelHangup."""
    from engine.channel.esl import ChannelHangup

    async def main():
        emu, port = await started(dialplan={"5002": [("answer", ""), ("park", "")]})
        async with InboundClient("127.0.0.1", port, events=[
                "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP"]) as client:
            conn = await client.connection()
            parked = conn.expect("CHANNEL_EXECUTE",
                                 predicate=lambda e: e.get("Application") == "park")
            uuid = await client.originate("loopback/5002/default")
            assert (await conn.wait_event(parked, timeout=5)).unique_id == uuid
            done = await conn.execute("playback", "tone_stream://%(500,0,440)", uuid=uuid,
                                      timeout=5)
            exe = conn.execute_nowait("playback", "tone_stream://%(5000,0,440)", uuid=uuid)
            await exe.started
            await client.uuid_kill(uuid)
            with pytest.raises(ChannelHangup) as info:
                await exe.wait(10)
        await emu.close()
        return done, info.value

    done, exc = run(main)
    assert done["Application-Response"] == "FILE PLAYED"
    assert exc.cause == "NORMAL_CLEARING"
