"""``ivrflow explore``: walk a flow with every meaningful input, breadth first, and report the
paths that crash, hit the step limit, or end without a disposition.

Each path is a list of choices made where the IVR waits for the caller (a menu key, a valid
or invalid entry, a timeout, a hangup...).  Paths are replayed from the start (the interpreter
is deterministic on the simulated channel); a decision point already reached in the same
configuration (state, sub-flow stack, attempt, variables, typed-ahead keys) is not expanded
again, so each problem is reported once, with the shortest input that reaches it -- directly
usable as ``ivrflow simulate FLOW --input "..."``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

from engine.flow import ir
from engine.runtime.clock import VirtualClock
from engine.runtime.interpreter import Interpreter
from engine.runtime.script import Token, format_script
from engine.runtime.sim import ScriptExhausted, SimChannel, SimOptions

from .coverage import Coverage

__all__ = ["Explorer", "ExploreReport", "Problem", "valid_entry"]

#: error kinds that are the flow author's bug even when the error handler takes over
FLOW_BUG_KINDS = frozenset({"template", "params", "prompt", "outcome", "internal", "call", "handler"})

Choice = tuple  # tuple[Token, ...]


@dataclass
class Problem:
    kind: str                 # unhandled_error | flow_error | step_limit | dead_end | time_limit
    state: str | None
    pos: str | None
    message: str
    script: str               # the shortest input found
    paths: int = 1            # how many explored paths hit it

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class ExploreReport:
    flow: ir.Flow
    depth: int
    runs: int = 0
    decision_points: int = 0
    merged: int = 0
    cut: int = 0
    truncated: bool = False
    seconds: float = 0.0
    ends: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    coverage: Coverage | None = None
    notes: list[str] = field(default_factory=list)

    def unreached(self) -> list[tuple[str, str]]:
        cov = self.coverage
        out = []
        for (scope, name), s in cov.states.items():
            if not cov.state_hits[(scope, name)]:
                out.append((f"{scope}.{name}" if scope else name, str(s.position)))
        return out

    def to_json(self) -> dict:
        return {
            "flow": self.flow.name, "file": self.flow.file, "depth": self.depth, "runs": self.runs,
            "decision_points": self.decision_points, "merged": self.merged, "cut_at_depth": self.cut,
            "truncated": self.truncated, "seconds": round(self.seconds, 3), "ends": dict(self.ends),
            "problems": [p.to_json() for p in self.problems],
            "unreached": [{"state": s, "pos": p} for s, p in self.unreached()],
            "notes": self.notes,
        }


def _pattern_ok(pattern: str | None, s: str) -> bool:
    return pattern is None or re.fullmatch(pattern, s) is not None


def valid_entry(spec: ir.Collect) -> str | None:
    """Some digits a collect accepts, or None if none of the usual candidates fit its pattern."""
    lo, hi = spec.min_digits, spec.max_digits
    cands = []
    for n in sorted({lo, min(max(lo, 4), hi), hi, min(lo + 1, hi), min(max(lo, 8), hi)}):
        cands += ["123456789012345678901234"[:n], "1" * n, "0" * n, "9" * n, "2" * n]
        if n == 8:
            cands += ["19800101", "20000101", "10000001"]
    for c in cands:
        if lo <= len(c) <= hi and _pattern_ok(spec.pattern, c):
            return c
    return None


def _invalid_entry(spec: ir.Collect) -> str | None:
    if spec.min_digits > 1:
        return "1" * (spec.min_digits - 1)
    if spec.pattern:
        for c in ("0" * spec.min_digits, "9" * spec.min_digits, "1" * spec.min_digits):
            if not _pattern_ok(spec.pattern, c):
                return c
    return None


def _entry(spec: ir.Collect, digits: str) -> Choice:
    if spec.terminator and len(digits) < spec.max_digits:
        return (Token("keys", keys=digits + spec.terminator),)
    if len(digits) < spec.max_digits:
        return (Token("keys", keys=digits), Token("timeout"))
    return (Token("keys", keys=digits),)


class Explorer:
    def __init__(self, flow: ir.Flow, *, registry: Mapping[str, Any], resolver: Any = None, depth: int = 6,
                 databases: Any = None, seed: bool = True, caller: str | None = "13800000001",
                 trusted: bool = True, lang: str | None = None, start: Any = None,
                 options: SimOptions | None = None, values: Mapping[str, Sequence[str]] | None = None,
                 hangups: str = "input", max_runs: int = 20000, variables: Mapping[str, Any] | None = None,
                 channel_vars: Mapping[str, Any] | None = None, config: Mapping[str, Any] | None = None):
        self.flow = flow
        self.interp = Interpreter(flow, registry=registry, resolver=resolver, config=config)
        self.depth = depth
        self.databases = databases
        self.seed = seed
        self.caller, self.trusted, self.lang, self.start = caller, trusted, lang, start
        self.options = options or SimOptions()
        self.values = {k: [str(v) for v in vs] for k, vs in (values or {}).items()}
        if hangups not in ("none", "input", "all"):
            raise ValueError("hangups must be none, input or all")
        self.hangups = hangups
        self.max_runs = max_runs
        self.variables = dict(variables or {})
        self.channel_vars = dict(channel_vars or {})

    # -- one replay -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _store(self, clock: VirtualClock) -> Iterator[Any]:
        if self.databases is None:
            yield None
        else:
            with self.databases.database(clock, seed=self.seed) as store:
                yield store

    def _replay(self, loop: asyncio.AbstractEventLoop, tokens: list[Token]):
        clock = VirtualClock(self.start)
        with self._store(clock) as store:
            self.interp.store = store
            ch = SimChannel(tokens, clock, call_id="explore", caller=self.caller, caller_trusted=self.trusted,
                            variables=self.channel_vars, options=self.options, explore=True)
            call = self.interp.new_call(ch, clock, lang=self.lang, variables=self.variables or None)
            try:
                loop.run_until_complete(call.run())
                return "end", call, ch
            except ScriptExhausted:
                return "cut", call, ch

    # -- choices at a decision point ---------------------------------------------------------------------
    def _choices(self, call: Any, ch: SimChannel) -> list[Choice]:
        s: ir.State | None = call.current
        out: list[Choice] = []
        flow = self.flow
        if s is not None and s.kind == "menu":
            sp: ir.Menu = s.spec
            keys = list(sp.options)
            keys += [k for k in flow.global_keys if k not in sp.options]
            bad = next((k for k in "9876543210#*" if k not in sp.options and k not in flow.global_keys), None)
            out += [(Token("keys", keys=k),) for k in keys]
            if bad:
                out.append((Token("keys", keys=bad),))
        elif s is not None and s.kind == "collect":
            sp2: ir.Collect = s.spec
            entries = list(self.values.get(sp2.into, []))
            if not entries and sp2.max_digits == 1:
                entries = [k for k in "0123456789" if _pattern_ok(sp2.pattern, k)]
            elif not entries:
                v = valid_entry(sp2)
                if v is not None:
                    entries.append(v)
            inv = _invalid_entry(sp2)
            if inv is not None and inv not in entries:
                entries.append(inv)
            out += [_entry(sp2, e) for e in entries]
            if sp2.keys:
                out += [(Token("keys", keys=k),) for k in flow.global_keys]
        elif s is not None and s.kind == "record":
            out.append((Token("speak", seconds=3.0), Token("timeout")))
        else:
            out.append((Token("keys", keys="1"),))
        out.append((Token("timeout"),))
        if self.hangups != "none":
            out.append((Token("hangup"),))
        if self.hangups == "all":
            out += self._hangups_in_segment(call, ch)
        return out

    def _hangups_in_segment(self, call: Any, ch: SimChannel) -> list[Choice]:
        """Hang up in the middle of each prompt heard since the caller's last move."""
        since = ch.ready
        out = []
        seen = set()
        for e in call.rec.events:
            if e["type"] == "prompt" and not e.get("skipped") and e["t"] >= since:
                off = round(e["t"] - since + 0.1, 3)
                if off not in seen:
                    seen.add(off)
                    out.append((Token("wait", seconds=off), Token("hangup")))
        return out

    @staticmethod
    def _signature(call: Any, ch: SimChannel) -> str:
        s = call.current
        n_inputs = 0
        for e in reversed(call.rec.events):
            if e["type"] == "state":
                break
            if e["type"] == "input":
                n_inputs += 1
        vars_ = {k: v for k, v in call.vars.items() if k not in ("now", "today", "channel")}
        return json.dumps([s.scope, s.name, [(f.scope, f.name) for f in call.stack], n_inputs,
                           ch.pending_keys(), vars_], sort_keys=True, default=str, ensure_ascii=False)

    # -- problems ------------------------------------------------------------------------------------------
    def _problems(self, call: Any, finished: bool) -> list[tuple[str, str | None, str | None, str]]:
        rec = call.rec
        out = []
        unhandled = rec.error if finished and rec.disposition == "error" else None
        for e in rec.events:
            if unhandled and (e.get("pos"), e.get("message")) == (unhandled.get("pos"), unhandled.get("message")):
                continue
            if e["type"] == "error" and e["kind"] in FLOW_BUG_KINDS:
                out.append(("flow_error", e.get("state"), e.get("pos"), f"{e['kind']}: {e['message']}"))
        if finished:
            d = rec.disposition
            err = rec.error or {}
            if d == "error":
                out.append(("unhandled_error", err.get("state"), err.get("pos"),
                            f"{err.get('kind')}: {err.get('message')} ({err.get('unhandled')})"))
            elif d in ("step_limit", "dead_end", "time_limit", "aborted"):
                out.append((d, err.get("state"), err.get("pos"), err.get("message") or d))
        return out

    # -- the walk ------------------------------------------------------------------------------------------
    def run(self) -> ExploreReport:
        rep = ExploreReport(self.flow, self.depth, coverage=Coverage(self.flow))
        t0 = time.perf_counter()
        loop = asyncio.new_event_loop()
        seen: set[str] = set()
        found: dict[tuple, Problem] = {}
        action_errors: Counter = Counter()
        queue: deque[list[Choice]] = deque([[]])
        try:
            while queue:
                if rep.runs >= self.max_runs:
                    rep.truncated = True
                    rep.notes.append(f"stopped after {self.max_runs} runs (--max-runs); {len(queue)} paths not tried")
                    break
                path = queue.popleft()
                tokens = [t for choice in path for t in choice]
                kind, call, ch = self._replay(loop, tokens)
                rep.runs += 1
                rep.coverage.add(call.rec)
                for e in call.rec.events:
                    if e["type"] == "error" and e["kind"] == "action":
                        action_errors[e["message"]] += 1
                script = format_script(tokens)
                for pk, state, pos, msg in self._problems(call, kind == "end"):
                    key = (pk, state, pos, msg)
                    if key in found:
                        found[key].paths += 1
                    else:
                        found[key] = Problem(pk, state, pos, msg, script)
                if kind == "end":
                    rep.ends[call.rec.disposition] += 1
                    # the last stretch (after the last input) had no decision point: hang up in it too
                    last_was_hangup = bool(path) and path[-1][-1].kind == "hangup"
                    if self.hangups != "none" and len(path) < self.depth and not last_was_hangup \
                            and call.rec.disposition != "hangup":
                        queue.append(path + [(Token("hangup"),)])
                        if self.hangups == "all":
                            queue.extend(path + [c] for c in self._hangups_in_segment(call, ch))
                    continue
                sig = self._signature(call, ch)
                if sig in seen:
                    rep.merged += 1
                    continue
                seen.add(sig)
                rep.decision_points += 1
                if len(path) >= self.depth:
                    rep.cut += 1
                    continue
                for choice in self._choices(call, ch):
                    queue.append(path + [choice])
        finally:
            loop.close()
        for s in self.flow.all_states():
            if s.kind == "collect" and s.spec.into not in self.values and valid_entry(s.spec) is None:
                rep.notes.append(f"{s.position}: no valid entry found for collect '{s.name}' (pattern "
                                 f"{s.spec.pattern!r}); give one with --value {s.spec.into}=DIGITS")
        for msg, n in action_errors.most_common(3):
            rep.notes.append(f"an action raised on {n} path{'s' if n != 1 else ''} (the error handler took over): "
                             f"{msg}" + (" -- give the integrations' configuration with --config, or the "
                                         "systems of a scenario with --scenario" if "http:" in msg or "sql:" in msg
                                         else ""))
        rep.problems = sorted(found.values(), key=lambda p: (len(p.script.split()), p.kind, p.pos or ""))
        rep.seconds = time.perf_counter() - t0
        return rep


