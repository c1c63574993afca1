"""Helpers for the runtime tests (imported by the tests; conftest puts this directory on sys.path)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.actions import Action, Registry, Result
from engine.flow import compile_file, compile_text
from engine.runtime import Interpreter, SimChannel, SimOptions, VirtualClock

HERE = Path(__file__).parent
FIX = HERE / "fixtures"

CALLS: list = []          # (action, params) as the test actions saw them


async def _verify(ctx, params):
    CALLS.append(("test.verify", dict(params)))
    if params["pin"] == "4321":
        return Result("ok", {"balance": 128})
    return Result("bad", {})


async def _info(ctx, params):
    CALLS.append(("test.info", dict(params)))
    if params["topic"] == "7":
        return Result("found", {"info_text": "七号主题"})
    if params["topic"] == "0":
        raise RuntimeError(f"database down while reading topic {params['topic']}")
    return Result("missing", {})


async def _note(ctx, params):
    CALLS.append(("test.note", dict(params)))
    ctx.log("noted", what=params["what"])
    return Result("ok", {})


async def _auth(ctx, params):
    CALLS.append(("test.auth", dict(params)))
    r = await asyncio.to_thread(ctx.store.verify_pin, params["card"], params["pin"])
    return Result(r.status, {})


async def _topup(ctx, params):
    CALLS.append(("test.topup", dict(params)))
    from engine.store import NotFound

    try:
        bal = await asyncio.to_thread(ctx.store.top_up, params["card"], params["cents"], reference=ctx.call_id)
    except NotFound:
        return Result("unknown", {})
    return Result("ok", {"balance": bal})


async def _flaky(ctx, params):
    CALLS.append(("test.flaky", dict(params)))
    if params.get("key") == "3":
        raise ConnectionError("backend unreachable")
    return Result("rare" if params.get("key") == "2" else "usual", {})


ACTIONS = [
    Action("test.flaky", "an action with an optional outcome that may raise",
           {"type": "object", "properties": {"key": {"type": "string"}}},
           ("usual", "rare"), _flaky, optional_outcomes=("rare",)),
    Action("test.auth", "check a PIN in the store",
           {"type": "object", "additionalProperties": False, "required": ["card", "pin"],
            "properties": {"card": {"type": "string"}, "pin": {"type": "string"}}},
           ("ok", "failed", "locked"), _auth),
    Action("test.topup", "credit a card in the store",
           {"type": "object", "additionalProperties": False, "required": ["card", "cents"],
            "properties": {"card": {"type": "string"}, "cents": {"type": "integer", "minimum": 1}}},
           ("ok", "unknown"), _topup, sets={"ok": ("balance",), "unknown": ()}),
    Action("test.verify", "check a PIN",
           {"type": "object", "additionalProperties": False, "required": ["account", "pin"],
            "properties": {"account": {"type": "string", "pattern": "^[0-9]+$"},
                           "pin": {"type": "string", "pattern": "^[0-9]{4}$"}}},
           ("ok", "bad"), _verify, sets={"ok": ("balance",), "bad": ()}),
    Action("test.info", "read a topic",
           {"type": "object", "additionalProperties": False, "required": ["topic"],
            "properties": {"topic": {"type": "string"}}},
           ("found", "missing"), _info, sets={"found": ("info_text",), "missing": ()}),
    Action("test.note", "write a note", {"type": "object", "properties": {"what": {"type": "string"}}},
           ("ok",), _note),
]


def registry(*extra: Action) -> Registry:
    return Registry([*ACTIONS, *extra])


def load_flow(name: str = "demo.yaml", reg=None):
    flow, diags = compile_file(FIX / name, registry=reg or registry())
    assert flow is not None, "\n".join(d.headline() for d in diags)
    return flow


def flow_from_text(text: str, reg=None):
    flow, diags = compile_text(text, "test.yaml", reg or registry())
    assert flow is not None, "\n".join(d.headline() for d in diags)
    return flow


def run_call(flow, script="", *, reg=None, resolver=None, options=None, lang=None, start=None,
             caller="13800000001", trusted=True, variables=None, channel_vars=None, store=None,
             max_steps=None, config=None):
    """One simulated call; returns (CallResult, SimChannel)."""
    clock = VirtualClock(start)
    ch = SimChannel(script, clock, caller=caller, caller_trusted=trusted, variables=channel_vars,
                    options=options or SimOptions(prompt_seconds=2.0))
    interp = Interpreter(flow, registry=reg or registry(), resolver=resolver, store=store, max_steps=max_steps,
                         config=config)
    res = asyncio.run(interp.run(ch, clock, lang=lang, variables=variables))
    return res, ch


