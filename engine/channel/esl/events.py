"""Event consumers that never block the reader: filters and bounded subscription queues."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable

from .errors import ConnectionLost, ESLTimeout
from .futures import resolve as _resolve
from .parser import Event

__all__ = ["EventMatch", "EventSubscription", "make_match"]

log = logging.getLogger("ivrflow.esl")

EventMatch = Callable[[Event], bool]


def make_match(names: Iterable[str] | str | None = None, *, uuid: str | None = None,
               subclass: str | None = None, predicate: EventMatch | None = None) -> EventMatch:
    """Build an event filter: Event-Name in `names`, Unique-ID, Event-Subclass, predicate."""
    name_set = {names} if isinstance(names, str) else (set(names) if names is not None else None)

    def match(ev: Event) -> bool:
        if name_set is not None and ev.name not in name_set:
            return False
        if uuid is not None and ev.unique_id != uuid:
            return False
        if subclass is not None and ev.subclass != subclass:
            return False
        return predicate is None or bool(predicate(ev))

    return match


class EventSubscription:
    """Bounded queue of matching events. Never blocks the reader: overflow drops and counts."""

    def __init__(self, loop: asyncio.AbstractEventLoop, match: EventMatch, maxsize: int, *,
                 default_timeout: float, on_close: Callable[["EventSubscription"], None]) -> None:
        self._loop = loop
        self._default_timeout = default_timeout
        self._on_close = on_close
        self._match = match
        self._maxsize = maxsize
        self._items: deque[Event] = deque()
        self._waiter: asyncio.Future | None = None
        self._closed: BaseException | None = None
        self.dropped = 0

    def _push(self, ev: Event) -> None:
        if len(self._items) >= self._maxsize:
            if not self.dropped:
                log.warning("event subscription full (%d): dropping %s", self._maxsize, ev.name)
            self.dropped += 1
            return
        self._items.append(ev)
        _resolve(self._waiter, None)

    def _end(self, exc: BaseException) -> None:
        if self._closed is None:
            self._closed = exc
        _resolve(self._waiter, None)

    def get_nowait(self) -> Event | None:
        return self._items.popleft() if self._items else None

    def pending(self) -> int:
        return len(self._items)

    async def get(self, timeout: float | None = None) -> Event:
        """Next event; ESLTimeout after `timeout` s; ConnectionLost once closed and drained."""
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        while not self._items:
            if self._closed is not None:
                raise ConnectionLost(str(self._closed))
            self._waiter = loop.create_future()
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            if remaining is None:
                remaining = self._default_timeout
            try:
                await asyncio.wait_for(self._waiter, remaining)
            except asyncio.TimeoutError:
                raise ESLTimeout(f"no matching event within {timeout} s") from None
            finally:
                self._waiter = None
        return self._items.popleft()

    def close(self) -> None:
        self._on_close(self)
        self._end(ConnectionLost("subscription closed"))

    def __aiter__(self) -> "EventSubscription":
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.get()
        except ConnectionLost:
            raise StopAsyncIteration from None

    def __enter__(self) -> "EventSubscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
