"""The interactive channel: the flow author is the caller, at a terminal, on the real clock.

Prompts are printed as text; keys are read one at a time (0-9 * # A-D; ``h`` or end of
input hangs up).  Timeouts happen when the author waits.  On a terminal the keys are read
without Enter (cbreak mode); from a pipe they are read as they come.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from typing import Any, Callable, Iterator, Sequence

from .channel import (DTMF_KEYS, CallHangup, Channel, ConferenceResult, PlayItem, RecordResult, TransferTarget)

__all__ = ["TerminalChannel", "cbreak"]

HANGUP_KEYS = "hHqQ"


@contextlib.contextmanager
def cbreak(fd: int) -> Iterator[None]:
    """Single-key input on a terminal (no-op when ``fd`` is not a terminal)."""
    if not os.isatty(fd):
        yield
        return
    import termios
    import tty

    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


class TerminalChannel(Channel):
    name = "terminal"

    def __init__(self, call_id: str, caller: str | None, destination: str | None = None, *,
                 caller_trusted: bool = True, variables: Any = None, fd: int | None = None,
                 out: Callable[[str], None] | None = None):
        super().__init__(call_id, caller, destination, caller_trusted=caller_trusted, variables=variables)
        self.fd = sys.stdin.fileno() if fd is None else fd
        self.out = out or (lambda s: print(s, flush=True))
        self.vars: dict[str, Any] = dict(variables or {})
        self._eof = False
        self._hinted = False

    # -- key input ------------------------------------------------------------------------------
    def _read_char(self, timeout: float) -> str | None:
        """One character within ``timeout`` seconds (None on timeout); '' at end of input."""
        if self._eof:
            return ""
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return None
        b = os.read(self.fd, 1)
        if not b:
            self._eof = True
            return ""
        return b.decode("latin-1")

    def _poll(self, timeout: float) -> str | None:
        """Wait up to ``timeout`` for a phone key (others ignored); raise CallHangup on h / EOF."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            c = self._read_char(max(0.0, left))
            if c is None:
                return None
            if c == "" or c in HANGUP_KEYS:
                self._gone("NORMAL_CLEARING")
            if c.upper() in DTMF_KEYS:
                self.out(f"  caller: {c.upper()}")
                return c.upper()
            if left <= 0:
                return None

    def _gone(self, cause: str) -> None:
        self.hungup = True
        self.hangup_cause = cause
        self.out(f"  [caller hung up: {cause}]")
        raise CallHangup(cause)

    def _check(self) -> None:
        if self.hungup:
            raise CallHangup(self.hangup_cause or "NORMAL_CLEARING")

    # -- Channel -------------------------------------------------------------------------------------
    async def answer(self) -> None:
        self._check()
        self.out("[call answered]  keys: 0-9 * # A-D   h = hang up")

    async def play(self, items: Sequence[PlayItem], barge_in: bool = True) -> str | None:
        self._check()
        for it in items:
            self.out(f"IVR: {it.label()}" + ("" if barge_in else "   (cannot be interrupted)"))
        if barge_in:
            if self.keys:
                return self.keys.peek()
            k = self._poll(0.0)
            if k is not None:
                self.keys.push(k, time.monotonic())
                return self.keys.peek()
        else:
            while self._poll(0.0) is not None:
                pass
        return None

    async def read_key(self, timeout: float) -> str | None:
        self._check()
        k = self.keys.pop()
        if k is not None:
            return k
        if timeout <= 0:
            return None
        if not self._hinted:
            self.out(f"  (waiting for a key, {timeout:g} s)")
            self._hinted = True
        k = self._poll(timeout)
        if k is None:
            self.out(f"  (no key for {timeout:g} s)")
        return k

    async def record(self, path: str, *, max_seconds: float, silence_seconds: float,
                     terminator: str | None) -> RecordResult:
        self._check()
        self.keys.clear()
        stop = f"press {terminator} to stop, " if terminator else ""
        self.out(f"  [recording to {path}: talk now ({stop}silence ends it after {silence_seconds:g} s, "
                 f"at most {max_seconds:g} s)]")
        start = time.monotonic()
        while True:
            left = start + max_seconds - time.monotonic()
            if left <= 0:
                return RecordResult(path, max_seconds, "max")
            try:
                k = self._poll(left)
            except CallHangup as h:
                raise CallHangup(h.cause, partial=RecordResult(path, time.monotonic() - start, "hangup")) from None
            if k is None:
                return RecordResult(path, time.monotonic() - start, "max")
            if terminator and k == terminator:
                return RecordResult(path, time.monotonic() - start, "terminator")

    async def transfer(self, target: TransferTarget) -> None:
        self._check()
        self.out(f"  [call transferred to {target.describe()}]")

    async def conference(self, room: str, *, role: str = "member", profile: str | None = None,
                         limit: float | None = None, warn_before: float = 60.0,
                         warning: Sequence[PlayItem] = ()) -> ConferenceResult:
        self._check()
        lim = f", limit {limit:g} s" if limit is not None else ""
        self.out(f"  [in conference room {room} as {role}{lim}: press any key to leave, h to hang up]")
        start = time.monotonic()
        warned = False
        while True:
            now = time.monotonic()
            if limit is not None and not warned and warning and now >= start + limit - warn_before:
                warned = True
                for it in warning:
                    self.out(f"IVR (in the room): {it.label()}")
            wait = 3600.0 if limit is None else max(0.0, min(start + limit - now,
                                                                (start + limit - warn_before - now) if not warned
                                                                and warning else 3600.0))
            try:
                k = self._poll(wait)
            except CallHangup as h:
                raise CallHangup(h.cause, partial=ConferenceResult(time.monotonic() - start, "hangup")) from None
            if k is not None:
                return ConferenceResult(time.monotonic() - start, "left")
            if limit is not None and time.monotonic() >= start + limit:
                self.hungup, self.hangup_cause = True, "ALLOTTED_TIMEOUT"
                self.out("  [time is up: the call is cut (ALLOTTED_TIMEOUT)]")
                raise CallHangup("ALLOTTED_TIMEOUT", partial=ConferenceResult(float(limit), "limit"))

    async def set_var(self, name: str, value: str) -> None:
        self._check()
        self.vars[name] = value

    async def get_var(self, name: str) -> str | None:
        self._check()
        v = self.vars.get(name)
        return None if v is None else str(v)

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if not self.hungup:
            self.hungup = True
            self.hangup_cause = cause
            self.out(f"[IVR hung up: {cause}]")

    def key_time(self) -> float:
        return time.monotonic()
