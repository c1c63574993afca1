"""One ESL connection on the emulated FreeSWITCH side: reads client commands (mod_event_socket's
command set), filters and writes events, sends the disconnect notices of `linger`."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid as uuidlib
from typing import TYPE_CHECKING

from engine.channel.esl.parser import Message, Parser

from . import fswire
from .fschannel import AppRequest, EmuChannel

if TYPE_CHECKING:  # pragma: no cover
    from .fsemu import FreeSwitchEmulator

__all__ = ["EmuSession", "MYEVENTS"]

log = logging.getLogger("ivrflow.fsemu")

# Events enabled by `myevents` (mod_event_socket); RECORD_* and CUSTOM are not among them.
MYEVENTS = frozenset({
    "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
    "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING",
    "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE",
    "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF", "TALK", "NOTALK"})

_FRAME_END = re.compile(rb"\n\r?\n")

def _split_frames(buf: bytearray) -> list[tuple[str, list[tuple[str, str]], bytes | None]]:
    """Client -> FreeSWITCH frames: command line, `Name: value` lines, blank line, body."""
    out = []
    while True:
        while buf[:1] in (b"\n", b"\r"):
            del buf[:1]
        m = _FRAME_END.search(buf)
        if not m:
            return out
        lines = bytes(buf[:m.start()]).decode("utf-8", errors="replace").split("\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.rstrip("\r").partition(":")
            headers.append((name.strip(), value.strip()))
        length = next((int(v) for n, v in headers if n.lower() == "content-length"
                       and v.isdigit()), None)
        if length is not None and len(buf) < m.end() + length:
            return out
        body = bytes(buf[m.end():m.end() + length]) if length is not None else None
        del buf[:m.end() + (length or 0)]
        out.append((lines[0].rstrip("\r").strip(), headers, body))


class EmuSession(asyncio.Protocol):
    """One ESL connection on the FreeSWITCH side (outbound socket or inbound client)."""

    def __init__(self, emu: "FreeSwitchEmulator", mode: str,
                 channel: EmuChannel | None = None) -> None:
        self.emu = emu
        self.mode = mode                       # "outbound" | "inbound"
        self.channel = channel
        self.authed = mode == "outbound"
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.events: set[str] = set()
        self.custom: set[str] = set()
        self.all_events = False
        self.fmt = "plain"
        self.myevents_uuid: str | None = None
        self.linger: int | None = None        # None: no linger; -1: bare linger; N seconds
        self.notice_sent = False
        self.sent: list[bytes] = []
        self.received: list[bytes] = []
        self.commands: list[str] = []
        self.closed: asyncio.Future[None] = emu.loop.create_future()
        self._pending: list[bytes] = []

    # ------------------------------------------------------------ transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.emu.sessions.add(self)
        self.emu.session_filter(self, None, self.myevents_uuid, True)
        if self.mode == "inbound":
            self.write(fswire.auth_request())

    def connection_lost(self, exc: Exception | None) -> None:
        self.emu.sessions.discard(self)
        self.emu.session_filter(self, self.myevents_uuid, None, False)
        if not self.closed.done():
            self.closed.set_result(None)
        chan = self.channel
        if chan is not None and chan.socket is self and not chan.hungup and \
                chan.socket_app is not None:
            chan.hangup("NORMAL_CLEARING")    # socket gone: the dialplan has nothing left

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.emu.keep_wire:
                self.sent.append(data)
            if not self.emu.coalesce_writes:
                self.transport.write(data)
                return
            # load generation: what one loop iteration writes goes out in one send
            if not self._pending:
                self.emu.loop.call_soon(self._flush)
            self._pending.append(data)

    def _flush(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self._pending:
            self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def sent_messages(self) -> list[Message]:
        """Everything this session sent, parsed back with the client-side parser."""
        return Parser().feed(b"".join(self.sent))

    # ------------------------------------------------------------ events

    def wants(self, name: str, subclass: str | None, uid: str | None) -> bool:
        if self.transport is None or self.transport.is_closing() or not self.authed:
            return False
        if self.myevents_uuid is not None and uid != self.myevents_uuid:
            return False
        if self.all_events:
            return True
        if name == "CUSTOM":
            return subclass in self.custom
        return name in self.events

    def hangup_notice(self) -> None:
        """What mod_event_socket sends when the controlled channel goes down."""
        chan = self.channel
        if self.notice_sent or chan is None:
            return
        self.notice_sent = True
        if self.linger is None:
            self.write(fswire.disconnect_goodbye(chan.uuid))
            self.close()
            return
        self.write(fswire.disconnect_linger(chan.uuid, chan.name, self.linger))
        if self.linger >= 0:
            def goodbye() -> None:
                self.write(fswire.disconnect_goodbye(chan.uuid))
                self.close()
            # mod_event_socket: linger_timeout = epoch seconds now + N, and it closes once
            # the whole epoch seconds exceed it, i.e. at the start of second floor(now)+N+1
            # (11.log: `linger 2`, notice at ...689.697 -> goodbye at ...692.00, 2.306 s)
            now_us = self.emu.epoch_us()
            due_us = (now_us // 1_000_000 + self.linger + 1) * 1_000_000
            self.emu.loop.call_later((due_us - now_us) / 1e6, goodbye)

    # ------------------------------------------------------------ commands

    def data_received(self, data: bytes) -> None:
        if self.emu.keep_wire:
            self.received.append(data)
        self.buf += data
        for command, headers, body in _split_frames(self.buf):
            self.commands.append(command)
            try:
                self.handle(command, headers, body)
            except Exception:
                log.exception("emulator failed on %r", command)
                self.write(fswire.command_reply("-ERR emulator error"))

    def handle(self, command: str, headers: list[tuple[str, str]], body: bytes | None) -> None:
        verb, _, rest = command.partition(" ")
        verb = verb.lower()
        reply = fswire.command_reply
        if not self.authed:
            if verb == "auth":
                if rest.strip() == self.emu.password:
                    self.authed = True
                    self.write(reply("+OK accepted"))
                else:
                    self.write(reply("-ERR invalid"))
                    self.close()
            elif verb == "exit":
                self._exit()
            else:
                self.write(reply("-ERR invalid"))
            return
        if verb == "connect" and self.mode == "outbound" and self.channel is not None:
            self.write(self.emu.channel_data(self.channel))
        elif verb == "myevents":
            parts = rest.split()
            uid = parts[0] if parts and parts[0] not in ("plain", "json", "xml") else None
            old = self.myevents_uuid
            self.myevents_uuid = uid or (self.channel.uuid if self.channel else None)
            self.emu.session_filter(self, old, self.myevents_uuid, True)
            if self.myevents_uuid is None:
                self.write(reply("-ERR must specify uuid"))
                return
            self.events |= MYEVENTS
            if parts and parts[-1] in ("plain", "json"):
                self.fmt = parts[-1]
            self.write(reply("+OK Events Enabled"))
        elif verb == "event":
            self._event_command(rest)
        elif verb == "nixevent":
            for name in rest.split():
                self.events.discard(name)
                self.custom.discard(name)
            self.write(reply("+OK events nixed"))
        elif verb == "noevents":
            self.events.clear()
            self.custom.clear()
            self.all_events = False
            self.write(reply("+OK no longer listening for events"))
        elif verb == "linger":
            if rest.strip().lstrip("-").isdigit():
                self.linger = int(rest.strip())
                self.write(reply(f"+OK will linger {self.linger} seconds"))
            else:
                self.linger = -1
                self.write(reply("+OK will linger"))
        elif verb == "nolinger":
            self.linger = None
            self.write(reply("+OK will not linger"))
        elif verb == "sendmsg":
            self._sendmsg(rest.strip(), headers, body)
        elif verb == "api":
            self.write(fswire.api_response(self.emu.api(rest, self)))
        elif verb == "bgapi":
            job = next((v for n, v in headers if n.lower() == "job-uuid"), None) \
                or str(uuidlib.uuid4())
            self.write(reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
            self.emu.loop.call_soon(self.emu.run_job, job, rest)
        elif verb == "filter":
            self.write(reply(f"+OK filter added. [{rest}]"))
        elif verb in ("resume", "divert_events", "log", "nolog"):
            self.write(reply("+OK"))
        elif verb == "exit":
            self._exit()
        else:
            self.write(reply("-ERR command not found"))

    def _exit(self) -> None:
        self.write(fswire.command_reply("+OK bye"))
        self.write(fswire.disconnect_goodbye())
        self.close()

    def _event_command(self, rest: str) -> None:
        parts = rest.split()
        if parts and parts[0] in ("plain", "json", "xml"):
            self.fmt = parts.pop(0)
        custom = False
        for name in parts:
            if name == "ALL":
                self.all_events = True
            elif name == "CUSTOM":
                custom = True
            elif custom:
                self.custom.add(name)
            else:
                self.events.add(name)
        self.write(fswire.command_reply(f"+OK event listener enabled {self.fmt}"))

    def _sendmsg(self, target: str, headers: list[tuple[str, str]], body: bytes | None) -> None:
        h = {n.lower(): v for n, v in headers}
        if self.emu.probe is not None:
            self.emu.probe("command", self, h.get("execute-app-name") or h.get("call-command", ""))
        chan = self.emu.find_channel(target) if target else self.channel
        if chan is None:
            self.write(fswire.command_reply(f"-ERR invalid session id [{target}]"))
            return
        self.write(fswire.command_reply("+OK"))
        cmd = h.get("call-command", "")
        if cmd == "execute":
            arg = h.get("execute-app-arg")
            if arg is None and body is not None and h.get("content-type") == "text/plain":
                arg = body.decode("utf-8", errors="replace")
            loops = int(h["loops"]) if h.get("loops", "").lstrip("-").isdigit() else 1
            chan.enqueue(AppRequest(h.get("execute-app-name", ""), arg or "",
                                    h.get("event-uuid"), h.get("event-lock", "").lower()
                                    in ("true", "1", "yes"), loops))
        elif cmd == "hangup":
            cause = h.get("hangup-cause") or "NORMAL_CLEARING"

            async def later() -> None:
                await chan.tick()
                # executed by the running app's event parsing: it ends "normally" (j.log)
                chan.hangup_in_app = bool(chan.stack and chan.stack[-1].parses_events)
                chan.hangup(cause)
            self.emu.loop.create_task(later())
