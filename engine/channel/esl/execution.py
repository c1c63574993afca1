"""A `sendmsg` execute in flight and how it can end.

The hot path allocates no future per execute: the connection reports the reply, the
CHANNEL_EXECUTE, the completion and a stop (hangup / loss / flush / -ERR) by plain calls
(`_on_reply_msg`, `_start`, `_complete`, `_halt`), which record the state and wake at most one
waiter future, created by `wait()` only when the result is not there yet. The public futures
`reply`, `started` and `completion` are created on first access (already resolved when the thing
already happened)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ChannelHangup, CommandError, ConnectionLost, ESLError, ESLTimeout, ProtocolError
from .futures import fail as _fail, resolve as _resolve
from .parser import Event, Message

if TYPE_CHECKING:  # pragma: no cover
    from .connection import ESLConnection

__all__ = ["Execution", "ExecutionFlushed", "HangupInfo"]


class ExecutionFlushed(ESLError):
    """The queued application was discarded by our own `uuid_break <uuid> all` (no events)."""


@dataclass(frozen=True)
class HangupInfo:
    """How a channel ended: `via` is "event" (CHANNEL_HANGUP[_COMPLETE]) or "disconnect-notice"."""

    uuid: str | None
    cause: str | None
    event: Event | None
    via: str


class Execution:
    """A `sendmsg` execute in flight. `wait()` gives its CHANNEL_EXECUTE_COMPLETE event."""

    __slots__ = ("app", "arg", "event_uuid", "uuid", "_conn", "_completion_ev", "_started_ev",
                 "_stop_exc", "_completed_first", "_reply_msg", "_reply_exc", "_waiter", "_more",
                 "_reply_fut", "_started_fut", "_completion_fut")

    def __init__(self, conn: "ESLConnection", app: str, arg: str | None, event_uuid: str,
                 uuid: str | None) -> None:
        self.app = app
        self.arg = arg
        self.event_uuid = event_uuid          # comes back as Application-UUID
        self.uuid = uuid                      # target channel; None = the connection's channel
        self._conn = conn
        self._completion_ev: Event | None = None     # CHANNEL_EXECUTE_COMPLETE
        self._started_ev: Event | None = None        # CHANNEL_EXECUTE (or the completion)
        self._stop_exc: BaseException | None = None
        self._completed_first = False
        self._reply_msg: Message | None = None
        self._reply_exc: BaseException | None = None
        self._waiter: asyncio.Future | None = None   # the `wait()` in progress
        self._more: list[asyncio.Future] | None = None   # further concurrent waits (rare)
        self._reply_fut: asyncio.Future[Message] | None = None
        self._started_fut: asyncio.Future[Event] | None = None
        self._completion_fut: asyncio.Future[Event] | None = None

    @property
    def target(self) -> str | None:
        return self.uuid or self._conn.channel_uuid

    # ------------------------------------------------------------------ lazy public futures

    @property
    def reply(self) -> asyncio.Future[Message]:
        """The reply to the `sendmsg` (fails with ConnectionLost if the socket drops first)."""
        fut = self._reply_fut
        if fut is None:
            fut = self._reply_fut = self._conn._loop.create_future()
            if self._reply_msg is not None:
                fut.set_result(self._reply_msg)
            elif self._reply_exc is not None:
                _fail(fut, self._reply_exc)
        return fut

    @property
    def started(self) -> asyncio.Future[Event]:
        """CHANNEL_EXECUTE (or the completion when that came without it)."""
        fut = self._started_fut
        if fut is None:
            fut = self._started_fut = self._conn._loop.create_future()
            if self._started_ev is not None:
                fut.set_result(self._started_ev)
        return fut

    @property
    def completion(self) -> asyncio.Future[Event]:
        """CHANNEL_EXECUTE_COMPLETE (stays pending when the execution ends otherwise)."""
        fut = self._completion_fut
        if fut is None:
            fut = self._completion_fut = self._conn._loop.create_future()
            if self._completion_ev is not None:
                fut.set_result(self._completion_ev)
        return fut

    @property
    def is_started(self) -> bool:
        return self._started_ev is not None

    @property
    def is_complete(self) -> bool:
        return self._completion_ev is not None

    # ------------------------------------------------------------------ reported by the connection

    def _start(self, ev: Event) -> None:
        if self._started_ev is None:
            self._started_ev = ev
            if self._started_fut is not None:
                _resolve(self._started_fut, ev)

    def _complete(self, ev: Event) -> None:
        if self._completion_ev is not None:
            return
        self._start(ev)
        self._completion_ev = ev
        self._completed_first = self._stop_exc is None
        if self._completion_fut is not None:
            _resolve(self._completion_fut, ev)
        if self._waiter is not None:
            self._wake()

    def _halt(self, exc: BaseException) -> None:
        if self._stop_exc is not None:
            return
        self._stop_exc = exc
        if self._waiter is not None:
            self._wake()

    def _wake(self) -> None:
        waiter, more = self._waiter, self._more
        self._waiter = self._more = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if more:
            for fut in more:
                if not fut.done():
                    fut.set_result(None)

    def _add_waiter(self) -> asyncio.Future:
        fut = self._conn._loop.create_future()
        if self._waiter is None:
            self._waiter = fut
        elif self._more is None:
            self._more = [fut]
        else:
            self._more.append(fut)
        return fut

    def _drop_waiter(self, fut: asyncio.Future) -> None:
        if self._waiter is fut:
            self._waiter = None
            if self._more:
                self._waiter = self._more.pop(0)
        elif self._more and fut in self._more:
            self._more.remove(fut)

    def _on_reply_msg(self, msg: Message | None, exc: BaseException | None = None) -> None:
        """The reply slot's callback, called synchronously by the connection's reader."""
        if exc is not None:
            self._reply_exc = exc
            if self._reply_fut is not None:
                _fail(self._reply_fut, exc)
            self._halt(exc)
            return
        self._reply_msg = msg
        if self._reply_fut is not None:
            _resolve(self._reply_fut, msg)
        if not msg.ok():                                  # type: ignore[union-attr]
            self._halt(CommandError(f"{self.app}: {msg.reply_text}", msg))  # type: ignore
            self._conn._executions.pop(self.event_uuid, None)

    # ------------------------------------------------------------------ waiting

    def _timed_out(self, waiter: asyncio.Future, timeout: float) -> None:
        if not waiter.done():
            self.abandon()
            _fail(waiter, ESLTimeout(
                f"{self.app} {self.arg or ''}: no CHANNEL_EXECUTE_COMPLETE within "
                f"{timeout} s".replace("  ", " ")))

    async def wait(self, timeout: float | None = None, *, hangup_grace: float = 0.0) -> Event:
        """Return the completion event, or raise ChannelHangup / ConnectionLost /
        ExecutionFlushed / CommandError / ESLTimeout. With `hangup_grace` > 0, a hangup first
        waits that long for the completion and attaches it to the ChannelHangup."""
        if self._completion_ev is None and self._stop_exc is None:
            conn = self._conn
            timeout = conn.execute_timeout if timeout is None else timeout
            waiter = self._add_waiter()
            timer = conn._loop.call_later(timeout, self._timed_out, waiter, timeout)
            try:
                await waiter          # woken by the completion or the stop (state in fields)
            finally:
                timer.cancel()
                self._drop_waiter(waiter)
        if self._completion_ev is not None and (self._completed_first or self._stop_exc is None):
            return self._completion_ev
        exc = self._stop_exc
        assert exc is not None
        if isinstance(exc, ChannelHangup):
            conn = self._conn
            if self._completion_ev is None and hangup_grace > 0 and not conn.closed:
                await self._grace(hangup_grace)
            raise ChannelHangup(str(exc), cause=exc.cause, event=exc.event,
                                completion=self._completion_ev)
        raise type(exc)(*exc.args) if isinstance(exc, (ConnectionLost, ExecutionFlushed,
                                                       ProtocolError)) else exc

    async def _grace(self, seconds: float) -> None:
        """After a hangup: wait up to `seconds` for the completion (or the socket's close)."""
        conn = self._conn
        loop = conn._loop
        waiter = self._add_waiter()
        closed = conn._closed_fut

        def wake(_f: object = None) -> None:
            if not waiter.done():
                waiter.set_result(None)

        closed.add_done_callback(wake)
        timer = loop.call_later(seconds, wake)
        try:
            await waiter
        finally:
            timer.cancel()
            closed.remove_done_callback(wake)
            self._drop_waiter(waiter)

    def abandon(self) -> None:
        """Stop tracking (a late completion is then ignored)."""
        self._conn._executions.pop(self.event_uuid, None)

    def __await__(self):
        return self.wait().__await__()

    def __repr__(self) -> str:
        return f"<Execution {self.app} {self.event_uuid}>"
