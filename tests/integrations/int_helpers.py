"""Helpers for the integration tests."""

from __future__ import annotations

import asyncio
import socket
from types import MappingProxyType

from engine.runtime.clock import VirtualClock


class Ctx:
    """A minimal action context (engine.actions.base.ActionContext) that keeps ctx.log lines."""

    def __init__(self, config=None, clock=None):
        self.config = MappingProxyType(dict(config or {}))
        self.clock = clock or VirtualClock()
        self.state = "test_state"
        self.call_id = "test-call"
        self.logs: list[tuple[str, dict]] = []

    def log(self, message, **fields):
        self.logs.append((message, fields))


def run(coro):
    return asyncio.run(coro)


def closed_port() -> int:
    """A local port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
