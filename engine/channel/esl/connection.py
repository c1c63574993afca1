"""Asyncio ESL transport shared by outbound sessions and the inbound client.

One `ESLConnection` per TCP connection; it is the asyncio Protocol itself, so frames are parsed
and dispatched inside `data_received` without a reader task, and nothing a caller awaits can
block the reading. Rules:

* Replies (`command/reply`, `api/response`) are matched to commands in FIFO order; a command
  whose reply timed out keeps its slot, so a late reply is discarded instead of shifting the
  others. Several commands may be written at once (`batch()`), replies come back in order.
* `execute()` sends `sendmsg` with its own `Event-UUID` and completes on the
  CHANNEL_EXECUTE_COMPLETE carrying the same `Application-UUID` (never by application name). It
  fails promptly with `ChannelHangup` on CHANNEL_HANGUP of the target channel or a disconnect
  notice, `ConnectionLost` when the socket drops, `ExecutionFlushed` after our own
  `uuid_break ... all`, and `ESLTimeout` at its deadline. Every wait has a finite timeout.
* Events go to one-shot waiters (`expect`), bounded queues (`subscribe`) and handlers (`on`);
  async handlers run as tasks, so a handler that waits for another event cannot stall the reader.
* After a disconnect notice the connection keeps reading (the last events may follow it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid as uuidlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

from .errors import ChannelHangup, CommandError, ConnectionLost, ESLError, ESLTimeout, ProtocolError
from .events import EventMatch, EventSubscription, make_match
from .execution import Execution, ExecutionFlushed, HangupInfo
from .futures import fail as _fail, resolve as _resolve
from .parser import (DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_HEADER_BYTES, Event, Message, Parser,
                     encode_command)

__all__ = ["ESLConnection", "Execution", "ExecutionFlushed", "EventSubscription", "HangupInfo",
           "EventMatch", "make_match"]

log = logging.getLogger("ivrflow.esl")

_HANGUP_MEMORY = 4096          # remembered hung-up channel UUIDs (inbound sees many channels)
_ORPHAN_JOBS = 256             # BACKGROUND_JOB results kept until their bgapi reply is read


class _Waiter:
    __slots__ = ("match", "future", "abort_uuid")

    def __init__(self, match: EventMatch, future: asyncio.Future, abort_uuid: str | None):
        self.match = match
        self.future = future
        self.abort_uuid = abort_uuid


class _Pending:
    """A reply slot: either a future (`send_nowait`) or a plain callback `(msg, exc)` called
    synchronously by the reader (executes: no future, no extra loop iteration)."""

    __slots__ = ("future", "command", "callback")

    def __init__(self, future: asyncio.Future | None, command: str,
                 callback: Callable[[Message | None, BaseException | None], None] | None = None
                 ) -> None:
        self.future = future
        self.command = command
        self.callback = callback


def _expire(fut: asyncio.Future, command: str, timeout: float) -> None:
    _fail(fut, ESLTimeout(f"no reply to {command!r} within {timeout} s"))


class _Batch:
    """`with conn.batch():` - a reusable context manager (no generator per use)."""

    __slots__ = ("conn",)

    def __init__(self, conn: "ESLConnection") -> None:
        self.conn = conn

    def __enter__(self) -> None:
        conn = self.conn
        if conn._batch_depth == 0:
            conn._batch = []
        conn._batch_depth += 1

    def __exit__(self, *exc: object) -> None:
        conn = self.conn
        conn._batch_depth -= 1
        if conn._batch_depth == 0:
            data, conn._batch = b"".join(conn._batch), None    # type: ignore[arg-type]
            if data:
                conn._raw_write(data)


class _HangupWait:
    """`hangup()`: the reply (within the command timeout), then the hangup (within the
    execute timeout), awaited as one future."""

    __slots__ = ("conn", "command", "target", "timeout", "fut", "timer", "replied", "info",
                 "remove")

    def __init__(self, conn: "ESLConnection", command: str, target: str,
                 timeout: float | None) -> None:
        self.conn = conn
        self.command = command
        self.target = target
        self.timeout = timeout
        self.fut: asyncio.Future[HangupInfo] = conn._loop.create_future()
        self.timer: asyncio.TimerHandle | None = None
        self.replied = False
        self.info: HangupInfo | None = None
        self.remove: Callable[[], None] | None = None

    def on_reply(self, msg: Message | None, exc: BaseException | None) -> None:
        fut = self.fut
        if fut.done():
            return                               # timed out or cancelled: drop the late reply
        if exc is None and not msg.ok():         # type: ignore[union-attr]
            exc = CommandError(f"{self.command}: "
                               f"{msg.reply_text or (msg.body or '').strip()}", msg)  # type: ignore
        if exc is not None:
            _fail(fut, exc)
            return
        self.replied = True
        if self.info is not None:
            fut.set_result(self.info)
            return
        conn = self.conn
        if self.timer is not None:
            self.timer.cancel()
        timeout = conn.execute_timeout if self.timeout is None else self.timeout
        self.timer = conn._loop.call_later(timeout, self.expire,
                                           f"channel did not hang up within {timeout} s")

    def on_hangup(self, info: HangupInfo | None, exc: BaseException | None) -> None:
        fut = self.fut
        if fut.done():
            return
        if exc is not None:
            _fail(fut, exc)
        elif self.replied:
            fut.set_result(info)                 # type: ignore[arg-type]
        else:
            self.info = info

    def expire(self, text: str) -> None:
        _fail(self.fut, ESLTimeout(text))

    async def run(self) -> HangupInfo:
        conn = self.conn
        timeout = conn.command_timeout if self.timeout is None else self.timeout
        self.timer = conn._loop.call_later(timeout, self.expire,
                                           f"no reply to {self.command!r} within {timeout} s")
        self.remove = conn.on_hangup(self.on_hangup, uuid=self.target)
        try:
            return await self.fut
        finally:
            if self.timer is not None:
                self.timer.cancel()
            self.remove()


class ESLConnection(asyncio.Protocol):
    """One ESL TCP connection (either direction). See the module docstring for the rules."""

    def __init__(self, *, command_timeout: float = 10.0, api_timeout: float = 30.0,
                 execute_timeout: float = 3600.0, close_after_disconnect: float | None = None,
                 max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, name: str = "esl") -> None:
        self._loop = asyncio.get_running_loop()   # construct inside the event loop
        self.name = name
        self.command_timeout = command_timeout
        self.api_timeout = api_timeout
        self.execute_timeout = execute_timeout
        self.close_after_disconnect = close_after_disconnect
        self.channel_uuid: str | None = None       # the controlled channel (outbound)
        self.trace: Callable[[str, bytes], None] | None = None
        self.disconnect_notices: list[Message] = []
        self._parser = Parser(max_header_bytes=max_header_bytes, max_body_bytes=max_body_bytes)
        self._transport: asyncio.Transport | None = None
        self._connected_fut: asyncio.Future[None] = self._loop.create_future()
        self._closed_fut: asyncio.Future[None] = self._loop.create_future()
        self._close_reason: tuple[type[ESLError], str] | None = None
        self._replies: deque[_Pending] = deque()
        self._executions: dict[str, Execution] = {}
        self._jobs: dict[str, asyncio.Future[Event]] = {}
        self._orphan_jobs: OrderedDict[str, Event] = OrderedDict()
        self._waiters: list[_Waiter] = []
        self._subscriptions: set[EventSubscription] = set()
        # copy-on-write tuples: dispatch iterates them without copying
        self._handlers: dict[str, tuple[Callable[[Event], Any], ...]] = {}
        self._message_handlers: tuple[Callable[[Message], Any], ...] = ()
        self._hangups: OrderedDict[str, HangupInfo] = OrderedDict()
        self._hangup_futs: dict[str, asyncio.Future[HangupInfo]] = {}
        self._hangup_watch: dict[str, list[Callable[[HangupInfo | None,
                                                     BaseException | None], None]]] = {}
        self._tasks: set[asyncio.Task] = set()
        self._batch: list[bytes] | None = None
        self._uuid_prefix = str(uuidlib.uuid4())[:24]    # 8-4-4-4- of a random UUID
        self._exec_seq = 0
        self._batch_depth = 0
        self._batcher = _Batch(self)
        self._auth_request: asyncio.Future[Message] = self._loop.create_future()
        self._close_timer: asyncio.TimerHandle | None = None
        # latency probe (perf_counter seconds): when bytes last arrived, and the arrival a
        # consumer says caused what it sends next; `on_latency(seconds)` gets the difference
        # at the next write
        self.connected_at: float | None = None
        self.last_rx: float = 0.0
        self.pending_cause: float | None = None
        self.on_latency: Callable[[float], None] | None = None

    # ------------------------------------------------------------------ opening / closing

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float = 5.0, **kwargs: Any):
        """Connect to an ESL server (FreeSWITCH's inbound port) and return the connection."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: cls(**kwargs), host, port), timeout)
        except asyncio.TimeoutError:
            raise ConnectionLost(f"connect to {host}:{port} timed out after {timeout} s") from None
        except OSError as exc:
            raise ConnectionLost(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.connected_at = time.perf_counter()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # (asyncio's socket transport already sets TCP_NODELAY on TCP sockets)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        _resolve(self._connected_fut, None)

    @property
    def closed(self) -> bool:
        return self._closed_fut.done()

    @property
    def peer(self) -> tuple | None:
        return self._transport.get_extra_info("peername") if self._transport else None

    def close(self) -> None:
        """Close the socket now; every pending wait fails with ConnectionLost."""
        if self._close_reason is None:
            self._close_reason = (ConnectionLost, "connection closed by us")
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        elif self._transport is None:
            self._finish()

    async def wait_closed(self, timeout: float | None = None) -> None:
        timeout = self.command_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._closed_fut), timeout)
        except asyncio.TimeoutError:
            raise ESLTimeout(f"socket still open after {timeout} s") from None

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._close_reason is None:
            if self._parser.in_message:
                self._close_reason = (ConnectionLost, "connection closed inside a frame")
            elif exc is not None:
                self._close_reason = (ConnectionLost, f"connection lost: {exc}")
            else:
                self._close_reason = (ConnectionLost, "connection closed by FreeSWITCH")
        self._finish()

    def _lost(self) -> ESLError:
        cls, text = self._close_reason or (ConnectionLost, "connection closed")
        return cls(text)

    def _finish(self) -> None:
        if self._closed_fut.done():
            return
        if self._close_timer is not None:
            self._close_timer.cancel()
        _resolve(self._closed_fut, None)
        # executions first: a pending execute learns of a known hangup rather than the loss
        for exe in list(self._executions.values()):
            info = self._hangups.get(exe.target or "")
            exe._halt(self._hangup_error(info, exe.app) if info else self._lost())
        self._executions.clear()
        while self._replies:
            pending = self._replies.popleft()
            if pending.callback is not None:
                try:
                    pending.callback(None, self._lost())
                except Exception:
                    log.exception("%s: reply callback failed", self.name)
            else:
                _fail(pending.future, self._lost())
        for fut in self._jobs.values():
            _fail(fut, self._lost())
        self._jobs.clear()
        for w in self._waiters:
            _fail(w.future, self._lost())
        self._waiters.clear()
        for sub in list(self._subscriptions):
            sub._end(self._lost())
        for fut in self._hangup_futs.values():
            _fail(fut, self._lost())
        watch, self._hangup_watch = self._hangup_watch, {}
        for callbacks in watch.values():
            for cb in callbacks:
                self._run_watch(cb, None, self._lost())
        _fail(self._auth_request, self._lost())

    # ------------------------------------------------------------------ writing

    def _write(self, data: bytes) -> None:
        if self._batch is not None:
            self._batch.append(data)
            return
        self._raw_write(data)

    def _raw_write(self, data: bytes) -> None:
        if self.closed or self._transport is None or self._transport.is_closing():
            raise self._lost() if self._close_reason else ConnectionLost("not connected")
        if self.trace:
            self.trace("send", data)
        if self.pending_cause is not None:
            if self.on_latency is not None:
                self.on_latency(time.perf_counter() - self.pending_cause)
            self.pending_cause = None
        self._transport.write(data)

    def batch(self) -> "_Batch":
        """Queue every command written inside the block and send them in one write (nested
        blocks join the outermost one)."""
        return self._batcher

    def send_nowait(self, command: str, headers: Iterable[tuple[str, str]] | dict = (),
                    body: str | bytes | None = None) -> asyncio.Future[Message]:
        """Write a command now; the returned future gets its reply (FIFO matched)."""
        if self.closed:
            raise self._lost()
        frame = encode_command(command, headers, body)
        fut: asyncio.Future[Message] = self._loop.create_future()
        self._replies.append(_Pending(fut, command.split(" ", 1)[0]))
        try:
            self._write(frame)
        except ESLError:
            self._replies.pop()
            raise
        return fut

    def _send_cb(self, command: str, headers: Iterable[tuple[str, str]] | dict,
                 callback: Callable[[Message | None, BaseException | None], None]) -> None:
        """Write a command whose reply goes to `callback(msg, None)` (or `(None, exc)` when
        the connection is lost first), called inside the reader: no future, no loop hop."""
        if self.closed:
            raise self._lost()
        frame = encode_command(command, headers)
        self._replies.append(_Pending(None, command.split(" ", 1)[0], callback))
        try:
            self._write(frame)
        except ESLError:
            self._replies.pop()
            raise

    async def send(self, command: str, headers: Iterable[tuple[str, str]] | dict = (),
                   body: str | bytes | None = None, *, timeout: float | None = None,
                   check: bool = False) -> Message:
        """Send a command and return its reply; `check=True` raises CommandError on `-ERR`."""
        fut = self.send_nowait(command, headers, body)
        reply = await self._await_reply(fut, command, timeout)
        if check and not reply.ok():
            raise CommandError(f"{command.split(chr(10))[0]}: "
                               f"{reply.reply_text or (reply.body or '').strip()}", reply)
        return reply

    async def _await_reply(self, fut: asyncio.Future[Message], command: str,
                           timeout: float | None) -> Message:
        if fut.done():
            return fut.result()
        timeout = self.command_timeout if timeout is None else timeout
        # The slot stays queued (failed by the timer): the late reply is consumed and dropped.
        timer = self._loop.call_later(timeout, _expire, fut, command, timeout)
        try:
            return await fut
        finally:
            timer.cancel()

    # ------------------------------------------------------------------ commands

    async def api(self, command: str, *, timeout: float | None = None,
                  check: bool = True) -> str:
        """`api <command>`; returns the response body. `-ERR`/`-USAGE` raise CommandError."""
        timeout = self.api_timeout if timeout is None else timeout
        reply = await self.send("api " + command, timeout=timeout)
        body = reply.body or ""
        if check and body.lstrip().startswith("-"):
            raise CommandError(f"api {command}: {body.strip()}", reply)
        return body

    async def bgapi(self, command: str, *, timeout: float | None = None,
                    check: bool = True) -> str:
        """`bgapi <command>`; returns the BACKGROUND_JOB body (matched by Job-UUID).

        Needs BACKGROUND_JOB events on this connection (inbound `event plain BACKGROUND_JOB`;
        an outbound `myevents` socket does not receive them)."""
        timeout = self.api_timeout if timeout is None else timeout
        deadline = self._loop.time() + timeout
        job_uuid = str(uuidlib.uuid4())
        fut: asyncio.Future[Event] = self._loop.create_future()
        self._jobs[job_uuid] = fut
        try:
            reply = await self.send("bgapi " + command, [("Job-UUID", job_uuid)],
                                    timeout=timeout)
            if not reply.ok():
                raise CommandError(f"bgapi {command}: {reply.reply_text}", reply)
            actual = reply.headers.get("Job-UUID") or job_uuid
            if actual != job_uuid:
                self._jobs.pop(job_uuid, None)
                job_uuid = actual
                self._jobs[job_uuid] = fut
                if job_uuid in self._orphan_jobs:
                    _resolve(fut, self._orphan_jobs.pop(job_uuid))
            try:
                ev = await asyncio.wait_for(fut, max(0.0, deadline - self._loop.time()))
            except asyncio.TimeoutError:
                raise ESLTimeout(f"no BACKGROUND_JOB for {command!r} within {timeout} s") from None
        finally:
            self._jobs.pop(job_uuid, None)
        body = ev.body or ""
        if check and body.lstrip().startswith("-"):
            raise CommandError(f"bgapi {command}: {body.strip()}")
        return body

    async def enable_events(self, names: Iterable[str] = (), *, custom: Iterable[str] = (),
                            fmt: str = "plain", timeout: float | None = None) -> Message:
        """`event plain NAME ... [CUSTOM subclass ...]` (adds to the FreeSWITCH-side filter)."""
        names, custom = list(names), list(custom)
        parts = [n for n in names if n != "CUSTOM"]
        if custom:
            parts += ["CUSTOM"] + custom
        if not parts:
            raise ValueError("enable_events needs at least one event name")
        return await self.send(f"event {fmt} " + " ".join(parts), timeout=timeout, check=True)

    async def myevents(self, *, uuid: str | None = None, timeout: float | None = None) -> Message:
        return await self.send("myevents" + (f" {uuid}" if uuid else ""), timeout=timeout,
                               check=True)

    async def linger(self, seconds: int | None = None, *,
                     timeout: float | None = None) -> Message:
        """Bare `linger`: FreeSWITCH never closes the socket after the hangup, we must."""
        cmd = "linger" if seconds is None else f"linger {int(seconds)}"
        return await self.send(cmd, timeout=timeout, check=True)

    async def filter(self, header: str, value: str, *, timeout: float | None = None) -> Message:
        return await self.send(f"filter {header} {value}", timeout=timeout, check=True)

    async def exit(self, *, timeout: float | None = None) -> None:
        """`exit`: FreeSWITCH answers `+OK bye`, sends a disconnect notice and closes."""
        with contextlib.suppress(ConnectionLost):
            await self.send("exit", timeout=timeout)
        with contextlib.suppress(ESLTimeout):
            await self.wait_closed(timeout)
        self.close()

    # ------------------------------------------------------------------ channel control

    def _next_event_uuid(self) -> str:
        """A fresh Event-UUID: this connection's random version-4 UUID with its last 48 bits
        replaced by a counter - unique (the 74 random bits differ between connections), and
        without a getrandom() call and a UUID object per execute."""
        self._exec_seq += 1
        return f"{self._uuid_prefix}{self._exec_seq:012x}"

    def execute_nowait(self, app: str, arg: str | None = None, *, uuid: str | None = None,
                       event_lock: bool = True, loops: int | None = None,
                       headers: Iterable[tuple[str, str]] = ()) -> Execution:
        """Send `sendmsg [uuid]` execute with a fresh Event-UUID; returns the Execution.

        `event_lock=True` (the default) queues the application behind the running one; without
        it, FreeSWITCH runs it at once, nested inside a running playback (captures q1/q3).
        Raises ChannelHangup at once if the target channel is already known to be gone."""
        target = uuid or self.channel_uuid
        info = self._hangups.get(target) if target else None
        if info is not None:
            raise self._hangup_error(info, app)
        event_uuid = self._next_event_uuid()
        hdrs: list[tuple[str, str]] = [("call-command", "execute"), ("execute-app-name", app)]
        if arg is not None and arg != "":
            hdrs.append(("execute-app-arg", arg))
        if loops is not None:
            hdrs.append(("loops", str(int(loops))))
        if event_lock:
            hdrs.append(("event-lock", "true"))
        hdrs.extend(headers)
        hdrs.append(("Event-UUID", event_uuid))
        exe = Execution(self, app, arg, event_uuid, uuid)
        self._executions[event_uuid] = exe
        try:
            self._send_cb(f"sendmsg {uuid}" if uuid else "sendmsg", hdrs, exe._on_reply_msg)
        except BaseException:
            self._executions.pop(event_uuid, None)
            raise
        return exe

    async def execute(self, app: str, arg: str | None = None, *, uuid: str | None = None,
                      event_lock: bool = True, loops: int | None = None,
                      timeout: float | None = None, hangup_grace: float = 0.0,
                      headers: Iterable[tuple[str, str]] = ()) -> Event:
        """Run an application and return its CHANNEL_EXECUTE_COMPLETE event (see Execution)."""
        exe = self.execute_nowait(app, arg, uuid=uuid, event_lock=event_lock, loops=loops,
                                  headers=headers)
        return await exe.wait(timeout, hangup_grace=hangup_grace)

    async def sendmsg(self, headers: Iterable[tuple[str, str]] | dict, *, uuid: str | None = None,
                      timeout: float | None = None) -> Message:
        """Raw `sendmsg` (e.g. call-command: hangup / unicast / nomedia); returns the reply."""
        return await self.send("sendmsg" + (f" {uuid}" if uuid else ""), headers,
                               timeout=timeout, check=True)

    async def hangup(self, cause: str = "NORMAL_CLEARING", *, uuid: str | None = None,
                     timeout: float | None = None) -> HangupInfo:
        """`sendmsg call-command: hangup` and wait for the hangup to be reported."""
        target = uuid or self.channel_uuid
        if target in self._hangups:
            return self._hangups[target]
        # one wait for both the reply and the hangup (one loop iteration, not two)
        command = f"sendmsg {uuid}" if uuid else "sendmsg"
        wait = _HangupWait(self, command, target or "", timeout)
        self._send_cb(command, [("call-command", "hangup"), ("hangup-cause", cause)],
                      wait.on_reply)
        return await wait.run()

    async def set_var(self, name: str, value: str, *, uuid: str | None = None,
                      timeout: float | None = None) -> Event:
        """`set name=value` as a (queued, event-locked) application."""
        return await self.execute("set", f"{name}={value}", uuid=uuid, timeout=timeout)

    async def get_var(self, name: str, *, uuid: str | None = None,
                      timeout: float | None = None) -> str | None:
        """`api uuid_getvar`; None when the variable is unset (`_undef_`)."""
        target = uuid or self.channel_uuid
        body = (await self.api(f"uuid_getvar {target} {name}", timeout=timeout)).rstrip("\n")
        return None if body == "_undef_" else body

    async def break_media(self, *, all: bool = False, uuid: str | None = None,
                          timeout: float | None = None) -> str:
        """`api uuid_break <uuid> [all]`: stop the running playback; `all` also flushes queued
        applications, which never report anything, so their waits end with ExecutionFlushed."""
        target = uuid or self.channel_uuid
        body = await self.api(f"uuid_break {target}" + (" all" if all else ""), timeout=timeout)
        if all:
            for key, exe in list(self._executions.items()):
                if exe.target == target and not exe.is_started:
                    exe._halt(ExecutionFlushed(f"{exe.app} flushed by uuid_break all"))
                    self._executions.pop(key, None)
        return body

    # ------------------------------------------------------------------ hangup state

    def hangup_info(self, uuid: str | None = None) -> HangupInfo | None:
        target = uuid or self.channel_uuid
        return self._hangups.get(target) if target else None

    @property
    def hung_up(self) -> bool:
        return self.hangup_info() is not None

    def hangup_future(self, uuid: str | None = None) -> asyncio.Future[HangupInfo]:
        """Future resolved when the channel hangs up (fails with ConnectionLost on close)."""
        target = uuid or self.channel_uuid or ""
        fut = self._hangup_futs.get(target)
        if fut is None:
            fut = self._hangup_futs[target] = self._loop.create_future()
            if target in self._hangups:
                fut.set_result(self._hangups[target])
            elif self.closed:
                _fail(fut, self._lost())
        return fut

    async def wait_hangup(self, *, uuid: str | None = None,
                          timeout: float | None = None) -> HangupInfo:
        """Wait until the channel hangs up (ConnectionLost if the socket closes first)."""
        return await self._wait_hangup(uuid or self.channel_uuid or "", timeout)

    def on_hangup(self, callback: Callable[[HangupInfo | None, BaseException | None], None], *,
                  uuid: str | None = None) -> Callable[[], None]:
        """Call `callback(info, None)` when the channel hangs up, or `callback(None, exc)`
        (ConnectionLost) when the socket closes first - once, synchronously inside the reader
        (no loop iteration, unlike a future's done-callback); at once if that is already
        known. Returns a function that removes the callback."""
        target = uuid or self.channel_uuid or ""
        info = self._hangups.get(target)
        if info is not None or self.closed:
            callback(info, None if info is not None else self._lost())
            return lambda: None
        callbacks = self._hangup_watch.setdefault(target, [])
        callbacks.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                callbacks.remove(callback)
        return remove

    def _run_watch(self, cb: Callable[[HangupInfo | None, BaseException | None], None],
                   info: HangupInfo | None, exc: BaseException | None) -> None:
        try:
            cb(info, exc)
        except Exception:
            log.exception("%s: hangup callback %r failed", self.name, cb)

    async def _wait_hangup(self, target: str, timeout: float | None) -> HangupInfo:
        info = self._hangups.get(target)
        if info is not None:
            return info
        if self.closed:
            raise self._lost()
        timeout = self.execute_timeout if timeout is None else timeout
        loop = self._loop
        fut: asyncio.Future[HangupInfo] = loop.create_future()

        def wake(info: HangupInfo | None, exc: BaseException | None) -> None:
            if not fut.done():
                if exc is None:
                    fut.set_result(info)                    # type: ignore[arg-type]
                else:
                    _fail(fut, exc)

        remove = self.on_hangup(wake, uuid=target)
        timer = loop.call_later(timeout, _fail, fut,
                                ESLTimeout(f"channel did not hang up within {timeout} s"))
        try:
            return await fut
        finally:
            timer.cancel()
            remove()

    def _hangup_error(self, info: HangupInfo, what: str) -> ChannelHangup:
        cause = info.cause or "unknown cause"
        return ChannelHangup(f"{what}: channel hung up ({cause}, {info.via})", cause=info.cause,
                             event=info.event)

    def _record_hangup(self, uuid: str, info: HangupInfo) -> None:
        known = self._hangups.get(uuid)
        if known is not None:
            # 9.log: the disconnect notice can come before CHANNEL_HANGUP; waits already ended
            # on the notice, but what is remembered (hangup_info, wait_hangup, hangup) gets
            # the cause FreeSWITCH sent
            if known.cause is None and info.cause is not None:
                self._hangups[uuid] = info
            return
        self._hangups[uuid] = info
        while len(self._hangups) > _HANGUP_MEMORY:
            self._hangups.popitem(last=False)
        _resolve(self._hangup_futs.get(uuid), info)
        callbacks = self._hangup_watch.pop(uuid, None)
        if callbacks:
            for cb in callbacks:
                self._run_watch(cb, info, None)
        for exe in list(self._executions.values()):
            if exe.target == uuid:
                exe._halt(self._hangup_error(info, exe.app))
        keep = []
        for w in self._waiters:
            if w.abort_uuid == uuid and not w.future.done():
                _fail(w.future, self._hangup_error(info, "event wait"))
            elif not w.future.done():
                keep.append(w)
        self._waiters = keep

    # ------------------------------------------------------------------ event consumers

    def expect(self, names: Iterable[str] | str | None = None, *, uuid: str | None = None,
               subclass: str | None = None, predicate: EventMatch | None = None,
               abort_on_hangup: bool = True) -> asyncio.Future[Event]:
        """Register a one-shot wait now (before sending what triggers it); await it later with
        `wait_event(fut, timeout)`. With `abort_on_hangup`, a hangup of the connection's
        channel fails it with ChannelHangup."""
        fut: asyncio.Future[Event] = self._loop.create_future()
        abort = self.channel_uuid if abort_on_hangup else None
        if self.closed:
            _fail(fut, self._lost())
            return fut
        if abort and abort in self._hangups:
            _fail(fut, self._hangup_error(self._hangups[abort], "event wait"))
            return fut
        match = make_match(names, uuid=uuid, subclass=subclass, predicate=predicate)
        self._waiters.append(_Waiter(match, fut, abort))
        return fut

    async def wait_event(self, fut_or_names: asyncio.Future[Event] | Iterable[str] | str | None,
                         *, timeout: float, **match: Any) -> Event:
        """Await an `expect()` future, or expect-and-wait in one call."""
        fut = fut_or_names if isinstance(fut_or_names, asyncio.Future) else \
            self.expect(fut_or_names, **match)
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise ESLTimeout(f"event not received within {timeout} s") from None

    def subscribe(self, names: Iterable[str] | str | None = None, *, uuid: str | None = None,
                  subclass: str | None = None, predicate: EventMatch | None = None,
                  maxsize: int = 10000) -> EventSubscription:
        """Queue of matching events from now on (read with `get(timeout)` or `async for`)."""
        sub = EventSubscription(self._loop, make_match(names, uuid=uuid, subclass=subclass,
                                                       predicate=predicate), maxsize,
                                default_timeout=self.execute_timeout,
                                on_close=self._subscriptions.discard)
        if self.closed:
            sub._end(self._lost())
        else:
            self._subscriptions.add(sub)
        return sub

    def on(self, name: str, handler: Callable[[Event], Any]) -> Callable[[], None]:
        """Call `handler(event)` for Event-Name `name` ("*" = all). Coroutine functions run as
        tasks. Returns a function that removes the handler."""
        self._handlers[name] = self._handlers.get(name, ()) + (handler,)

        def remove() -> None:
            current = self._handlers.get(name, ())
            if handler in current:
                rest = list(current)
                rest.remove(handler)
                if rest:
                    self._handlers[name] = tuple(rest)
                else:
                    del self._handlers[name]
        return remove

    def on_message(self, handler: Callable[[Message], Any]) -> Callable[[], None]:
        """Call `handler(message)` for every frame received (replies, events, notices, logs)."""
        self._message_handlers += (handler,)

        def remove() -> None:
            if handler in self._message_handlers:
                rest = list(self._message_handlers)
                rest.remove(handler)
                self._message_handlers = tuple(rest)
        return remove

    # ------------------------------------------------------------------ reading

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.perf_counter()
        if self.trace:
            self.trace("recv", data)
        try:
            messages = self._parser.feed(data)
        except ProtocolError as exc:
            log.error("%s: %s; closing", self.name, exc)
            self._close_reason = (ProtocolError, str(exc))
            if self._transport is not None:
                self._transport.abort()
            return
        for msg in messages:
            try:
                ev = msg.event
                if ev is not None and not self._message_handlers:
                    self._on_event(ev)          # the common case, straight
                else:
                    self._dispatch(msg)
            except Exception:   # a consumer bug must not kill the connection
                log.exception("%s: error while dispatching %r", self.name, msg)

    def _dispatch(self, msg: Message) -> None:
        ctype = msg.content_type
        if msg.event is not None:
            self._on_event(msg.event)
        elif ctype == "command/reply" or ctype == "api/response":
            self._on_reply(msg)
        elif ctype == "text/disconnect-notice":
            self._on_disconnect_notice(msg)
        elif ctype == "auth/request":
            _resolve(self._auth_request, msg)
        elif ctype == "text/rude-rejection":
            self._close_reason = (ConnectionLost,
                                  "rejected by FreeSWITCH: " + (msg.body or "").strip())
            self.close()
        for handler in self._message_handlers:
            self._call(handler, msg)

    def _on_reply(self, msg: Message) -> None:
        if not self._replies:
            log.warning("%s: unexpected reply %r", self.name, msg.reply_text or msg.body)
            return
        pending = self._replies.popleft()
        if pending.callback is not None:
            pending.callback(msg, None)
        elif pending.future.done():
            # a cancelled (timed-out) slot consumes its late reply
            log.debug("%s: dropping late reply to %s", self.name, pending.command)
        else:
            pending.future.set_result(msg)

    def _on_event(self, ev: Event) -> None:
        name = ev.name
        if name == "CHANNEL_EXECUTE_COMPLETE" or name == "CHANNEL_EXECUTE":
            executions = self._executions
            if executions:
                app_uuid = ev.application_uuid
                exe = executions.get(app_uuid) if app_uuid else None
                if exe is not None:
                    if name == "CHANNEL_EXECUTE":
                        exe._start(ev)
                    else:
                        del executions[app_uuid]
                        exe._complete(ev)
        elif name == "BACKGROUND_JOB" and ev.job_uuid:
            fut = self._jobs.get(ev.job_uuid)
            if fut is not None:
                _resolve(fut, ev)
            else:
                self._orphan_jobs[ev.job_uuid] = ev
                while len(self._orphan_jobs) > _ORPHAN_JOBS:
                    self._orphan_jobs.popitem(last=False)
        if self._waiters:
            keep = []
            for w in self._waiters:
                if w.future.done():
                    continue
                if w.match(ev):
                    w.future.set_result(ev)
                else:
                    keep.append(w)
            self._waiters = keep
        if self._subscriptions:
            for sub in list(self._subscriptions):
                if sub._match(ev):
                    sub._push(ev)
        handlers = self._handlers
        if handlers:
            named = handlers.get(name)
            if named:
                for handler in named:
                    self._call(handler, ev)
            every = handlers.get("*")
            if every:
                for handler in every:
                    self._call(handler, ev)
        if name == "CHANNEL_HANGUP" or name == "CHANNEL_HANGUP_COMPLETE":
            uid = ev.unique_id
            if uid and (name == "CHANNEL_HANGUP" or uid not in self._hangups):
                self._record_hangup(uid, HangupInfo(uid, ev.get("Hangup-Cause"), ev, "event"))

    def _on_disconnect_notice(self, msg: Message) -> None:
        self.disconnect_notices.append(msg)
        target = msg.headers.get("Controlled-Session-UUID") or self.channel_uuid
        if target and self.channel_uuid and target not in self._hangups:
            self._record_hangup(target, HangupInfo(target, None, None, "disconnect-notice"))
        if self.close_after_disconnect is not None and self._close_timer is None:
            self._close_timer = self._loop.call_later(self.close_after_disconnect, self.close)

    def _call(self, handler: Callable[[Any], Any], arg: Any) -> None:
        try:
            result = handler(arg)
        except Exception:
            log.exception("%s: event handler %r failed", self.name, handler)
            return
        if result is not None and asyncio.iscoroutine(result):
            task = self._loop.create_task(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: async event handler failed: %r", self.name, task.exception())

    # ------------------------------------------------------------------ auth (inbound)

    async def auth(self, password: str, *, timeout: float | None = None) -> None:
        """Wait for `auth/request` and answer `auth <password>` (inbound connections)."""
        from .errors import AuthError
        timeout = self.command_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(asyncio.shield(self._auth_request), timeout)
        except asyncio.TimeoutError:
            raise ESLTimeout(f"no auth/request within {timeout} s") from None
        reply = await self.send(f"auth {password}", timeout=timeout)
        if not reply.ok():
            raise AuthError(f"authentication refused: {reply.reply_text}")
