"""Inbound ESL client (port 8021): auth, api/bgapi, events, automatic reconnect.

A call in flight when the socket drops fails at once with ConnectionLost; a new call made while
the client is reconnecting waits for the connection up to its own timeout, then raises
ConnectionLost. Subscriptions and handlers survive reconnects (events are re-enabled on every
new connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .connection import ESLConnection, EventMatch, EventSubscription, make_match
from .errors import AuthError, CommandError, ConnectionLost, ESLError
from .parser import Event

__all__ = ["InboundClient", "ConferenceMember", "parse_conference_list"]

log = logging.getLogger("ivrflow.esl")


@dataclass(frozen=True)
class ConferenceMember:
    """One line of `conference <name> list`."""

    member_id: int
    channel_name: str
    uuid: str
    caller_name: str
    caller_number: str
    flags: tuple[str, ...]
    volume_in: int
    volume_out: int
    energy: int

    @property
    def muted(self) -> bool:
        return "speak" not in self.flags

    @property
    def moderator(self) -> bool:
        return "moderator" in self.flags


def parse_conference_list(body: str) -> list[ConferenceMember]:
    """Parse `id;channel;uuid;caller_name;caller_number;flags;vol_in;vol_out;energy` lines."""
    members = []
    for line in body.splitlines():
        parts = line.strip().split(";")
        if len(parts) < 9 or not parts[0].isdigit():
            continue
        members.append(ConferenceMember(
            int(parts[0]), parts[1], parts[2], parts[3], parts[4],
            tuple(f for f in parts[5].split("|") if f),
            _int(parts[6]), _int(parts[7]), _int(parts[8])))
    return members


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _check_token(value: str, what: str) -> str:
    if not value or any(c in value for c in " \r\n"):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


class InboundClient:
    """Long-lived inbound connection with reconnect (exponential backoff)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8021, password: str = "ClueCon", *,
                 events: Iterable[str] = ("BACKGROUND_JOB",), custom: Iterable[str] = (),
                 reconnect: bool = True, min_backoff: float = 0.1, max_backoff: float = 5.0,
                 connect_timeout: float = 5.0, **connection_kwargs: Any) -> None:
        self.host, self.port, self.password = host, port, password
        self.events = list(events)
        if "BACKGROUND_JOB" not in self.events:
            self.events.append("BACKGROUND_JOB")
        self.custom = list(custom)
        self.reconnect = reconnect
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.connect_timeout = connect_timeout
        self.connection_kwargs = connection_kwargs
        self.conn: ESLConnection | None = None
        self.connects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected: asyncio.Event | None = None
        self._closing = False
        self._supervisor: asyncio.Task | None = None
        self._subs: set[EventSubscription] = set()
        self._handlers: list[tuple[str, Callable[[Event], Any]]] = []
        self._removers: list[Callable[[], None]] = []

    # ------------------------------------------------------------ lifecycle

    async def connect(self) -> "InboundClient":
        """First connection; raises ConnectionLost (unreachable) or AuthError at once."""
        self._loop = asyncio.get_running_loop()
        self._connected = asyncio.Event()
        await self._open()
        if self.reconnect:
            self._supervisor = self._loop.create_task(self._supervise())
        return self

    async def _open(self) -> None:
        conn = await ESLConnection.open(self.host, self.port, timeout=self.connect_timeout,
                                        name="inbound", **self.connection_kwargs)
        try:
            await conn.auth(self.password, timeout=self.connect_timeout)
            await conn.enable_events(self.events, custom=self.custom,
                                     timeout=self.connect_timeout)
        except BaseException:
            conn.close()
            raise
        self._removers = [conn.on("*", self._fan_out)] + \
            [conn.on(name, handler) for name, handler in self._handlers]
        self.conn = conn
        self.connects += 1
        assert self._connected is not None
        self._connected.set()

    def _fan_out(self, ev: Event) -> None:
        for sub in list(self._subs):
            if sub._match(ev):
                sub._push(ev)

    async def _supervise(self) -> None:
        backoff = self.min_backoff
        while not self._closing:
            conn = self.conn
            if conn is not None:
                await asyncio.shield(conn._closed_fut)
            if self._closing:
                return
            assert self._connected is not None
            self._connected.clear()
            log.warning("ESL inbound connection to %s:%s lost; reconnecting", self.host,
                        self.port)
            while not self._closing:
                await asyncio.sleep(backoff)
                try:
                    await self._open()
                    backoff = self.min_backoff
                    break
                except AuthError:
                    log.error("ESL inbound auth refused; retrying in %.1f s", backoff)
                except ESLError as exc:
                    log.info("ESL reconnect failed: %s", exc)
                backoff = min(self.max_backoff, backoff * 2)

    async def close(self) -> None:
        self._closing = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._supervisor
        if self.conn is not None:
            with contextlib.suppress(ESLError):
                await self.conn.exit(timeout=1.0)
            self.conn.close()
        for sub in list(self._subs):
            sub.close()

    async def __aenter__(self) -> "InboundClient":
        if self.conn is None:
            await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.closed

    async def connection(self, timeout: float | None = None) -> ESLConnection:
        """The live connection, waiting up to `timeout` for a reconnect."""
        if self._closing or self._connected is None:
            raise ConnectionLost("inbound client is not connected")
        if self.connected:
            return self.conn  # type: ignore[return-value]
        timeout = self.connect_timeout if timeout is None else timeout
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except asyncio.TimeoutError:
            raise ConnectionLost(f"not reconnected to {self.host}:{self.port} within "
                                 f"{timeout} s") from None
        if not self.connected:
            raise ConnectionLost("connection dropped again")
        return self.conn  # type: ignore[return-value]

    # ------------------------------------------------------------ commands

    async def api(self, command: str, *, timeout: float | None = None, check: bool = True) -> str:
        conn = await self.connection(timeout)
        return await conn.api(command, timeout=timeout, check=check)

    async def bgapi(self, command: str, *, timeout: float | None = None,
                    check: bool = True) -> str:
        conn = await self.connection(timeout)
        return await conn.bgapi(command, timeout=timeout, check=check)

    def subscribe(self, names: Iterable[str] | str | None = None, *, uuid: str | None = None,
                  subclass: str | None = None, predicate: EventMatch | None = None,
                  maxsize: int = 10000) -> EventSubscription:
        """Queue of matching events across reconnects (FreeSWITCH must send them: list the
        names in `events=` / `custom=`)."""
        if self._loop is None:
            raise ConnectionLost("connect() first")
        sub = EventSubscription(self._loop, make_match(names, uuid=uuid, subclass=subclass,
                                                       predicate=predicate), maxsize,
                                default_timeout=3600.0, on_close=self._subs.discard)
        self._subs.add(sub)
        return sub

    def on(self, name: str, handler: Callable[[Event], Any]) -> None:
        """Handler for Event-Name `name` ("*" = all), kept across reconnects."""
        self._handlers.append((name, handler))
        if self.conn is not None and not self.conn.closed:
            self._removers.append(self.conn.on(name, handler))

    # ------------------------------------------------------------ conveniences

    async def originate(self, dial_string: str, target: str = "&park()", *,
                        variables: dict[str, str] | None = None, uuid: str | None = None,
                        timeout: float = 60.0) -> str:
        """`bgapi originate {vars}dial target`; returns the new channel's UUID.

        Variable values may not contain `,` `}` or spaces (FreeSWITCH's list syntax)."""
        uuid = uuid or str(uuidlib.uuid4())
        pairs = {"origination_uuid": uuid, **(variables or {})}
        for key, value in pairs.items():
            if any(c in str(value) for c in ",}{ \n\r") or any(c in key for c in ",}{= \n\r"):
                raise ValueError(f"originate variable {key}={value!r} cannot be expressed")
        _check_token(dial_string, "dial string")
        if "\n" in target or "\r" in target or not target.strip():
            raise ValueError(f"invalid originate target {target!r}")
        vars_text = ",".join(f"{k}={v}" for k, v in pairs.items())
        body = (await self.bgapi(f"originate {{{vars_text}}}{dial_string} {target}",
                                 timeout=timeout)).strip()
        if not body.startswith("+OK"):
            raise CommandError(f"originate failed: {body}")
        return body.split(" ", 1)[1].strip() if " " in body else uuid

    async def uuid_kill(self, uuid: str, cause: str = "NORMAL_CLEARING", *,
                        timeout: float | None = None) -> str:
        return await self.api(f"uuid_kill {_check_token(uuid, 'uuid')} {cause}",
                              timeout=timeout)

    async def conference_list(self, name: str, *,
                              timeout: float | None = None) -> list[ConferenceMember]:
        """Members of a conference ([] when it does not exist)."""
        body = await self.api(f"conference {_check_token(name, 'conference')} list",
                              timeout=timeout, check=False)
        if body.startswith("-ERR"):
            if "not found" in body:
                return []
            raise CommandError(f"conference {name} list: {body.strip()}")
        return parse_conference_list(body)

    async def conference_count(self, name: str, *, timeout: float | None = None) -> int:
        body = await self.api(f"conference {_check_token(name, 'conference')} list count",
                              timeout=timeout, check=False)
        body = body.strip()
        return int(body) if body.isdigit() else 0

    async def _member(self, verb: str, name: str, member: int | str,
                      timeout: float | None) -> str:
        member = str(member)
        if member != "all" and not member.isdigit():
            raise ValueError(f"member must be an id or 'all': {member!r}")
        return await self.api(f"conference {_check_token(name, 'conference')} {verb} {member}",
                              timeout=timeout)

    async def conference_mute(self, name: str, member: int | str, *,
                              timeout: float | None = None) -> str:
        return await self._member("mute", name, member, timeout)

    async def conference_unmute(self, name: str, member: int | str, *,
                                timeout: float | None = None) -> str:
        return await self._member("unmute", name, member, timeout)

    async def conference_kick(self, name: str, member: int | str, *,
                              timeout: float | None = None) -> str:
        return await self._member("kick", name, member, timeout)

    async def conference_hup(self, name: str, member: int | str, *,
                             timeout: float | None = None) -> str:
        return await self._member("hup", name, member, timeout)

