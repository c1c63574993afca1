"""Audit of the captures (tests/fixtures/esl, FreeSWITCH 1.10.12): the facts they show that no
other test checked.

Part 1 replays every capture, byte for byte and with its own timing, as the FreeSWITCH side of
a TCP connection to our ESL layer (OutboundConnection / ESLConnection, virtual clock): the same
commands at the same moments, and our layer must come to the same results (completions by
Application-UUID, replies, api bodies, hangup cause, disconnect notices) on the real bytes, not
on the emulator's.

Part 2 checks facts of the captures against the emulator (engine/testing), through our
connection layer as the other tests do. Where the emulator disagrees with a capture the test is
marked xfail(strict) with the mismatch in its reason (the engine code is not changed here).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from engine.channel.esl import (ChannelHangup, ESLConnection, ESLError,
                                OutboundConnection, serve_outbound)
from engine.channel.esl.parser import Parser
from engine.testing import Agent, CallerScript, FreeSwitchEmulator
from esl_captures import capture_names, load_chunks, recv_chunks
from esl_helpers import (PAGD_1, PAGD_G5, PAGD_H, SPECS_L, answer_only, conference_calls,
                         drive_call, hangup_app, run)

FRAME_MS = 20
TONE3 = "tone_stream://%(3000,0,440)"
TONE1 = "tone_stream://%(1000,0,660)"


def capture_messages(name):
    parser = Parser()
    out = []
    for chunk in recv_chunks(name):
        out += parser.feed(chunk)
    return out


def ts_ms(ev) -> float:
    return int(ev["Event-Date-Timestamp"]) / 1000.0


def ms(a, b) -> float:
    return ts_ms(b) - ts_ms(a)


# =============================================================================================
# Part 1: replay of the real byte streams against our ESL layer
# =============================================================================================

def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _frames(data: bytes) -> list[bytes]:
    """Client command frames of a send chunk (the captured clients sent no bodies)."""
    return [f for f in data.split(b"\n\n") if f.strip(b"\r\n")]


def _headers(frame: bytes) -> tuple[str, dict[str, str]]:
    lines = frame.decode("utf-8").split("\n")
    hdrs = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        hdrs[name.strip().lower()] = value.strip()
    return lines[0].strip(), hdrs


@dataclass
class Script:
    """A capture split into the client's commands and what FreeSWITCH sent, with times."""

    name: str
    steps: list[tuple[str, float, Any]]     # ("send", t, [frames]) / ("recv", t, bytes)
    closes: bool                            # FreeSWITCH closed the socket at the end

    @classmethod
    def load(cls, name: str) -> "Script":
        chunks = load_chunks(name)
        t0 = _seconds(chunks[0].timestamp)
        steps: list[tuple[str, float, Any]] = []
        for c in chunks:
            t = _seconds(c.timestamp) - t0
            steps.append(("send", t, _frames(c.data)) if c.direction == "send"
                         else ("recv", t, c.data))
        last = next(c for c in reversed(chunks) if c.direction == "recv")
        return cls(name, steps, b"Disconnected, goodbye." in last.data)


