"""Scenario files: loading and checking (format: docs/runtime.md, "Scenario tests").

A scenario file is YAML: ``flow`` (path, optional), ``defaults`` (case fields shared by all
cases) and ``cases`` (a list).  Every problem is a ``Diagnostic`` (codes T0xx) with the
file position, like the flow compiler's.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from engine.flow.diagnostics import Diagnostic, Position, did_you_mean
from engine.flow.loader import Document, load
from engine.runtime.clock import parse_start
from engine.runtime.script import ScriptError, parse_script
from engine.runtime.sim import SimOptions

__all__ = ["Case", "Suite", "load_suite", "discover", "CASE_KEYS", "EXPECT_KEYS"]

SUITE_KEYS = ("flow", "description", "defaults", "cases")
CASE_KEYS = ("name", "description", "caller", "trusted", "destination", "channel", "variables", "lang", "at",
             "seed", "data", "input", "sim", "expect", "skip", "config", "http", "databases")
SIM_KEYS = ("conference_seconds", "fail_transfers", "fail_conferences", "prompt_seconds")
EXPECT_KEYS = ("path", "states", "visited", "not_visited", "prompts", "variables", "actions", "disposition",
               "hangup_cause", "final_state", "transfer", "rows", "errors", "requests")
DATABASE_KEYS = ("setup", "rows", "down")
SUFFIXES = (".test.yaml", ".test.yml", ".tests.yaml", ".tests.yml")


@dataclass
class Case:
    name: str
    position: Position
    caller: str | None = "13800000001"
    trusted: bool = True
    destination: str | None = "10000"
    channel: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    lang: str | None = None
    at: dt.datetime | None = None
    seed: bool = True
    data: dict = field(default_factory=dict)
    input: str = ""
    sim: SimOptions = field(default_factory=SimOptions)
    expect: dict = field(default_factory=dict)
    expect_positions: dict = field(default_factory=dict)     # expectation key -> Position
    skip: str | None = None
    config: dict = field(default_factory=dict)               # deployment configuration (merged over --config)
    http: list = field(default_factory=list)                 # fakehttp.Route, for the local HTTP server
    databases: dict = field(default_factory=dict)            # name -> {setup: Path | None, rows: {...}, down: bool}


@dataclass
class Suite:
    file: str
    flow_path: Path | None
    cases: list[Case]
    diagnostics: list[Diagnostic]
    description: str | None = None

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Scenario files under ``paths``: ``*.test.yaml`` anywhere, and the YAML files directly in
    a directory named ``tests``.  Returns (files, problems)."""
    out: list[Path] = []
    problems: list[str] = []
    for p in paths:
        p = Path(p)
        if p.is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_scenario(f, p))
            if not found:
                problems.append(f"{p}: no scenario files (*.test.yaml, or YAML files in a tests/ directory)")
            out.extend(found)
        else:
            problems.append(f"{p}: no such file or directory")
    seen: set[Path] = set()
    uniq = []
    for f in out:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(f)
    return uniq, problems


def _is_scenario(f: Path, root: Path) -> bool:
    if f.name.endswith(SUFFIXES):
        return True
    if f.suffix not in (".yaml", ".yml"):
        return False
    return f.parent.name == "tests"


class _Checker:
    def __init__(self, doc: Document, base: Path | None = None):
        self.doc = doc
        self.base = base or Path(".")
        self.diags: list[Diagnostic] = []

    def err(self, code: str, msg: str, path: tuple, key: bool = False, hint: str | None = None) -> None:
        self.diags.append(Diagnostic(code, msg, self.doc.pos(path, key=key), hint=hint))

    def keys(self, d: dict, allowed: tuple, path: tuple, what: str) -> None:
        for k in d:
            if k not in allowed:
                self.err("T002", f"unknown key '{k}' in {what}", path + (k,), key=True, hint=did_you_mean(k, allowed))

    def mapping(self, v: Any, path: tuple, what: str) -> dict:
        if v is None:
            return {}
        if not isinstance(v, dict):
            self.err("T003", f"{what} must be a mapping", path)
            return {}
        return v


def _flow_for(file: Path) -> Path:
    name = file.name
    for suf in SUFFIXES:
        if name.endswith(suf):
            base = name[: -len(suf)] + ".yaml"
            cand = file.parent / base
            if not cand.exists() and file.parent.name == "tests":
                cand = file.parent.parent / base
            return cand
    base = file.stem + ".yaml"
    return (file.parent.parent / base) if file.parent.name == "tests" else file.parent / base


