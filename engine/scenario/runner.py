"""Running scenario files: each case is one simulated call on a fresh database, then its
expectations are checked.  Failures are readable sentences, with the source position of the
state where the call went another way."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from engine.flow import compile_file, ir
from engine.flow.diagnostics import Diagnostic, did_you_mean
from engine.runtime.clock import DEFAULT_SIM_START, VirtualClock
from engine.runtime.interpreter import CallResult, Interpreter
from engine.runtime.record import CallRecord
from engine.runtime.resolver import make_resolver
from engine.runtime.sim import SimChannel
from engine.runtime.transcript import render_transcript

from .coverage import Coverage
from .db import DataError, MemoryDatabases, fresh_postgres, insert_rows, is_memory, table_rows
from .spec import Case, Suite, load_suite

__all__ = ["Runner", "CaseResult", "SuiteResult", "check_case"]


@dataclass
class CaseResult:
    case: Case
    status: str                       # pass | fail | error | skip
    failures: list[str] = field(default_factory=list)
    result: CallResult | None = None
    seconds: float = 0.0              # wall time

    @property
    def record(self) -> CallRecord | None:
        return self.result.record if self.result else None


@dataclass
class SuiteResult:
    suite: Suite
    flow: ir.Flow | None
    flow_diagnostics: list[Diagnostic]
    cases: list[CaseResult]
    note: str | None = None           # e.g. why prompt texts are not available

    @property
    def ok(self) -> bool:
        return self.suite.ok and self.flow is not None and all(c.status in ("pass", "skip") for c in self.cases)

    def counts(self) -> dict:
        out = {"pass": 0, "fail": 0, "error": 0, "skip": 0}
        for c in self.cases:
            out[c.status] += 1
        return out


class Runner:
    """Runs scenario files; one per ``ivrflow test`` invocation (caches flows and databases)."""

    def __init__(self, *, registry: Mapping[str, Any] | None = None, db_url: str | None = None,
                 prompts_root: str | Path | None = None, tz: str = "Asia/Shanghai", use_store: bool = True,
                 databases: MemoryDatabases | None = None, config: Mapping[str, Any] | None = None):
        if registry is None:
            from engine.actions import default_registry

            registry = default_registry()
        self.registry = registry
        self.db_url = db_url
        self.prompts_root = prompts_root
        self.tz = tz
        self.use_store = use_store
        in_memory = use_store and (db_url is None or is_memory(db_url))
        self._own_memory = in_memory and databases is None
        self.memory = (databases or MemoryDatabases(tz)) if in_memory else None
        from .environment import Environment

        pg = db_url if use_store and db_url is not None and not is_memory(db_url) else None
        self.env = Environment(config, pg_url=pg)
        self._flows: dict[Path, tuple] = {}
        self.coverage: dict[Path, Coverage] = {}
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        if self.memory is not None and self._own_memory:
            self.memory.close()
        self.env.close()
        self._loop.close()

    def flow(self, path: Path) -> tuple:
        key = path.resolve()
        if key not in self._flows:
            flow, diags = compile_file(path, registry=self.registry)
            if flow is not None:
                resolver, note = make_resolver(flow, self.prompts_root)
                interp = Interpreter(flow, registry=self.registry, resolver=resolver)
                self.coverage.setdefault(key, Coverage(flow))
            else:
                interp, note = None, None
            self._flows[key] = (flow, diags, interp, note)
        return self._flows[key]

    def run_file(self, file: str | Path, *, only: str | None = None) -> SuiteResult:
        suite = load_suite(file)
        if not suite.ok or suite.flow_path is None:
            return SuiteResult(suite, None, [], [])
        flow, diags, interp, note = self.flow(suite.flow_path)
        if flow is None:
            return SuiteResult(suite, None, diags, [])
        results = []
        for case in suite.cases:
            if only and only not in case.name:
                continue
            if case.skip:
                results.append(CaseResult(case, "skip", [case.skip]))
                continue
            results.append(self.run_case(flow, interp, case))
        cov = self.coverage[suite.flow_path.resolve()]
        for r in results:
            if r.record is not None:
                cov.add(r.record)
        return SuiteResult(suite, flow, diags, results, note)

    @contextlib.contextmanager
    def _store(self, clock: VirtualClock, seed: bool):
        if not self.use_store:
            yield None
        elif self.memory is not None:
            with self.memory.database(clock, seed=seed) as store:
                yield store
        else:
            with fresh_postgres(self.db_url, clock, seed=seed, tz=self.tz) as store:
                yield store

    def run_case(self, flow: ir.Flow, interp: Interpreter, case: Case) -> CaseResult:
        t0 = time.perf_counter()
        clock = VirtualClock(case.at or DEFAULT_SIM_START)
        try:
            with self._store(clock, case.seed) as store, \
                    self.env.call(config=case.config, routes=case.http, databases=case.databases) as env:
                if case.data:
                    if store is None:
                        raise DataError("this run has no database (--no-db) but the case seeds rows")
                    insert_rows(store, case.data, clock.now(), self.tz)
                ch = SimChannel(case.input, clock, call_id=f"test-{zlib.crc32(case.name.encode()):08x}",
                                caller=case.caller, destination=case.destination, caller_trusted=case.trusted,
                                variables=case.channel, options=case.sim)
                call_interp = _with_store(interp, store, env.config)
                result = self._loop.run_until_complete(
                    call_interp.run(ch, clock, lang=case.lang, variables=case.variables or None))
                failures = check_case(case, result, flow, store, requests=env.requests)
        except DataError as e:
            return CaseResult(case, "error", [f"data: {e}"], None, time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001 - a database that cannot be set up, etc.
            return CaseResult(case, "error", [f"{type(e).__name__}: {e}"], None, time.perf_counter() - t0)
        return CaseResult(case, "fail" if failures else "pass", failures, result, time.perf_counter() - t0)


def _with_store(interp: Interpreter, store: Any, config: Mapping[str, Any] | None = None) -> Interpreter:
    clone = Interpreter.__new__(Interpreter)
    clone.__dict__.update(interp.__dict__)
    clone.store = store
    if config is not None:
        clone.config = MappingProxyType(dict(config))
    return clone


# -- expectations ------------------------------------------------------------------------------------

def _same(expected: Any, actual: Any) -> bool:
    if expected == actual and type(expected) is type(actual):
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual and isinstance(expected, bool) and isinstance(actual, bool)
    if isinstance(actual, (dt.date, dt.datetime, dt.time)):
        return str(expected) == actual.isoformat()
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(expected) == float(actual)
    if isinstance(expected, (str, int, float)) and isinstance(actual, (str, int, float)):
        return str(expected) == str(actual)
    if isinstance(expected, dict) and isinstance(actual, Mapping):
        return all(k in actual and _same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, (list, tuple)):
        return len(expected) == len(actual) and all(_same(a, b) for a, b in zip(expected, actual))
    return expected == actual


def _show(v: Any) -> str:
    return repr(v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else v)


def _visits(rec: CallRecord) -> list[tuple[str, str, int]]:
    """(scope, state, index of its state event) for every state entered."""
    return [(e["scope"], e["state"], i) for i, e in enumerate(rec.events) if e["type"] == "state"]


def _matches(expected: str, scope: str, name: str) -> bool:
    return expected == (f"{scope}.{name}" if scope else name) or ("." not in expected and expected == name)


def _label(scope: str, name: str) -> str:
    return f"{scope}.{name}" if scope else name


def _where_next(rec: CallRecord, flow: ir.Flow, visit: tuple[str, str, int]) -> str:
    """'at STATE (pos): outcome X -> Y' for a visited state."""
    scope, name, idx = visit
    st = (flow.states if not scope else flow.subflows[scope].states).get(name)
    pos = f" ({st.position})" if st else ""
    moves = []
    for e in rec.events[idx + 1:]:
        if e["type"] == "state":
            break
        if e["type"] == "transition":
            moves.append(f"outcome {e['outcome']} -> {e['to']}")
        elif e["type"] == "jump":
            moves.append(f"{e['via']} -> {e['to']}")
        elif e["type"] == "return":
            moves.append(f"return {e['outcome']}")
        elif e["type"] == "error":
            moves.append(f"{e['kind']} error: {e['message']}")
        elif e["type"] == "hangup":
            moves.append(f"hangup by {e['by']}")
        elif e["type"] == "input":
            moves.append(f"caller {e['keys'] or '(nothing)'} {e['result']}")
    return f"{_label(scope, name)}{pos}: " + ("; ".join(moves[-3:]) if moves else "the call ended there")


def _states_problem(kind: str, expected: list, rec: CallRecord, flow: ir.Flow) -> str | None:
    visits = _visits(rec)
    path = " -> ".join(_label(s, n) for s, n, _ in visits) or "(no state)"
    if kind == "path":
        for i, exp in enumerate(expected):
            if i >= len(visits):
                last = visits[-1] if visits else None
                at = f"; it stopped at {_where_next(rec, flow, last)}" if last else ""
                return f"expected {len(expected)} states, the call visited {len(visits)}{at}\n  visited: {path}"
            if not _matches(str(exp), visits[i][0], visits[i][1]):
                if i == 0:
                    return f"the call started at {_label(*visits[0][:2])}, not {exp}\n  visited: {path}"
                return (f"state {i + 1} is {_label(*visits[i][:2])}, expected {exp}: the call went another way at "
                        f"{_where_next(rec, flow, visits[i - 1])}\n  visited: {path}")
        if len(visits) > len(expected):
            extra = " -> ".join(_label(s, n) for s, n, _ in visits[len(expected):])
            return f"the call went on after {expected[-1]}: {extra}\n  visited: {path}"
        return None
    j = 0
    last = None
    for v in visits:
        if j < len(expected) and _matches(str(expected[j]), v[0], v[1]):
            j += 1
            last = v
    if j == len(expected):
        return None
    missing = expected[j]
    if last is None:
        return f"state {missing} was never visited (expected first)\n  visited: {path}"
    return (f"state {missing} was never reached after {expected[j - 1]}: the call went another way at "
            f"{_where_next(rec, flow, last)}\n  visited: {path}")


def _known_state(flow: ir.Flow, name: str) -> bool:
    names = {_label(s.scope, s.name) for s in flow.all_states()} | {s.name for s in flow.all_states()}
    return str(name) in names


def _prompt_ok(exp: Any, ev: dict) -> bool:
    if isinstance(exp, dict):
        return str(exp["text"]) in (ev.get("text") or "")
    return exp == ev.get("prompt") or (ev.get("prompt") is None and exp == ev.get("text"))


def check_case(case: Case, res: CallResult, flow: ir.Flow, store: Any = None,
               requests: list[dict] | None = None) -> list[str]:
    """The failed expectations of a case, as readable text (empty list: the case passes).
    ``requests``: what the local HTTP server received (None: no routes declared)."""
    e = case.expect
    rec = res.record
    out: list[str] = []

    def fail(key: str, msg: str) -> None:
        out.append(f"expect.{key} ({case.expect_positions.get(key, case.position)}): {msg}")

    all_names = [s for s in flow.all_states()]
    for key in ("path", "states", "visited", "not_visited"):
        if key not in e:
            continue
        names = [str(x) for x in e[key]]
        unknown = [n for n in names if not _known_state(flow, n)]
        if unknown:
            hint = did_you_mean(unknown[0], [_label(s.scope, s.name) for s in all_names])
            fail(key, f"no state {unknown[0]!r} in flow {flow.name}" + (f" ({hint})" if hint else ""))
            continue
        if key in ("path", "states"):
            p = _states_problem(key, names, rec, flow)
            if p:
                fail(key, p)
        elif key == "visited":
            visits = _visits(rec)
            miss = [n for n in names if not any(_matches(n, s, m) for s, m, _ in visits)]
            if miss:
                last = visits[-1] if visits else None
                fail(key, f"never visited: {', '.join(miss)}" + (
                    f"; the call ended at {_where_next(rec, flow, last)}" if last else ""))
        else:
            visits = _visits(rec)
            hit = [n for n in names if any(_matches(n, s, m) for s, m, _ in visits)]
            if hit:
                first = next(v for v in visits if _matches(hit[0], v[0], v[1]))
                prev = visits[visits.index(first) - 1] if visits.index(first) > 0 else None
                how = f"; it came from {_where_next(rec, flow, prev)}" if prev else ""
                fail(key, f"visited {', '.join(hit)} (it should not){how}")
    if "prompts" in e:
        heard = rec.prompts()
        j = 0
        for ev in heard:
            if j < len(e["prompts"]) and _prompt_ok(e["prompts"][j], ev):
                j += 1
        if j < len(e["prompts"]):
            shown = [ev.get("prompt") or repr(ev.get("text")) for ev in heard]
            fail("prompts", f"did not hear {e['prompts'][j]!r}"
                            + (f" after {e['prompts'][j - 1]!r}" if j else "") + f"\n  heard: {', '.join(shown) or '(nothing)'}")
    if "variables" in e and isinstance(e["variables"], dict):
        for k, v in e["variables"].items():
            if k not in res.variables:
                fail("variables", f"{k} is not set (expected {_show(v)})")
            elif not _same(v, res.variables[k]):
                shown = "(masked)" if k in _secret_names(rec) else _show(res.variables[k])
                fail("variables", f"{k}: expected {_show(v)}, got {shown}")
    if "actions" in e:
        calls = res.raw_actions
        j = 0
        for name, params, outcome, _ in calls:
            if j >= len(e["actions"]):
                break
            exp = e["actions"][j]
            if exp.get("action") == name and _same(exp.get("params") or {}, params) and \
                    ("outcome" not in exp or exp["outcome"] == outcome):
                j += 1
        if j < len(e["actions"]):
            exp = e["actions"][j]
            # as the call record shows them (secrets and credentials masked)
            same_name = [(ev.get("params") or {}, ev.get("outcome")) for ev in rec.of_type("action")
                         if ev.get("action") == exp.get("action")]
            got = "; ".join(f"{exp.get('action')}({p}) -> {o}" for p, o in same_name) or \
                f"never called (calls: {', '.join(n for n, *_ in calls) or 'none'})"
            fail("actions", f"no call of {exp.get('action')}"
                            + (f" with params {exp['params']}" if exp.get("params") else "")
                            + (f" -> {exp['outcome']}" if "outcome" in exp else "")
                            + (" (in this order)" if j else "") + f": {got}")
    for key, actual in (("disposition", rec.disposition), ("hangup_cause", rec.hangup_cause),
                        ("final_state", rec.final_state)):
        if key in e and e[key] != actual:
            last = _visits(rec)[-1] if _visits(rec) else None
            at = f"\n  the call ended at {_where_next(rec, flow, last)}" if last else ""
            err = f"\n  error: {rec.error['message']} ({rec.error.get('pos')})" if rec.error else ""
            fail(key, f"expected {e[key]}, got {actual}{at}{err}")
    if "transfer" in e and isinstance(e["transfer"], dict):
        ts = [x for x in rec.of_type("transfer") if x.get("result") == "ok"]
        if not ts:
            fail("transfer", "the call was not transferred")
        else:
            t = ts[-1]
            actual = {"queue": t.get("queue"), "extension": t.get("extension"), "priority": t.get("priority")}
            bad = {k: v for k, v in e["transfer"].items() if k not in actual or not _same(v, actual[k])}
            if bad:
                fail("transfer", f"expected {e['transfer']}, got {({k: v for k, v in actual.items() if v is not None})}")
    if "errors" in e:
        errs = [x for x in rec.of_type("error")]
        want = e["errors"]
        if isinstance(want, int) and len(errs) != want:
            fail("errors", f"expected {want} error(s), got {len(errs)}"
                 + "".join(f"\n  {x['kind']} at {x.get('pos')}: {x['message']}" for x in errs))
        elif isinstance(want, list) and [x["kind"] for x in errs] != want:
            fail("errors", f"expected error kinds {want}, got {[x['kind'] for x in errs]}")
    _check_requests(case, requests, fail)
    if "rows" in e and isinstance(e["rows"], dict):
        if store is None:
            fail("rows", "no database in this run")
        else:
            for table, spec in e["rows"].items():
                try:
                    rows = table_rows(store, table)
                except DataError as x:
                    fail("rows", str(x))
                    continue
                if isinstance(spec, dict) and "count" in spec:
                    where = spec.get("where") or {}
                    n = sum(1 for r in rows if _same(where, r))
                    if n != spec["count"]:
                        fail("rows", f"{table}: expected {spec['count']} row(s)"
                                     + (f" where {where}" if where else "") + f", found {n}")
                elif isinstance(spec, list):
                    for want_row in spec:
                        if not any(_same(want_row, r) for r in rows):
                            near = _nearest(want_row, rows)
                            fail("rows", f"{table}: no row matching {want_row}"
                                         + (f"\n  closest: {_fmt_row(near, want_row)}" if near else f" (table has {len(rows)} rows)"))
                else:
                    fail("rows", f"{table}: give a list of rows, or {{count: N, where: {{...}}}}")
    return out


def _request_line(r: dict) -> str:
    q = "&".join(f"{k}={v}" for k, v in r["query"].items())
    return f"{r['method']} http://{r['host']}{r['path']}" + (f"?{q}" if q else "")


def _check_requests(case: Case, requests: list[dict] | None, fail) -> None:
    """Unanswered requests always fail; ``expect.requests`` lists every request sent, in order
    (each expected mapping is a subset of the request: method, host, path, query, json, headers)."""
    if requests is None:
        if "requests" in case.expect:
            fail("requests", "no HTTP routes are declared for this case ('http:'), so no request was served")
        return
    for r in requests:
        if r["route"] is None:
            fail("requests", f"the flow sent {_request_line(r)}, which no route answers "
                             "(declare it under 'http:', e.g. with status: 404)")
    want = case.expect.get("requests")
    if not isinstance(want, list):
        return
    ok = len(want) == len(requests) and all(isinstance(w, dict) and _same(w, r) for w, r in zip(want, requests))
    if not ok:
        bad = next((i for i, (w, r) in enumerate(zip(want, requests)) if not _same(w, r)), None)
        why = (f"request {bad + 1} does not match {want[bad]}" if bad is not None
               else f"expected {len(want)} request(s), the flow sent {len(requests)}")
        sent = "\n  ".join(f"{i + 1}. " + _request_line(r) + (f" json={r['json']}" if r["json"] is not None else "")
                           for i, r in enumerate(requests)) or "(none)"
        fail("requests", f"{why}\n  sent:\n  {sent}")


def _secret_names(rec: CallRecord) -> set:
    return {k for k, v in rec.variables.items() if v == "****"}


def _nearest(want: dict, rows: list[dict]) -> dict | None:
    best, score = None, -1
    for r in rows:
        s = sum(1 for k, v in want.items() if k in r and _same(v, r[k]))
        if s > score:
            best, score = r, s
    return best


def _fmt_row(row: dict, want: dict) -> str:
    return "{" + ", ".join(f"{k}: {_show(row.get(k))}" for k in want) + "}"


def failure_report(cr: CaseResult, *, transcript_lines: int = 12, verbose: bool = False) -> str:
    lines = [f"FAIL  {cr.case.name}  ({cr.case.position})" if cr.status == "fail"
             else f"ERROR {cr.case.name}  ({cr.case.position})"]
    for f in cr.failures:
        lines.extend("      " + l for l in f.splitlines())
    if cr.record is not None:
        t = render_transcript(cr.record, positions=False).splitlines()
        if not verbose and len(t) > transcript_lines + 1:
            t = ["  ..."] + t[-transcript_lines:]
        lines.append(f"      input: {cr.case.input!r}")
        lines.append("      transcript:")
        lines.extend("        " + l for l in t)
    return "\n".join(lines)
