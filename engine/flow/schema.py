"""Stage 2: check the plain data against schema/flow.schema.json.

jsonschema's errors are turned into positioned diagnostics; for ``anyOf`` /
``oneOf`` the most relevant branch is reported, and an unknown key points at the
key itself with a "did you mean".
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Iterable

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .diagnostics import Diagnostic, did_you_mean
from .loader import Document

KIND_KEYS = ("play", "say", "menu", "collect", "branch", "set", "action", "transfer",
             "conference", "record", "call", "hours", "hangup", "return")


def schema_path() -> Path:
    from engine import PROJECT_ROOT

    p = PROJECT_ROOT / "schema" / "flow.schema.json"
    if p.exists():
        return p
    return Path(__file__).resolve().parent / "flow.schema.json"  # packaged copy


@functools.lru_cache(maxsize=1)
def flow_schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(flow_schema())


@functools.lru_cache(maxsize=1)
def fast_validator():
    """A compiled validator (fastjsonschema) that only answers valid / invalid, ~10x faster than
    jsonschema; jsonschema then explains an invalid document.  Both agree (tests/flow/test_properties.py)."""
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover
        return None
    return fastjsonschema.compile(flow_schema())


def is_valid(data: Any) -> bool:
    fv = fast_validator()
    if fv is None:
        return validator().is_valid(data)
    import fastjsonschema

    try:
        fv(data)
        return True
    except fastjsonschema.JsonSchemaException:
        return False


_DURATION_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$")


def _describe_type(v: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number", type(None): "empty (null)"}.get(type(v), type(v).__name__)


def _leaf(err: ValidationError) -> ValidationError:
    if err.context:
        return _leaf(best_match(err.context))
    return err


def _is_duration_schema(schema: Any) -> bool:
    return isinstance(schema, dict) and "anyOf" in schema and any(
        isinstance(s, dict) and s.get("pattern", "").endswith("(ms|s|m|h)$") for s in schema["anyOf"])


def to_diagnostics(err: ValidationError, doc: Document) -> Iterable[Diagnostic]:
    path = tuple(err.absolute_path)
    where = "/".join(str(p) for p in path) or "the flow"
    if _is_duration_schema(err.schema):
        yield Diagnostic("E103", f"{where}: bad duration {err.instance!r}: use seconds (5) or a string such as 500ms, 5s, 2m, 1h",
                         doc.pos(path))
        return
    if err.validator in ("anyOf", "oneOf") and err.context:
        # a value of the wrong shape for every alternative: say what is allowed
        types = sorted({s.get("type") if isinstance(s.get("type"), str) else "value" for s in err.schema.get(err.validator, [])
                        if isinstance(s, dict)} - {None})
        leaf = best_match(err.context)
        if leaf.validator == "type" or not types:
            # wrong type at this level: show the alternatives
            if types and not isinstance(err.instance, (dict, list)):
                yield Diagnostic("E102", f"{where}: expected {' or '.join(types)}, got {_describe_type(err.instance)}", doc.pos(path))
                return
        yield from to_diagnostics(leaf, doc)
        return
    if err.validator == "additionalProperties":
        allowed = list((err.schema.get("properties") or {}).keys())
        extras = [k for k in err.instance if k not in allowed] if isinstance(err.instance, dict) else []
        for k in extras:
            yield Diagnostic("E101", f"unknown key '{k}' in {where}", doc.pos(path + (k,), key=True), hint=did_you_mean(k, allowed))
        if extras or not isinstance(err.instance, dict):
            return
        # additionalProperties with a schema (e.g. state names): fall through
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        yield Diagnostic("E104", f"missing required key '{missing}' in {where}", doc.pos(path, key=True))
        return
    if err.validator == "type":
        expected = err.validator_value if isinstance(err.validator_value, str) else " or ".join(err.validator_value)
        expected = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
                    "number": "a number", "boolean": "a boolean"}.get(expected, expected)
        yield Diagnostic("E102", f"{where}: expected {expected}, got {_describe_type(err.instance)}", doc.pos(path))
        return
    if err.validator == "propertyNames":
        bad = err.instance
        yield Diagnostic("E103", f"{where}: invalid name {bad!r}", doc.pos(path))
        return
    if err.validator == "pattern":
        yield Diagnostic("E103", f"{where}: {err.instance!r} is not valid here ({err.schema.get('description') or 'must match ' + err.validator_value})",
                         doc.pos(path))
        return
    if err.validator in ("minimum", "maximum", "minItems", "maxItems", "minLength", "minProperties", "enum", "const", "uniqueItems"):
        yield Diagnostic("E103", f"{where}: {err.message}", doc.pos(path))
        return
    yield Diagnostic("E103", f"{where}: {err.message}", doc.pos(path))


def _property_name_errors(err: ValidationError, doc: Document) -> Iterable[Diagnostic]:
    # jsonschema reports propertyNames failures against the mapping; find the bad keys
    path = tuple(err.absolute_path)
    sub = err.schema.get("propertyNames") or {}
    pat = sub.get("pattern")
    if isinstance(err.instance, dict) and pat:
        for k in err.instance:
            if not re.search(pat, str(k)):
                yield Diagnostic("E103", f"invalid name '{k}' in {'/'.join(map(str, path)) or 'the flow'}",
                                 doc.pos(path + (k,), key=True))


def check(doc: Document) -> list[Diagnostic]:
    return check_with_paths(doc)[0]


def check_with_paths(doc: Document) -> tuple[list[Diagnostic], list[tuple]]:
    """Diagnostics, and the JSON paths that have an error (so later stages skip them)."""
    out: list[Diagnostic] = []
    paths: list[tuple] = []
    data = doc.data
    if not isinstance(data, dict):
        out.append(Diagnostic("E102", f"a flow must be a mapping, got {_describe_type(data)}", doc.pos(())))
        return out, [()]
    # states: exactly one kind each (checked here for a precise message; the schema allows any mix)
    subflows = data.get("subflows") if isinstance(data.get("subflows"), dict) else {}
    for scope_path in [("states",)] + [("subflows", s, "states") for s in subflows]:
        node = data
        for p in scope_path:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        for name, st in node.items():
            if isinstance(st, dict):
                kinds = [k for k in KIND_KEYS if k in st]
                if len(kinds) != 1:
                    msg = (f"state '{name}' does nothing: give it exactly one of {', '.join(KIND_KEYS)}" if not kinds else
                           f"state '{name}' has {len(kinds)} kinds ({', '.join(kinds)}): use exactly one, and a new state for the next")
                    out.append(Diagnostic("E105", msg, doc.pos(scope_path + (name,), key=True)))
                    paths.append(scope_path + (name,))
                if "params" in st and "action" not in st:
                    out.append(Diagnostic("E101", f"'params' belongs to an action state; state '{name}' is not one",
                                          doc.pos(scope_path + (name, "params"), key=True)))
    errors = () if is_valid(data) else validator().iter_errors(data)
    for err in errors:
        paths.append(tuple(err.absolute_path))
        if err.validator == "propertyNames":
            out.extend(_property_name_errors(err, doc))
        else:
            out.extend(to_diagnostics(err, doc))
    return out, paths