class ReplaySide:
    """FreeSWITCH's side of one capture: writes each received chunk at its captured offset from
    the client's last command, and waits, at each captured client send, until our client has
    written as many command frames (same verbs). The Event-UUIDs our client chose replace the
    captured ones in FreeSWITCH's bytes (same length)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.loop = asyncio.get_running_loop()
        self.buf = b""
        self.frames: list[bytes] = []
        self.arrived = asyncio.Event()
        self.uuid_map: dict[bytes, bytes] = {}
        self.done = self.loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task | None = None
        self.problems: list[str] = []
        self.pairs: list[tuple[bytes, bytes]] = []     # (captured client frame, ours)

    def feed(self, data: bytes) -> None:
        self.buf += data
        while b"\n\n" in self.buf:
            frame, _, self.buf = self.buf.partition(b"\n\n")
            if frame.strip(b"\r\n"):
                self.frames.append(frame)
        self.arrived.set()

    async def run(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        anchor_v, anchor_c = self.loop.time(), self.script.steps[0][1]
        seen = 0
        try:
            for kind, t, payload in self.script.steps:
                if kind == "send":
                    want = seen + len(payload)
                    while len(self.frames) < want:
                        self.arrived.clear()
                        await asyncio.wait_for(self.arrived.wait(), 600)
                    for cap, ours in zip(payload, self.frames[seen:want]):
                        self.pairs.append((cap, ours))
                        c_verb, c_hdrs = _headers(cap)
                        o_verb, o_hdrs = _headers(ours)
                        if c_verb.split(" ")[0] != o_verb.split(" ")[0]:
                            self.problems.append(f"client sent {o_verb!r}, capture {c_verb!r}")
                        if "event-uuid" in c_hdrs and "event-uuid" in o_hdrs:
                            self.uuid_map[c_hdrs["event-uuid"].encode()] = \
                                o_hdrs["event-uuid"].encode()
                    seen = want
                    anchor_v, anchor_c = self.loop.time(), t
                else:
                    await asyncio.sleep(max(0.0, anchor_v + (t - anchor_c) - self.loop.time()))
                    data = payload
                    for cap, ours in self.uuid_map.items():
                        data = data.replace(cap, ours)
                    transport.write(data)
            if self.script.closes:
                transport.close()
        except (asyncio.TimeoutError, ConnectionError) as exc:
            self.problems.append(f"replay stopped: {exc!r}")
        finally:
            if not self.done.done():
                self.done.set_result(None)


class _ReplayProtocol(asyncio.Protocol):
    def __init__(self, side: ReplaySide) -> None:
        self.side = side

    def connection_made(self, transport) -> None:
        task = asyncio.get_running_loop().create_task(self.side.run(transport))
        self.side.task = task

    def data_received(self, data: bytes) -> None:
        self.side.feed(data)


@dataclass
class ClientResult:
    executions: list[tuple[str, Any]] = field(default_factory=list)   # (captured uuid, Execution)
    tasks: list[tuple[str, asyncio.Task]] = field(default_factory=list)   # (command, task)
    messages: list = field(default_factory=list)
    conn: Any = None
    outcomes: dict = field(default_factory=dict)    # captured uuid -> (completion | exc, reply)
    pipelined: Any = None                           # (handshake task, captured uuids): p
    closed_by_peer: bool = False


async def settle(conn: ESLConnection, result: ClientResult) -> None:
    """After the replay, inside the loop: how each execute ended (its completion, or the error
    a wait for it raises) and the reply it got."""
    if result.pipelined is not None:
        task, uuids = result.pipelined
        result.executions[:0] = list(zip(uuids, task.result().executions))
    for cap_uuid, exe in result.executions:
        try:
            outcome = await exe.wait(0.5)
        except ESLError as exc:
            outcome = exc
        try:
            reply = (await asyncio.wait_for(asyncio.shield(exe.reply), 0.1)).reply_text
        except (ESLError, asyncio.TimeoutError):
            reply = None
        result.outcomes[cap_uuid] = (outcome, reply)
    result.closed_by_peer = conn.closed


async def run_client(conn: ESLConnection, script: Script, result: ClientResult) -> None:
    """Our client side: at each captured send, the same command through our API."""
    loop = asyncio.get_running_loop()
    anchor_v, anchor_c = loop.time(), script.steps[0][1]
    sends = [(t, frames) for kind, t, frames in script.steps if kind == "send"]
    for t, frames in sends:
        await asyncio.sleep(max(0.0, anchor_v + (t - anchor_c) - loop.time()))
        anchor_v, anchor_c = loop.time(), t
        verbs = [_headers(f)[0] for f in frames]
        if len(frames) > 1:
            # p: connect, myevents, linger and two executes pipelined in one write
            assert verbs[:3] == ["connect", "myevents", "linger"], verbs
            executes = [(h.get("execute-app-name"), h.get("execute-app-arg"))
                        for _, h in map(_headers, frames[3:])]
            hs_task = loop.create_task(conn.handshake(executes=executes, event_lock=False))
            result.tasks.append(("handshake", hs_task))
            result.pipelined = (hs_task, [_headers(f)[1]["event-uuid"] for f in frames[3:]])
            await asyncio.sleep(0)
            continue
        verb, hdrs = _headers(frames[0])
        word, _, rest = verb.partition(" ")
        if word == "sendmsg" and hdrs.get("call-command") == "execute":
            exe = conn.execute_nowait(hdrs["execute-app-name"], hdrs.get("execute-app-arg"),
                                      event_lock=hdrs.get("event-lock") == "true")
            result.executions.append((hdrs["event-uuid"], exe))
            continue
        if word == "sendmsg" and hdrs.get("call-command") == "hangup":
            coro = conn.hangup(hdrs.get("hangup-cause", "NORMAL_CLEARING"), timeout=30)
        elif word == "connect":
            coro = conn.connect()
        elif word == "myevents":
            coro = conn.myevents()
        elif word == "linger":
            coro = conn.linger(int(rest) if rest else None)
        elif word == "event":
            parts = rest.split()[1:]
            names = parts[:parts.index("CUSTOM")] if "CUSTOM" in parts else parts
            custom = parts[parts.index("CUSTOM") + 1:] if "CUSTOM" in parts else []
            coro = conn.enable_events(names, custom=custom)
        elif word == "api":
            coro = conn.api(rest, check=False, timeout=60)
        elif word == "bgapi":
            coro = conn.bgapi(rest, check=False, timeout=60)
        elif word == "auth":
            coro = conn.auth(rest)
        elif word == "exit":
            coro = conn.exit(timeout=5)
        else:
            raise AssertionError(f"{script.name}: no client action for {verb!r}")
        result.tasks.append((verb, loop.create_task(coro)))
        await asyncio.sleep(0)              # the command leaves before the next one


async def replay(name: str) -> tuple[ClientResult, ReplaySide]:
    script = Script.load(name)
    loop = asyncio.get_running_loop()
    side = ReplaySide(script)
    result = ClientResult()
    if name.endswith("_inbound"):
        server = await loop.create_server(lambda: _ReplayProtocol(side), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        conn = await ESLConnection.open("127.0.0.1", port, name="inbound")
        conn.on_message(result.messages.append)
        result.conn = conn
        await run_client(conn, script, result)
        await asyncio.wait_for(asyncio.shield(side.done), 600)
        await asyncio.sleep(1.0)
        for _, task in result.tasks:
            await asyncio.wait({task}, timeout=5)
        await settle(conn, result)
        conn.close()
        server.close()
        return result, side

    finished = loop.create_future()

    async def handler(conn: OutboundConnection) -> None:
        conn.on_message(result.messages.append)
        result.conn = conn
        await run_client(conn, script, result)
        await asyncio.wait_for(asyncio.shield(side.done), 600)
        await asyncio.sleep(1.0)            # what is still in flight
        for _, task in result.tasks:
            await asyncio.wait({task}, timeout=5)
        await settle(conn, result)
        finished.set_result(None)

    server = await serve_outbound(handler, close_after_disconnect=None)
    await loop.create_connection(lambda: _ReplayProtocol(side), "127.0.0.1", server.port)
    await asyncio.wait_for(finished, 600)
    await server.close(grace=1.0)
    return result, side


def _expected(name: str):
    """What FreeSWITCH reported: completions by Application-UUID, started UUIDs, the channel's
    hangup cause, disconnect notices and the api / bgapi bodies and replies, in order."""
    msgs = capture_messages(name)
    completions, started = {}, set()
    cause = None
    notices = []
    replies = []
    jobs = {}
    for m in msgs:
        ev = m.event
        if ev is not None:
            if ev.name == "CHANNEL_EXECUTE":
                started.add(ev.application_uuid)
            elif ev.name == "CHANNEL_EXECUTE_COMPLETE":
                completions.setdefault(ev.application_uuid, ev)
            elif ev.name == "CHANNEL_HANGUP" and cause is None:
                cause = ev.get("Hangup-Cause")
            elif ev.name == "BACKGROUND_JOB":
                jobs[ev.job_uuid] = ev.body
        elif m.content_type == "text/disconnect-notice":
            notices.append((m.headers.get("Content-Disposition"), m.headers.get("Linger-Time")))
        elif m.content_type in ("command/reply", "api/response"):
            replies.append(m)
    return msgs, completions, started, cause, notices, replies, jobs


NAMES = capture_names()
OUTBOUND = [n for n in NAMES if not n.endswith("_inbound")]
INBOUND = [n for n in NAMES if n.endswith("_inbound")]


@pytest.mark.parametrize("name", OUTBOUND)
def test_replayed_outbound_capture_gives_the_same_results(name):
    """Every outbound capture: our OutboundConnection, driven by the captured commands, gets
    each execute's own completion (Application-UUID, same Application-Response), the captured
    reply texts, api bodies, hangup cause and disconnect notices; an execute FreeSWITCH never
    ran or reported (9: queued when the caller left; n2: flushed) ends in ChannelHangup."""
    result, side = run(lambda: replay(name))
    assert not side.problems, side.problems
    assert len(side.frames) == sum(len(p) for k, _, p in side.script.steps if k == "send")
    msgs, completions, started, cause, notices, replies, _ = _expected(name)
    assert len(result.messages) == len(msgs)
    conn = result.conn
    # executes: matched by our own Event-UUID, never by name
    for cap_uuid, exe in result.executions:
        done = completions.get(cap_uuid)
        outcome, reply = result.outcomes[cap_uuid]
        assert reply == "+OK", (name, exe)
        assert exe.is_started == (cap_uuid in started), (name, exe)
        if done is not None:
            assert not isinstance(outcome, Exception) or isinstance(outcome, ChannelHangup), \
                (name, exe, outcome)
            ev = outcome if not isinstance(outcome, Exception) else outcome.completion
            if ev is None:                    # completed after the hangup: kept on the handle
                assert exe.is_complete
            else:
                assert ev.application_uuid == exe.event_uuid
                assert ev["Application-Response"] == done["Application-Response"]
                assert ev.get("Application") == done.get("Application")
        else:
            assert not exe.is_complete
            assert isinstance(outcome, ChannelHangup), (name, exe, outcome)
    # command replies and api bodies, in order
    got = {}
    for verb, task in result.tasks:
        assert task.done(), (name, verb)
        got.setdefault(verb.split(" ")[0], []).append(task)
    if "connect" in got or "handshake" in got:
        task = (got.get("connect") or got.get("handshake"))[0]
        channel = task.result() if "connect" in got else task.result().channel
        connect_reply = replies[0]
        assert channel.unique_id == connect_reply.headers["Unique-ID"]
        assert channel.caller_number == connect_reply.headers["Caller-Caller-ID-Number"]
        assert conn.channel_uuid == channel.unique_id
    reply_texts = [m.reply_text for m in replies[1:] if m.content_type == "command/reply"]
    for verb in ("myevents", "linger", "event"):
        for task in got.get(verb, []):
            assert task.result().reply_text in reply_texts
    api_bodies = [m.body for m in replies if m.content_type == "api/response"]
    assert [t.result() for t in got.get("api", [])] == api_bodies
    for task in got.get("sendmsg", []):               # `sendmsg call-command: hangup` (j)
        assert task.result().cause == cause
    # the hangup and the notices
    info = conn.hangup_info()
    if cause is None:
        assert info is None
    else:
        assert info is not None and info.cause in (cause, None)
        if info.cause is None:
            assert info.via == "disconnect-notice"
    assert [(n.headers.get("Content-Disposition"), n.headers.get("Linger-Time"))
            for n in conn.disconnect_notices] == notices
    if side.script.closes:                            # 11: linger 2 -> FreeSWITCH closes
        assert result.closed_by_peer


@pytest.mark.parametrize("name", INBOUND)
def test_replayed_inbound_capture_gives_the_same_results(name):
    """Every inbound capture: auth, `event plain ...`, api bodies (uuid_send_dtmf, uuid_kill,
    uuid_break, uuid_broadcast, conference list / list count / kick / mute, show channels),
    bgapi originate matched to its BACKGROUND_JOB by the Job-UUID FreeSWITCH chose, and exit
    (`+OK bye`, then FreeSWITCH closes)."""
    result, side = run(lambda: replay(name))
    assert not side.problems, side.problems
    assert len(side.frames) == sum(len(p) for k, _, p in side.script.steps if k == "send")
    msgs, _, _, _, _, replies, jobs = _expected(name)
    assert len(result.messages) == len(msgs)
    by_verb = {}
    for verb, task in result.tasks:
        assert task.done(), (name, verb)
        assert task.exception() is None, (name, verb, task.exception())
        by_verb.setdefault(verb.split(" ")[0], []).append(task)
    api_bodies = [m.body for m in replies if m.content_type == "api/response"]
    assert [t.result() for t in by_verb.get("api", [])] == api_bodies
    assert sorted(t.result() for t in by_verb.get("bgapi", [])) == sorted(jobs.values())
    for task in by_verb.get("event", []):
        assert task.result().reply_text == "+OK event listener enabled plain"
    assert side.script.closes and result.conn.closed
    assert result.conn.disconnect_notices[-1].body.startswith("Disconnected, goodbye.")
    assert "Controlled-Session-UUID" not in result.conn.disconnect_notices[-1].headers


def test_cause_after_a_disconnect_notice_first_is_kept():
    """9.log (real SIP call, BYE right after ACK): the notice, then the sendmsg's +OK, then
    CHANNEL_HANGUP with Hangup-Cause NORMAL_CLEARING."""
    result, side = run(lambda: replay("9"))
    info = result.conn.hangup_info()
    assert info is not None and info.cause == "NORMAL_CLEARING"


def test_replay_of_a_sip_call_reports_progress_media_before_answer():
    """9 / 10 (sofia): `answer` gives CHANNEL_PROGRESS_MEDIA (Answer-State early) before
    CHANNEL_ANSWER; our execute of answer still completes on its own completion."""
    result, _ = run(lambda: replay("10"))
    names = [m.event.name for m in result.messages if m.event is not None]
    assert names.index("CHANNEL_PROGRESS_MEDIA") < names.index("CHANNEL_ANSWER")
    early = next(m.event for m in result.messages
                 if m.event is not None and m.event.name == "CHANNEL_PROGRESS_MEDIA")
    assert early["Answer-State"] == "early"
    answered, _ = result.outcomes[result.executions[0][0]]
    assert answered["Application"] == "answer" and answered["Answer-State"] == "answered"
    connect = result.messages[0]
    assert len(connect.headers) == 151 and connect.headers["Channel-Name"].startswith("sofia/")
    dtmf = [m.event for m in result.messages if m.event is not None and m.event.name == "DTMF"]
    assert [(e["DTMF-Digit"], e["DTMF-Source"]) for e in dtmf] == \
        [("1", "RTP"), ("2", "RTP"), ("3", "RTP"), ("4", "RTP")]


def test_replay_events_and_replies_interleave_freely():
    """g2 / l_2: CHANNEL_PARK can come before the +OK of the first sendmsg; 9: the disconnect
    notice before the +OK of the last one; inbound exit (d2): events, then `+OK bye`. Replies
    are still matched in order."""
    for name in ("batch2/g2", "9", "d2_inbound"):
        result, side = run(lambda: replay(name))
        kinds = [m.event.name if m.event is not None else m.content_type
                 for m in result.messages]
        if name == "batch2/g2":
            assert kinds.index("CHANNEL_PARK") < kinds.index("command/reply", 3)
        elif name == "9":
            notice = kinds.index("text/disconnect-notice")
            assert kinds[notice + 1] == "command/reply"
            playback = result.executions[-1]
            assert result.outcomes[playback[0]][1] == "+OK"
            assert isinstance(result.outcomes[playback[0]][0], ChannelHangup)
        else:
            assert kinds[-2:] == ["command/reply", "text/disconnect-notice"]
            assert kinds[-3] == "CHANNEL_HANGUP_COMPLETE"


@pytest.mark.parametrize("name", ["1", "11", "batch2/m", "batch2/n2", "batch2/j", "batch2/o2",
                                  "batch2/p", "batch2/q2", "batch2/l_1", "a_inbound",
                                  "batch2/l_inbound"])
def test_our_frames_are_the_captured_frames(name):
    """Byte for byte, what our layer writes for each command is what the captured client wrote
    (header order, `event-lock: true` where it was sent, raw UTF-8 in execute-app-arg for m,
    `sendmsg call-command: hangup`, `linger 2`, `event plain ... CUSTOM <subclass>`, api),
    except the Event-UUID it chooses and the Job-UUID header it adds to bgapi."""
    _, side = run(lambda: replay(name))
    assert side.pairs
    for cap, ours in side.pairs:
        for c, o in side.uuid_map.items():
            ours = ours.replace(o, c)
        if ours.startswith(b"bgapi "):
            ours = re.sub(rb"\nJob-UUID: [0-9a-f-]{36}", b"", ours)
        assert ours == cap
    if name == "batch2/m":
        assert any("execute-app-arg: tts_commandline|zh|您的余额是十二元五角".encode() == line
                   for cap, _ in side.pairs for line in cap.split(b"\n"))


# =============================================================================================
# Part 2: facts of the captures, against the emulator
# =============================================================================================

def call(scenario, caller=None, **kw):
    kw.setdefault("emu_kwargs", {"frame_ms": FRAME_MS})

    async def main():
        return await drive_call(scenario, caller=caller, **kw)
    result = run(main)
    if result.error is not None and not isinstance(result.error, ChannelHangup):
        raise result.error
    return result


def events_of(res):
    return res.call.events()


def started_of(res, app, nth=0):
    return [e for e in events_of(res) if e.name == "CHANNEL_EXECUTE"
            and e.get("Application") == app][nth]


def done_of(res, app, nth=0):
    return [e for e in events_of(res) if e.name == "CHANNEL_EXECUTE_COMPLETE"
            and e.get("Application") == app][nth]


def steps(*items):
    async def scenario(conn):
        await answer_only(conn)
        for app, arg in items:
            if app == "hangup":
                await hangup_app(conn)
                return None
            await conn.execute(app, arg, timeout=30)
        return None
    return scenario


# ---------------------------------------------------------------- frames

def _completion_durations(res):
    starts = {}
    out = []
    for e in events_of(res):
        if e.name == "CHANNEL_EXECUTE":
            starts[e.application_uuid] = e
        elif e.name == "CHANNEL_EXECUTE_COMPLETE" and e.application_uuid in starts \
                and e.get("Hangup-Cause") is None:
            out.append((e.get("Application"), ms(starts[e.application_uuid], e)))
    return out


def _grid():
    """Scenarios (fresh CallerScripts each time: a script's steps are used up by a call)."""
    return {
        "1": (steps(("playback", "tone_stream://%(200,0,440)"), ("play_and_get_digits", PAGD_1),
                    ("hangup", None)), CallerScript().press("1234#", on="play_and_get_digits")),
        "2": (steps(("playback", "tone_stream://%(200,0,440)"), ("play_and_get_digits", PAGD_1),
                    ("hangup", None)), None),
        "g5": (steps(("playback", TONE3), ("play_and_get_digits", PAGD_G5), ("hangup", None)),
               CallerScript().press("5", on="playback", after=0.5)),
        "h2": (steps(("play_and_get_digits", PAGD_H), ("hangup", None)),
               CallerScript().press("7", on="play_and_get_digits", after=0.8)
               .press("7", on="play_and_get_digits", after=2.3)
               .press("7", on="play_and_get_digits", after=3.8)),
        "m": (steps(("speak", "tts_commandline|en|Your balance is twelve yuan fifty"),
                    ("speak", "tts_commandline|en|Hi"), ("hangup", None)), None),
    }


@pytest.mark.parametrize("name", [
    "1", "2", "g5", "h2", "m",
])
def test_every_completion_lands_on_the_frame_grid(name):
    """All captures: an application that ends without a hangup takes a whole number of 20 ms
    media frames from CHANNEL_EXECUTE to CHANNEL_EXECUTE_COMPLETE (within 3 ms)."""
    scenario, caller = _grid()[name]
    res = call(scenario, caller)
    durations = _completion_durations(res)
    assert durations
    for app, d in durations:
        off = d % FRAME_MS
        assert min(off, FRAME_MS - off) <= 3, (app, d)


def test_an_execute_sent_after_a_completion_starts_on_the_next_frame():
    """All captures: an application the client sends on the previous one's completion starts
    17-20 ms later (the next media frame), never in the same frame (g2: 598 -> 618 ms)."""
    res = call(steps(("set", "playback_terminators=any"), ("playback", TONE3),
                     ("hangup", None)), CallerScript().press("5", on="playback", after=0.5))
    assert ms(done_of(res, "playback"), started_of(res, "hangup")) == pytest.approx(20, abs=3)


def test_an_execute_sent_after_a_completion_starts_on_the_next_frame_elsewhere():
    """Same fact (1.log: playback done 260 ms, play_and_get_digits starts 280 ms) where the
    emulator's frame clock does advance."""
    res = call(*_grid()["1"])
    assert ms(done_of(res, "playback"), started_of(res, "play_and_get_digits")) == \
        pytest.approx(20, abs=3)


def test_hangup_app_unwinds_in_the_same_frame():
    """1.log: EXECUTE hangup, CHANNEL_HANGUP, COMPLETE hangup, CHANNEL_UNPARK, COMPLETE socket,
    CHANNEL_STATE CS_HANGUP / CS_REPORTING and CHANNEL_HANGUP_COMPLETE all at 320.004 ms."""
    res = call(*_grid()["g5"])
    hangup = res.call.events("CHANNEL_HANGUP")[0]
    for name in ("CHANNEL_UNPARK", "CHANNEL_HANGUP_COMPLETE"):
        assert ms(hangup, res.call.events(name)[0]) <= 1.5, name


def test_keys_sent_together_are_read_in_one_frame():
    """1.log: '1234#' sent together: the four DTMF events, the completion and the '#' carry one
    Event-Date-Timestamp (20 ms after CHANNEL_EXECUTE)."""
    res = call(*_grid()["1"])
    stamps = {ts_ms(e) for e in events_of(res) if e.name == "DTMF"}
    stamps.add(ts_ms(done_of(res, "play_and_get_digits")))
    assert len(stamps) == 1


def test_back_to_back_prompt_without_event_lock_starts_in_the_same_frame():
    """q3.log: #2, queued before #1 started, runs nested at once: its CHANNEL_EXECUTE comes
    1 ms after #1's."""
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3, event_lock=False)
        second = conn.execute_nowait("playback", TONE1, event_lock=False)
        await first.wait(10)
        await second.wait(10)
        await hangup_app(conn)
        return first.started.result(), second.started.result()

    first, second = call(scenario).value
    assert ms(first, second) <= 2


