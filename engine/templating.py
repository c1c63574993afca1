"""The one jinja2 environment used for every template and condition in ivrflow.

Sandboxed (``ImmutableSandboxedEnvironment``), ``StrictUndefined`` (a missing variable
is an error, never an empty string), with size limits on sources, outputs, ranges,
string repetition and powers.  Python ``eval`` is never used.

Filters for speech (``money``, ``number``, ``digits``, ``date``, ``time``) render in
the call's language (the ``lang`` variable) through ``engine.prompts.speak``.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any, Mapping

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SOURCE = 4096        # characters in one template or condition
MAX_OUTPUT = 8192        # characters a template may render to
MAX_RANGE = 1000         # items range() may produce
MAX_REPEAT = 8192        # length of "x" * n
MAX_POW_EXP = 64


class TemplateLimitError(Exception):
    """A template exceeded one of the sandbox's size limits."""


def _lang(ctx) -> str:
    v = ctx.get("lang")
    return v if isinstance(v, str) else "en"


def _speak(fn_name: str):
    @jinja2.pass_context
    def f(ctx, value, *args):
        from engine.prompts import speak

        return getattr(speak, fn_name)(value, _lang(ctx), *args)

    f.__name__ = fn_name
    return f


SPEECH_FILTERS = {
    "money": _speak("say_money"),      # integer cents -> "十二元五角" / "twelve yuan fifty"
    "number": _speak("say_number"),
    "digits": _speak("say_digits"),    # digit by digit (confirmation numbers, phone numbers)
    "date": _speak("say_date"),
    "time": _speak("say_time"),
}


def _safe_range(*args):
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise TemplateLimitError(f"range() of {len(r)} items exceeds the limit of {MAX_RANGE}")
    return r


class IvrEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_POW_EXP:
                raise TemplateLimitError(f"exponent {right} exceeds the limit of {MAX_POW_EXP}")
            return operator.pow(left, right)
        if operator_ == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int):
                    if len(seq) * n > MAX_REPEAT:
                        raise TemplateLimitError(f"repetition to {len(seq) * n} items exceeds the limit of {MAX_REPEAT}")
            return operator.mul(left, right)
        return super().call_binop(context, operator_, left, right)


@functools.lru_cache(maxsize=1)
def environment() -> IvrEnvironment:
    env = IvrEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters.update(SPEECH_FILTERS)
    env.globals = {"range": _safe_range, "dict": dict, "lipsum": None}
    env.globals.pop("lipsum")
    return env


class TemplateError(Exception):
    def __init__(self, message: str, lineno: int | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = lineno


def _check_filters_and_tests(ast: nodes.Template, env: IvrEnvironment) -> None:
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        table = env.filters if isinstance(node, nodes.Filter) else env.tests
        kind = "filter" if isinstance(node, nodes.Filter) else "test"
        if node.name not in table:
            import difflib

            close = difflib.get_close_matches(node.name, list(table), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise TemplateError(f"unknown {kind} '{node.name}'{hint}", node.lineno)


def _names(ast: nodes.Template) -> frozenset[str]:
    """Variables a template reads from its context (names loaded and never stored in it)."""
    stored = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return frozenset(n.name for n in ast.find_all(nodes.Name) if n.ctx == "load" and n.name not in stored) - _GLOBAL_NAMES


_GLOBAL_NAMES = frozenset({"range", "dict", "loop", "self", "true", "false", "none", "True", "False", "None"})


import re as _re

#: the common case, ``text {{ name }} text`` or ``{{ name | filter }}``, checked without jinja's parser
_SIMPLE = _re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?\}\}")
_KEYWORDS = frozenset({"true", "false", "none", "True", "False", "None", "and", "or", "not", "in", "is", "if", "else"})


def _simple_names(source: str) -> frozenset[str] | None:
    if "{%" in source or "{#" in source:
        return None
    names = set()
    rest = _SIMPLE.sub(lambda m: names.add(m.group(1)) or (m.group(2) and names.add("|" + m.group(2))) or "", source)
    if "{{" in rest or "}}" in rest:
        return None
    filters = {n[1:] for n in names if n.startswith("|")}
    plain = {n for n in names if not n.startswith("|")}
    if plain & _KEYWORDS or not filters <= set(environment().filters):
        return None  # let the real parser produce the message
    return frozenset(plain) - _GLOBAL_NAMES


