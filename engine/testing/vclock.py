"""An asyncio event loop on a virtual clock, for fast deterministic tests over real sockets.

`loop.time()` returns virtual seconds. When no callback is ready and no socket is readable or
writable, the loop jumps the clock straight to the next timer instead of sleeping, so a 3 s
prompt or a 30 s timeout costs no wall time, while the relative order of socket I/O and timers
is the same as on a real clock. Sockets are real (loopback TCP is delivered inside the sending
system call, so a written frame is readable before the clock can move on).

Only timers move the clock, and not while a `run_in_executor` / `asyncio.to_thread` job runs
(its result is awaited on the real clock). A coroutine blocked on I/O that will never come, with
no timer pending, is reported as a stall (`VirtualClockStall`) after `stall_timeout` real seconds rather
than hanging the test run.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["VirtualClockStall", "VirtualTimeLoop", "run_virtual"]


class VirtualClockStall(RuntimeError):
    """Nothing is scheduled and no I/O arrived within the real-time stall limit."""


class _VirtualSelector(selectors.BaseSelector):
    """Delegates to a real selector; advances the loop's clock instead of blocking."""

    def __init__(self, loop: "VirtualTimeLoop", stall_timeout: float) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop
        self._stall_timeout = stall_timeout

    def register(self, fileobj, events, data=None):
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj):
        return self._real.get_key(fileobj)

    def get_map(self):
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout=None):
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if self._loop._executor_jobs:
            # a thread (asyncio.to_thread / run_in_executor) is working: its result arrives
            # through the loop's self-pipe; time must not jump ahead meanwhile
            ready = self._real.select(self._stall_timeout)
            if not ready:
                raise VirtualClockStall(
                    f"an executor job ran for more than {self._stall_timeout} s of real time")
            return ready
        if timeout is None:
            ready = self._real.select(self._stall_timeout)
            if not ready:
                raise VirtualClockStall(
                    f"no timer pending and no I/O for {self._stall_timeout} s: a wait without "
                    "timeout is blocked")
            return ready
        self._loop._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """SelectorEventLoop whose `time()` is virtual and jumps to the next timer when idle."""

    def __init__(self, start: float = 1_000_000.0, stall_timeout: float = 5.0) -> None:
        self._vnow = float(start)
        self._executor_jobs = 0
        super().__init__(selector=_VirtualSelector(self, stall_timeout))
        self._clock_resolution = 1e-9

    def run_in_executor(self, executor, func, *args):
        """Counted: while a job runs in a thread the virtual clock stands still (the job
        takes no virtual time, like an instant action in the simulator)."""
        fut = super().run_in_executor(executor, func, *args)
        self._executor_jobs += 1
        fut.add_done_callback(self._job_done)
        return fut

    def _job_done(self, _fut) -> None:
        self._executor_jobs -= 1

    def time(self) -> float:
        return self._vnow

    def _advance(self, seconds: float) -> None:
        if seconds > 0:
            self._vnow += seconds


def run_virtual(main: Callable[[], Awaitable[T]] | Awaitable[T], *, start: float = 1_000_000.0,
                stall_timeout: float = 5.0) -> T:
    """Run a coroutine (or coroutine function) to completion on a fresh VirtualTimeLoop."""
    loop = VirtualTimeLoop(start=start, stall_timeout=stall_timeout)
    try:
        asyncio.set_event_loop(loop)
        coro: Any = main() if callable(main) else main
        return loop.run_until_complete(coro)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
