"""The action plugin contract.

Every action -- built-in or third-party -- is one object of this shape, registered
under the ``ivrflow.actions`` entry-point group.  The flow validator uses ``params``
(a JSON Schema, draft 2020-12), ``outcomes`` and ``sets``; the interpreter calls
``run``.

A plugin module looks like::

    from engine.actions import Action, Result

    async def run(ctx, params):
        ok = await ctx.store.something(params["x"])
        return Result("found" if ok else "not_found", {"answer": ok})

    ACTION = Action(
        name="acme.lookup",
        summary="Look something up in the ACME system.",
        params={"type": "object", "properties": {"x": {"type": "string"}},
                "required": ["x"], "additionalProperties": False},
        outcomes=("found", "not_found"),
        sets=("answer",),
        run=run,
    )

and is registered in the plugin's packaging metadata::

    [options.entry_points]
    ivrflow.actions =
        acme.lookup = acme_ivr.lookup:ACTION
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Protocol


@dataclass(frozen=True)
class Result:
    """What an action returns: one of its declared outcomes plus variables it set."""

    outcome: str
    variables: Mapping[str, Any] = field(default_factory=dict)


class ActionContext(Protocol):
    """What ``run`` receives.  Implemented by the runtime (see engine/runtime)."""

    call_id: str
    caller: str | None          # caller number, only if from a trusted source, else None
    caller_raw: str | None      # caller number as presented (untrusted)
    destination: str | None
    channel: Any                # the Channel interface (engine/runtime/channel.py)
    variables: Mapping[str, Any]
    store: Any                  # engine.store.Store or None when no database is configured
    clock: Any                  # engine.runtime.clock.Clock
    config: Mapping[str, Any]   # deployment configuration (policies, integrations)
    language: str

    def log(self, message: str, **fields: Any) -> None: ...


RunFn = Callable[[ActionContext, Mapping[str, Any]], Awaitable[Result]]


@dataclass(frozen=True)
class Action:
    name: str
    summary: str
    params: Mapping[str, Any]
    outcomes: tuple[str, ...]
    run: RunFn
    #: variables set: a tuple (set on every outcome) or outcome -> tuple
    sets: tuple[str, ...] | Mapping[str, tuple[str, ...]] = ()
    #: outcomes a flow may leave unhandled (they fall to ``default`` or the error handler)
    optional_outcomes: tuple[str, ...] = ()
    #: True when the action talks to the caller (plays/collects); such actions are
    #: not allowed in the on-hangup handler.
    interactive: bool = False
    #: for actions whose variables depend on their parameters (e.g. ``http`` with ``map``):
    #: params (as written in the flow) -> outcome -> variable names set
    dynamic_sets: Callable[[Mapping[str, Any]], Mapping[str, tuple[str, ...]]] | None = None
    #: params (rendered, as shown) -> the copy written into the call record, e.g. ``http``
    #: hides credential headers; ``run`` still gets the real values
    record_params: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("action name must be a non-empty string")
        if not self.outcomes:
            raise ValueError(f"action {self.name}: must declare at least one outcome")
        if "error" in self.outcomes:
            raise ValueError(f"action {self.name}: 'error' is reserved for exceptions")
