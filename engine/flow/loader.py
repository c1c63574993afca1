"""Stage 1: YAML text -> plain data plus a side table of source positions.

The document is *composed* (not constructed) with ruamel.yaml so that every key and
value keeps its mark, duplicate keys are all found (not just the first), aliases
cannot expand without bound, and no Python object is ever built from a tag.
Positions live in a side table keyed by JSON path (a tuple of keys / indexes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Diagnostic, Position

MAX_NODES = 200_000      # alias bombs and absurd documents stop here
MAX_DEPTH = 64

Path = tuple  # JSON path: tuple of str | int


@dataclass
class Document:
    file: str
    text: str
    data: Any = None
    # path -> position of the value; path -> position of the key (mappings only)
    values: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    diagnostics: list = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def pos(self, path: Path, key: bool = False) -> Position:
        """Position of a path's key (if asked and known) or value; falls back to the
        closest enclosing path, then to the top of the file."""
        path = tuple(path)
        if key and path in self.keys:
            return self.keys[path]
        while True:
            if path in self.values:
                return self.values[path]
            if path in self.keys:
                return self.keys[path]
            if not path:
                return Position(self.file, 1, 1)
            path = path[:-1]


class _TooBig(Exception):
    pass


def _yaml() -> YAML:
    # the C composer (ruamel.yaml.clib) is ~4x faster; the pure one is the fallback
    try:
        return YAML(typ="safe", pure=False)
    except Exception:  # pragma: no cover - clib missing
        return YAML(typ="safe", pure=True)


_SCALAR_YAML = YAML(typ="safe", pure=True)


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"


def _scalar(node: ScalarNode) -> Any:
    """The value of a scalar per the YAML 1.2 core schema (as resolved by the composer).
    Timestamps and unknown tags stay strings: the schema decides what they mean."""
    tag = node.tag
    tag = getattr(tag, "value", tag)
    v = node.value
    if tag == _INT:
        t = v.replace("_", "")
        try:
            if t[:2] in ("0x", "0X") or t[1:3] in ("0x", "0X"):
                return int(t, 16)
            if t[:2] in ("0o", "0O") or t[1:3] in ("0o", "0O"):
                return int(t, 8)
            return int(t, 10)
        except ValueError:
            return _SCALAR_YAML.constructor.construct_object(node, deep=True)
    if tag == _FLOAT:
        t = v.replace("_", "").lower()
        if t in (".inf", "+.inf"):
            return float("inf")
        if t == "-.inf":
            return float("-inf")
        if t == ".nan":
            return float("nan")
        try:
            return float(t)
        except ValueError:
            return _SCALAR_YAML.constructor.construct_object(node, deep=True)
    if tag == _BOOL:
        return v.lower() in ("true", "yes", "on", "y")
    if tag == _NULL:
        return None
    return v


def load(text: str, file: str) -> Document:
    doc = Document(file=file, text=text)
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        node = _yaml().compose(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = (e.problem or "invalid YAML").strip()
        if e.context and e.problem:
            problem = f"{e.context.strip()}: {problem}"
        doc.diagnostics.append(Diagnostic("E001", f"YAML syntax error: {problem}", Position(file, line, col)))
        return doc
    except YAMLError as e:
        doc.diagnostics.append(Diagnostic("E001", f"YAML syntax error: {e}", Position(file, 1, 1)))
        return doc
    if node is None:
        doc.diagnostics.append(Diagnostic("E003", "the file is empty: a flow is a mapping with flow, languages, start and states",
                                          Position(file, 1, 1)))
        return doc
    counter = [0]
    try:
        doc.data = _walk(node, (), doc, counter, 0, frozenset())
    except _TooBig as e:
        doc.diagnostics.append(Diagnostic("E003", str(e), Position(file, 1, 1)))
        doc.data = None
    return doc


def _mark(node: Node, file: str) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(node: Node, path: Path, doc: Document, counter: list, depth: int, active: frozenset) -> Any:
    counter[0] += 1
    if counter[0] > MAX_NODES:
        raise _TooBig(f"document too large (more than {MAX_NODES} nodes, aliases expanded)")
    if depth > MAX_DEPTH:
        raise _TooBig(f"document nested deeper than {MAX_DEPTH} levels")
    if id(node) in active:
        raise _TooBig("recursive alias")
    doc.values.setdefault(path, _mark(node, doc.file))
    if isinstance(node, ScalarNode):
        return _scalar(node)
    active = active | {id(node)}
    if isinstance(node, SequenceNode):
        return [_walk(item, path + (i,), doc, counter, depth + 1, active) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        out: dict = {}
        for knode, vnode in node.value:
            if getattr(knode.tag, "value", knode.tag) == "tag:yaml.org,2002:merge":
                doc.diagnostics.append(Diagnostic("E003", "merge keys (<<) are not supported in flows", _mark(knode, doc.file)))
                continue
            if not isinstance(knode, ScalarNode):
                doc.diagnostics.append(Diagnostic("E003", "a key must be a plain scalar", _mark(knode, doc.file)))
                continue
            key = _scalar(knode)
            if key is None or isinstance(key, (bool, float)):
                key = knode.value
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                first = doc.keys[path + (key,)]
                doc.diagnostics.append(Diagnostic(
                    "E002", f"duplicate key '{key}' (first defined at line {first.line})", _mark(knode, doc.file)))
                continue
            doc.keys[path + (key,)] = _mark(knode, doc.file)
            out[key] = _walk(vnode, path + (key,), doc, counter, depth + 1, active)
        return out
    return None
