"""The interpreter: runs a compiled flow (engine.flow.ir) against a Channel.

One ``Interpreter`` per flow (reusable, shared by concurrent calls); ``run()`` executes one
call and returns a ``CallResult`` whose ``record`` is the call record.  The semantics are
specified in docs/runtime.md; each rule there has a test in tests/runtime/.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import functools
import logging
import re
import zoneinfo
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import jsonschema

from engine import templating
from engine.actions.base import Result
from engine.flow import ir

from .channel import (CallHangup, Channel, ChannelError, ConferenceFailed, ConferenceResult, PlayItem, RecordResult,
                      TransferFailed, TransferTarget)
from .record import MASK, CallRecord, jsonable
from .resolver import IdResolver, ResolveError, Resolver

__all__ = ["Interpreter", "Call", "CallResult", "MAX_CALL_DEPTH", "MAX_ERROR_CHAIN"]

log = logging.getLogger("ivrflow.runtime")

#: nested sub-flow calls allowed before the call is stopped as an error
MAX_CALL_DEPTH = 32
#: errors in a row (with no caller input in between) before the call ends with disposition error
MAX_ERROR_CHAIN = 3
#: cause used when the runtime hangs up because of an error, a dead end or the step limit
FAILURE_CAUSE = "NORMAL_TEMPORARY_FAILURE"


@dataclass
class CallResult:
    """The outcome of one call.  ``variables`` and ``raw_actions`` hold unmasked values: keep
    them in memory (tests); persist and print only ``record``."""

    record: CallRecord
    variables: dict
    raw_actions: list = field(default_factory=list)   # [action, params, outcome, variables set]

    @property
    def disposition(self) -> str | None:
        return self.record.disposition


class _Fault(Exception):
    """A runtime error in a state: routed to the error handler."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind          # action | params | template | prompt | outcome | channel
        self.message = message


@dataclass(frozen=True)
class _Jump:                      # to a main-flow state, unwinding sub-flow calls
    target: str
    via: str


@dataclass(frozen=True)
class _Enter:                     # into a sub-flow
    scope: str
    target: str


@dataclass(frozen=True)
class _Return:
    outcome: str


@dataclass(frozen=True)
class _End:
    disposition: str | None       # None: end of the hangup handler
    cause: str | None = None


@functools.lru_cache(maxsize=8192)
def _pos(p: Any) -> str:
    return str(p)


@functools.lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


class _Context:
    """The ActionContext handed to actions (engine.actions.base.ActionContext)."""

    __slots__ = ("call_id", "caller", "caller_raw", "destination", "channel", "variables", "store", "clock",
                 "config", "language", "languages", "state", "step", "_call")

    def __init__(self, call: "Call", state: ir.State):
        self._call = call
        self.call_id = call.channel.call_id
        # from the channel, never from a flow variable (a flow or its input cannot make a number trusted)
        self.caller = call.channel.caller_raw if call.channel.caller_trusted else None
        self.caller_raw = call.channel.caller_raw
        self.destination = call.channel.destination
        self.channel = call.channel
        self.variables = MappingProxyType(call.vars)
        self.store = call.interp.store
        self.clock = call.clock
        self.config = call.interp.config
        self.language = call.vars.get("lang")
        self.languages = call.flow.languages      # the flow's languages, the default first
        self.state = state.name
        self.step = call.steps                    # the step number of this state (unique in the call)

    def log(self, message: str, **fields: Any) -> None:
        c = self._call
        msg = c.redact(str(message))
        f = {k: c.redact(v) if isinstance(v, str) else jsonable(v) for k, v in fields.items()}
        c.rec.add("log", state=self.state, message=msg, fields=f)
        log.info("call %s: %s: %s %s", self.call_id, self.state, msg, f or "")