def _case(c: _Checker, raw: dict, path: tuple, defaults: dict, index: int) -> Case | None:
    c.keys(raw, CASE_KEYS, path, "a case")
    merged: dict[str, Any] = dict(defaults)
    for k, v in raw.items():
        if k in ("channel", "variables", "sim") and isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = {**merged[k], **v}
        elif k == "data" and isinstance(v, dict) and isinstance(merged.get("data"), dict):
            d = {t: list(rows) for t, rows in merged["data"].items() if isinstance(rows, list)}
            for t, rows in v.items():
                d[t] = d.get(t, []) + (rows if isinstance(rows, list) else [rows])
            merged["data"] = d
        elif k == "config" and isinstance(v, dict) and isinstance(merged.get("config"), dict):
            merged["config"] = deep_merge(merged["config"], v)
        elif k == "http" and isinstance(v, dict) and isinstance(merged.get("http"), dict):
            merged["http"] = {**merged["http"], **v}
        elif k == "databases" and isinstance(v, dict) and isinstance(merged.get("databases"), dict):
            merged["databases"] = _merge_databases(merged["databases"], v)
        else:
            merged[k] = v
    name = merged.get("name") if "name" in raw else None
    if not isinstance(name, str) or not name.strip():
        c.err("T003", "every case needs a 'name' (a short sentence)", path, key=True)
        name = f"case {index + 1}"
    case = Case(name=name, position=c.doc.pos(path, key=True))

    def where(k: str) -> tuple:
        return path + (k,) if k in raw else ("defaults", k)

    for k in ("caller", "destination"):
        if k in merged:
            v = merged[k]
            if v is not None and not isinstance(v, (str, int)) or isinstance(v, bool):
                c.err("T003", f"'{k}' must be a phone number (quote it)", where(k))
            else:
                setattr(case, k, None if v is None else str(v))
    if "trusted" in merged:
        if not isinstance(merged["trusted"], bool):
            c.err("T003", "'trusted' must be true or false", where("trusted"))
        else:
            case.trusted = merged["trusted"]
    for k in ("channel", "variables"):
        setattr(case, k, dict(c.mapping(merged.get(k), where(k), f"'{k}'")))
    if "lang" in merged:
        if not isinstance(merged["lang"], str):
            c.err("T003", "'lang' must be a language tag such as zh-CN", where("lang"))
        else:
            case.lang = merged["lang"]
    if merged.get("at") is not None:
        try:
            case.at = parse_start(str(merged["at"]))
        except ValueError as e:
            c.err("T003", str(e), where("at"))
    if "seed" in merged:
        if not isinstance(merged["seed"], bool):
            c.err("T003", "'seed' must be true (the demo data set) or false (an empty database)", where("seed"))
        else:
            case.seed = merged["seed"]
    data = c.mapping(merged.get("data"), where("data"), "'data' (table: [rows])")
    for t, rows in data.items():
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            c.err("T003", f"data for table '{t}' must be a list of rows (mappings)", where("data") + (t,))
    case.data = data
    inp = merged.get("input", "")
    if inp is None:
        inp = ""
    if isinstance(inp, list) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in inp):
        inp = " ".join(str(x) for x in inp)
    if not isinstance(inp, (str, int)) or isinstance(inp, bool):
        c.err("T003", "'input' must be the caller's script, e.g. \"1 12345678# wait:6 hangup\"", where("input"))
    else:
        inp = str(inp)
        try:
            parse_script(inp)
            case.input = inp
        except ScriptError as e:
            pos = c.doc.pos(where("input"))
            col = pos.col + (e.column or 1) - 1 + (1 if c.doc.lines[pos.line - 1:pos.line]
                                                  and c.doc.lines[pos.line - 1][pos.col - 1:pos.col] in "\"'" else 0)
            c.diags.append(Diagnostic("T003", f"input: {str(e).split(': ', 1)[-1]}", Position(pos.file, pos.line, col)))
    sim = c.mapping(merged.get("sim"), where("sim"), "'sim'")
    c.keys(sim, SIM_KEYS, where("sim"), "'sim'") if "sim" in raw else None
    try:
        kw = {}
        for k in SIM_KEYS:
            if k in sim:
                v = sim[k]
                if k in ("fail_transfers", "fail_conferences") and isinstance(v, list):
                    v = frozenset(str(x) for x in v)
                elif k in ("conference_seconds", "prompt_seconds") and v is not None:
                    v = float(v)
                kw[k] = v
        case.sim = SimOptions(**kw)
    except (TypeError, ValueError) as e:
        c.err("T003", f"bad 'sim' value: {e}", where("sim"))
    _integrations(c, case, merged, where)
    if "skip" in merged and merged["skip"] not in (None, False):
        case.skip = str(merged["skip"]) if merged["skip"] is not True else "skipped"
    expect = c.mapping(raw.get("expect"), path + ("expect",), "'expect'")
    c.keys(expect, EXPECT_KEYS, path + ("expect",), "'expect'")
    case.expect = {k: v for k, v in expect.items() if k in EXPECT_KEYS}
    case.expect_positions = {k: c.doc.pos(path + ("expect", k)) for k in case.expect}
    if "expect" not in raw:
        c.err("T003", f"case '{name}' has no 'expect': what should the call do?", path, key=True)
    _check_expect(c, case.expect, path + ("expect",))
    return case


