"""One thread pool for blocking integration I/O (HTTP requests, external database queries),
so an action never blocks the event loop and never waits on a loop timer (the request's own
deadline bounds it; that keeps it correct on a virtual-time loop too)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")

#: worker threads shared by every call of the process (each blocking call holds one)
MAX_WORKERS = 64

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="ivrflow-io")
        return _pool


async def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the integration pool; await its result on the running loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_executor(), fn, *args)
