"""The call record: what every call leaves behind.

One ``CallRecord`` per call: header fields (who, when, how it ended) and a list of events in
order, each a plain dict with ``t`` (seconds since the call started) and ``type``.  The same
record feeds the call-detail record (``to_dict()`` is JSON-ready), the simulator transcript
(``engine.runtime.transcript``) and coverage.  Masked input never enters it.
Format: docs/runtime.md, "The call record".
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, Iterator, Mapping

__all__ = ["CallRecord", "DISPOSITIONS", "MASK", "jsonable"]

#: how a call ended (``CallRecord.disposition``)
DISPOSITIONS = {
    "completed": "the flow ended the call itself with a hangup state",
    "transferred": "the call was handed to an extension or a queue",
    "hangup": "the call was hung up from outside the flow (caller, network, time allotted)",
    "error": "an error had no handler (or its handler failed again)",
    "step_limit": "the flow ran more states than limits.max_steps (runaway loop guard)",
    "time_limit": "the call lasted longer than limits.max_duration",
    "dead_end": "an outcome had no transition: the flow stopped with nowhere to go",
    "aborted": "the runtime itself was stopped (shutdown) during the call",
}

MASK = "*"


def jsonable(v: Any) -> Any:
    """A JSON-ready copy of a variable value."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, Mapping):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [jsonable(x) for x in v]
    return str(v)


class CallRecord:
    """Header + events.  ``add`` is the only way events get in."""

    def __init__(self, *, call_id: str, flow: str, flow_file: str, flow_sha256: str, channel: str,
                 caller: str | None, caller_trusted: bool, destination: str | None, lang: str,
                 started_at: dt.datetime, clock: Any):
        self.call_id = call_id
        self.flow = flow
        self.flow_file = flow_file
        self.flow_sha256 = flow_sha256
        self.channel = channel
        self.caller = caller
        self.caller_trusted = caller_trusted
        self.destination = destination
        self.lang = lang
        self.started_at = started_at
        self.ended_at: dt.datetime | None = None
        self.duration: float = 0.0
        self.disposition: str | None = None
        self.hangup_cause: str | None = None
        self.hangup_by: str | None = None          # caller | flow | None
        self.final_state: str | None = None
        self.steps = 0
        self.error: dict | None = None
        self.variables: dict[str, Any] = {}
        self.events: list[dict] = []
        self._clock = clock
        self._t0 = clock.monotonic()

    def elapsed(self) -> float:
        return self._clock.monotonic() - self._t0

    def add(self, type_: str, **fields: Any) -> dict:
        ev = {"t": round(self._clock.monotonic() - self._t0, 3), "type": type_}
        ev.update(fields)
        self.events.append(ev)
        return ev

    # -- views ---------------------------------------------------------------------------------
    def of_type(self, type_: str) -> Iterator[dict]:
        return (e for e in self.events if e["type"] == type_)

    def states(self) -> list[str]:
        """Visited states in order, sub-flow states as ``subflow.state``."""
        return [(f"{e['scope']}.{e['state']}" if e["scope"] else e["state"]) for e in self.of_type("state")]

    def prompts(self) -> list[dict]:
        """Prompts actually heard (type-ahead skipped ones excluded)."""
        return [e for e in self.of_type("prompt") if not e.get("skipped")]

    def actions(self) -> list[dict]:
        return list(self.of_type("action"))

    def cdr(self) -> dict:
        """Keyword arguments for ``Store.record_call`` (the call-detail record)."""
        return {"call_id": self.call_id, "flow": self.flow, "started_at": self.started_at,
                "caller": self.caller, "destination": self.destination, "ended_at": self.ended_at,
                "disposition": self.disposition, "trace": self.to_dict()}

    def to_dict(self) -> dict:
        return {
            "call_id": self.call_id,
            "flow": self.flow,
            "flow_file": self.flow_file,
            "flow_sha256": self.flow_sha256,
            "channel": self.channel,
            "caller": self.caller,
            "caller_trusted": self.caller_trusted,
            "destination": self.destination,
            "lang": self.lang,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration": round(self.duration, 3),
            "disposition": self.disposition,
            "hangup_cause": self.hangup_cause,
            "hangup_by": self.hangup_by,
            "final_state": self.final_state,
            "steps": self.steps,
            "error": self.error,
            "variables": self.variables,
            "events": self.events,
        }
