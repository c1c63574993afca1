"""Outbound ESL: FreeSWITCH's `socket host:port async full` dials us, one connection per call.

`serve_outbound(handler)` listens and runs `handler(conn)` per call with an
`OutboundConnection`; the socket is closed when the handler returns (FreeSWITCH does not close it
after a bare `linger`). `conn.handshake()` pipelines `connect`, `myevents`, `linger`, extra event
subscriptions and the first executes in a single write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .connection import ESLConnection, Execution
from .errors import ChannelHangup, CommandError, ConnectionLost, ESLError
from .parser import Headers, Message

__all__ = ["ChannelData", "Handshake", "OutboundConnection", "OutboundServer", "serve_outbound"]

log = logging.getLogger("ivrflow.esl")


@dataclass(frozen=True)
class ChannelData:
    """The channel as described by the reply to `connect` (URL-decoded headers)."""

    headers: Headers
    unique_id: str
    caller_number: str
    caller_name: str
    destination: str
    channel_name: str
    answer_state: str
    variables: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_message(cls, msg: Message) -> "ChannelData":
        h = msg.headers
        uid = h.get("Unique-ID") or h.get("Channel-Unique-ID") or h.get("Caller-Unique-ID")
        if not uid:
            raise CommandError("connect reply without Unique-ID: " + (msg.reply_text or ""), msg)
        variables = h.prefixed("variable_")
        return cls(
            headers=h,
            unique_id=uid,
            caller_number=h.get("Caller-Caller-ID-Number") or h.get("Channel-Caller-ID-Number")
            or "",
            caller_name=h.get("Caller-Caller-ID-Name") or "",
            destination=h.get("Caller-Destination-Number")
            or h.get("Channel-Destination-Number") or "",
            channel_name=h.get("Channel-Name") or h.get("Caller-Channel-Name") or "",
            answer_state=h.get("Answer-State") or "",
            variables=variables,
        )

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def variable(self, name: str, default: str | None = None) -> str | None:
        return self.variables.get(name, default)


@dataclass
class Handshake:
    channel: ChannelData
    executions: list[Execution]


class OutboundConnection(ESLConnection):
    """An outbound socket: controls exactly one channel, learnt from `connect`."""

    def __init__(self, *, close_after_disconnect: float | None = 5.0, **kwargs: Any) -> None:
        super().__init__(close_after_disconnect=close_after_disconnect, **kwargs)
        self.channel: ChannelData | None = None
        self._on_made: Callable[["OutboundConnection"], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        on_made, self._on_made = self._on_made, None
        if on_made is not None:
            on_made(self)

    async def connect(self, *, timeout: float | None = None) -> ChannelData:
        reply = await self.send("connect", timeout=timeout, check=True)
        return self._set_channel(reply)

    def _set_channel(self, reply: Message) -> ChannelData:
        self.channel = ChannelData.from_message(reply)
        self.channel_uuid = self.channel.unique_id
        return self.channel

    async def handshake(self, *, myevents: bool = True, linger: bool | int = True,
                        events: Iterable[str] = (), custom: Iterable[str] = (),
                        executes: Sequence[tuple[str, str | None]] = (),
                        event_lock: bool = True, timeout: float | None = None,
                        prepare: Callable[[list[Execution]], Any] | None = None) -> Handshake:
        """Write connect, myevents, linger, `event plain ...` and `executes` in ONE write; wait
        for the replies (CommandError on `-ERR`) and return the channel data and the Execution
        handles (await them with `.wait()`).

        `linger=True` sends a bare `linger` (socket kept open until we close it), an int sends
        `linger N` (FreeSWITCH closes N s after the hangup), False sends nothing.
        `prepare(executions)` runs before the write leaves (e.g. to register what the
        executions' events mean before any of them can arrive)."""
        events, custom = list(events), list(custom)
        with self.batch():
            connect = self.send_nowait("connect")
            futs: list[tuple[str, asyncio.Future[Message]]] = []
            if myevents:
                futs.append(("myevents", self.send_nowait("myevents")))
            if linger is not False and linger is not None:
                cmd = "linger" if linger is True else f"linger {int(linger)}"
                futs.append((cmd, self.send_nowait(cmd)))
            if events or custom:
                parts = [n for n in events if n != "CUSTOM"] + (["CUSTOM"] + custom if custom
                                                                 else [])
                cmd = "event plain " + " ".join(parts)
                futs.append((cmd, self.send_nowait(cmd)))
            executions = [self.execute_nowait(app, arg, event_lock=event_lock)
                          for app, arg in executes]
            if prepare is not None:
                prepare(executions)
        reply = await self._await_reply(connect, "connect", timeout)
        if not reply.ok():
            raise CommandError(f"connect: {reply.reply_text}", reply)
        channel = self._set_channel(reply)
        for cmd, fut in futs:
            r = await self._await_reply(fut, cmd, timeout)
            if not r.ok():
                raise CommandError(f"{cmd}: {r.reply_text}", r)
        return Handshake(channel, executions)


Handler = Callable[[OutboundConnection], Awaitable[Any]]


class OutboundServer:
    """`asyncio.start_server`-style listener running `handler(conn)` for every call."""

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                 connection_factory: Callable[[], OutboundConnection] | None = None,
                 **connection_kwargs: Any) -> None:
        self.handler = handler
        self.host = host
        self.requested_port = port
        self._factory = connection_factory or (lambda: OutboundConnection(**connection_kwargs))
        self._server: asyncio.base_events.Server | None = None
        self.active: dict[OutboundConnection, asyncio.Task] = {}
        self.handled = 0
        self.failed = 0

    async def start(self) -> "OutboundServer":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._make_connection, self.host,
                                                self.requested_port)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.sockets[0].getsockname()[1]

    def _make_connection(self) -> OutboundConnection:
        conn = self._factory()
        conn.name = "outbound"
        # the handler starts once the socket is there (no wait for it inside the task)
        conn._on_made = self._start_call
        return conn

    def _start_call(self, conn: OutboundConnection) -> None:
        self.active[conn] = asyncio.get_running_loop().create_task(self._run(conn))

    async def _run(self, conn: OutboundConnection) -> None:
        try:
            await self.handler(conn)
            self.handled += 1
        except (ChannelHangup, ConnectionLost) as exc:
            self.handled += 1
            log.info("call ended: %s", exc)
        except asyncio.CancelledError:
            raise
        except ESLError as exc:
            self.failed += 1
            log.warning("call failed: %s", exc)
        except Exception:
            self.failed += 1
            log.exception("outbound handler crashed")
        finally:
            conn.close()
            self.active.pop(conn, None)

    def stop_accepting(self) -> None:
        """Close the listening socket; calls in progress go on."""
        if self._server is not None:
            self._server.close()

    async def close(self, *, grace: float = 5.0) -> None:
        """Stop listening, give running calls `grace` seconds, then cut them."""
        if self._server is not None:
            self._server.close()
        tasks = list(self.active.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for conn, task in list(self.active.items()):
                conn.close()
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def __aenter__(self) -> "OutboundServer":
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def serve_outbound(handler: Handler, host: str = "127.0.0.1", port: int = 0,
                         **connection_kwargs: Any) -> OutboundServer:
    """Start an OutboundServer (port 0 = OS-chosen; read `.port`)."""
    return await OutboundServer(handler, host=host, port=port, **connection_kwargs).start()
