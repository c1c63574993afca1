"""Helpers shared by the hospital actions: the store, time, policy, language, idempotency."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from typing import Any, Callable, Mapping

DEFAULT_CONSULT_CAP = 3600        # seconds a free (or well-funded) consultation may last


class ActionFailure(Exception):
    """A hospital action cannot do its job (no database, inconsistent data, a broken
    precondition).  The runtime routes it to the state's ``error`` outcome or ``on.error``."""


def store_of(ctx: Any, action: str) -> Any:
    store = getattr(ctx, "store", None)
    if store is None:
        raise ActionFailure(f"{action} needs the hospital database, and none is configured "
                            "(ivrflow simulate --db URL or :memory:)")
    return store


async def db(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one (synchronous, transactional) store method off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def now(ctx: Any) -> dt.datetime:
    """The call's time (simulated calls run on a virtual clock)."""
    clock = getattr(ctx, "clock", None)
    if clock is not None:
        return clock.now()
    return ctx.store.now()


def config(ctx: Any, key: str) -> Mapping[str, Any]:
    cfg = getattr(ctx, "config", None) or {}
    value = cfg.get(key) if isinstance(cfg, Mapping) else None
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ActionFailure(f"configuration '{key}' must be a mapping")
    return value


def policy(ctx: Any) -> Any:
    """The hospital policy from ``config["policy"]`` (engine.store.Policy; defaults when absent)."""
    from engine.store import Policy

    return Policy.from_mapping(config(ctx, "policy") or None)


def consult_cap(ctx: Any) -> int:
    cap = config(ctx, "consultation").get("max_seconds", DEFAULT_CONSULT_CAP)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 60:
        raise ActionFailure("configuration consultation.max_seconds must be an integer >= 60")
    return cap


def request_id(ctx: Any, params: Mapping[str, Any]) -> str:
    """An idempotency key for this invocation: ``<call_id>:<state>:<step>`` (a retry of the same
    step gets the first result; the same state entered again later is a new request)."""
    state = getattr(ctx, "state", None) or "action"
    step = getattr(ctx, "step", None)
    if step is None:   # a context without step numbers: the parameters tell requests apart
        step = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:12]
    rid = f"{ctx.call_id}:{state}:{step}"
    if len(rid) > 100:
        rid = "h:" + hashlib.sha256(rid.encode()).hexdigest()
    return rid


def is_zh(ctx: Any) -> bool:
    lang = getattr(ctx, "language", None) or ""
    return lang.split("-")[0].lower() in ("zh", "cmn")


def pick(ctx: Any, zh: str | None, en: str | None) -> str:
    """The Chinese or English text for the call's language (the other one if empty)."""
    first, other = (zh, en) if is_zh(ctx) else (en, zh)
    return first or other or ""


def store_lang(ctx: Any) -> str:
    """The language code the store's bilingual records take (``zh`` or ``en``)."""
    return "zh" if is_zh(ctx) else "en"


async def trusted_vip(ctx: Any, store: Any) -> Any:
    """The VIP record of the caller, only when the caller number is trusted (else None)."""
    caller = getattr(ctx, "caller", None)
    if not caller:
        return None
    return await db(store.vip_lookup, caller)


def code(value: Any, what: str) -> str:
    """A keyed code (card, department, doctor, ...) as a stripped string."""
    text = "" if value is None else str(value).strip()
    if not text:
        raise ActionFailure(f"{what} is empty")
    return text