_GUARD_TESTS = frozenset({"defined", "undefined"})
_GUARD_FILTERS = frozenset({"default", "d"})


@dataclass(frozen=True)
class TemplateInfo:
    """What static analysis needs from one template or expression (parsed once)."""

    names: frozenset[str]      # every variable read
    required: frozenset[str]   # read without a guard (``is defined`` / ``default``)
    defines: frozenset[str]    # for a condition: names a true value proves set (``X is defined`` conjuncts)


@functools.lru_cache(maxsize=8192)
def analyse(source: str, expression: bool = False) -> TemplateInfo:
    """Check syntax, filters, tests and size without compiling; raises TemplateError."""
    kind = "expression" if expression else "template"
    if len(source) > MAX_SOURCE:
        raise TemplateError(f"{kind} is {len(source)} characters long; the limit is {MAX_SOURCE}")
    if not expression:
        simple = _simple_names(source)
        if simple is not None:
            return TemplateInfo(simple, simple, frozenset())
    env = environment()
    try:
        ast = env.parse("{{ " + source + " }}" if expression else source)
    except jinja2.TemplateSyntaxError as e:
        raise TemplateError(e.message or "syntax error", e.lineno) from None
    _check_filters_and_tests(ast, env)
    names = _names(ast)
    guarded: set[int] = set()
    for n in ast.find_all((nodes.Test, nodes.Filter)):
        if (isinstance(n, nodes.Test) and n.name in _GUARD_TESTS) or (isinstance(n, nodes.Filter) and n.name in _GUARD_FILTERS):
            guarded.update(id(x) for x in ([n.node] if isinstance(n.node, nodes.Name) else n.node.find_all(nodes.Name)))
    required = frozenset(n.name for n in ast.find_all(nodes.Name)
                         if n.ctx == "load" and n.name in names and id(n) not in guarded)
    defines: set[str] = set()
    if expression:
        todo = [ast.body[0].nodes[0]]
        while todo:
            n = todo.pop()
            if isinstance(n, nodes.And):
                todo += [n.left, n.right]
            elif isinstance(n, nodes.Test) and n.name == "defined" and isinstance(n.node, nodes.Name):
                defines.add(n.node.name)
    return TemplateInfo(names, required, frozenset(defines))


def check_template(source: str) -> frozenset[str]:
    """Check a template's syntax, filters and size, without compiling it.  Returns the variables read."""
    return analyse(source).names


def check_expression(source: str) -> frozenset[str]:
    """Check a condition / value expression without compiling it.  Returns the variables read."""
    return analyse(source, True).names


@functools.lru_cache(maxsize=4096)
def parse_template(source: str) -> tuple[frozenset[str], Any]:
    """Check and compile a template.  Returns (variables read, compiled)."""
    names = check_template(source)
    return names, environment().from_string(source)


@functools.lru_cache(maxsize=4096)
def parse_expression(source: str) -> tuple[frozenset[str], Any]:
    """Check and compile an expression.  Returns (variables read, compiled)."""
    names = check_expression(source)
    return names, environment().compile_expression(source, undefined_to_none=False)


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value


def render(source: str, variables: Mapping[str, Any]) -> str:
    """Render a template string.  Raises TemplateError / TemplateLimitError / jinja2 errors."""
    _, tmpl = parse_template(source)
    try:
        out = tmpl.render(dict(variables))
    except jinja2.UndefinedError as e:
        raise TemplateError(f"undefined variable: {e.message}") from None
    except jinja2.exceptions.SecurityError as e:
        raise TemplateError(f"not allowed in a template: {e}") from None
    if len(out) > MAX_OUTPUT:
        raise TemplateLimitError(f"template rendered to {len(out)} characters; the limit is {MAX_OUTPUT}")
    return out


def evaluate(source: str, variables: Mapping[str, Any]) -> Any:
    """Evaluate an expression (conditions, computed values)."""
    _, expr = parse_expression(source)
    try:
        return expr(**dict(variables))
    except jinja2.UndefinedError as e:
        raise TemplateError(f"undefined variable: {e.message}") from None
    except jinja2.exceptions.SecurityError as e:
        raise TemplateError(f"not allowed in an expression: {e}") from None
