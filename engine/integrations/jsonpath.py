"""Dotted paths into a decoded JSON document: ``location.city``, ``items.0.name``,
``items[0].name``, ``items[-1]``.  A digit segment indexes a list (or is a key of an object)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PathError", "parse_path", "lookup", "MISSING"]

_SEG = re.compile(r"([^.\[\]]*)((?:\[-?\d+\])*)$")
MISSING = object()


class PathError(ValueError):
    pass


def parse_path(path: str) -> tuple[str | int, ...]:
    """'a.b[0].c' -> ('a', 'b', 0, 'c'); digit segments stay text ('a.0' -> ('a', '0'))."""
    if not isinstance(path, str) or not path.strip():
        raise PathError("an empty path")
    out: list[str | int] = []
    for seg in path.strip().split("."):
        m = _SEG.match(seg)
        if not m or (not m.group(1) and not m.group(2)):
            raise PathError(f"bad path {path!r} (use e.g. location.city or items[0].name)")
        if m.group(1):
            out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"-?\d+", m.group(2)))
    return tuple(out)


def lookup(doc: Any, path: str) -> Any:
    """The value at ``path``, or MISSING (a JSON null is None, not missing)."""
    cur = doc
    for seg in parse_path(path):
        if isinstance(cur, dict):
            key = str(seg)
            if key not in cur:
                return MISSING
            cur = cur[key]
        elif isinstance(cur, list):
            try:
                i = int(seg)
            except ValueError:
                return MISSING
            if not -len(cur) <= i < len(cur):
                return MISSING
            cur = cur[i]
        else:
            return MISSING
    return cur
