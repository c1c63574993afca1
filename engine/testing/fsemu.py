"""A FreeSWITCH Event Socket peer for tests and benchmarks, over real TCP.

`FreeSwitchEmulator` plays FreeSWITCH's side of both ESL directions:

* outbound: `await emu.place_call(host, port, caller=CallerScript(...))` dials an outbound ESL
  server like the dialplan `socket host:port async full` does, answers `connect` with a
  CHANNEL_DATA block laid out like the captures, runs the sendmsg applications (fsapps.APPS)
  and emits the events in the captured order and framing;
* inbound: `await emu.start_inbound()` listens (port 0) with `auth/request`, the password
  (ClueCon by default), `api`/`bgapi` (originate, uuid_*, sched_*, conference) and events.

Timing uses the event loop clock: run it under `VirtualTimeLoop` for instant deterministic
tests, under a normal loop for real time. `frame_ms=20` models FreeSWITCH's media clock
(applications start, digits are read and hangups unwind on 20 ms frame boundaries).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.channel.esl.parser import Message

from . import fswire
from .caller import CallerScript
from .fschannel import AppRequest, EmuChannel
from .fsconf import Conferences
from .fssession import MYEVENTS, EmuSession
from .fswire import Header, Host

log = logging.getLogger("ivrflow.fsemu")

__all__ = ["FreeSwitchEmulator", "EmuCall", "EmuSession", "Agent", "MYEVENTS",
           "NOTICE_POSITIONS"]

NOTICE_POSITIONS = ("before_hangup", "after_hangup", "after_hangup_complete")

_APP_TARGET = re.compile(r"^\s*(?:\{(?P<vars>[^}]*)\})?(?P<dial>\S+)\s+&(?P<app>[A-Za-z_]+)"
                         r"(?:\((?P<arg>.*)\))?\s*$")

SHOW_CHANNELS = (
    "uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num",
    "ip_addr", "dest", "application", "application_data", "dialplan", "context", "read_codec",
    "read_rate", "read_bit_rate", "write_codec", "write_rate", "write_bit_rate", "secure",
    "hostname", "presence_id", "presence_data", "accountcode", "callstate", "callee_name",
    "callee_num", "callee_direction", "call_uuid", "sent_callee_name", "sent_callee_num",
    "initial_cid_name", "initial_cid_num", "initial_ip_addr", "initial_dest",
    "initial_dialplan", "initial_context")


def _created(chan: EmuChannel) -> tuple[str, str]:
    secs = chan.created_us // 1_000_000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)), str(secs)


def _channel_row(chan: EmuChannel) -> list[str]:
    """A `show channels` line (d_inbound.log, the loopback B leg running `conference`)."""
    created, epoch = _created(chan)
    outbound = chan.direction == "outbound"
    return [chan.uuid, chan.direction, created, epoch, chan.name, chan.state,
            "Outbound Call" if outbound else chan.caller_name,
            "default" if outbound else chan.caller_number, "", chan.destination,
            chan.var("current_application") or "", chan.var("current_application_data") or "",
            "xml", chan.context, "L16", "8000", "128000", "L16", "8000", "128000", "",
            chan.emu.host.hostname, "", "", "", chan.call_state,
            "" if outbound else "Outbound Call", chan.caller_number if outbound else "default",
            "RECV" if outbound else "", chan.uuid if outbound else "", "", "", "",
            chan.caller_number, "", chan.destination, "xml", chan.context]


def _a_leg_row(b_leg: EmuChannel, a_uuid: str) -> list[str]:
    """The loopback A leg of an originated call (`loopback/<ext>-a`, parked once answered),
    which the emulator does not run as a channel of its own (d_inbound.log)."""
    created, epoch = _created(b_leg)
    answered = b_leg.answer_state == "answered"
    ext = b_leg.name.split("/", 1)[-1].rsplit("-", 1)[0]     # loopback/<ext>-b
    return [a_uuid, "outbound", created, epoch, f"loopback/{ext}-a", "CS_EXECUTE",
            "Outbound Call", "default", "", ext, "park" if answered else "", "", "xml",
            b_leg.context, "L16", "8000", "128000", "L16", "8000", "128000", "",
            b_leg.emu.host.hostname, "", "", "", b_leg.call_state, "", b_leg.caller_number,
            "RECV", a_uuid, "", "", "", b_leg.caller_number, "", ext, "xml", b_leg.context]


_DIALSTATUS = {"NO_ANSWER": "NOANSWER", "USER_BUSY": "BUSY", "CALL_REJECTED": "BUSY",
               "NO_USER_RESPONSE": "NOANSWER", "ORIGINATOR_CANCEL": "CANCEL"}


@dataclass
class Agent:
    """Behaviour of a `bridge` target: answer after `answer_delay` s, hang up after `talk` s
    (None: until killed), or fail with `fail_cause` (e.g. NO_ANSWER)."""

    answer_delay: float = 0.02
    talk: float | None = None
    fail_cause: str | None = None
    destination: str = "5001"


class EmuCall:
    """Handle on one emulated call (the channel controlled by an outbound socket)."""

    def __init__(self, emu: "FreeSwitchEmulator", channel: EmuChannel, session: EmuSession,
                 a_uuid: str) -> None:
        self.emu = emu
        self.channel = channel
        self.session = session
        self.a_uuid = a_uuid

    @property
    def uuid(self) -> str:
        return self.channel.uuid

    def press(self, digits: str) -> None:
        self.channel.push_dtmf(digits)

    def speak(self, seconds: float) -> None:
        self.channel.add_audio(seconds)

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        self.channel.hangup(cause)

    async def wait_hangup(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(asyncio.shield(self.channel.hangup_done), timeout)

    async def wait_closed(self, timeout: float = 60.0) -> None:
        await asyncio.wait_for(asyncio.shield(self.session.closed), timeout)

    def sent_messages(self) -> list[Message]:
        return self.session.sent_messages()

    def events(self, name: str | None = None) -> list:
        return [m.event for m in self.sent_messages()
                if m.event is not None and (name is None or m.event.name == name)]


class FreeSwitchEmulator:
    """The emulated switch. Create it inside a running event loop."""

    def __init__(self, *, password: str = "ClueCon", frame_ms: int = 0,
                 notice_position: str = "after_hangup_complete",
                 start_epoch: float = 1795434466.277116, hostname: str = "vm",
                 write_recordings: bool = True, media: dict[str, float] | None = None,
                 dialplan: dict[str, Sequence[tuple[str, str]]] | None = None,
                 agents: dict[str, Agent] | None = None,
                 speak_ms: "Callable[[str], float] | None" = None, keep_wire: bool = True,
                 coalesce_writes: bool = False) -> None:
        if notice_position not in NOTICE_POSITIONS:
            raise ValueError(f"notice_position must be one of {NOTICE_POSITIONS}")
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        self.start_epoch = start_epoch
        self.password = password
        self.frame_ms = frame_ms
        self.notice_position = notice_position
        self.write_recordings = write_recordings
        self.host = Host(str(uuidlib.uuid4()), hostname)
        self.media: dict[str, float] = dict(media or {})
        self.dialplan: dict[str, list[tuple[str, str]]] = {
            "5001": [("answer", ""), ("playback", "tone_stream://%(500,500,440);loops=-1")]}
        self.dialplan.update({k: list(v) for k, v in (dialplan or {}).items()})
        self.agents: dict[str, Agent] = dict(agents or {})
        self.speak_ms = speak_ms          # text -> ms of `speak` (default: 80 + 66 per char)
        self.keep_wire = keep_wire        # keep every byte of each session (tests); off for load
        self.coalesce_writes = coalesce_writes   # one send per loop iteration and session (load)
        # benchmarks: probe(what, session | channel, application) for each sendmsg received
        # ("command") and each channel event fired (its Event-Name)
        self.probe: "Callable[[str, Any, str], None] | None" = None
        self.channels: dict[str, EmuChannel] = {}
        self.aliases: dict[str, str] = {}          # loopback A-leg uuid -> controlled B-leg
        self.sessions: set[EmuSession] = set()
        self._open_sessions: set[EmuSession] = set()       # not filtered by myevents
        self._by_uuid: dict[str, set[EmuSession]] = {}     # myevents uuid -> sessions
        self.calls: list[EmuCall] = []
        self.conferences = Conferences(self)
        self.sched_id = 0
        self.session_counter = 0
        # channel uuid -> future of `bgapi originate`: None once answered, else the cause
        self._answer_waiters: dict[str, asyncio.Future[str | None]] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------ clock and events

    def epoch_us(self) -> int:
        return int(round((self.start_epoch + (self.loop.time() - self.t0)) * 1e6))

    def fire(self, headers: list[Header], body: str | None) -> None:
        name = subclass = uid = None
        for n, v in headers:
            if n == "Event-Name" and name is None:
                name = v
            elif n == "Event-Subclass" and subclass is None:
                subclass = v
            elif n == "Unique-ID" and uid is None:
                uid = v
        self.fire_text(name, subclass, uid, None, body, headers)

    def spawn(self, coro) -> asyncio.Task:
        """Run `coro` as a task the emulator keeps (and cancels on close)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _answered(self, name: str, uid: str) -> None:
        waiter = self._answer_waiters.pop(uid, None)
        if waiter is not None and not waiter.done():
            chan = self.channels.get(uid)
            waiter.set_result(None if name == "CHANNEL_ANSWER" else
                              (chan.hangup_cause if chan is not None else None)
                              or "NORMAL_CLEARING")

    def fire_text(self, name: str | None, subclass: str | None, uid: str | None, text: str | None,
                  body: str | None, headers: "list[Header] | Callable[[], list[Header]]") -> None:
        """Send an event to the sessions that want it; `text` is its serialized header block
        when already known (plain sessions), `headers` the list (or a function making it)."""
        if self._answer_waiters and uid is not None and \
                name in ("CHANNEL_ANSWER", "CHANNEL_HANGUP"):
            self._answered(name, uid)
        frames: dict[str, bytes] = {}
        # sessions locked on a channel (myevents) only ever get that channel's events
        targets = self._open_sessions
        if uid is not None and uid in self._by_uuid:
            targets = targets | self._by_uuid[uid]
        for session in list(targets):
            if session.wants(name or "", subclass, uid):
                fmt = session.fmt
                if fmt not in frames:
                    if callable(headers):
                        headers = headers()
                    if fmt == "json":
                        frames[fmt] = fswire.event_json(headers, body)
                    elif text is not None:
                        frames[fmt] = fswire.event_plain_text(text, body)
                    else:
                        frames[fmt] = fswire.event_plain(headers, body)
                session.write(frames[fmt])

    def session_filter(self, session: EmuSession, old_uuid: str | None, new_uuid: str | None,
                       open_: bool) -> None:
        """Keep the event routing index in step with a session (myevents, connect, close)."""
        if old_uuid is not None:
            group = self._by_uuid.get(old_uuid)
            if group is not None:
                group.discard(session)
                if not group:
                    del self._by_uuid[old_uuid]
        self._open_sessions.discard(session)
        if not open_:
            return
        if new_uuid is not None:
            self._by_uuid.setdefault(new_uuid, set()).add(session)
        else:
            self._open_sessions.add(session)

    def channel_data(self, chan: EmuChannel) -> bytes:
        """The reply to `connect`: one URL-encoded header block, no body (1.log)."""
        headers = self.host.core("CHANNEL_DATA", self.epoch_us())
        headers += chan.profile("Channel") + chan.channel_block(caller=False)
        headers += chan.profile("Caller") + chan.var_headers()
        headers += [("Content-Type", "command/reply"), ("Reply-Text", "+OK\n"),
                    ("Socket-Mode", "async"), ("Control", "full")]
        return (fswire.header_block(headers) + "\n").encode("utf-8")

    # ------------------------------------------------------------ channels

    def find_channel(self, uuid: str) -> EmuChannel | None:
        uuid = uuid.strip()
        return self.channels.get(self.aliases.get(uuid, uuid))

    def channel_gone(self, chan: EmuChannel) -> None:
        self.loop.call_later(1.0, lambda: self.channels.pop(chan.uuid, None))

    async def place_call(self, host: str, port: int, *, caller: CallerScript | None = None,
                         caller_number: str = "13800000001", caller_name: str = "",
                         destination: str = "5000", uuid: str | None = None,
                         a_uuid: str | None = None, variables: dict[str, str] | None = None,
                         notice_position: str | None = None, dtmf_source: str = "UNKNOWN",
                         socket_arg: str | None = None, timeout: float = 5.0) -> EmuCall:
        """Dial an outbound ESL server like `socket host:port async full` and run the call."""
        uuid = uuid or str(uuidlib.uuid4())
        a_uuid = a_uuid or str(uuidlib.uuid4())
        socket_arg = socket_arg or f"{host}:{port} async full"
        self.session_counter += 1
        name = f"loopback/{destination}-b"
        chan_vars = {
            "direction": "inbound", "uuid": uuid, "session_id": str(self.session_counter),
            "channel_name": name, "read_codec": "L16", "read_rate": "8000",
            "write_codec": "L16", "write_rate": "8000", "origination_uuid": a_uuid,
            "origination_caller_id_number": caller_number, "other_loopback_leg_uuid": a_uuid,
            "loopback_leg": "B", "call_uuid": uuid,
            **(variables or {}),
            "current_application_data": socket_arg, "current_application": "socket",
            "socket_host": host,
        }
        chan = EmuChannel(self, uuid=uuid, name=name, caller_number=caller_number,
                          caller_name=caller_name, destination=destination,
                          variables=chan_vars, dtmf_source=dtmf_source,
                          notice_position=notice_position)
        self.channels[uuid] = chan
        self.aliases[a_uuid] = uuid
        try:
            _, session = await asyncio.wait_for(self.loop.create_connection(
                lambda: EmuSession(self, "outbound", chan), host, port), timeout)
        except (OSError, asyncio.TimeoutError):
            self.channels.pop(uuid, None)
            raise
        chan.socket = session
        chan.caller = caller
        if caller is not None:
            caller.attach(chan)
        chan._task = self.spawn(chan.socket_session(socket_arg))
        call = EmuCall(self, chan, session, a_uuid)
        self.calls.append(call)
        return call

    def broadcast(self, chan: EmuChannel, path: str) -> None:
        """uuid_broadcast / sched_broadcast: a playback with FreeSWITCH's own Application-UUID,
        run nested in the running application if that one parses the queue and holds no
        event-lock (o.log); the broadcast itself carries event-lock (switch_ivr_broadcast)."""
        chan.enqueue(AppRequest("playback", path, None, True, 1, "broadcast"), front=True)

    # ------------------------------------------------------------ inbound ESL

    async def start_inbound(self, host: str = "127.0.0.1", port: int = 0) -> int:
        server = await self.loop.create_server(lambda: EmuSession(self, "inbound"), host, port)
        self._servers.append(server)
        return server.sockets[0].getsockname()[1]

    def run_job(self, job_uuid: str, command: str) -> None:
        cmd, _, arg = command.partition(" ")
        app_call = _APP_TARGET.match(arg) if cmd == "originate" else None
        if app_call is not None and not self._loopback_plan(app_call.group("dial")):
            # originate ... &app(arg): the job reports once the far end answered (or failed)
            self.spawn(self._originate_app(job_uuid, arg, app_call))
            return
        if cmd == "originate":
            self.spawn(self._originate_job(job_uuid, command, arg))
            return
        body = self.api(command, None)
        self._job_done(job_uuid, command, body)

    async def _originate_job(self, job_uuid: str, command: str, arg: str) -> None:
        """`bgapi originate ... loopback/<ext>`: originate returns when the A leg is answered,
        which a loopback A leg is when the B leg answers; a_inbound.log: B's `answer`
        completes (19.97 ms), the BACKGROUND_JOB `+OK <A-leg uuid>` comes on the next frame
        (39.99 ms), with A's own first application. B gone first: `-ERR <cause>`."""
        waiter: asyncio.Future[str | None] = self.loop.create_future()
        body = self._api_originate(arg.split(), arg, waiter=waiter)
        if body.startswith("+OK"):
            m = re.search(r"originate_timeout=(\d+)", arg)
            timeout = int(m.group(1)) if m else 60
            try:
                cause = await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except asyncio.TimeoutError:
                cause = "NO_ANSWER"
                uid = next((u for u, w in self._answer_waiters.items() if w is waiter), None)
                self._answer_waiters.pop(uid or "", None)
                chan = self.channels.get(uid or "")
                if chan is not None and not chan.hungup:
                    chan.hangup("ORIGINATOR_CANCEL")
            if cause is None:
                chan = self.find_channel(body[3:].strip())
                if chan is not None:
                    await chan.tick()
            else:
                body = f"-ERR {cause}\n"
        self._job_done(job_uuid, command, body)

    def _job_done(self, job_uuid: str, command: str, body: str) -> None:
        cmd, _, arg = command.partition(" ")
        headers = self.host.core("BACKGROUND_JOB", self.epoch_us())
        headers += [("Job-UUID", job_uuid), ("Job-Command", cmd), ("Job-Command-Arg", arg)]
        self.fire(headers, body)

    def _loopback_plan(self, dial: str) -> bool:
        parts = dial.split("/")
        return dial not in self.agents and len(parts) > 1 and parts[0] == "loopback" \
            and parts[1] in self.dialplan

    async def _originate_app(self, job_uuid: str, raw: str, m: "re.Match[str]") -> None:
        """`bgapi originate {vars}<dial> &app(arg)` to a phone (an `agents` entry; anything
        else fails NO_ROUTE_DESTINATION): ring `answer_delay`, then run `app arg` on the
        answered channel, which hangs up after the agent's `talk` time (or when killed).
        A loopback extension of the dialplan keeps the B-leg model of `_api_originate`."""
        variables = dict(kv.split("=", 1) for kv in (m.group("vars") or "").split(",")
                         if "=" in kv)
        dial, app, arg = m.group("dial"), m.group("app"), m.group("arg") or ""
        agent = self.agents.get(dial) or Agent(fail_cause="NO_ROUTE_DESTINATION")
        uuid = variables.get("origination_uuid") or str(uuidlib.uuid4())
        number = variables.get("origination_caller_id_number", "0000000000")
        command = "originate " + raw
        await asyncio.sleep(agent.answer_delay)
        if agent.fail_cause:
            self._job_done(job_uuid, command, f"-ERR {agent.fail_cause}\n")
            return
        chan = EmuChannel(self, uuid=uuid, name=dial, caller_number=number,
                          destination=agent.destination, direction="outbound",
                          variables={k: v for k, v in variables.items()})
        self.channels[uuid] = chan
        chan._task = asyncio.current_task()
        chan.answer()
        self._job_done(job_uuid, command, f"+OK {uuid}\n")
        if agent.talk is not None:
            chan.schedule(agent.talk, lambda: chan.hangup("NORMAL_CLEARING"))
        try:
            await chan.run_app(AppRequest(app, arg, origin="dialplan"))
            if not chan.hungup:
                chan.hangup("NORMAL_CLEARING")
        finally:
            await chan._teardown(socket_app=False)

    def api(self, command: str, session: EmuSession | None) -> str:
        """`api` commands; returns the api/response body."""
        parts = command.split()
        if not parts:
            return "-ERR no command\n"
        cmd, args = parts[0], parts[1:]
        handler = getattr(self, f"_api_{cmd}", None)
        if handler is None:
            return f"-ERR {cmd} Command not found!\n"
        return handler(args, command.partition(" ")[2])

    def _chan_or_err(self, args: list[str]) -> EmuChannel | str:
        chan = self.find_channel(args[0]) if args else None
        if chan is None or chan.hungup:
            return "-ERR No such channel!\n"
        return chan

    def _api_uuid_send_dtmf(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args)
        if isinstance(chan, str) or len(args) < 2:
            return chan if isinstance(chan, str) else "-USAGE: <uuid> <dtmf_data>\n"
        chan.push_dtmf(args[1].split("@")[0])
        return f"+OK {args[0]} sent DTMF {args[1]}.\n"

    def _api_uuid_kill(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args)
        if isinstance(chan, str):
            return chan
        chan.hangup(args[1] if len(args) > 1 else "NORMAL_CLEARING")
        return "+OK\n"

    def _api_uuid_break(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args)
        if isinstance(chan, str):
            return chan
        chan.request_break(flush=len(args) > 1 and args[1] == "all")
        return "+OK\n"

    def _api_uuid_getvar(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args)
        if isinstance(chan, str):
            return chan
        return chan.var(args[1], "_undef_") if len(args) > 1 else "-USAGE: <uuid> <var>\n"

    def _api_uuid_setvar(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args)
        if isinstance(chan, str):
            return chan
        if len(args) < 2:
            return "-USAGE: <uuid> <var> [value]\n"
        chan.set_var(args[1], " ".join(args[2:]) or None)
        return "+OK\n"

    def _api_uuid_broadcast(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args)
        if isinstance(chan, str) or len(args) < 2:
            return chan if isinstance(chan, str) else "-USAGE\n"
        if args[0] in self.aliases:          # played on the caller leg: heard by B as audio
            from .fsapps import media_ms
            ms = media_ms(self, args[1]) or 0.0
            chan.add_audio(ms / 1000.0)
        else:
            self.broadcast(chan, args[1])
        return "+OK Message sent\n"

    def _api_sched_hangup(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args[1:])
        if isinstance(chan, str):
            return chan
        from .fsapps import sched_delay
        cause = args[2] if len(args) > 2 else "ALLOTTED_TIMEOUT"
        delay = sched_delay(self, args[0])
        chan.sched_task(delay, lambda: chan.hangup(cause))
        return "+OK\n"

    def _api_sched_broadcast(self, args: list[str], raw: str) -> str:
        chan = self._chan_or_err(args[1:])
        if isinstance(chan, str) or len(args) < 3:
            return chan if isinstance(chan, str) else "-USAGE\n"
        from .fsapps import sched_delay
        delay = sched_delay(self, args[0])
        chan.sched_task(delay, lambda: self.broadcast(chan, args[2]))
        return "+OK Message scheduled\n"

    def _api_sched_del(self, args: list[str], raw: str) -> str:
        """sched_del <task id | group>: the group of sched_hangup/sched_broadcast tasks is the
        channel's uuid (switch_ivr_schedule_hangup / _broadcast)."""
        if not args:
            return "-ERR Invalid syntax\n"
        count = 0
        if args[0].isdigit():
            for chan in self.channels.values():
                count += chan.sched_cancel(int(args[0]))
        else:
            chan = self.find_channel(args[0])
            if chan is not None:
                count = chan.sched_cancel()
        return f"+OK Deleted: {count}\n"

    def _api_conference(self, args: list[str], raw: str) -> str:
        return self.conferences.api(args)

    def _api_show(self, args: list[str], raw: str) -> str:
        """`show channels [count]` (d_inbound.log): a CSV table, one line per channel (the A
        leg of a loopback call, then its B leg), a blank line and `N total.`."""
        if not args or args[0] != "channels":
            return "-USAGE: show channels [count]\n"
        rows = []
        for chan in list(self.channels.values()):
            if chan.hangup_done.done():
                continue
            rows.append((chan.created_us, 1, _channel_row(chan)))
        for a_uuid, b_uuid in self.aliases.items():
            chan = self.channels.get(b_uuid)
            if chan is not None and not chan.hangup_done.done():
                rows.append((chan.created_us, 0, _a_leg_row(chan, a_uuid)))
        if args[1:2] == ["count"]:
            return f"\n{len(rows)} total.\n"
        rows.sort(key=lambda r: r[:2])
        if not rows:
            return "\n0 total.\n"
        return ",".join(SHOW_CHANNELS) + "\n" + "".join(",".join(r[2]) + "\n" for r in rows) \
            + f"\n{len(rows)} total.\n"

    def _api_version(self, args: list[str], raw: str) -> str:
        return "FreeSWITCH Version 1.10.12-release (ivrflow emulator)\n"

    def _api_status(self, args: list[str], raw: str) -> str:
        return (f"UP 0 years, 0 days\nFreeSWITCH (Version 1.10.12) is ready\n"
                f"{len(self.channels)} session(s)\n")

    def _api_originate(self, args: list[str], raw: str,
                       waiter: "asyncio.Future[str | None] | None" = None) -> str:
        """originate {vars}loopback/<ext>/<context> <app or ext>: the B leg runs
        `dialplan[ext]`; a `socket` entry dials that outbound server. `waiter` (bgapi) gets
        None when the controlled channel answers, or the hangup cause if it goes first.
        (The `api` form replies at once: it does not wait for the answer.)"""
        m = re.match(r"^\s*(?:\{(?P<vars>[^}]*)\})?(?P<dial>\S+)\s*(?P<target>.*)$", raw)
        if not m:
            return "-USAGE: <call url> <exten>\n"
        variables = dict(kv.split("=", 1) for kv in (m.group("vars") or "").split(",")
                         if "=" in kv)
        dial = m.group("dial").split("/")
        if len(dial) < 2 or dial[0] != "loopback":
            return "-ERR NO_ROUTE_DESTINATION\n"
        ext = dial[1]
        plan = self.dialplan.get(ext)
        if not plan:
            return "-ERR NO_ROUTE_DESTINATION\n"
        a_uuid = variables.get("origination_uuid") or str(uuidlib.uuid4())
        number = variables.get("origination_caller_id_number", "0000000000")
        app, arg = plan[0]
        if app == "socket":
            host, _, port = arg.split()[0].partition(":")
            b_uuid = str(uuidlib.uuid4())
            task = self.spawn(self.place_call(
                host, int(port or 8084), caller_number=number, destination=ext,
                uuid=b_uuid, a_uuid=a_uuid, socket_arg=arg))
            if waiter is not None:
                self._answer_waiters[b_uuid] = waiter

                def dialled(t: asyncio.Task) -> None:
                    # the socket application could not connect: the B leg's dialplan ends
                    # and it hangs up unanswered (inferred; no capture)
                    if not t.cancelled() and t.exception() is not None:
                        self._answer_waiters.pop(b_uuid, None)
                        if not waiter.done():
                            waiter.set_result("NORMAL_CLEARING")
                task.add_done_callback(dialled)
        else:
            # no socket: the originated channel itself (origination_uuid) runs the dialplan
            chan = EmuChannel(self, uuid=a_uuid, name=f"loopback/{ext}-a",
                              caller_number=number, destination=ext)
            self.channels[chan.uuid] = chan
            if waiter is not None:
                self._answer_waiters[a_uuid] = waiter

            async def run() -> None:
                chan._task = asyncio.current_task()
                for a, g in plan:
                    if chan.hungup:
                        break
                    await chan.run_app(AppRequest(a, g, origin="dialplan"))
                if not chan.hungup:
                    chan.hangup("NORMAL_CLEARING")
                await chan._teardown(socket_app=False)
            self.spawn(run())
        return f"+OK {a_uuid}\n"

    # ------------------------------------------------------------ bridge

    async def run_bridge(self, ctx: Any, dialstring: str) -> str:
        chan: EmuChannel = ctx.chan
        dest = dialstring.split("/")[1] if dialstring.count("/") >= 1 else dialstring
        agent = self.agents.get(dialstring) or (
            Agent(destination=dest) if dest in self.dialplan else
            Agent(fail_cause="NO_ROUTE_DESTINATION"))
        if agent.fail_cause:
            await ctx.media(agent.answer_delay * 1000)
            cause = agent.fail_cause
            ctx.set_var("originate_disposition", cause)
            ctx.set_var("DIALSTATUS", _DIALSTATUS.get(cause, "CHANUNAVAIL"))
            ctx.set_var("originate_failed_cause", cause)
            return "_none_"
        other = EmuChannel(self, uuid=str(uuidlib.uuid4()),
                           name=f"loopback/{agent.destination}-a",
                           caller_number=chan.caller_number, destination=agent.destination,
                           direction="outbound")
        self.channels[other.uuid] = other
        if await ctx.media(agent.answer_delay * 1000) == "hangup":
            other.hangup(chan.hangup_cause or "ORIGINATOR_CANCEL")
            return "_none_"
        other.answer()
        chan.other_leg, other.other_leg = other, chan
        ctx.set_var("originate_disposition", "SUCCESS")
        ctx.set_var("DIALSTATUS", "SUCCESS")
        bridge_ids = [("Bridge-A-Unique-ID", chan.uuid), ("Bridge-B-Unique-ID", other.uuid)]
        chan.fire("CHANNEL_BRIDGE", prefix=bridge_ids)
        if agent.talk is not None:
            other.schedule(agent.talk, lambda: other.hangup("NORMAL_CLEARING"))
        await ctx.media(None, until=lambda: other.hungup)
        if chan.hungup:
            other.hangup(chan.hangup_cause or "NORMAL_CLEARING")
        cause = other.hangup_cause or "NORMAL_CLEARING"
        # k.log: the bridge's variables are set before CHANNEL_UNBRIDGE fires, which already
        # carries them (last_bridge_hangup_cause, then bridge_hangup_cause, last)
        ctx.set_var("last_bridge_to", other.uuid)
        ctx.set_var("bridge_channel", other.name)
        ctx.set_var("bridge_uuid", other.uuid)
        ctx.set_var("last_bridge_hangup_cause", cause)
        ctx.set_var("bridge_hangup_cause", cause)
        chan.fire("CHANNEL_UNBRIDGE", prefix=bridge_ids)
        if not chan.hungup and ctx.true("hangup_after_bridge"):
            chan.hangup("NORMAL_CLEARING")
        return "_none_"

    # ------------------------------------------------------------ shutdown

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for session in list(self.sessions):
            session.close()
        for task in list(self._tasks):
            task.cancel()
        for chan in list(self.channels.values()):
            if chan._task is not None and not chan._task.done():
                chan._task.cancel()
        await asyncio.sleep(0)

    async def __aenter__(self) -> "FreeSwitchEmulator":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