# ---------------------------------------------------------------- play_and_get_digits (2, 10, h, h2, g5)

def test_no_input_read_plays_the_invalid_file_and_fails_after_the_timeout():
    """2.log: `1 4 1 3000 # <100 ms tone> silence_stream://250 digits \\d+`, no key: the
    completion says read_result=failure, no variable_digits, and playback_ms=250 /
    playback_samples=2000 (the invalid file was played after the timeout)."""
    res = call(*_grid()["2"])
    done = done_of(res, "play_and_get_digits")
    assert done.variable("read_result") == "failure" and done.variable("digits") is None
    assert done.variable("playback_ms") == "250" and done.variable("playback_samples") == "2000"
    assert done["Application-Response"] == "_none_"


def test_no_input_read_takes_the_captured_time():
    """2.log: 3380 ms; g5.log, the same read with a 1500 ms timeout: exactly 100 + 1500 + 100.
    The emulator takes whole frames, 100 + 3000 + 260 = 3360 ms; 2.log's extra frame is
    clock jitter (switch_ivr_collect_digits_count compares the truncated wall-clock ms with the
    timeout once per frame, and over 2.log's read the media clock ran ~37 us ahead of the event
    clock), so one frame either way is allowed, no more."""
    res = call(*_grid()["2"])
    d = ms(started_of(res, "play_and_get_digits"), done_of(res, "play_and_get_digits"))
    assert 3360 - 3 <= d <= 3380 + 3


