"""The caller's script for simulations: ``"1 12345678# wait:6 2 hangup"``.

Tokens, separated by spaces:

- ``123#``      keys, pressed together when the IVR next waits for input (after its prompt)
- ``!123``      keys pressed at once, even during a prompt (barge-in)
- ``wait:6``    stay silent 6 seconds (``6``, ``6s``, ``500ms``, ``2m``)
- ``timeout``   let the next input time out (press nothing while the IVR waits)
- ``speak:5``   talk for 5 seconds (what a ``record`` state records)
- ``hangup``    hang up at once

Full semantics: docs/runtime.md, "Simulation".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .channel import DTMF_KEYS

__all__ = ["Token", "ScriptError", "parse_script", "format_script"]

_KEYS_RE = re.compile(r"^[0-9*#A-D]+$")
_DUR_RE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(ms|s|m)?$")
_UNIT = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0}
MAX_TOKENS = 10_000


class ScriptError(ValueError):
    """A caller script that cannot be parsed; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message if column is None else f"column {column}: {message}")
        self.column = column


@dataclass(frozen=True)
class Token:
    kind: str                    # keys | wait | timeout | speak | hangup
    keys: str = ""
    seconds: float = 0.0
    now: bool = False            # keys: pressed at once (barge-in)

    def text(self) -> str:
        if self.kind == "keys":
            return ("!" if self.now else "") + self.keys
        if self.kind in ("wait", "speak"):
            return f"{self.kind}:{self.seconds:g}"
        return self.kind


def _duration(s: str, col: int, what: str) -> float:
    m = _DUR_RE.match(s.strip())
    if not m:
        raise ScriptError(f"{what} needs a duration such as 6, 6s, 500ms or 2m (got {s!r})", col)
    v = float(m.group(1)) * _UNIT[m.group(2)]
    if v > 86400:
        raise ScriptError(f"{what}: {v:g} s is more than a day", col)
    return v


def parse_script(text: str | None) -> list[Token]:
    """Parse a caller script.  Raises ScriptError with the column of the bad token."""
    out: list[Token] = []
    if not text:
        return out
    if not isinstance(text, str):
        raise ScriptError(f"the caller script must be text, not {type(text).__name__}")
    for m in re.finditer(r"\S+", text):
        raw, col = m.group(0), m.start() + 1
        low = raw.lower()
        if len(out) >= MAX_TOKENS:
            raise ScriptError(f"more than {MAX_TOKENS} tokens", col)
        if low in ("hangup", "bye"):
            out.append(Token("hangup"))
        elif low in ("timeout", "-"):
            out.append(Token("timeout"))
        elif low.startswith("wait:") or low.startswith("w:"):
            out.append(Token("wait", seconds=_duration(raw.split(":", 1)[1], col, "wait")))
        elif low.startswith("speak:"):
            out.append(Token("speak", seconds=_duration(raw.split(":", 1)[1], col, "speak")))
        elif raw.startswith("!") and _KEYS_RE.match(raw[1:]):
            out.append(Token("keys", keys=raw[1:], now=True))
        elif _KEYS_RE.match(raw):
            out.append(Token("keys", keys=raw))
        else:
            bad = next((c for c in raw.lstrip("!") if c not in DTMF_KEYS), raw)
            raise ScriptError(
                f"unknown token {raw!r}" + (f" (key {bad!r} is not a phone key)" if bad != raw else "")
                + ": use keys (0-9 * # A-D, '!' prefix to barge in), wait:N, timeout, speak:N or hangup", col)
    return out


def format_script(tokens: list[Token]) -> str:
    return " ".join(t.text() for t in tokens)
