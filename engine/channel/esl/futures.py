"""Settling futures that may already be settled (the ESL layer and the FreeSWITCH channel)."""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["resolve", "fail", "silence"]


def silence(fut: asyncio.Future) -> None:
    """Mark a failed future's exception as retrieved (nobody may ever await it)."""
    if fut.done() and not fut.cancelled():
        fut.exception()


def resolve(fut: asyncio.Future | None, value: Any) -> None:
    """Set `value` unless the future is missing or already done."""
    if fut is not None and not fut.done():
        fut.set_result(value)


def fail(fut: asyncio.Future | None, exc: BaseException) -> None:
    """Set `exc` (marked retrieved) unless the future is missing or already done."""
    if fut is not None and not fut.done():
        fut.set_exception(exc)
        silence(fut)