def test_keys_one_by_one_over_rtp_end_the_read_at_the_maximum():
    """10.log (sipp, RFC 2833): keys 1-4 400 ms apart, DTMF-Source RTP; the read ends on the
    4th key (max 4) without waiting for '#': digits=1234, read_result=success, and the
    completion has the 4th DTMF event's timestamp."""
    caller = CallerScript()
    for i, key in enumerate("1234"):
        caller.press(key, on="play_and_get_digits", after=0.9 + 0.4 * i)
    res = call(steps(("play_and_get_digits", PAGD_1), ("hangup", None)), caller,
               call_kwargs={"dtmf_source": "RTP"})
    dtmf = [e for e in events_of(res) if e.name == "DTMF"]
    assert [(e["DTMF-Digit"], e["DTMF-Source"]) for e in dtmf] == \
        [("1", "RTP"), ("2", "RTP"), ("3", "RTP"), ("4", "RTP")]
    done = done_of(res, "play_and_get_digits")
    assert done.variable("digits") == "1234" and done.variable("read_result") == "success"
    assert ts_ms(done) == ts_ms(dtmf[-1])
    assert done.variable("playback_ms") == "100"


@pytest.mark.parametrize("keys,total,last_gap,played", [("772", 3820, 0, "400"),
                                                         ("777", 4120, 300, "300")])
def test_read_with_retries_takes_the_captured_time(keys, total, last_gap, played):
    """h: 7, 7, 2 -> complete 3820 ms after CHANNEL_EXECUTE, on the '2' (playback_ms=400, the
    prompt); h2: 7, 7, 7 -> complete 4120 ms, 300 ms after the last key, because the invalid
    file (300 ms) is played after the 3rd try too (playback_ms=300)."""
    caller = CallerScript()
    for key, after in zip(keys, (0.8, 2.3, 3.8)):
        caller.press(key, on="play_and_get_digits", after=after)
    res = call(steps(("play_and_get_digits", PAGD_H), ("hangup", None)), caller)
    start, done = started_of(res, "play_and_get_digits"), done_of(res, "play_and_get_digits")
    last = [e for e in events_of(res) if e.name == "DTMF"][-1]
    assert ms(start, done) == pytest.approx(total, abs=3)
    assert ms(last, done) == pytest.approx(last_gap, abs=3)
    assert done.variable("playback_ms") == played


def test_typeahead_read_fails_after_its_own_timeout():
    """g5: after the playback that consumed the 5, `1 1 1 1500 # silence_stream://100
    silence_stream://100 typeahead \\d 1500` fails after 1700 ms (100 + 1500 + 100)."""
    res = call(*_grid()["g5"])
    d = ms(started_of(res, "play_and_get_digits"), done_of(res, "play_and_get_digits"))
    assert d == pytest.approx(1700, abs=3)
    assert done_of(res, "play_and_get_digits").variable("read_result") == "failure"


# ---------------------------------------------------------------- barge-in and hangup during a prompt (g2, g4, 3)

@pytest.mark.parametrize("setting,key", [("any", "5"), (None, "*")])
def test_terminator_key_and_the_completion_share_a_frame(setting, key):
    """g2 / g4: the DTMF event, then EXECUTE_COMPLETE (FILE PLAYED, playback_terminator_used=
    the key, playback_ms=2048, playback_samples=16384) in the same frame (1 ms apart)."""
    items = ([("set", f"playback_terminators={setting}")] if setting else []) + \
        [("playback", TONE3), ("hangup", None)]
    res = call(steps(*items), CallerScript().press(key, on="playback", after=0.5))
    dtmf, done = res.call.events("DTMF")[0], done_of(res, "playback")
    assert abs(ms(dtmf, done)) <= 1
    assert done["Application-Response"] == "FILE PLAYED"
    assert done.variable("playback_terminator_used") == key
    assert (done.variable("playback_ms"), done.variable("playback_samples")) == ("2048", "16384")


def test_caller_hangup_during_a_short_prompt():
    """3.log: the caller hangs up 20 ms into a 200 ms tone: CHANNEL_HANGUP, then in the same
    frame the playback's completion (PLAYBACK ERROR, Hangup-Cause NORMAL_CLEARING,
    playback_ms=200 / playback_samples=1600: the whole file was read), CHANNEL_UNPARK and the
    socket's completion, which inherits PLAYBACK ERROR."""
    res = call(steps(("playback", "tone_stream://%(200,0,440)"), ("hangup", None)),
               CallerScript().hangup(on="playback", after=0.02))
    hangup, done = res.call.events("CHANNEL_HANGUP")[0], done_of(res, "playback")
    assert 0 <= ms(hangup, done) <= 1
    assert done["Application-Response"] == "PLAYBACK ERROR"
    assert done["Hangup-Cause"] == "NORMAL_CLEARING"
    assert (done.variable("playback_ms"), done.variable("playback_samples")) == ("200", "1600")
    assert done_of(res, "socket")["Application-Response"] == "PLAYBACK ERROR"


# ---------------------------------------------------------------- playback variables (g*, n*, j, o2)

def test_playback_completion_carries_seconds_and_offset():
    """g1: every playback completion also carries variable_playback_seconds (ms // 1000: 3 for
    3000, 2 for 2048) and variable_playback_last_offset_pos (g1: 24000, g2: 4160)."""
    res = call(steps(("playback", TONE3), ("hangup", None)),
               CallerScript().press("5", on="playback", after=0.5))
    done = done_of(res, "playback")
    assert done.variable("playback_ms") == "3000" and done.variable("playback_samples") == "24000"
    assert done.variable("playback_seconds") == "3"
    assert done.variable("playback_last_offset_pos") == "24000"