class Interpreter:
    """Executes one compiled flow; ``await run(channel, clock)`` per call."""

    def __init__(self, flow: ir.Flow, *, registry: Mapping[str, Any] | None = None, resolver: Resolver | None = None,
                 store: Any = None, config: Mapping[str, Any] | None = None, max_steps: int | None = None,
                 recordings_dir: str = "recordings", record_min_seconds: float = 1.0,
                 write_cdr: bool = True):
        if registry is None:
            from engine.actions import default_registry

            registry = default_registry()
        self.flow = flow
        self.registry = registry
        self.resolver = resolver or IdResolver()
        self.store = store
        self.config = MappingProxyType(dict(config or {}))
        self.max_steps = max_steps if max_steps is not None else flow.max_steps
        self.recordings_dir = recordings_dir.rstrip("/")
        self.record_min_seconds = record_min_seconds
        #: False: the caller of run() stores the call record itself (ivrflow serve: retries, spool)
        self.write_cdr = write_cdr
        self._validators: dict[str, Any] = {}
        self.flat_variables = all(x is None or isinstance(x, (str, int, float, bool)) for x in flow.variables.values())

    def validator(self, action: Any):
        v = self._validators.get(action.name)
        if v is None:
            v = self._validators[action.name] = jsonschema.Draft202012Validator(dict(action.params))
        return v

    async def run(self, channel: Channel, clock: Any, *, lang: str | None = None,
                  variables: Mapping[str, Any] | None = None) -> CallResult:
        """Run one call to its end.  Never raises for anything the call does (CancelledError
        excepted, after the record is closed with disposition 'aborted')."""
        call = self.new_call(channel, clock, lang=lang, variables=variables)
        await call.run()
        return call.result()

    def new_call(self, channel: Channel, clock: Any, *, lang: str | None = None,
                 variables: Mapping[str, Any] | None = None) -> "Call":
        """A call not yet started: ``await call.run()``, then ``call.result()``."""
        return Call(self, channel, clock, lang, variables)


