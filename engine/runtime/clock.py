"""The interpreter's clock: a dependency, so a 5 s timeout costs no wall time in simulation.

``Clock`` has two readings: ``now()`` (an aware wall-clock datetime, for ``hours`` states and
the ``now``/``today`` variables) and ``monotonic()`` (seconds, for durations and record
timestamps), plus ``sleep()``.

- ``RealClock``: production and interactive simulation.
- ``LoopClock``: an asyncio loop's time (works with ``engine.testing.vclock.VirtualTimeLoop``).
- ``VirtualClock``: the simulator's; time moves only when ``advance``/``sleep`` is called.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import zoneinfo
from typing import Protocol

__all__ = ["Clock", "RealClock", "LoopClock", "VirtualClock", "DEFAULT_SIM_START", "parse_start"]

#: the simulator's default start: a Monday, 10:00 in Shanghai (inside usual office hours)
DEFAULT_SIM_START = dt.datetime(2025, 3, 3, 10, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))


class Clock(Protocol):
    def now(self) -> dt.datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


def _tz(tz: str | dt.tzinfo | None) -> dt.tzinfo | None:
    if tz is None or isinstance(tz, dt.tzinfo):
        return tz
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}") from None


class RealClock:
    """Wall clock and ``time.monotonic``; ``tz`` None means the system's local zone."""

    def __init__(self, tz: str | dt.tzinfo | None = None):
        self.tz = _tz(tz)

    def now(self) -> dt.datetime:
        return dt.datetime.now(self.tz) if self.tz else dt.datetime.now().astimezone()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class LoopClock:
    """The running asyncio loop's time, anchored to a wall-clock start.

    On a ``VirtualTimeLoop`` this is virtual time, shared with the loop's timers."""

    def __init__(self, start: dt.datetime | None = None, loop: asyncio.AbstractEventLoop | None = None):
        self._loop = loop
        self._start = start or dt.datetime.now().astimezone()
        if self._start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._t0: float | None = None

    def _l(self) -> asyncio.AbstractEventLoop:
        return self._loop or asyncio.get_running_loop()

    def monotonic(self) -> float:
        t = self._l().time()
        if self._t0 is None:
            self._t0 = t
        return t - self._t0

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """Simulated time: starts at ``start`` and moves only when told to.

    ``monotonic()`` counts seconds from 0 at construction."""

    __slots__ = ("start", "_t")

    def __init__(self, start: dt.datetime | None = None):
        start = start or DEFAULT_SIM_START
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("the simulated start time must be timezone-aware")
        self.start = start
        self._t = 0.0

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self._t)

    def monotonic(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._t += seconds

    def advance_to(self, t: float) -> None:
        if t > self._t:
            self._t = t

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def parse_start(value: str | dt.datetime | None, tz: str | None = None) -> dt.datetime:
    """A simulated start time from ISO text ('2025-03-03T09:30', '2025-03-03 09:30+08:00').

    A naive time is taken in ``tz`` (default Asia/Shanghai)."""
    if value is None:
        return DEFAULT_SIM_START
    if isinstance(value, dt.datetime):
        d = value
    else:
        try:
            d = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError(f"bad time {value!r}: use ISO format, e.g. 2025-03-03T09:30:00+08:00") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=_tz(tz or "Asia/Shanghai"))
    return d