def test_playback_stopped_by_uuid_break_counts_the_read_ahead():
    """n: `uuid_break` 0.5 s into a 3 s prompt: api +OK, FILE PLAYED after ~520 ms,
    playback_ms=2048 / playback_samples=16384 (read-ahead), no playback_terminator_used."""
    async def scenario(conn):
        await answer_only(conn)
        exe = conn.execute_nowait("playback", TONE3)
        await exe.started
        await asyncio.sleep(0.5)
        body = await conn.api(f"uuid_break {conn.channel_uuid}")
        done = await exe.wait(10)
        await hangup_app(conn)
        return body, done, exe.started.result()

    body, done, start = call(scenario).value
    assert body == "+OK\n"
    assert done["Application-Response"] == "FILE PLAYED"
    assert done.variable("playback_ms") == "2048" and done.variable("playback_samples") == "16384"
    assert done.variable("playback_terminator_used") is None
    assert ms(start, done) == pytest.approx(520, abs=20)


def _break_two():
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3)
        second = conn.execute_nowait("playback", TONE1)
        await first.started
        await asyncio.sleep(0.5)
        await conn.api(f"uuid_break {conn.channel_uuid}")
        a, b = await first.wait(10), await second.wait(10)
        await hangup_app(conn)
        return a, b, second.started.result()

    return call(scenario).value


def test_queued_prompt_plays_in_full_after_a_plain_break():
    """n3: after a plain `uuid_break` of #1 (event-locked), the queued #2 still runs and
    plays in full (1000 ms, playback_ms=1000, FILE PLAYED)."""
    a, b, start2 = _break_two()
    assert a["Application-Response"] == b["Application-Response"] == "FILE PLAYED"
    assert ms(start2, b) == pytest.approx(1000, abs=3) and b.variable("playback_ms") == "1000"


def test_queued_prompt_starts_on_the_frame_after_a_plain_break():
    """n3.log: after the break #2 starts one frame later (#1 complete 578 ms, #2
    CHANNEL_EXECUTE 598 ms), unlike q2 / p where the next one starts with the completion."""
    a, _, start2 = _break_two()
    assert ms(a, start2) == pytest.approx(20, abs=3)


def test_event_locked_queue_runs_the_next_one_with_the_completion():
    """q2: two event-locked prompts sent back to back: #2's CHANNEL_EXECUTE has #1's
    completion's timestamp (3038 ms both), #1 lasts 3000 ms and #2 1000 ms."""
    async def scenario(conn):
        await answer_only(conn)
        first = conn.execute_nowait("playback", TONE3)
        second = conn.execute_nowait("playback", TONE1)
        a, b = await first.wait(10), await second.wait(10)
        await hangup_app(conn)
        return a, b, first.started.result(), second.started.result()

    a, b, s1, s2 = call(scenario).value
    assert ms(s1, a) == 3000 and ms(s2, b) == 1000 and ms(a, s2) == 0


def test_prompt_cut_by_sched_hangup_reports_its_own_play_time():
    """o2: the 10 s prompt cut by ALLOTTED_TIMEOUT after 2500 ms (500 ms of them the nested
    broadcast) reports playback_ms=2048 / playback_samples=16384: its own play time, not
    the nested one's, rounded up to read-ahead blocks."""
    async def scenario(conn):
        await answer_only(conn)
        await conn.api(f"sched_hangup +3 {conn.channel_uuid} ALLOTTED_TIMEOUT")
        await conn.api(f"sched_broadcast +1 {conn.channel_uuid} tone_stream://%(500,0,300) aleg")
        with pytest.raises(ChannelHangup) as info:
            await conn.execute("playback", "tone_stream://%(10000,0,440)", event_lock=False,
                               timeout=20, hangup_grace=1.0)
        return info.value

    res = call(scenario, emu_kwargs={"frame_ms": FRAME_MS, "start_epoch": 1795437300.501744},
               call_kwargs={"notice_position": "after_hangup"})
    done = res.value.completion
    assert done["Application-Response"] == "PLAYBACK ERROR"
    assert done.variable("playback_ms") == "2048"


def test_endless_prompt_ended_by_our_hangup_reports_the_time_played():
    """j, replayed as captured: after the transfer, 5001's endless tone (a 1000 ms loop) runs;
    4 s later our playback (300 ms) runs nested in it, and 3 s after that our
    `sendmsg call-command: hangup` ends it, 6999 ms after its CHANNEL_EXECUTE: FILE PLAYED,
    playback_ms=7000 / playback_samples=56000 / playback_seconds=7 (the file is read loop by
    loop, 7 loops for its own ~6.7 s), playback_last_offset_pos=53760 (6720 ms taken, the
    300 ms nested excluded)."""
    async def scenario(conn):
        await answer_only(conn)
        await conn.execute("transfer", "5001 XML default", timeout=5)
        await asyncio.sleep(4.0)
        conn.execute_nowait("playback", "tone_stream://%(300,0,800)", event_lock=False)
        await asyncio.sleep(3.0)
        await conn.hangup(timeout=5)

    res = call(scenario)
    done = [e for e in events_of(res) if e.name == "CHANNEL_EXECUTE_COMPLETE"
            and e.get("Application") == "playback"
            and e.get("Application-Data", "").endswith("loops=-1")][-1]
    start = [e for e in events_of(res) if e.name == "CHANNEL_EXECUTE"
             and e.get("Application") == "playback"
             and e.get("Application-Data", "").endswith("loops=-1")][-1]
    assert ms(start, done) == pytest.approx(6999, abs=40)
    assert done["Application-Response"] == "FILE PLAYED"
    assert (done.variable("playback_ms"), done.variable("playback_samples"),
            done.variable("playback_seconds")) == ("7000", "56000", "7")
    assert int(done.variable("playback_last_offset_pos")) == pytest.approx(53760, abs=2 * 160)


# ---------------------------------------------------------------- record (i, i2, i3)

def _record_call(tmp_path, extra_sets=(), caller=None):
    path = tmp_path / "rec.wav"

    async def scenario(conn):
        await answer_only(conn)
        for app, arg in extra_sets:
            await conn.execute(app, arg, timeout=5)
        done = await conn.execute("record", f"{path} 10 200 2", timeout=20)
        await hangup_app(conn)
        return done

    res = call(scenario, caller or CallerScript().speak(1.5, on="record", after=0.1),
               events=["RECORD_START", "RECORD_STOP"])
    return res, path


def test_record_stop_carries_the_record_variables(tmp_path):
    """i: RECORD_START and RECORD_STOP carry Record-File-Path; RECORD_STOP already has
    variable_record_ms=1500, record_samples=12000, record_seconds=1, silence_hits_exhausted=
    true, record_file_size = record_record_file_size = 24044 (44-byte header + 2 bytes a
    sample); RECORD_START has silence_hits_exhausted=false; the completion repeats them."""
    res, path = _record_call(tmp_path)
    start, stop = res.call.events("RECORD_START")[0], res.call.events("RECORD_STOP")[0]
    done = done_of(res, "record")
    assert start["Record-File-Path"] == stop["Record-File-Path"] == str(path)
    assert start.variable("silence_hits_exhausted") == "false"
    for ev in (stop, done):
        assert ev.variable("record_ms") == "1500" and ev.variable("record_samples") == "12000"
        assert ev.variable("record_seconds") == "1"
        assert ev.variable("silence_hits_exhausted") == "true"
        assert ev.variable("record_file_size") == ev.variable("record_record_file_size") \
            == "24044" == str(44 + 2 * 12000)
    assert ts_ms(stop) == ts_ms(done)
    assert done["Application-Response"] == "_none_"
    import wave
    with wave.open(str(path), "rb") as w:                 # 8 kHz mono 16-bit, 1.500 s
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == \
            (8000, 1, 2, 12000)


def test_record_stopped_by_the_terminator_writes_what_was_recorded(tmp_path):
    """i2: '#' (playback_terminators=#) after ~1 s: DTMF, RECORD_STOP and the completion in
    the same frame; record_ms=900, record_samples=7200, record_seconds=0, file 14444 bytes.
    The '#' sent 1 s in comes out with the next frame (i2.log: DTMF 1020 ms after
    CHANNEL_EXECUTE), so the tone had reached the recorder 120 ms in."""
    caller = CallerScript().speak(1.5, on="record", after=0.12) \
        .press("#", on="record", after=1.0)
    res, path = _record_call(tmp_path, [("set", "playback_terminators=#")], caller)
    done = done_of(res, "record")
    dtmf, stop = res.call.events("DTMF")[0], res.call.events("RECORD_STOP")[0]
    assert ts_ms(dtmf) == ts_ms(stop) == ts_ms(done)
    assert ms(started_of(res, "record"), dtmf) == pytest.approx(1020, abs=3)
    assert done.variable("record_ms") == "900" and done.variable("record_samples") == "7200"
    assert done.variable("record_seconds") == "0"
    assert done.variable("playback_terminator_used") == "#"
    assert done.variable("record_file_size") == "14444" == str(path.stat().st_size)