def deep_merge(a: dict, b: dict) -> dict:
    """``b`` over ``a``; mappings are merged key by key, anything else is replaced."""
    out = dict(a)
    for k, v in b.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _merge_databases(a: dict, b: dict) -> dict:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in a.items()}
    for name, spec in b.items():
        base = out.get(name)
        if not isinstance(spec, dict) or not isinstance(base, dict):
            out[name] = spec
            continue
        merged = {**base, **{k: v for k, v in spec.items() if k != "rows"}}
        rows = {t: list(r) for t, r in (base.get("rows") or {}).items() if isinstance(r, list)} \
            if isinstance(base.get("rows"), dict) else {}
        if isinstance(spec.get("rows"), dict):
            for t, r in spec["rows"].items():
                rows[t] = rows.get(t, []) + (r if isinstance(r, list) else [r])
        elif "rows" in spec:
            rows = spec["rows"]
        merged["rows"] = rows
        out[name] = merged
    return out


def _integrations(c: _Checker, case: Case, merged: dict, where) -> None:
    """config, http routes and external databases of a case."""
    from .fakehttp import RouteError, parse_routes

    case.config = dict(c.mapping(merged.get("config"), where("config"), "'config'"))
    if "config" in merged and case.config:
        from engine.integrations.config import ConfigError, http_settings, sql_settings

        try:
            http_settings(case.config)
            sql_settings(case.config)
        except ConfigError as e:
            c.err("T003", str(e), where("config"))
    if merged.get("http") is not None:
        try:
            case.http = parse_routes(merged["http"])
        except RouteError as e:
            c.err("T003", f"http: {e}", where("http"))
    dbs = c.mapping(merged.get("databases"), where("databases"), "'databases' (name: {setup, rows})")
    for name, spec in dbs.items():
        p = where("databases") + (name,)
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            c.err("T003", f"database name {name!r}: use lower-case letters, digits and _ (as in the flow)", p, key=True)
            continue
        spec = c.mapping(spec, p, f"database '{name}'")
        c.keys(spec, DATABASE_KEYS, p, f"database '{name}'")
        setup = spec.get("setup")
        setup_path = None
        if setup is not None:
            if not isinstance(setup, str):
                c.err("T003", "setup must be the path of a SQL script (relative to this file)", p + ("setup",))
            else:
                setup_path = c.base / setup
                if not setup_path.is_file():
                    c.err("T003", f"setup script {setup_path} not found", p + ("setup",))
        rows = c.mapping(spec.get("rows"), p + ("rows",), "'rows' (table: [row])")
        for t, r in rows.items():
            if not isinstance(r, list) or not all(isinstance(x, dict) for x in r):
                c.err("T003", f"rows of table '{t}' must be a list of mappings", p + ("rows", t))
        down = spec.get("down", False)
        if not isinstance(down, bool):
            c.err("T003", "down must be true (the database does not answer) or false", p + ("down",))
            down = False
        case.databases[name] = {"setup": setup_path, "rows": rows, "down": down}