class Call:
    """The state of one running call (see Interpreter.new_call)."""

    def __init__(self, interp: Interpreter, channel: Channel, clock: Any, lang: str | None,
                 variables: Mapping[str, Any] | None):
        flow = interp.flow
        self.interp = interp
        self.flow = flow
        self.channel = channel
        self.clock = clock
        lang = lang or (flow.languages[0] if flow.languages else "zh-CN")
        now = clock.now()
        v: dict[str, Any] = dict(flow.variables) if interp.flat_variables else copy.deepcopy(dict(flow.variables))
        v.update({
            "caller": channel.caller_raw if channel.caller_trusted else None,
            "caller_raw": channel.caller_raw,
            "destination": channel.destination,
            "call_id": channel.call_id,
            "lang": lang,
            "channel": MappingProxyType(channel.variables),
            "now": now,
            "today": now.date(),
            "flow": flow.name,
            "last_key": None,
            "hangup_cause": None,
        })
        if variables:
            v.update(variables)
        self.vars = v
        self.secret_names: set[str] = set()
        self.rec = CallRecord(call_id=channel.call_id, flow=flow.name, flow_file=flow.file,
                              flow_sha256=flow.source_sha256, channel=channel.name, caller=channel.caller_raw,
                              caller_trusted=channel.caller_trusted, destination=channel.destination,
                              lang=lang, started_at=now, clock=clock)
        self.stack: list[ir.State] = []
        self.steps = 0
        self.error_chain = 0
        self.in_handler = False
        self.flow_ending = False          # a hangup state has started: the flow ends the call
        self.record_seq = 0
        self.raw_actions: list = []
        self.current: ir.State | None = None

    def result(self) -> CallResult:
        return CallResult(self.rec, self.vars, self.raw_actions)

    # -- masking -------------------------------------------------------------------------------
    def secret_values(self) -> list[str]:
        out = []
        for n in self.secret_names:
            val = self.vars.get(n)
            if isinstance(val, (str, int)) and not isinstance(val, bool) and len(str(val)) >= 3:
                out.append(str(val))
        return out

    def redact(self, text: str) -> str:
        if not self.secret_names:
            return text
        for s in sorted(self.secret_values(), key=len, reverse=True):
            text = text.replace(s, MASK * 4)
        return text

    def masked_vars(self) -> dict:
        out = {}
        for k, val in self.vars.items():
            if k in ("channel", "now", "today"):
                continue
            out[k] = MASK * 4 if k in self.secret_names and val is not None else jsonable(val)
        return out

    # -- evaluation ------------------------------------------------------------------------------
    def value(self, v: Any) -> Any:
        if isinstance(v, ir.Template):
            try:
                if v.expression is not None:
                    return templating.evaluate(v.expression, self.vars)
                if v.is_template:
                    return templating.render(v.source, self.vars)
            except templating.TemplateError as e:
                raise _Fault("template", f"template {v.source!r}: {e.message}") from None
            except Exception as e:  # noqa: BLE001 - any jinja runtime error is the template's fault
                raise _Fault("template", f"template {v.source!r}: {type(e).__name__}: {e}") from None
            return v.source
        return v

    def reads_secret(self, v: Any) -> bool:
        return isinstance(v, ir.Template) and bool(self.secret_names) and bool(v.variables & self.secret_names)

    def expr(self, e: ir.Expr) -> Any:
        try:
            return templating.evaluate(e.source, self.vars)
        except templating.TemplateError as x:
            raise _Fault("template", f"expression {e.source!r}: {x.message}") from None
        except Exception as x:  # noqa: BLE001
            raise _Fault("template", f"expression {e.source!r}: {type(x).__name__}: {x}") from None

    def params(self, p: Any) -> tuple[Any, Any]:
        """Render action params: (values, masked copy for the record)."""
        if isinstance(p, Mapping):
            vals, masked = {}, {}
            for k, x in p.items():
                vals[k], masked[k] = self.params(x)
            return vals, masked
        if isinstance(p, (tuple, list)):
            pairs = [self.params(x) for x in p]
            return [a for a, _ in pairs], [b for _, b in pairs]
        val = self.value(p)
        return val, (MASK * 4 if self.reads_secret(p) else jsonable(val))

    # -- prompts -----------------------------------------------------------------------------------
    async def play_item(self, pi: ir.PromptItem) -> PlayItem:
        lang = self.vars.get("lang") or ""
        try:
            if pi.kind == "prompt":
                pv = {k: self.value(x) for k, x in pi.vars.items()}
                variables = {**self.vars, **pv} if pv else self.vars
                return await self.interp.resolver.prompt(lang, pi.value, variables)
            if pi.kind == "file":
                path = self.value(ir.Template(pi.value, is_template=True, expression=None)) \
                    if templating.is_template(pi.value) else pi.value
                return PlayItem(pi.text, str(path), None, None, lang, "file")
            return PlayItem(None, None, pi.value, None, lang, "tone")
        except ResolveError as e:
            raise _Fault("prompt", str(e)) from None

    async def play(self, state: ir.State, items: tuple, barge_in: bool, secret: bool = False) -> str | None:
        """Play prompt items one by one, recording each; stop at a barge-in key."""
        ch = self.channel
        key = None
        for pi in items:
            item = await self.play_item(pi)
            text = self.redact(item.text) if item.text and self.secret_names else item.text
            ev = self.rec.add("prompt", state=state.name, prompt=item.prompt_id, text=text,
                              lang=item.lang, source=item.source, pos=_pos(pi.position))
            if item.tone is not None:
                ev["tone"] = item.tone
            if item.path is not None and item.source == "file":
                ev["file"] = item.path
            if key is not None or (barge_in and ch.keys):
                ev["skipped"] = True          # the caller typed ahead: not heard
                key = key or ch.keys.peek()
                continue
            k = await ch.play((item,), barge_in)
            if k is not None and barge_in:
                ev["interrupted"] = MASK if secret else k
                key = k
        return key

    # -- the main loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        rec, ch = self.rec, self.channel
        try:
            try:
                await ch.answer()
                end = await self.execute("", self.flow.start)
            except CallHangup as h:
                end = await self.caller_hung_up(h)
            except _Fault as f:       # raised outside a state (cannot happen in practice)
                end = self.internal_error(f"{f.kind}: {f.message}")
            except Exception as e:  # noqa: BLE001 - a bug must end the call cleanly, with a record
                log.exception("call %s: internal error", ch.call_id)
                end = self.internal_error(f"{type(e).__name__}: {e}")
            await self.finish(end)
        except asyncio.CancelledError:
            rec.add("error", kind="aborted", message="the runtime was stopped during the call")
            rec.disposition = "aborted"
            rec.hangup_by, rec.hangup_cause = "flow", "SYSTEM_SHUTDOWN"
            self.close_record()
            await self.write_cdr()
            raise
        await self.write_cdr()

    async def write_cdr(self) -> None:
        """Store the call-detail record (``Store.record_call``) when the call has a store.
        A failure is logged; it never changes how the call ended."""
        store = self.interp.store
        if store is None or not hasattr(store, "record_call") or not getattr(self.interp, "write_cdr", True):
            return
        try:
            await asyncio.to_thread(store.record_call, **self.rec.cdr())
        except Exception as e:  # noqa: BLE001 - the call is over; losing its CDR must not crash the runtime
            log.error("call %s: cannot store the call record: %s: %s", self.channel.call_id, type(e).__name__, e)

    def internal_error(self, message: str) -> _End:
        s = self.current
        self.rec.error = {"kind": "internal", "message": self.redact(message),
                          "state": s.name if s else None, "pos": _pos(s.position) if s else None}
        self.rec.add("error", kind="internal", message=self.rec.error["message"],
                     state=s.name if s else None, pos=_pos(s.position) if s else None)
        return _End("error", FAILURE_CAUSE)

    async def caller_hung_up(self, h: CallHangup) -> _End:
        rec = self.rec
        cause = h.cause or "NORMAL_CLEARING"
        self.vars["hangup_cause"] = cause
        rec.add("hangup", by="caller", cause=cause, state=self.current.name if self.current else None)
        rec.hangup_by, rec.hangup_cause = "caller", cause
        if self.flow_ending:
            return _End("completed", cause)
        if self.flow.on_hangup and not self.in_handler:
            self.in_handler = True
            self.stack.clear()
            rec.add("jump", state=self.current.name if self.current else None, scope="", via="on.hangup",
                    to=self.flow.on_hangup)
            try:
                await self.execute("", self.flow.on_hangup)
            except CallHangup:
                pass
            except Exception as e:  # noqa: BLE001
                log.exception("call %s: internal error in the hangup handler", self.channel.call_id)
                self.internal_error(f"{type(e).__name__}: {e}")
        return _End("hangup", cause)

    async def finish(self, end: _End) -> None:
        rec, ch = self.rec, self.channel
        disp = end.disposition
        rec.disposition = disp
        if disp not in ("hangup", "completed", "transferred"):
            cause = end.cause or FAILURE_CAUSE
            if rec.hangup_by is None:
                rec.hangup_by, rec.hangup_cause = "flow", cause
                rec.add("hangup", by="flow", cause=cause, state=self.current.name if self.current else None)
            if not ch.hungup:
                try:
                    await ch.hangup(cause)
                except CallHangup:
                    pass
                except Exception:  # noqa: BLE001 - the call is over either way
                    log.exception("call %s: hangup failed", ch.call_id)
        self.close_record()

    def close_record(self) -> None:
        rec = self.rec
        rec.duration = rec.elapsed()
        rec.ended_at = rec.started_at + dt.timedelta(seconds=rec.duration)
        rec.steps = self.steps
        rec.final_state = self.current.name if self.current else None
        rec.variables = self.masked_vars()

    def lookup(self, scope: str, name: str) -> ir.State | None:
        states = self.flow.states if not scope else self.flow.subflows[scope].states
        return states.get(name)

    async def execute(self, scope: str, name: str) -> _End:
        """Run states from (scope, name) until the call (or the hangup handler) ends."""
        flow, ch, rec = self.flow, self.channel, self.rec
        handler = self.in_handler
        while True:
            if ch.hungup and not handler:
                raise CallHangup(ch.hangup_cause or "NORMAL_CLEARING")
            state = self.lookup(scope, name)
            if state is None:        # the compiler prevents it; a flow built by hand might not
                return self.dead_end(f"state '{name}' does not exist", None)
            self.current = state
            if self.steps >= self.interp.max_steps:
                rec.add("error", kind="step_limit", state=state.name, scope=scope, pos=_pos(state.position),
                        message=f"more than {self.interp.max_steps} steps: stopped (runaway loop?)")
                if handler:
                    return _End(None)
                rec.error = {"kind": "step_limit", "state": state.name, "pos": _pos(state.position),
                             "message": f"step limit {self.interp.max_steps} reached"}
                return _End("step_limit", FAILURE_CAUSE)
            if flow.max_duration is not None and not handler and rec.elapsed() > flow.max_duration:
                rec.add("error", kind="time_limit", state=state.name, scope=scope, pos=_pos(state.position),
                        message=f"the call lasted more than {flow.max_duration:g} s")
                rec.error = {"kind": "time_limit", "state": state.name, "pos": _pos(state.position),
                             "message": f"max_duration {flow.max_duration:g} s reached"}
                return _End("time_limit", "ALLOTTED_TIMEOUT")
            self.steps += 1
            now = self.clock.now()
            self.vars["now"] = now
            self.vars["today"] = now.date()
            rec.add("state", state=state.name, scope=scope, kind=state.kind, pos=_pos(state.position))
            if handler and state.kind in ir.INTERACTIVE_KINDS:
                rec.add("error", kind="handler", state=state.name, scope=scope, pos=_pos(state.position),
                        message=f"a {state.kind} state cannot run after the hangup: handler stopped")
                return _End(None)
            try:
                res = await getattr(self, "k_" + state.kind)(state)
            except _Fault as f:
                res = self.fault(state, f)
            except ChannelError as e:          # the platform failed (not a hangup): an error like any other
                res = self.fault(state, _Fault("channel", f"{type(e).__name__}: {e}"))
            # where next
            if isinstance(res, str):
                nxt = self.resolve(state, res)
                if isinstance(nxt, _End):
                    return nxt
                if isinstance(nxt, _Jump):
                    res = nxt
                else:
                    name = nxt
                    continue
            if isinstance(res, _Jump):
                self.stack.clear()
                scope, name = "", res.target
                rec.add("jump", state=state.name, scope=state.scope, via=res.via, to=res.target)
                continue
            if isinstance(res, _Enter):
                scope, name = res.scope, res.target
                continue
            if isinstance(res, _Return):
                if not self.stack:
                    return self.dead_end(f"'return: {res.outcome}' outside a sub-flow", state)
                caller = self.stack.pop()
                rec.add("return", state=state.name, scope=state.scope, outcome=res.outcome, to=caller.name)
                self.current = caller
                nxt = self.resolve(caller, res.outcome)
                if isinstance(nxt, _End):
                    return nxt
                if isinstance(nxt, _Jump):
                    self.stack.clear()
                    rec.add("jump", state=caller.name, scope=caller.scope, via=nxt.via, to=nxt.target)
                    scope, name = "", nxt.target
                else:
                    scope, name = caller.scope, nxt
                continue
            if isinstance(res, _End):
                return res
            raise RuntimeError(f"state kind {state.kind} returned {res!r}")  # pragma: no cover

    def resolve(self, state: ir.State, outcome: str) -> str | _Jump | _End:
        """The target of ``outcome`` (recorded as a transition), or a jump / dead end."""
        edge = None
        target = None
        trans = state.transitions
        for t in trans:
            if t.outcome == outcome:
                edge, target = outcome, t.target
                break
        if target is None and outcome == "holiday":
            for t in trans:
                if t.outcome == "closed":
                    edge, target = "closed", t.target
                    break
        if target is None and outcome != "error":
            for t in trans:
                if t.outcome == "default":
                    edge, target = "default", t.target
                    break
        if target is None:
            if outcome == "failed" and state.kind in ("menu", "collect") and self.flow.on_failed and not self.in_handler:
                return _Jump(self.flow.on_failed, "on.failed")
            return self.dead_end(f"outcome '{outcome}' of state '{state.name}' has no transition", state)
        self.rec.add("transition", state=state.name, scope=state.scope, outcome=outcome, edge=edge, to=target)
        return target

    def dead_end(self, message: str, state: ir.State | None) -> _End:
        pos = _pos(state.position) if state else None
        self.rec.add("error", kind="dead_end", state=state.name if state else None, pos=pos, message=message)
        if self.in_handler:
            return _End(None)
        self.rec.error = {"kind": "dead_end", "state": state.name if state else None, "pos": pos, "message": message}
        return _End("dead_end", FAILURE_CAUSE)

    def fault(self, state: ir.State, f: _Fault) -> str | _Jump | _End:
        """Record and log an error in ``state``; choose where the call goes."""
        msg = self.redact(f.message)
        pos = _pos(state.position)
        self.rec.add("error", kind=f.kind, state=state.name, scope=state.scope, pos=pos, message=msg)
        log.warning("call %s: %s error in state %s at %s: %s", self.channel.call_id, f.kind,
                    state.name if not state.scope else f"{state.scope}.{state.name}", pos, msg)
        self.error_chain += 1
        if self.in_handler:
            return _End(None)
        if state.kind == "action" and any(t.outcome == "error" for t in state.transitions) \
                and self.error_chain <= MAX_ERROR_CHAIN:
            return "error"
        on_error = self.flow.on_error
        if on_error and self.error_chain <= MAX_ERROR_CHAIN and not (state.scope == "" and state.name == on_error):
            return _Jump(on_error, "on.error")
        why = "no error handler" if not on_error else (
            "the error handler failed" if state.name == on_error and not state.scope
            else f"{self.error_chain} errors in a row")
        self.rec.error = {"kind": f.kind, "state": state.name, "pos": pos, "message": msg, "unhandled": why}
        return _End("error", FAILURE_CAUSE)

    # -- state kinds -----------------------------------------------------------------------------
    async def k_play(self, s: ir.State):
        await self.play(s, s.spec.prompts, True)
        return "default"

    async def k_say(self, s: ir.State):
        texts = s.spec.texts
        lang = self.vars.get("lang")
        t = texts.get(lang) if isinstance(lang, str) else None
        if t is None:
            t = texts.get("*")
        if t is None and isinstance(lang, str):
            base = lang.split("-")[0]
            t = next((x for k, x in texts.items() if k.split("-")[0] == base), None)
        if t is None:
            raise _Fault("template", f"say: no text for language '{lang}' (has: {', '.join(texts)})")
        text = self.value(t)
        text = "" if text is None else str(text)
        if not text.strip():
            raise _Fault("template", "say: the text is empty")
        try:
            item = await self.interp.resolver.text(lang, text)
        except ResolveError as e:
            raise _Fault("prompt", str(e)) from None
        ev = self.rec.add("prompt", state=s.name, prompt=None, text=self.redact(item.text or ""), lang=item.lang,
                          source=item.source,
                          pos=_pos(s.position))
        if self.channel.keys:
            ev["skipped"] = True
        else:
            k = await self.channel.play((item,), True)
            if k is not None:
                ev["interrupted"] = k
        return "default"

    def _input(self, s: ir.State, attempt: int, keys: str, result: str, secret: bool, reason: str,
               digits: str | None = None) -> None:
        if secret:
            shown = "".join(MASK if c.isdigit() or c in "*ABCD" else c for c in keys)
            dshown = MASK * len(digits) if digits is not None else None
        else:
            shown, dshown = keys, digits
        ev = self.rec.add("input", state=s.name, scope=s.scope, keys=shown, result=result, reason=reason,
                          attempt=attempt)
        if dshown is not None:
            ev["digits"] = dshown

    def _global_keys(self, exclude: Mapping[str, str] | None = None) -> Mapping[str, str]:
        g = self.flow.global_keys
        if not g:
            return g
        if exclude:
            return {k: v for k, v in g.items() if k not in exclude}
        return g

    async def k_menu(self, s: ir.State):
        sp: ir.Menu = s.spec
        ch = self.channel
        gkeys = self._global_keys(sp.options)
        for attempt in range(1, max(1, sp.attempts) + 1):
            await self.play(s, sp.prompts, True)
            r = await ch.collect((), min_digits=1, max_digits=1, terminator=None, first_timeout=sp.timeout,
                                 inter_digit=0.0)
            if r.reason == "no_input":
                self._input(s, attempt, "", "no_input", False, r.reason)
                await self.play(s, sp.no_input, True)
                continue
            k = r.digits
            self.vars["last_key"] = k
            if k in sp.options:
                self._input(s, attempt, k, "ok", False, r.reason)
                self.error_chain = 0
                if sp.into:
                    self.vars[sp.into] = k
                return k
            if k in gkeys:
                self._input(s, attempt, k, "global_key", False, r.reason)
                return _Jump(gkeys[k], f"key {k}")
            self._input(s, attempt, k, "invalid", False, r.reason)
            await self.play(s, sp.invalid, True)
        return "failed"

    async def k_collect(self, s: ir.State):
        sp: ir.Collect = s.spec
        ch = self.channel
        secret = sp.mask
        gkeys = self._global_keys() if sp.keys else {}
        pattern = _regex(sp.pattern) if sp.pattern else None
        for attempt in range(1, max(1, sp.attempts) + 1):
            await self.play(s, sp.prompts, True, secret)
            r = await ch.collect((), min_digits=sp.min_digits, max_digits=sp.max_digits,
                                 terminator=sp.terminator or None, first_timeout=sp.timeout,
                                 inter_digit=sp.inter_digit, stop_keys=gkeys)
            if r.reason == "stop_key":
                k = r.keys
                self.vars["last_key"] = k
                self._input(s, attempt, k, "global_key", False, r.reason)
                return _Jump(gkeys[k], f"key {k}")
            if r.reason == "no_input":
                self._input(s, attempt, "", "no_input", secret, r.reason)
                await self.play(s, sp.no_input, True)
                continue
            d = r.digits
            if secret:
                self.vars["last_key"] = sp.terminator if r.reason == "terminator" else None
            else:
                self.vars["last_key"] = r.keys[-1]
            ok = sp.min_digits <= len(d) <= sp.max_digits and (pattern is None or pattern.fullmatch(d))
            if ok:
                self._input(s, attempt, r.keys, "ok", secret, r.reason, d)
                self.error_chain = 0
                self.vars[sp.into] = d
                if secret:
                    self.secret_names.add(sp.into)
                else:
                    self.secret_names.discard(sp.into)
                return "ok"
            self._input(s, attempt, r.keys, "invalid", secret, r.reason, d)
            await self.play(s, sp.invalid, True)
        return "failed"

    async def k_branch(self, s: ir.State):
        for i, (e, _target, _pos) in enumerate(s.spec.cases):
            if self.expr(e):
                return f"case{i + 1}"
        return "default"

    async def k_set(self, s: ir.State):
        shown = {}
        for name, v in s.spec.assignments:
            val = self.value(v)
            self.vars[name] = val
            if self.reads_secret(v):
                self.secret_names.add(name)
            else:
                self.secret_names.discard(name)
            shown[name] = MASK * 4 if name in self.secret_names else jsonable(val)
        self.rec.add("set", state=s.name, scope=s.scope, values=shown)
        return "default"

    async def k_action(self, s: ir.State):
        sp: ir.ActionCall = s.spec
        action = self.interp.registry.get(sp.name)
        if action is None:
            raise _Fault("action", f"unknown action '{sp.name}'")
        params, shown = self.params(sp.params)
        if action.record_params is not None:
            shown = action.record_params(shown)
        ev = self.rec.add("action", state=s.name, scope=s.scope, action=sp.name, params=shown)
        raw = [sp.name, params, "error", {}]
        self.raw_actions.append(raw)
        v = self.interp.validator(action)
        if not v.is_valid(params):
            err = next(iter(sorted(v.iter_errors(params), key=lambda e: list(e.absolute_path))))
            where = "/".join(map(str, err.absolute_path)) or "params"
            ev["outcome"] = "error"
            raise _Fault("params", f"action {sp.name}: parameter {where}: {err.message}")
        try:
            result = await action.run(_Context(self, s), params)
        except (CallHangup, asyncio.CancelledError):
            ev["outcome"] = raw[2] = "hangup"
            raise
        except Exception as e:  # noqa: BLE001 - any failure of an action is routed to on.error
            ev["outcome"] = "error"
            log.debug("call %s: action %s raised", self.channel.call_id, sp.name, exc_info=True)
            raise _Fault("action", f"action {sp.name} raised {type(e).__name__}: {e}") from None
        if not isinstance(result, Result):
            ev["outcome"] = "error"
            raise _Fault("action", f"action {sp.name} returned {type(result).__name__}, not a Result")
        if result.outcome not in action.outcomes:
            ev["outcome"] = "error"
            raise _Fault("outcome", f"action {sp.name} returned outcome '{result.outcome}', "
                                    f"not one of its outcomes ({', '.join(action.outcomes)})")
        newvars = dict(result.variables or {})
        self.vars.update(newvars)
        for k in newvars:
            self.secret_names.discard(k)
        ev["outcome"] = raw[2] = result.outcome
        raw[3] = newvars
        if newvars:
            ev["set"] = {k: jsonable(x) for k, x in newvars.items()}
        return result.outcome

    async def k_transfer(self, s: ir.State):
        sp: ir.Transfer = s.spec
        to = self.value(sp.to) if sp.to is not None else None
        prio = self.value(sp.priority)
        try:
            prio = int(prio)
        except (TypeError, ValueError):
            raise _Fault("template", f"transfer priority {prio!r} is not a number") from None
        if not 0 <= prio <= 100:
            raise _Fault("template", f"transfer priority {prio} is outside 0-100")
        if to is not None:
            to = str(to).strip()
            if not to:
                raise _Fault("template", "transfer: the destination is empty")
        target = TransferTarget(to, sp.queue, prio, sp.context)
        await self.play(s, sp.announce, False)
        ev = self.rec.add("transfer", state=s.name, scope=s.scope, target=target.describe(),
                          extension=to, queue=sp.queue, priority=prio)
        try:
            await self.channel.transfer(target)
        except TransferFailed as e:
            ev["result"] = "failed"
            ev["reason"] = str(e)
            return "failed"
        ev["result"] = "ok"
        return _End("transferred")

    async def k_conference(self, s: ir.State):
        sp: ir.Conference = s.spec
        room = self.value(sp.room)
        room = "" if room is None else str(room).strip()
        if not room:
            raise _Fault("template", "conference: the room name is empty")
        limit = None
        if sp.limit is not None:
            lv = self.expr(sp.limit)
            if lv is not None:
                try:
                    limit = float(lv)
                except (TypeError, ValueError):
                    raise _Fault("template", f"conference limit {lv!r} is not a number of seconds") from None
        warning = tuple([await self.play_item(pi) for pi in sp.warning])
        t0 = self.rec.elapsed()
        ev = self.rec.add("conference", state=s.name, scope=s.scope, room=room, role=sp.role, limit=limit)
        if limit is not None and limit <= 0:
            ev["result"] = "failed"
            ev["reason"] = "no time allowed (limit <= 0)"
            return "failed"
        try:
            res = await self.channel.conference(room, role=sp.role, profile=sp.profile, limit=limit,
                                                warn_before=sp.warn_before, warning=warning)
        except ConferenceFailed as e:
            ev["result"] = "failed"
            ev["reason"] = str(e)
            return "failed"
        except CallHangup as h:
            if isinstance(h.partial, ConferenceResult):
                self._conference_done(s, ev, h.partial, t0, limit, warning, "hangup")
            raise
        self._conference_done(s, ev, res, t0, limit, warning, res.reason)
        return "done"

    def _conference_done(self, s, ev, res: ConferenceResult, t0, limit, warning, result) -> None:
        secs = round(float(res.seconds), 3)
        ev["seconds"] = secs
        ev["result"] = result
        if limit is not None and warning:
            at = max(0.0, limit - s.spec.warn_before)
            if secs >= at:
                ev["warned"] = True
                for item in warning:
                    self.rec.events.append({"t": round(t0 + at, 3), "type": "prompt", "state": s.name,
                                            "prompt": item.prompt_id, "text": item.text, "lang": item.lang,
                                            "source": item.source, "pos": _pos(s.position), "during": "conference"})
        if s.spec.into:
            self.vars[s.spec.into] = secs

    async def k_record(self, s: ir.State):
        sp: ir.Record = s.spec
        await self.play(s, sp.prompts, False)
        if sp.beep:
            self.rec.add("prompt", state=s.name, prompt=None, text=None, lang=self.vars.get("lang"), source="tone",
                         tone="beep", pos=_pos(s.position))
            await self.channel.play((PlayItem(None, None, "beep", None, self.vars.get("lang"), "tone"),), False)
        self.record_seq += 1
        path = f"{self.interp.recordings_dir}/{self.channel.call_id}-{s.name}-{self.record_seq}.wav"
        ev = self.rec.add("record", state=s.name, scope=s.scope, path=path)
        try:
            r = await self.channel.record(path, max_seconds=sp.max_seconds, silence_seconds=sp.silence_seconds,
                                          terminator=sp.terminator or None)
        except CallHangup as h:
            if isinstance(h.partial, RecordResult):
                self._recorded(s, ev, h.partial)
            raise
        outcome = self._recorded(s, ev, r)
        if outcome == "ok":
            self.error_chain = 0
        return outcome

    def _recorded(self, s: ir.State, ev: dict, r: RecordResult) -> str:
        outcome = "ok" if r.seconds >= self.interp.record_min_seconds else "empty"
        ev.update(path=r.path, seconds=round(r.seconds, 3), reason=r.reason, outcome=outcome)
        self.vars[s.spec.into] = r.path
        return outcome

    async def k_call(self, s: ir.State):
        sf = self.flow.subflows.get(s.spec.subflow)
        if sf is None:
            return self.dead_end(f"unknown sub-flow '{s.spec.subflow}'", s)
        if len(self.stack) >= MAX_CALL_DEPTH:
            raise _Fault("call", f"sub-flow calls nested deeper than {MAX_CALL_DEPTH}")
        self.stack.append(s)
        self.rec.add("call", state=s.name, scope=s.scope, subflow=sf.name)
        return _Enter(sf.name, sf.start)

    async def k_return(self, s: ir.State):
        return _Return(s.spec.outcome)

    async def k_hours(self, s: ir.State):
        sp: ir.Hours = s.spec
        local = self.clock.now().astimezone(zoneinfo.ZoneInfo(sp.timezone))
        d, t, wd = local.date(), local.time().replace(tzinfo=None), local.weekday()
        if any(a <= d <= b for a, b in sp.holidays):
            outcome = "holiday"
        elif any(day == wd and t0 <= t < t1 for day, t0, t1 in sp.weekly):
            outcome = "open"
        else:
            outcome = "closed"
        self.rec.add("hours", state=s.name, scope=s.scope, local=local.strftime("%a %Y-%m-%d %H:%M"),
                     outcome=outcome)
        return outcome

    async def k_hangup(self, s: ir.State):
        sp: ir.Hangup = s.spec
        if self.in_handler:
            return _End(None)
        self.flow_ending = True
        await self.play(s, sp.prompts, False)
        self.rec.add("hangup", by="flow", cause=sp.cause, state=s.name)
        self.rec.hangup_by, self.rec.hangup_cause = "flow", sp.cause
        self.vars["hangup_cause"] = sp.cause
        await self.channel.hangup(sp.cause)
        return _End("completed", sp.cause)