def test_record_with_fill_cng_counts_one_frame_less_than_its_run(tmp_path):
    """i3: with record_fill_cng the record ran 3640 ms and reported record_ms=3620 /
    record_samples=28960: the frame that exhausts the silence hits is not written."""
    res, _ = _record_call(tmp_path, [("set", "record_fill_cng=true")])
    start, done = started_of(res, "record"), done_of(res, "record")
    assert int(done.variable("record_ms")) == ms(start, done) - FRAME_MS


# ---------------------------------------------------------------- bridge (k), transfer (j)

def _bridge_call():
    async def scenario(conn):
        await answer_only(conn)
        await conn.set_var("hangup_after_bridge", "false")
        done = await conn.execute("bridge", "loopback/5001/default", timeout=30)
        await hangup_app(conn)
        return done

    return call(scenario, emu_kwargs={"frame_ms": FRAME_MS, "agents": {
        "loopback/5001/default": Agent(talk=2.0)}})


def test_bridge_events_carry_the_other_leg_and_the_dial_status():
    """k: CHANNEL_BRIDGE has Bridge-A-Unique-ID (us), Bridge-B-Unique-ID = Other-Leg-Unique-ID
    (loopback/5001-a) and already variable_DIALSTATUS / originate_disposition = SUCCESS; the
    completion has bridge_hangup_cause and last_bridge_hangup_cause NORMAL_CLEARING, still
    Answer-State answered and Other-Leg-Unique-ID; no event of the agent legs reaches us."""
    res = _bridge_call()
    bridge = res.call.events("CHANNEL_BRIDGE")[0]
    done = done_of(res, "bridge")
    assert bridge["Bridge-A-Unique-ID"] == res.call.uuid
    assert bridge["Bridge-B-Unique-ID"] == bridge["Other-Leg-Unique-ID"]
    assert bridge["Other-Leg-Channel-Name"] == "loopback/5001-a"
    assert bridge.variable("DIALSTATUS") == bridge.variable("originate_disposition") == "SUCCESS"
    assert done.variable("last_bridge_hangup_cause") == "NORMAL_CLEARING"
    assert done.variable("originate_disposition") == "SUCCESS"
    assert done["Answer-State"] == "answered"
    assert done["Other-Leg-Unique-ID"] == bridge["Other-Leg-Unique-ID"]
    assert {e.unique_id for e in events_of(res)} == {res.call.uuid}


def test_unbridge_carries_the_bridge_hangup_cause():
    res = _bridge_call()
    unbridge = res.call.events("CHANNEL_UNBRIDGE")[0]
    assert unbridge.variable("bridge_hangup_cause") == "NORMAL_CLEARING"


def test_transfer_completion_carries_the_transfer_history():
    """j: the transfer's completion carries variable_max_forwards=70, variable_transfer_history
    and variable_transfer_source ('<epoch>:<uuid>:bl_xfer:5001/default/XML')."""
    async def scenario(conn):
        await answer_only(conn)
        done = await conn.execute("transfer", "5001 XML default", timeout=5)
        await conn.hangup(timeout=5)
        return done

    done = call(scenario).value
    assert done.variable("max_forwards") == "70"
    assert done.variable("transfer_history", "").endswith(":bl_xfer:5001/default/XML")


# ---------------------------------------------------------------- hangup variables

def test_hangup_by_the_caller_during_a_read_fails_it_at_once():
    """4.log: the caller hangs up 1 s into play_and_get_digits: CHANNEL_HANGUP, then the
    completion (read_result=failure, Application-Response _none_, Hangup-Cause set) in the
    same frame; the socket's completion says _none_ (no current_application_response)."""
    res = call(steps(("play_and_get_digits", PAGD_1), ("hangup", None)),
               CallerScript().hangup(on="play_and_get_digits", after=1.0))
    hangup = res.call.events("CHANNEL_HANGUP")[0]
    done = done_of(res, "play_and_get_digits")
    assert ts_ms(done) == ts_ms(hangup)
    assert done.variable("read_result") == "failure"
    assert done["Application-Response"] == "_none_" and done["Hangup-Cause"] == "NORMAL_CLEARING"
    assert done_of(res, "socket")["Application-Response"] == "_none_"


def test_hangup_variables_arrive_with_hangup_complete():
    res = call(*_grid()["1"])
    assert res.call.events("CHANNEL_HANGUP")[0].variable("hangup_cause") is None
    complete = res.call.events("CHANNEL_HANGUP_COMPLETE")[0]
    assert complete.variable("hangup_cause") == "NORMAL_CLEARING"
    assert complete.variable("hangup_cause_q850") == "16"


# ---------------------------------------------------------------- linger (11)

def test_linger_n_goodbye_comes_in_the_second_after_the_linger_time():
    async def scenario(conn):
        await answer_only(conn)
        await hangup_app(conn)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await conn.wait_closed(timeout=10)
        return loop.time() - t0, conn.disconnect_notices

    waited, notices = call(scenario, linger=2, conn_kwargs={"close_after_disconnect": None},
                           drain=0, emu_kwargs={"frame_ms": FRAME_MS,
                                                "start_epoch": 1795434689.4}).value
    assert [n.headers["Content-Disposition"] for n in notices] == ["linger", "disconnect"]
    assert 2.05 < waited <= 3.05


def test_linger_replies():
    """11 / 1: `linger 2` -> `+OK will linger 2 seconds`; bare `linger` -> `+OK will linger`;
    the linger notice: Controlled-Session-UUID, Content-Disposition linger, Channel-Name,
    Linger-Time, Content-Length 0 (in this order); the goodbye: Content-Disposition
    disconnect and the 67-byte body."""
    async def scenario(conn):
        r1 = await conn.linger(2)
        r2 = await conn.linger()
        await answer_only(conn)
        await hangup_app(conn)
        await asyncio.sleep(4)
        return r1.reply_text, r2.reply_text

    res = call(scenario, linger=2, conn_kwargs={"close_after_disconnect": None})
    assert res.value == ("+OK will linger 2 seconds", "+OK will linger")
    notice = res.call.session.sent_messages()[-1]
    assert notice.headers.names() == ["Content-Type", "Controlled-Session-UUID",
                                      "Content-Disposition", "Channel-Name", "Linger-Time",
                                      "Content-Length"]
    assert notice.headers["Linger-Time"] == "-1" and notice.raw_body == b""
    async def hang_up(conn):
        await answer_only(conn)
        await hangup_app(conn)

    res2 = call(hang_up, linger=2, conn_kwargs={"close_after_disconnect": None}, drain=3.0)
    bye = res2.call.session.sent_messages()[-1]
    assert bye.headers["Content-Disposition"] == "disconnect"
    assert bye.headers["Content-Length"] == "67" and len(bye.raw_body) == 67


# ---------------------------------------------------------------- speak (m)

def test_speak_sends_raw_utf8_and_gets_it_back_url_encoded():
    """m: the Chinese text goes raw (UTF-8) in execute-app-arg; CHANNEL_EXECUTE carries it
    URL-encoded in Application-Data; only EXECUTE / COMPLETE (_none_), no other event."""
    text = "tts_commandline|zh|您的余额是十二元五角"
    res = call(steps(("speak", text), ("hangup", None)))
    raw = b"".join(res.call.session.received)
    assert ("execute-app-arg: " + text + "\n").encode("utf-8") in raw
    sent = b"".join(res.call.session.sent)
    assert b"Application-Data: tts_commandline%7Czh%7C%E6%82%A8" in sent
    assert started_of(res, "speak")["Application-Data"] == text
    assert done_of(res, "speak")["Application-Response"] == "_none_"
    evs = events_of(res)
    at = next(i for i, e in enumerate(evs) if e.name == "CHANNEL_EXECUTE"
              and e.get("Application") == "speak")
    assert evs[at + 1].name == "CHANNEL_EXECUTE_COMPLETE"          # nothing in between
    assert evs[at + 1].get("Application") == "speak"


# ---------------------------------------------------------------- sched (o, o2)

