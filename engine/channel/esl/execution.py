"""A `sendmsg` execute in flight and how it can end."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import ChannelHangup, CommandError, ConnectionLost, ESLError, ESLTimeout, ProtocolError
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


def _resolve(fut: asyncio.Future | None, value) -> None:
    if fut is not None and not fut.done():
        fut.set_result(value)


class Execution:
    """A `sendmsg` execute in flight. `wait()` gives its CHANNEL_EXECUTE_COMPLETE event."""

    def __init__(self, conn: "ESLConnection", app: str, arg: str | None, event_uuid: str,
                 uuid: str | None) -> None:
        loop = conn._loop
        self.app = app
        self.arg = arg
        self.event_uuid = event_uuid          # comes back as Application-UUID
        self.uuid = uuid                      # target channel; None = the connection's channel
        self.reply: asyncio.Future[Message] = loop.create_future()
        self.started: asyncio.Future[Event] = loop.create_future()    # CHANNEL_EXECUTE
        self.completion: asyncio.Future[Event] = loop.create_future()  # ..._COMPLETE
        self._stop: asyncio.Future[BaseException] = loop.create_future()
        self._conn = conn
        self._completed_first = False

    @property
    def target(self) -> str | None:
        return self.uuid or self._conn.channel_uuid

    def _complete(self, ev: Event) -> None:
        if not self.completion.done():
            self._completed_first = not self._stop.done()
            self.completion.set_result(ev)

    def _halt(self, exc: BaseException) -> None:
        _resolve(self._stop, exc)

    def _on_reply(self, fut: asyncio.Future) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self._halt(exc)
            return
        msg = fut.result()
        if not msg.ok():
            self._halt(CommandError(f"{self.app}: {msg.reply_text}", msg))
            self._conn._executions.pop(self.event_uuid, None)

    async def wait(self, timeout: float | None = None, *, hangup_grace: float = 0.0) -> Event:
        """Return the completion event, or raise ChannelHangup / ConnectionLost /
        ExecutionFlushed / CommandError / ESLTimeout. With `hangup_grace` > 0, a hangup first
        waits that long for the completion and attaches it to the ChannelHangup."""
        conn = self._conn
        timeout = conn.execute_timeout if timeout is None else timeout
        done, _ = await asyncio.wait({self.completion, self._stop}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if not done:
            self.abandon()
            raise ESLTimeout(f"{self.app} {self.arg or ''}: no CHANNEL_EXECUTE_COMPLETE within "
                             f"{timeout} s".replace("  ", " "))
        if self.completion.done() and (self._completed_first or not self._stop.done()):
            return self.completion.result()
        exc = self._stop.result()
        if isinstance(exc, ChannelHangup):
            if not self.completion.done() and hangup_grace > 0 and not conn.closed:
                await asyncio.wait({self.completion, conn._closed_fut}, timeout=hangup_grace,
                                   return_when=asyncio.FIRST_COMPLETED)
            completion = self.completion.result() if self.completion.done() else None
            raise ChannelHangup(str(exc), cause=exc.cause, event=exc.event,
                                completion=completion)
        raise type(exc)(*exc.args) if isinstance(exc, (ConnectionLost, ExecutionFlushed,
                                                       ProtocolError)) else exc

    def abandon(self) -> None:
        """Stop tracking (a late completion is then ignored)."""
        self._conn._executions.pop(self.event_uuid, None)

    def __await__(self):
        return self.wait().__await__()

    def __repr__(self) -> str:
        return f"<Execution {self.app} {self.event_uuid}>"
