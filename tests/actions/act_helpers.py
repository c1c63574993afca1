"""Helpers for the hospital action tests: the test day, a settable clock, an action context like
the runtime's, ``act`` (validate params against the action's schema and run it), ``rows``."""

from __future__ import annotations

import asyncio
import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from engine.actions import default_registry
from engine.store import ScryptParams, Store

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2025, 3, 3)                      # a Monday (the scenario suites' default day)
FAST_PIN = ScryptParams(n=2 ** 10)


def at(day: dt.date = TODAY, hour: int = 10, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TZ)


class Clock:
    """A settable clock (the runtime's VirtualClock has the same now())."""

    def __init__(self, t: dt.datetime):
        self.t = t

    def now(self) -> dt.datetime:
        return self.t

    def advance(self, **kw) -> None:
        self.t += dt.timedelta(**kw)


@dataclass
class Ctx:
    """What the interpreter hands an action (engine.actions.base.ActionContext)."""

    store: Any
    clock: Any
    call_id: str = "call-1"
    caller: str | None = "13800000001"
    caller_raw: str | None = "13800000001"
    destination: str | None = "10000"
    channel: Any = None
    variables: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    language: str = "zh-CN"
    languages: tuple = ("zh-CN", "en")
    state: str = "s"
    step: int = 1
    logs: list = field(default_factory=list)

    def log(self, message: str, **fields: Any) -> None:
        self.logs.append((message, fields))



def act(name: str, ctx: Ctx, **params):
    """Validate ``params`` against the registered action's schema (as the runtime does), run it."""
    action = default_registry()[name]
    jsonschema.Draft202012Validator(dict(action.params)).validate(params)
    result = asyncio.run(action.run(ctx, params))
    assert result.outcome in action.outcomes
    declared = action.sets.get(result.outcome, ()) if isinstance(action.sets, dict) else action.sets
    assert set(declared) <= set(result.variables), f"{name}: declared variables not set"
    return result


def rows(store: Store, table: str) -> list[dict]:
    from engine.scenario.db import table_rows

    return table_rows(store, table)