def test_sched_apps_complete_at_once_and_api_forms_reply():
    """o: sched_hangup / sched_broadcast complete in their own frame (_none_), the broadcast
    sets variable_last_sched_id; o2: api sched_hangup -> `+OK\\n`, api sched_broadcast ->
    `+OK Message scheduled\\n`; the hangup's HANGUP_COMPLETE keeps ALLOTTED_TIMEOUT and the
    socket's completion inherits PLAYBACK ERROR."""
    async def scenario(conn):
        await answer_only(conn)
        a = await conn.execute("sched_hangup", "+3 ALLOTTED_TIMEOUT", timeout=5)
        b = await conn.execute("sched_broadcast", "+1 tone_stream://%(500,0,300) aleg", timeout=5)
        c = await conn.api(f"sched_broadcast +2 {conn.channel_uuid} tone_stream://%(100,0,300)"
                           " aleg")
        d = await conn.api(f"sched_hangup +5 {conn.channel_uuid} ALLOTTED_TIMEOUT")
        with pytest.raises(ChannelHangup):
            await conn.execute("playback", "tone_stream://%(10000,0,440)", event_lock=False,
                               timeout=20)
        return a, b, c, d

    res = call(scenario, call_kwargs={"notice_position": "after_hangup"})
    a, b, c, d = res.value
    for ev in (a, b):
        assert ev["Application-Response"] == "_none_"
        assert ms(started_of(res, ev["Application"]), ev) == 0
    assert b.variable("last_sched_id") is not None
    assert (c, d) == ("+OK Message scheduled\n", "+OK\n")
    assert res.call.events("CHANNEL_HANGUP")[0]["Hangup-Cause"] == "ALLOTTED_TIMEOUT"
    assert res.call.events("CHANNEL_HANGUP_COMPLETE")[0]["Hangup-Cause"] == "ALLOTTED_TIMEOUT"
    assert done_of(res, "socket")["Application-Response"] == "PLAYBACK ERROR"


# ---------------------------------------------------------------- conference (5-8, d, d2, l, l2)

async def _conference(emu, specs, driver, *, custom=True):
    """Calls joining a conference through our outbound server, an inbound client on the side;
    per number: the conference's completion (or the ChannelHangup) and what the socket read."""
    results, inbound, extra = await conference_calls(
        emu, specs, lambda client, calls: driver(client, emu), subscribe=custom, after_return=False)
    outs = {n: (outcome[1] if outcome else None, msgs) for n, (outcome, msgs, _) in results.items()}
    return outs, inbound, extra


async def _driver_l(client, emu):
    await asyncio.sleep(2.2)
    conn = await client.connection()
    listing = await conn.api("conference expert1 list")
    third = re.search(r"^(\d+);[^\n]*;13900000003;", listing, re.M).group(1)
    mute = await conn.api(f"conference expert1 mute {third}")
    await asyncio.sleep(1.0)
    unmute = await conn.api(f"conference expert1 unmute {third}")
    count = await conn.api("conference expert1 list count")
    await asyncio.sleep(2.0)
    moderator = re.search(r"^\d+;[^;]*;([^;]+);;13900000001;", listing, re.M).group(1)
    a_leg = next(a for a, b in emu.aliases.items() if b == moderator)
    killed = await conn.api(f"uuid_kill {a_leg}")
    await asyncio.sleep(1.0)
    after = await conn.api("conference list")
    gone = await conn.api("conference expert1 list", check=False)
    return {"listing": listing, "mute": mute, "unmute": unmute, "count": count, "third": third,
            "killed": killed, "after": after, "gone": gone}


def _run_l(set_false=False):
    specs = [dict(s, set_false=set_false and i > 0) for i, s in enumerate(SPECS_L)]

    async def main():
        emu = FreeSwitchEmulator(frame_ms=FRAME_MS)
        try:
            return await _conference(emu, specs, _driver_l)
        finally:
            await emu.close()
    return run(main)


@pytest.fixture(scope="module")
def conf_l():
    return _run_l(False)


@pytest.fixture(scope="module")
def conf_l2():
    return _run_l(True)


def test_conference_api_bodies(conf_l):
    """l_inbound: `conference expert1 list` lines `id;loopback/5000-b;uuid;;number;flags;0;0;100`
    newest first; `mute 9` -> `+OK mute 9\\n`, `unmute 9` -> `+OK unmute 9\\n`; d: `list count`
    -> `3` without a newline; uuid_kill -> `+OK\\n`; after the end `conference list` ->
    `+OK No active conferences.\\n` and `conference expert1 list` ->
    `-ERR Conference expert1 not found\\n`."""
    _, _, api = conf_l
    lines = api["listing"].splitlines(keepends=True)
    assert len(lines) == 3 and all(x.endswith(";0;0;100\n") for x in lines)
    assert [x.split(";")[4] for x in lines] == ["13900000003", "13900000002", "13900000001"]
    assert all(re.fullmatch(r"\d+;loopback/5000-b;[0-9a-f-]{36};;139\d{8};[a-z|]+;0;0;100\n", x)
               for x in lines)
    n = api["third"]
    assert api["mute"] == f"+OK mute {n}\n" and api["unmute"] == f"+OK unmute {n}\n"
    assert api["count"] == "3"
    assert api["killed"] == "+OK\n"
    assert api["after"] == "+OK No active conferences.\n"
    assert api["gone"] == "-ERR Conference expert1 not found\n"


def test_conference_member_events_headers(conf_l):
    """l_inbound: conference-create (Conference-Size 0), add-member with the size after the
    join, Floor false, Member-Type moderator / member, Speak false for the `mute` member;
    floor-change to a member with Old-ID none, New-ID, Floor true, the conference block twice;
    mute-member / unmute-member with Speak false / true; del-member with the size after the
    leave and Hangup-Cause NORMAL_CLEARING (l: hung up); conference-destroy (size 0) with the
    last del-member's timestamp."""
    _, inbound, _ = conf_l
    by = {}
    for e in inbound:
        by.setdefault(e["Action"], []).append(e)
    assert by["conference-create"][0]["Conference-Size"] == "0"
    adds = by["add-member"]
    assert [e["Conference-Size"] for e in adds] == ["1", "2", "3"]
    assert [e["Member-Type"] for e in adds] == ["moderator", "member", "member"]
    assert [e["Speak"] for e in adds] == ["true", "false", "true"]
    assert all(e["Floor"] == "false" for e in adds)
    first_floor = by["floor-change"][0]
    assert first_floor["Old-ID"] == "none" and first_floor["New-ID"] == adds[0]["Member-ID"]
    assert first_floor.headers.get_all("Floor") == ["true"]
    assert len(first_floor.headers.get_all("Conference-Name")) == 2
    assert [e["Speak"] for e in by["mute-member"] + by["unmute-member"]] == ["false", "true"]
    dels = by["del-member"]
    assert [e["Conference-Size"] for e in dels] == ["2", "1", "0"]
    assert all(e["Hangup-Cause"] == "NORMAL_CLEARING" for e in dels)
    destroy = by["conference-destroy"][0]
    assert destroy["Conference-Size"] == "0" and ts_ms(destroy) == ts_ms(dels[-1])


def test_floor_release_says_none_and_the_size_before_the_leave(conf_l):
    _, inbound, _ = conf_l
    release = next(e for e in inbound if e["Action"] == "floor-change"
                   and e.get("New-ID") == "none")
    assert release["Old-ID"] == "none" and release["Conference-Size"] == "3"


def test_inbound_sees_the_conference_sound_events(conf_l):
    _, inbound, _ = conf_l
    actions = {e["Action"] for e in inbound}
    assert {"play-file", "play-file-done"} <= actions


def test_endconf_others_leave_about_25_ms_later(conf_l, conf_l2):
    """l: the moderator's del-member, then ~25 ms later the others' (8 at +25 ms, 9 at +28 ms
    in l; 11 at +25, 12 at +28 in l2); conference-destroy with the last one."""
    for outs, inbound, _ in (conf_l, conf_l2):
        dels = [e for e in inbound if e["Action"] == "del-member"]
        assert 20 <= ts_ms(dels[1]) - ts_ms(dels[0]) <= 30
        assert 20 <= ts_ms(dels[2]) - ts_ms(dels[0]) <= 30


def test_each_socket_sees_only_its_own_member_and_l2_keeps_the_call(conf_l, conf_l2):
    """l: the del-member of a hung-up member has Hangup-Cause; l2: with
    hangup_after_conference=false the others' del-member has none, their completion says
    Answer-State answered and they keep control (our hangup app runs)."""
    outs, _, _ = conf_l2
    for number in ("13900000002", "13900000003"):
        completion, msgs = outs[number]
        own = [m.event for m in msgs if m.event is not None and m.event.name == "CUSTOM"]
        assert own[-1]["Action"] == "del-member" and own[-1].get("Hangup-Cause") is None
        assert completion["Answer-State"] == "answered"
        apps = [m.event.get("Application") for m in msgs if m.event is not None
                and m.event.name == "CHANNEL_EXECUTE"]
        assert apps[-1] == "hangup"
        assert not any(e["Action"] in ("conference-create", "conference-destroy") for e in own)


