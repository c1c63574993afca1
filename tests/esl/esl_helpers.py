"""Run one emulated call against our outbound server, on the virtual clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from engine.channel.esl import (ChannelHangup, ESLError, InboundClient, Message, OutboundConnection,
                                serve_outbound)
from engine.testing import CallerScript, FreeSwitchEmulator, run_virtual


def run(main, **kw):
    return run_virtual(main, **kw)


@dataclass
class CallResult:
    conn: OutboundConnection
    call: Any
    emu: FreeSwitchEmulator
    messages: list[Message] = field(default_factory=list)
    value: Any = None
    error: BaseException | None = None
    started: float = 0.0
    ended: float = 0.0

    def events(self, name: str | None = None) -> list:
        return [m.event for m in self.messages
                if m.event is not None and (name is None or m.event.name == name)]

    def completion(self, app: str, nth: int = 0):
        return [e for e in self.events("CHANNEL_EXECUTE_COMPLETE")
                if e.get("Application") == app][nth]


async def drive_call(scenario, *, caller: CallerScript | None = None,
                     emu: FreeSwitchEmulator | None = None, emu_kwargs: dict | None = None,
                     call_kwargs: dict | None = None, handshake: bool = True,
                     events=(), custom=(), linger: bool | int = True, drain: float = 1.0,
                     conn_kwargs: dict | None = None) -> CallResult:
    """Place a call from the emulator to a fresh outbound server and run
    `scenario(conn) -> value` in the per-call handler after the handshake. After it returns,
    keep reading `drain` (virtual) seconds past the hangup so trailing events are recorded."""
    own_emu = emu is None
    emu = emu or FreeSwitchEmulator(**(emu_kwargs or {}))
    loop = asyncio.get_running_loop()
    done: asyncio.Future[CallResult] = loop.create_future()

    async def handler(conn: OutboundConnection) -> None:
        result = CallResult(conn, None, emu, started=loop.time())
        conn.on_message(result.messages.append)
        try:
            if handshake:
                await conn.handshake(events=events, custom=custom, linger=linger)
            result.value = await scenario(conn)
        except ESLError as exc:
            result.error = exc
        except BaseException as exc:       # surfaced by the test
            result.error = exc
        result.ended = loop.time()
        if not conn.closed and drain:
            try:
                await conn.wait_hangup(timeout=drain)
            except ESLError:
                pass
            await asyncio.sleep(drain)
        done.set_result(result)

    server = await serve_outbound(handler, **(conn_kwargs or {}))
    try:
        call = await emu.place_call("127.0.0.1", server.port, caller=caller,
                                    **(call_kwargs or {}))
        result = await asyncio.wait_for(done, 600)
        result.call = call
        return result
    finally:
        await server.close(grace=1.0)
        if own_emu:
            await emu.close()


def normalize(messages, skip=("CHANNEL_PARK",)) -> list[tuple]:
    """Comparable view of a message sequence (capture or emulator)."""
    out = []
    for m in messages:
        if m.event is not None:
            e = m.event
            if e.name in skip:
                continue
            out.append((e.name, e.get("Application"), e.get("Application-Response"),
                        e.get("DTMF-Digit"), e.get("Action"), e.get("Hangup-Cause"),
                        e.get("Channel-State") if e.name == "CHANNEL_STATE" else None))
        elif m.content_type == "text/disconnect-notice":
            out.append((m.content_type, m.headers.get("Content-Disposition"),
                        m.headers.get("Linger-Time")))
        else:
            out.append((m.content_type, m.reply_text))
    return out


PAGD_1 = r"1 4 1 3000 # tone_stream://%(100,0,600) silence_stream://250 digits \d+"
PAGD_H = r"1 1 3 4000 # tone_stream://%(400,0,600) tone_stream://%(300,0,300) choice ^[12]$ 2000"
PAGD_G5 = r"1 1 1 1500 # silence_stream://100 silence_stream://100 typeahead \d 1500"
REC = "/nonexistent-ivrflow-dir/rec.wav"     # not written: the directory does not exist


async def hangup_app(conn):
    try:
        await conn.execute("hangup", "NORMAL_CLEARING", timeout=5)
    except ChannelHangup:
        pass


def steps(*items):
    async def scenario(conn):
        await conn.execute("answer", timeout=5)
        for item in items:
            if item[0] == "hangup":
                await hangup_app(conn)
            elif item[0] == "sleep":
                await asyncio.sleep(item[1])
            else:
                try:
                    await conn.execute(item[0], item[1], timeout=30)
                except ChannelHangup:
                    return
        return None
    return scenario




async def answer_only(conn):
    return await conn.execute("answer", timeout=5)


# ---------------------------------------------------------------- conference calls

MAINT = "conference::maintenance"


def ts(ev):
    return int(ev["Event-Date-Timestamp"])


async def conference_calls(emu, specs, driver, *, subscribe=True, after_return=True):
    """Place one call per spec (flags, set_false, start) and run `driver(client, calls)`;
    a member whose conference app returns hears a tone (`after_return`), then hangs up."""
    loop = asyncio.get_running_loop()
    results = {}
    done = {spec["number"]: loop.create_future() for spec in specs}
    by_number = {spec["number"]: spec for spec in specs}

    async def handler(conn):
        msgs = []
        conn.on_message(msgs.append)
        hs = await conn.handshake(custom=[MAINT] if subscribe else ())
        spec = by_number[hs.channel.caller_number]
        outcome = None
        try:
            await answer_only(conn)
            if spec.get("set_false"):
                await conn.set_var("hangup_after_conference", "false")
            done_ev = await conn.execute("conference", spec["arg"], timeout=120)
            outcome = ("returned", done_ev)
            if after_return:
                await conn.execute("playback", "tone_stream://%(500,0,660)", timeout=5)
            await hangup_app(conn)
        except ChannelHangup as exc:
            outcome = outcome or ("hangup", exc)
        try:
            await conn.wait_event("CHANNEL_HANGUP_COMPLETE", timeout=2, abort_on_hangup=False)
        except Exception:
            pass
        results[spec["number"]] = (outcome, msgs, hs.channel.unique_id)
        done[spec["number"]].set_result(None)

    server = await serve_outbound(handler)
    port = await emu.start_inbound()
    client = await InboundClient("127.0.0.1", port, events=["CHANNEL_HANGUP"],
                                 custom=[MAINT]).connect()
    inbound = client.subscribe(subclass=MAINT)
    calls = {}
    t0 = loop.time()
    for spec in specs:
        await asyncio.sleep(max(0.0, t0 + spec["start"] - loop.time()))
        calls[spec["number"]] = await emu.place_call("127.0.0.1", server.port,
                                                     caller_number=spec["number"])
    extra = await driver(client, calls)
    await asyncio.wait_for(asyncio.gather(*done.values()), 60)
    seen = [e for e in iter(inbound.get_nowait, None)]
    await client.close()
    await server.close(grace=1)
    return results, seen, extra


SPECS_L = [
    {"number": "13900000001", "arg": "expert1@default+flags{moderator|endconf}", "start": 0},
    {"number": "13900000002", "arg": "expert1@default+flags{mute}", "start": 1},
    {"number": "13900000003", "arg": "expert1@default", "start": 2},
]
