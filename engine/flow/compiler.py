"""Stage 3: checked plain data -> immutable IR, with every semantic check.

``compile_text`` never raises on bad input: it returns ``(flow or None, diagnostics)``.
A flow is returned only when there is no error (warnings allowed).
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, time
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema

from engine import templating

from . import analysis
from . import ir
from . import schema as schema_mod
from .diagnostics import Diagnostic, Position, did_you_mean, sort
from .loader import Document, load

_DUR_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$")
_DUR_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_EXPR_RE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.S)
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def parse_duration(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    m = _DUR_RE.match(str(v))
    if not m:
        raise ValueError(f"bad duration {v!r}")
    return float(m.group(1)) * _DUR_UNIT[m.group(2)]


# what each kind of state can end with: (all outcomes, outcomes that must be handled)
KIND_OUTCOMES = {
    "play": ({"default"}, {"default"}),
    "say": ({"default"}, {"default"}),
    "set": ({"default"}, {"default"}),
    "branch": ({"default"}, {"default"}),
    "collect": ({"ok", "failed"}, {"ok", "failed"}),
    "menu": ({"failed"}, {"failed"}),
    "record": ({"ok", "empty"}, {"ok", "empty"}),
    "hours": ({"open", "closed", "holiday"}, {"open", "closed"}),
    "conference": ({"done", "failed"}, {"done"}),
    "transfer": ({"failed"}, set()),
    "hangup": (set(), set()),
    "return": (set(), set()),
}
#: kinds whose `next: STATE` shorthand means this outcome (others: "default")
SHORTHAND = {"collect": "ok", "menu": "failed", "transfer": "failed", "record": "default"}


class Compiler:
    def __init__(self, doc: Document, registry: Mapping[str, Any] | None, catalog_provider=None):
        self.doc = doc
        self.registry = registry if registry is not None else {}
        self.catalog_provider = catalog_provider
        self.diags: list[Diagnostic] = []
        self.prompt_refs: list[tuple[str, Position]] = []
        self.prompt_ref_vars: list[frozenset[str]] = []
        self.reads: dict[tuple[str, str], list[tuple[str, Position]]] = {}   # (scope, state) -> [(var, pos)]
        self.bad_states: dict[tuple[str, str], frozenset[str]] = {}   # (scope, state) -> raw target names

    # -- helpers ---------------------------------------------------------------------------
    def err(self, code: str, msg: str, path: tuple, key: bool = False, hint: str | None = None, severity="error"):
        self.diags.append(Diagnostic(code, msg, self.doc.pos(path, key=key), severity=severity, hint=hint))

    def template(self, value: Any, path: tuple, where: tuple[str, str] | None) -> ir.Template | Any:
        if not isinstance(value, str):
            return value
        if not templating.is_template(value):
            return ir.Template(value)
        try:
            names = templating.check_template(value)
        except templating.TemplateError as e:
            code = "E402" if e.message.startswith("unknown filter") or e.message.startswith("unknown test") else "E401"
            self.err(code, f"template error: {e.message}", path)
            return ir.Template(value, is_template=True)
        expression = None
        m = _EXPR_RE.match(value)
        if m and "{{" not in m.group(1) and "}}" not in m.group(1) and "{%" not in value:
            # "{{ expr }}" parsed above as a template is the same text as the expression: no second parse
            expression = m.group(1).strip()
        reads = analysis.required_names(value)
        if where is not None:
            self.reads.setdefault(where, []).extend((n, self.doc.pos(path)) for n in sorted(reads))
        return ir.Template(value, frozenset(names), True, expression)

    def expr(self, value: str, path: tuple, where) -> ir.Expr:
        try:
            names = templating.check_expression(value)
        except templating.TemplateError as e:
            code = "E402" if e.message.startswith("unknown") else "E401"
            self.err(code, f"expression error: {e.message}", path)
            return ir.Expr(value)
        reads = analysis.required_names(value, expression=True)
        self.reads.setdefault(where, []).extend((n, self.doc.pos(path)) for n in sorted(reads))
        return ir.Expr(value, frozenset(names))

    def prompts(self, value: Any, path: tuple, where) -> tuple:
        if value is None:
            return ()
        items = value if isinstance(value, list) else [value]
        base = path if isinstance(value, list) else None
        out = []
        for i, item in enumerate(items):
            p = (base + (i,)) if base is not None else path
            pos = self.doc.pos(p)
            if isinstance(item, str):
                self.prompt_refs.append((item, pos))
                self.prompt_ref_vars.append(frozenset())
                out.append(ir.PromptItem("prompt", item, pos))
            elif isinstance(item, dict) and "prompt" in item:
                self.prompt_refs.append((item["prompt"], self.doc.pos(p + ("prompt",))))
                self.prompt_ref_vars.append(frozenset((item.get("vars") or {}).keys()))
                vars_ = {k: self.template(v, p + ("vars", k), where) for k, v in (item.get("vars") or {}).items()}
                out.append(ir.PromptItem("prompt", item["prompt"], pos, ir.frozen_map(vars_)))
            elif isinstance(item, dict) and "file" in item:
                t = self.template(item["file"], p + ("file",), where)
                out.append(ir.PromptItem("file", item["file"], pos, text=item.get("text")))
            elif isinstance(item, dict) and "tone" in item:
                out.append(ir.PromptItem("tone", item["tone"], pos))
        return tuple(out)

    def duration(self, v: Any, default: float) -> float:
        return default if v is None else parse_duration(v)

    def json_templates(self, value: Any, path: tuple, where) -> Any:
        if isinstance(value, str):
            t = self.template(value, path, where)
            return t if t.is_template else value
        if isinstance(value, dict):
            return ir.frozen_map({k: self.json_templates(v, path + (k,), where) for k, v in value.items()})
        if isinstance(value, list):
            return tuple(self.json_templates(v, path + (i,), where) for i, v in enumerate(value))
        return value

    # -- states ----------------------------------------------------------------------------
    def state(self, scope: str, name: str, st: dict, path: tuple) -> ir.State | None:
        kinds = [k for k in schema_mod.KIND_KEYS if k in st]
        if len(kinds) != 1:
            return None
        kind = kinds[0]
        where = (scope, name)
        v = st[kind]
        kp = path + (kind,)
        extra_transitions: list[ir.Transition] = []
        if kind == "play":
            spec = ir.Play(self.prompts(v, kp, where))
        elif kind == "say":
            texts = {"*": self.template(v, kp, where)} if isinstance(v, str) else \
                {lang: self.template(t, kp + (lang,), where) for lang, t in v.items()}
            texts = {k: (t if isinstance(t, ir.Template) else ir.Template(str(t))) for k, t in texts.items()}
            spec = ir.Say(ir.frozen_map(texts))
        elif kind == "menu":
            spec = ir.Menu(self.prompts(v["prompt"], kp + ("prompt",), where), ir.frozen_map({str(k): t for k, t in v["options"].items()}),
                           self.duration(v.get("timeout"), 5.0), v.get("attempts", 3),
                           self.prompts(v.get("invalid"), kp + ("invalid",), where),
                           self.prompts(v.get("no_input"), kp + ("no_input",), where), v.get("into"))
            for k, target in v["options"].items():
                extra_transitions.append(ir.Transition(str(k), target, self.doc.pos(kp + ("options", k)), label=f"key {k}"))
        elif kind == "collect":
            lo, hi = 1, 20
            d = v.get("digits")
            if isinstance(d, int):
                lo = hi = d
            elif isinstance(d, str):
                a, b = d.split("..")
                lo, hi = int(a), int(b)
                if lo < 1 or lo > hi:
                    self.err("E107", f"digits range '{d}': the minimum must be at least 1 and not above the maximum", kp + ("digits",))
            pattern = v.get("pattern")
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as e:
                    self.err("E107", f"pattern is not a valid regular expression: {e}", kp + ("pattern",))
            term = v.get("terminator", "#")
            spec = ir.Collect(self.prompts(v["prompt"], kp + ("prompt",), where), v["into"], lo, hi, term,
                              self.duration(v.get("timeout"), 5.0), self.duration(v.get("inter_digit"), 3.0), pattern,
                              v.get("attempts", 3), self.prompts(v.get("invalid"), kp + ("invalid",), where),
                              self.prompts(v.get("no_input"), kp + ("no_input",), where), bool(v.get("mask", False)),
                              bool(v.get("keys", True)))
        elif kind == "branch":
            cases = []
            for i, case in enumerate(v):
                e = self.expr(case["if"], kp + (i, "if"), where)
                cases.append((e, case["then"], self.doc.pos(kp + (i, "then"))))
                extra_transitions.append(ir.Transition(f"case{i + 1}", case["then"], self.doc.pos(kp + (i, "then")), label=case["if"]))
            spec = ir.Branch(tuple(cases))
        elif kind == "set":
            assigns = []
            for k, val in v.items():
                if isinstance(val, (dict, list)):
                    self.err("E102", f"set: value of '{k}' must be a string, number, boolean or null", kp + (k,))
                    continue
                assigns.append((k, self.template(val, kp + (k,), where)))
            spec = ir.Set(tuple(assigns))
        elif kind == "action":
            action = self.registry.get(v)
            if action is None:
                self.err("E202", f"unknown action '{v}'", kp, hint=did_you_mean(v, self.registry.keys()))
                self.bad_states[where] = frozenset()
            else:
                self.check_params(action, st.get("params") or {}, path + ("params",))
            spec = ir.ActionCall(v, self.json_templates(st.get("params") or {}, path + ("params",), where))
        elif kind == "transfer":
            if ("to" in v) == ("queue" in v):
                self.err("E107", "transfer needs exactly one of 'to' (an extension) or 'queue'", kp)
            to = self.template(v["to"], kp + ("to",), where) if "to" in v else None
            prio = v.get("priority", 0)
            prio = self.template(prio, kp + ("priority",), where) if isinstance(prio, str) else prio
            spec = ir.Transfer(to if isinstance(to, ir.Template) or to is None else ir.Template(str(to)), v.get("queue"), prio,
                               v.get("context"), self.prompts(v.get("announce"), kp + ("announce",), where))
        elif kind == "conference":
            room = self.template(v["room"], kp + ("room",), where)
            spec = ir.Conference(room, v.get("role", "member"), v.get("profile"),
                                 self.expr(v["limit"], kp + ("limit",), where) if "limit" in v else None,
                                 self.duration(v.get("warn_before"), 60.0),
                                 self.prompts(v.get("warning"), kp + ("warning",), where), v.get("into"))
        elif kind == "record":
            spec = ir.Record(v["into"], self.prompts(v.get("prompt"), kp + ("prompt",), where),
                             self.duration(v.get("max"), 60.0), self.duration(v.get("silence"), 5.0),
                             v.get("terminator", "#"), bool(v.get("beep", True)))
        elif kind == "call":
            spec = ir.Call(v)
        elif kind == "hours":
            spec = self.hours(v, kp)
        elif kind == "hangup":
            if v is True:
                spec = ir.Hangup()
            elif isinstance(v, str):
                spec = ir.Hangup(v)
            else:
                spec = ir.Hangup(v.get("cause", "NORMAL_CLEARING"), self.prompts(v.get("prompt"), kp + ("prompt",), where))
        elif kind == "return":
            spec = ir.Return(v)
            if not scope:
                self.err("E207", "'return' ends a sub-flow; in the main flow use 'hangup'", kp, key=True)
        else:  # pragma: no cover - schema prevents it
            return None
        transitions = extra_transitions + self.transitions(scope, name, kind, st, path)
        return ir.State(name, kind, spec, self.doc.pos(path, key=True), tuple(transitions), scope, st.get("description"))

    def hours(self, v: dict, kp: tuple) -> ir.Hours:
        tz = v.get("timezone", "Asia/Shanghai")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(tz)
        except Exception:
            self.err("E107", f"unknown timezone '{tz}'", kp + ("timezone",))
        weekly = []
        for spec, ranges in v["open"].items():
            days = _parse_days(spec)
            if days is None:
                self.err("E107", f"bad days '{spec}': use mon..sun, a range (mon-fri), a list (sat,sun) or daily",
                         kp + ("open", spec), key=True)
                continue
            for r in ranges.split(","):
                a, b = r.split("-")
                try:
                    t0, t1 = time.fromisoformat(a), time.fromisoformat(b)
                except ValueError:
                    self.err("E107", f"bad time range '{r}'", kp + ("open", spec))
                    continue
                if t0 >= t1:
                    self.err("E107", f"time range '{r}' ends before it starts", kp + ("open", spec))
                    continue
                for d in days:
                    weekly.append((d, t0, t1))
        holidays = []
        for i, h in enumerate(v.get("holidays") or []):
            a, _, b = h.partition("..")
            try:
                d0 = date.fromisoformat(a)
                d1 = date.fromisoformat(b) if b else d0
                if d1 < d0:
                    raise ValueError
                holidays.append((d0, d1))
            except ValueError:
                self.err("E107", f"bad holiday '{h}': use YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD", kp + ("holidays", i))
        return ir.Hours(tz, tuple(sorted(weekly)), tuple(holidays))

    def check_params(self, action, params: Any, path: tuple) -> None:
        v = jsonschema.Draft202012Validator(dict(action.params))
        for e in v.iter_errors(params):
            # a templated string is only known at run time: it is checked again then
            if isinstance(e.instance, str) and templating.is_template(e.instance):
                continue
            if e.validator == "type" and isinstance(e.instance, str) and templating.is_template(e.instance):
                continue
            ppath = path + tuple(e.absolute_path)
            if e.validator == "additionalProperties":
                allowed = list((e.schema.get("properties") or {}).keys())
                for k in (e.instance or {}):
                    if k not in allowed:
                        self.err("E203", f"action {action.name} has no parameter '{k}'", ppath + (k,), key=True,
                                 hint=did_you_mean(k, allowed))
                continue
            if e.validator == "required":
                self.err("E203", f"action {action.name}: {e.message}", path[:-1] + ("action",) if not params else ppath, key=True)
                continue
            where = "/".join(map(str, e.absolute_path)) or "params"
            self.err("E203", f"action {action.name}: parameter {where}: {e.message}", ppath)

    def transitions(self, scope: str, name: str, kind: str, st: dict, path: tuple) -> list[ir.Transition]:
        nxt = st.get("next")
        out = []
        if kind in ("hangup", "return"):
            if nxt is not None:
                self.err("E106", f"a '{kind}' state ends the {'call' if kind == 'hangup' else 'sub-flow'}: it has no next",
                         path + ("next",), key=True)
            return out
        if isinstance(nxt, str):
            out.append(ir.Transition(SHORTHAND.get(kind, "default"), nxt, self.doc.pos(path + ("next",))))
        elif isinstance(nxt, dict):
            for outcome, target in nxt.items():
                out.append(ir.Transition(str(outcome), target, self.doc.pos(path + ("next", outcome), key=True)))
        return out

    # -- the whole flow ----------------------------------------------------------------------
    def run(self) -> ir.Flow | None:
        doc = self.doc
        data = doc.data
        self.diags.extend(doc.diagnostics)
        if doc.diagnostics and any(d.code == "E001" for d in doc.diagnostics) or not isinstance(data, dict):
            if not doc.diagnostics and not isinstance(data, dict):
                self.diags.extend(schema_mod.check(doc))
            return None
        schema_diags, bad_paths = schema_mod.check_with_paths(doc)
        self.diags.extend(schema_diags)
        # states whose own subtree has a schema error are not compiled (but still exist as targets)
        scopes: dict[str, dict] = {"": data.get("states") if isinstance(data.get("states"), dict) else {}}
        subflows_raw = data.get("subflows") if isinstance(data.get("subflows"), dict) else {}
        for sf, body in subflows_raw.items():
            scopes[sf] = body.get("states") if isinstance(body, dict) and isinstance(body.get("states"), dict) else {}
        compiled: dict[str, dict[str, ir.State]] = {s: {} for s in scopes}
        for scope, states in scopes.items():
            base = ("states",) if not scope else ("subflows", scope, "states")
            for name, st in states.items():
                path = base + (name,)
                if not isinstance(st, dict) or any(bp[:len(path)] == path or path[:len(bp)] == bp and len(bp) >= 2 for bp in bad_paths):
                    self.bad_states[(scope, name)] = _raw_targets(st)
                    continue
                try:
                    s = self.state(scope, name, st, path)
                except (KeyError, TypeError, ValueError, AttributeError) as e:  # shape errors already reported
                    s = None
                if s is None:
                    self.bad_states[(scope, name)] = _raw_targets(st)
                else:
                    compiled[scope][name] = s
        has_schema_errors = any(d.severity == "error" for d in schema_diags)
        flow_name = data.get("flow") if isinstance(data.get("flow"), str) else "?"
        if has_schema_errors and not compiled[""]:
            return None
        # references and outcomes
        subflow_outcomes = {sf: frozenset(s.spec.outcome for s in compiled[sf].values() if s.kind == "return") for sf in subflows_raw}
        on = data.get("on") if isinstance(data.get("on"), dict) else {}
        on = {k: v for k, v in on.items() if k == "keys" or isinstance(v, str)}
        for scope, states in compiled.items():
            names = set(scopes[scope])
            for s in states.values():
                self.check_outcomes(s, subflow_outcomes, on)
                for t in s.transitions:
                    if t.target not in names:
                        where = "this sub-flow" if scope else "this flow"
                        self.diags.append(Diagnostic("E201", f"state '{t.target}' does not exist in {where}", t.position,
                                                     hint=did_you_mean(t.target, names)))
                if s.kind == "call" and s.spec.subflow not in subflows_raw:
                    self.err("E206", f"unknown sub-flow '{s.spec.subflow}'", _state_path(scope, s.name) + ("call",),
                             hint=did_you_mean(s.spec.subflow, subflows_raw))
        for sf in subflows_raw:
            if compiled[sf] and not subflow_outcomes[sf]:
                self.err("E207", f"sub-flow '{sf}' never returns: end it with a 'return: OUTCOME' state", ("subflows", sf), key=True)
        main_names = set(scopes[""])
        start = data.get("start")
        if isinstance(start, str) and start not in main_names:
            self.err("E201", f"start state '{start}' does not exist", ("start",), hint=did_you_mean(start, main_names))
        for sf, body in subflows_raw.items():
            if isinstance(body, dict) and isinstance(body.get("start"), str) and body["start"] not in scopes[sf]:
                self.err("E201", f"start state '{body['start']}' does not exist in sub-flow '{sf}'", ("subflows", sf, "start"),
                         hint=did_you_mean(body["start"], scopes[sf]))
        for h in ("hangup", "error", "failed"):
            if isinstance(on.get(h), str) and on[h] not in main_names:
                self.err("E201", f"on {h}: state '{on[h]}' does not exist", ("on", h), hint=did_you_mean(on[h], main_names))
        keys = {str(k): t for k, t in on.get("keys").items() if isinstance(t, str)} if isinstance(on.get("keys"), dict) else {}
        for k, target in keys.items():
            if target not in main_names:
                self.err("E201", f"global key {k}: state '{target}' does not exist", ("on", "keys", k), hint=did_you_mean(target, main_names))
        for scope, states in compiled.items():
            for s in states.values():
                if s.kind == "menu":
                    for k in s.spec.options:
                        if k in keys:
                            self.err("W310", f"menu option {k} hides the global key {k} in this menu",
                                     _state_path(scope, s.name) + ("menu", "options", k), key=True, severity="warning")
        limits = data.get("limits") if isinstance(data.get("limits"), dict) else {}
        flow_vars = data.get("variables") if isinstance(data.get("variables"), dict) else {}
        flow_vars = {k: v for k, v in flow_vars.items() if isinstance(v, (str, int, float, bool)) or v is None}
        subflows = {}
        for sf, body in subflows_raw.items():
            subflows[sf] = ir.Subflow(sf, body.get("start") if isinstance(body, dict) else "", ir.frozen_map(compiled[sf]),
                                      subflow_outcomes[sf], doc.pos(("subflows", sf), key=True))
        langs = data.get("languages") if isinstance(data.get("languages"), list) else ["zh-CN"]
        langs = [l for l in langs if isinstance(l, str)] or ["zh-CN"]
        flow = ir.Flow(
            name=flow_name, file=doc.file, languages=tuple(str(l) for l in langs),
            prompts=data.get("prompts") if isinstance(data.get("prompts"), str) else None,
            start=start if isinstance(start, str) else "", states=ir.frozen_map(compiled[""]),
            subflows=ir.frozen_map(subflows), variables=ir.frozen_map(flow_vars), global_keys=ir.frozen_map(keys),
            on_hangup=on.get("hangup"), on_error=on.get("error"), on_failed=on.get("failed"),
            max_steps=int(limits.get("max_steps", 1000)) if isinstance(limits.get("max_steps", 1000), int) else 1000,
            max_duration=_safe_duration(limits.get("max_duration")),
            description=data.get("description") if isinstance(data.get("description"), str) else None,
            prompt_refs=tuple(self.prompt_refs), prompt_ref_vars=tuple(self.prompt_ref_vars), assigned_variables=frozenset(),
            source_sha256=hashlib.sha256(doc.text.encode("utf-8", "surrogatepass")).hexdigest(),
        )
        graph_ok = not any(d.code in ("E201", "E206") for d in self.diags)
        if graph_ok and flow.start:
            assigned = analysis.check_flow(flow, self.registry, self.reads, self.bad_states, self.diags, doc)
            flow = _replace(flow, assigned_variables=frozenset(assigned))
        if self.catalog_provider is not None and flow.prompts:
            self.diags.extend(self.catalog_provider(flow))
        if any(d.severity == "error" for d in self.diags):
            return None
        return flow

    def check_outcomes(self, s: ir.State, subflow_outcomes: dict, on: dict) -> None:
        path = _state_path(s.scope, s.name)
        if s.kind == "action":
            action = self.registry.get(s.spec.name)
            if action is None:
                return
            declared = set(action.outcomes) | {"error"}
            required = set(action.outcomes) - set(action.optional_outcomes)
            owner = f"action {action.name}"
        elif s.kind == "call":
            if s.spec.subflow not in subflow_outcomes:
                return
            declared = set(subflow_outcomes[s.spec.subflow])
            required = set(declared)
            owner = f"sub-flow {s.spec.subflow}"
        else:
            declared, required = (set(x) for x in KIND_OUTCOMES[s.kind])
            owner = f"a {s.kind} state"
        handled = {t.outcome for t in s.transitions}
        if s.kind == "menu":
            handled -= set(s.spec.options)
        if s.kind == "branch":
            handled = {o for o in handled if not o.startswith("case")}
        for t in s.transitions:
            if s.kind == "menu" and t.outcome in s.spec.options:
                continue
            if s.kind == "branch" and t.outcome.startswith("case"):
                continue
            if t.outcome not in declared and t.outcome != "default":
                self.diags.append(Diagnostic("E205", f"{owner} has no outcome '{t.outcome}'"
                                             + (f" (it has: {', '.join(sorted(declared - {'default'}))})" if declared - {"default"} else ""),
                                             t.position, hint=did_you_mean(t.outcome, declared)))
        if "default" in handled and s.kind not in ("menu", "collect"):
            return
        missing = sorted(required - handled)
        if s.kind in ("menu", "collect") and "failed" in missing:
            missing.remove("failed")
            if not on.get("failed") and "default" not in handled:
                kind_word = "menu" if s.kind == "menu" else "collect"
                self.err("E304", f"{kind_word} '{s.name}' has no failure exit: add next: {{failed: STATE}} "
                                 f"(taken after the last attempt) or a flow-level on: {{failed: STATE}}",
                         path + (s.kind,), key=True)
        if missing and "default" not in handled:
            if s.kind in KIND_OUTCOMES and KIND_OUTCOMES[s.kind][0] == {"default"}:
                self.err("E204", f"state '{s.name}' has no next: where does the call go after it?", path, key=True)
            else:
                what = ", ".join(f"'{m}'" for m in missing)
                self.err("E204", f"{owner}: outcome{'s' if len(missing) > 1 else ''} {what} not handled "
                                 f"(add to next, or give a 'default')", path + (("next",) if "next" in self._raw(path) else (s.kind,)),
                         key=True)

    def _raw(self, path: tuple) -> dict:
        node = self.doc.data
        for p in path:
            node = node.get(p) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}


def _replace(flow: ir.Flow, **kw) -> ir.Flow:
    import dataclasses

    return dataclasses.replace(flow, **kw)


def _safe_duration(v):
    if v is None:
        return None
    try:
        return parse_duration(v)
    except ValueError:
        return None


def _state_path(scope: str, name: str) -> tuple:
    return ("states", name) if not scope else ("subflows", scope, "states", name)


def _raw_targets(st: Any) -> frozenset[str]:
    """State names mentioned by a state that could not be compiled (to avoid cascading errors)."""
    out: set[str] = set()
    if not isinstance(st, dict):
        return frozenset()
    nxt = st.get("next")
    if isinstance(nxt, str):
        out.add(nxt)
    elif isinstance(nxt, dict):
        out.update(v for v in nxt.values() if isinstance(v, str))
    menu = st.get("menu")
    if isinstance(menu, dict) and isinstance(menu.get("options"), dict):
        out.update(v for v in menu["options"].values() if isinstance(v, str))
    br = st.get("branch")
    if isinstance(br, list):
        out.update(c["then"] for c in br if isinstance(c, dict) and isinstance(c.get("then"), str))
    return frozenset(out)


def _parse_days(spec: str) -> list[int] | None:
    spec = spec.strip().lower()
    if spec in ("daily", "every day", "all"):
        return list(range(7))
    days: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            if a not in _DAYS or b not in _DAYS:
                return None
            i, j = _DAYS.index(a), _DAYS.index(b)
            days.extend(range(i, j + 1) if i <= j else list(range(i, 7)) + list(range(0, j + 1)))
        elif part in _DAYS:
            days.append(_DAYS.index(part))
        else:
            return None
    return sorted(set(days))


def compile_text(text: str, file: str, registry: Mapping[str, Any] | None = None, catalog_provider=None):
    """Load, schema-check and compile.  Returns ``(Flow | None, sorted diagnostics)``."""
    doc = load(text, file)
    c = Compiler(doc, registry, catalog_provider)
    flow = c.run()
    return flow, sort(c.diags)


def compile_file(path: str | Path, registry: Mapping[str, Any] | None = None, catalog_provider=None, display_name: str | None = None):
    p = Path(path)
    name = display_name or str(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        return None, [Diagnostic("E000", f"cannot read file: {e.strerror or e}", Position(name, 1, 1))]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return None, [Diagnostic("E001", "the file is not valid UTF-8", Position(name, line, col))]
    if registry is None:
        from engine.actions import default_registry

        registry = default_registry()
    return compile_text(text, name, registry, catalog_provider)
