"""Diagnostics: every problem found in a flow (or catalog) is one of these.

Rendered as ``file:line:col: error[CODE]: message`` followed by the source line and a
caret, Ansible-style.  Lines and columns are 1-based.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Sequence


@dataclass(frozen=True, order=True)
class Position:
    file: str
    line: int  # 1-based
    col: int   # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    code: str                  # e.g. "E201"
    message: str
    position: Position
    severity: str = "error"    # "error" | "warning"
    hint: str | None = None    # e.g. "did you mean 'main_menu'?"

    @property
    def sort_key(self):
        return (self.position.file, self.position.line, self.position.col, self.code, self.message)

    def headline(self) -> str:
        msg = self.message + (f" ({self.hint})" if self.hint else "")
        return f"{self.position}: {self.severity}[{self.code}]: {msg}"

    def render(self, source_lines: Sequence[str] | None = None) -> str:
        out = [self.headline()]
        if source_lines is not None and 1 <= self.position.line <= len(source_lines):
            text = source_lines[self.position.line - 1].rstrip("\n").expandtabs(1)
            out.append(f"  {text}")
            out.append("  " + " " * max(self.position.col - 1, 0) + "^")
        return "\n".join(out)

    def to_json(self) -> dict:
        d = asdict(self)
        d["file"], d["line"], d["col"] = self.position.file, self.position.line, self.position.col
        del d["position"]
        return d


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def sort(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    return sorted(set(diags), key=lambda d: d.sort_key)


def render_all(diags: Iterable[Diagnostic], sources: dict[str, Sequence[str]] | None = None) -> str:
    sources = sources or {}
    return "\n".join(d.render(sources.get(d.position.file)) for d in sort(diags))


def to_json(diags: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in sort(diags)], ensure_ascii=False, indent=2)