def _check_expect(c: _Checker, e: dict, path: tuple) -> None:
    for k in ("path", "states", "visited", "not_visited", "prompts", "actions", "requests"):
        if k in e and not isinstance(e[k], list):
            c.err("T003", f"expect.{k} must be a list", path + (k,))
    for k in ("variables", "rows", "transfer"):
        if k in e and not isinstance(e[k], dict):
            c.err("T003", f"expect.{k} must be a mapping", path + (k,))
    if "disposition" in e:
        from engine.runtime.record import DISPOSITIONS

        if e["disposition"] not in DISPOSITIONS:
            c.err("T003", f"unknown disposition {e['disposition']!r} (one of: {', '.join(DISPOSITIONS)})",
                  path + ("disposition",), hint=did_you_mean(str(e["disposition"]), DISPOSITIONS))
    for i, a in enumerate(e.get("actions") or []):
        if not isinstance(a, dict) or not isinstance(a.get("action"), str):
            c.err("T003", "each expected action is a mapping with 'action' (name), and optionally 'params' "
                          "and 'outcome'", path + ("actions", i))
        else:
            c.keys(a, ("action", "params", "outcome"), path + ("actions", i), "an expected action")
    for i, r in enumerate(e.get("requests") or []):
        if not isinstance(r, dict):
            c.err("T003", "each expected request is a mapping (method, path, query, json, headers, host)",
                  path + ("requests", i))
        else:
            c.keys(r, ("method", "path", "query", "json", "headers", "host"), path + ("requests", i),
                   "an expected request")
    for i, p in enumerate(e.get("prompts") or []):
        if not (isinstance(p, str) or (isinstance(p, dict) and set(p) == {"text"})):
            c.err("T003", "each expected prompt is a prompt id or {text: words it contains}", path + ("prompts", i))
    if "errors" in e and not (isinstance(e["errors"], int) and not isinstance(e["errors"], bool)
                              or isinstance(e["errors"], list)):
        c.err("T003", "expect.errors is a count or a list of error kinds", path + ("errors",))


def load_suite(file: str | Path, display: str | None = None) -> Suite:
    file = Path(file)
    name = display or str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as e:
        return Suite(name, None, [], [Diagnostic("T001", f"cannot read file: {e.strerror or e}", Position(name, 1, 1))])
    except UnicodeDecodeError:
        return Suite(name, None, [], [Diagnostic("T001", "the file is not valid UTF-8", Position(name, 1, 1))])
    doc = load(text, name)
    c = _Checker(doc, file.parent)
    c.diags.extend(Diagnostic("T001", d.message, d.position) for d in doc.diagnostics)
    if doc.diagnostics:
        return Suite(name, None, [], c.diags)
    data = doc.data
    if isinstance(data, list):
        data = {"cases": data}
        doc.values = {(("cases",) + k): v for k, v in doc.values.items()}
        doc.keys = {(("cases",) + k): v for k, v in doc.keys.items()}
    if not isinstance(data, dict):
        c.err("T001", "a scenario file is a mapping with 'cases:' (and optionally 'flow:', 'defaults:')", ())
        return Suite(name, None, [], c.diags)
    c.keys(data, SUITE_KEYS, (), "the scenario file")
    flow_path = None
    if "flow" in data:
        if not isinstance(data["flow"], str):
            c.err("T003", "'flow' must be a path to the flow file (relative to this file)", ("flow",))
        else:
            flow_path = Path(os.path.normpath(file.parent / data["flow"]))
    else:
        flow_path = _flow_for(file)
    if flow_path is not None and not flow_path.is_file():
        c.err("T004", f"flow file {flow_path} not found" + ("" if "flow" in data else
                                                            " (name it with 'flow: PATH' in the scenario file)"),
              ("flow",) if "flow" in data else ())
    defaults = c.mapping(data.get("defaults"), ("defaults",), "'defaults'")
    c.keys(defaults, tuple(k for k in CASE_KEYS if k not in ("name", "expect")), ("defaults",), "'defaults'")
    cases_raw = data.get("cases")
    cases: list[Case] = []
    if not isinstance(cases_raw, list) or not cases_raw:
        c.err("T001", "'cases' must be a non-empty list of cases", ("cases",) if "cases" in data else ())
    else:
        names: dict[str, int] = {}
        for i, raw in enumerate(cases_raw):
            if not isinstance(raw, dict):
                c.err("T003", "a case must be a mapping (name, input, expect, ...)", ("cases", i))
                continue
            case = _case(c, raw, ("cases", i), defaults, i)
            if case is not None:
                if case.name in names:
                    c.err("T003", f"two cases are named '{case.name}'", ("cases", i, "name"))
                names[case.name] = i
                cases.append(case)
    desc = data.get("description") if isinstance(data.get("description"), str) else None
    return Suite(name, flow_path, cases, c.diags, desc)