def test_conference_completion_carries_the_member_variables(conf_l2):
    outs, _, _ = conf_l2
    completion, msgs = outs["13900000002"]
    add = next(m.event for m in msgs if m.event is not None and m.event.name == "CUSTOM")
    assert completion.variable("conference_name") == "expert1"
    assert completion.variable("conference_member_id") == add["Member-ID"]
    assert completion.variable("conference_uuid") == add["Conference-Unique-ID"]
    assert completion.variable("conference_moderator") == "false"


def test_myevents_conference_kick_and_list_count():
    """5/6 + d_inbound: two members; `list count` -> `2` (no newline), the listing shows the
    first member with `hear|speak|floor`; `kick all` -> `+OK kicked 2\\n+OK kicked 1\\n`;
    kick returns the conference app (_none_, still answered) without conference events under
    myevents alone."""
    specs = [{"number": "13800000005", "arg": "ivrtest@default", "start": 0},
             {"number": "13800000006", "arg": "ivrtest@default", "start": 0.05}]

    async def driver(client, emu):
        await asyncio.sleep(2)
        conn = await client.connection()
        listing = await conn.api("conference ivrtest list")
        count = await conn.api("conference ivrtest list count")
        kicked = await conn.api("conference ivrtest kick all")
        return listing, count, kicked

    async def main():
        emu = FreeSwitchEmulator(frame_ms=FRAME_MS)
        try:
            return await _conference(emu, specs, driver, custom=False)
        finally:
            await emu.close()

    outs, _, (listing, count, kicked) = run(main)
    assert count == "2"
    assert [x.split(";")[5] for x in listing.splitlines()] == ["hear|speak", "hear|speak|floor"]
    assert kicked == "+OK kicked 2\n+OK kicked 1\n"
    for completion, msgs in outs.values():
        assert completion["Application-Response"] == "_none_"
        assert completion["Answer-State"] == "answered"
        assert not [m for m in msgs if m.event is not None and m.event.name == "CUSTOM"]


# ---------------------------------------------------------------- inbound replies

def test_inbound_replies_have_the_captured_texts():
    """a..q inbound: `auth ClueCon` -> `+OK accepted`; `event plain ...` -> `+OK event listener
    enabled plain`; bgapi -> `+OK Job-UUID: <id>` with a Job-UUID header and a BACKGROUND_JOB
    `+OK <A-leg uuid>\\n`; uuid_send_dtmf -> `+OK <uuid> sent DTMF 7.\\n`; uuid_broadcast on the
    A leg -> `+OK Message sent\\n`; uuid_break / uuid_kill -> `+OK\\n`; exit -> `+OK bye`, then
    the goodbye notice without Controlled-Session-UUID / Content-Disposition, and FreeSWITCH
    closes."""
    a_leg = "aaaaaaaa-0000-4000-8000-000000000002"

    async def main():
        loop = asyncio.get_running_loop()
        emu = FreeSwitchEmulator(frame_ms=FRAME_MS)
        released = loop.create_future()

        async def handler(conn):
            await conn.handshake()
            await answer_only(conn)
            try:
                await conn.execute("park", timeout=30)
            except ESLError:
                pass
            released.set_result(None)

        server = await serve_outbound(handler)
        emu.dialplan["5000"] = [("socket", f"127.0.0.1:{server.port} async full")]
        port = await emu.start_inbound()
        conn = await ESLConnection.open("127.0.0.1", port)
        auth = await conn.send("auth ClueCon")          # (after the auth/request)
        ev = await conn.enable_events(["CHANNEL_EXECUTE", "BACKGROUND_JOB"])
        job_done = conn.expect("BACKGROUND_JOB")
        reply = await conn.send(f"bgapi originate {{origination_uuid={a_leg},origination_caller_"
                                f"id_number=13800000001}}loopback/5000/default &park()")
        job = await conn.wait_event(job_done, timeout=5)
        await asyncio.sleep(0.5)
        dtmf = await conn.api(f"uuid_send_dtmf {a_leg} 7")
        bcast = await conn.api(f"uuid_broadcast {a_leg} tone_stream://%(1500,0,500) aleg")
        brk = await conn.api(f"uuid_break {a_leg}")
        kill = await conn.api(f"uuid_kill {a_leg}")
        await asyncio.wait_for(released, 10)
        msgs = []
        conn.on_message(msgs.append)
        await conn.exit(timeout=5)
        await server.close(grace=1)
        await emu.close()
        return auth, ev, reply, job, dtmf, bcast, brk, kill, msgs, conn

    auth, ev, reply, job, dtmf, bcast, brk, kill, msgs, conn = run(main)
    assert auth.reply_text == "+OK accepted"
    assert ev.reply_text == "+OK event listener enabled plain"
    assert reply.reply_text == f"+OK Job-UUID: {reply.headers['Job-UUID']}"
    assert job.job_uuid == reply.headers["Job-UUID"] and job.body == f"+OK {a_leg}\n"
    assert job["Job-Command"] == "originate" and job["Job-Command-Arg"].startswith("{origination")
    assert dtmf == f"+OK {a_leg} sent DTMF 7.\n"
    assert bcast == "+OK Message sent\n"
    assert brk == kill == "+OK\n"
    assert [m.content_type for m in msgs][-2:] == ["command/reply", "text/disconnect-notice"]
    assert msgs[-2].reply_text == "+OK bye"
    assert msgs[-1].headers.names() == ["Content-Type", "Content-Length"]
    assert msgs[-1].body == "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
    assert conn.closed


def test_loopback_originate_job_reports_after_the_answer():
    async def main():
        emu = FreeSwitchEmulator(frame_ms=FRAME_MS)

        async def handler(conn):
            await conn.handshake()
            await asyncio.sleep(0.1)
            await answer_only(conn)
            await hangup_app(conn)

        server = await serve_outbound(handler)
        emu.dialplan["5000"] = [("socket", f"127.0.0.1:{server.port} async full")]
        port = await emu.start_inbound()
        conn = await ESLConnection.open("127.0.0.1", port)
        await conn.auth("ClueCon")
        await conn.enable_events(["CHANNEL_EXECUTE_COMPLETE", "BACKGROUND_JOB"])
        seen = conn.subscribe(["CHANNEL_EXECUTE_COMPLETE", "BACKGROUND_JOB"])
        await conn.bgapi("originate {origination_uuid=aaaaaaaa-0000-4000-8000-000000000003}"
                         "loopback/5000/default &park()")
        await asyncio.sleep(1.0)
        order = [(e.name, e.get("Application")) for e in iter(seen.get_nowait, None)]
        conn.close()
        await server.close(grace=1)
        await emu.close()
        return order

    order = run(main)
    assert order.index(("CHANNEL_EXECUTE_COMPLETE", "answer")) < \
        order.index(("BACKGROUND_JOB", None))


def test_show_channels_lists_the_channels():
    async def scenario(conn):
        await answer_only(conn)
        body = await conn.api("show channels", check=False)
        await hangup_app(conn)
        return body

    body = call(scenario).value
    lines = body.split("\n")
    assert lines[0].startswith("uuid,direction,created,created_epoch,name,state,")
    total = re.search(r"\n\n(\d+) total\.\n$", body)
    assert total and int(total.group(1)) >= 1


# ---------------------------------------------------------------- pipelining (p)

def test_pipelined_replies_each_in_its_own_block_before_the_events():
    """p: the 5 replies of one pipelined write come in order, each its own `\\n\\n`-terminated
    block (the connect reply a body-less header block ending with Content-Type command/reply,
    Reply-Text %2BOK%0A, Socket-Mode async, Control full), before any event; answer and
    playback run back to back (playback starts with answer's completion)."""
    async def scenario(conn):
        hs = await conn.handshake(executes=[("answer", None), ("playback", TONE1)],
                                  event_lock=False)
        for exe in hs.executions:
            await exe.wait(10)
        await hangup_app(conn)

    res = call(scenario, handshake=False)
    raw = b"".join(res.call.session.sent)
    blocks = raw.split(b"\n\n")
    assert blocks[0].endswith(b"Content-Type: command/reply\nReply-Text: %2BOK%0A\n"
                              b"Socket-Mode: async\nControl: full")
    assert blocks[1:5] == [b"Content-Type: command/reply\nReply-Text: +OK Events Enabled",
                           b"Content-Type: command/reply\nReply-Text: +OK will linger",
                           b"Content-Type: command/reply\nReply-Text: +OK",
                           b"Content-Type: command/reply\nReply-Text: +OK"]
    assert ts_ms(done_of(res, "answer")) == ts_ms(started_of(res, "playback"))