def render_report(rep: ExploreReport, flow_arg: str) -> str:
    lines = [f"explore {rep.flow.file}: depth {rep.depth}, {rep.runs} runs in {rep.seconds:.1f} s, "
             f"{rep.decision_points} decision points ({rep.merged} paths merged into ones already seen, "
             f"{rep.cut} cut at the depth limit)"]
    if rep.ends:
        lines.append("calls ended: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.ends.items())))
    if rep.problems:
        lines.append(f"problems ({len(rep.problems)}):")
        for i, p in enumerate(rep.problems, 1):
            where = f" in state {p.state}" if p.state else ""
            pos = f" ({p.pos})" if p.pos else ""
            lines.append(f"  {i}. {p.kind}{where}{pos}: {p.message}")
            lines.append(f"     shortest input: ivrflow simulate {flow_arg} --input \"{p.script}\""
                         f"   [{p.paths} path{'s' if p.paths != 1 else ''}]")
    else:
        lines.append("no problems found: no crash, no step limit, every path ends with a disposition")
    unreached = rep.unreached()
    if unreached:
        lines.append(f"states not reached within depth {rep.depth} ({len(unreached)}):")
        lines.extend(f"  {pos}: {name}" for name, pos in unreached)
    for n in rep.notes:
        lines.append(f"note: {n}")
    return "\n".join(lines)
