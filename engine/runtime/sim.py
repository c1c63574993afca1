"""The simulated channel: a scripted caller on a virtual clock.

Nothing waits: each operation computes, from the caller's script and the prompt durations,
what happens next and moves the ``VirtualClock`` there.  A 5 s timeout costs no wall time,
and the same script always gives the same call.  The caller model (when keys are pressed,
what barge-in does, how recordings and conferences end) is in docs/runtime.md, "Simulation".
"""

from __future__ import annotations

import functools
import math
import re
import wave
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping, Sequence

from .channel import (CallHangup, Channel, ConferenceFailed, ConferenceResult, PlayItem, RecordResult,
                      TransferFailed, TransferTarget)
from .clock import VirtualClock
from .script import Token, parse_script

__all__ = ["SimChannel", "SimOptions", "estimate_seconds", "ScriptExhausted"]

_CJK = re.compile(r"[\u3000-\u9fff\uf900-\ufaff\uff00-\uffef]")
_TONE = re.compile(r"%\((\d+),(\d+)")


@dataclass(frozen=True)
class SimOptions:
    """What the simulated world does (beyond the caller's script)."""

    conference_seconds: float = 60.0              # a room closes on its own after this long
    fail_transfers: bool | Collection[str] = False  # True, or extensions/queues that refuse
    fail_conferences: bool | Collection[str] = False  # True, or rooms that refuse
    prompt_seconds: float | None = None           # fixed length per prompt (None: estimate)


class ScriptExhausted(BaseException):
    """Raised (by an exploring caller) when the IVR asks for input past the end of the script.

    A BaseException so the interpreter never mistakes it for an action's error."""

    def __init__(self, mode: str):
        super().__init__(mode)
        self.mode = mode              # listen | record


@functools.lru_cache(maxsize=1024)
def _wav_seconds(path: str) -> float | None:
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate() or 8000)
    except (OSError, EOFError, wave.Error):
        return None


@functools.lru_cache(maxsize=4096)
def estimate_seconds(item: PlayItem) -> float:
    """How long an item plays: the WAV's length if readable, else estimated from its text."""
    if item.tone is not None:
        parts = _TONE.findall(item.tone)
        return max(0.2, sum(int(a) + int(b) for a, b in parts) / 1000.0) if parts else 0.5
    if item.path and item.source != "tone":
        s = _wav_seconds(item.path)
        if s is not None:
            return s
    text = item.text
    if not text:
        return 2.0
    cjk = len(_CJK.findall(text))
    other = len(text.replace(" ", "")) - cjk
    return round(max(0.6, cjk * 0.22 + other * 0.065), 3)


class SimChannel(Channel):
    """A Channel driven by a caller script (see engine.runtime.script)."""

    name = "sim"

    def __init__(self, script: str | Sequence[Token] | None, clock: VirtualClock, *, call_id: str = "sim-call",
                 caller: str | None = "13800000001", destination: str | None = "10000", caller_trusted: bool = True,
                 variables: Mapping[str, Any] | None = None, options: SimOptions | None = None,
                 explore: bool = False, duration: Callable[[PlayItem], float] | None = None):
        self._hung = False
        super().__init__(call_id, caller, destination, caller_trusted=caller_trusted, variables=variables)
        self.clock = clock
        self.tokens: list[Token] = parse_script(script) if isinstance(script, str) or script is None else list(script)
        self.idx = 0
        self.ready = clock.monotonic()        # the caller may act from this time on
        self.options = options or SimOptions()
        self.explore = explore
        self._duration = duration or estimate_seconds
        self.chan_vars: dict[str, Any] = {k: v for k, v in (variables or {}).items()}
        self.transferred_to: TransferTarget | None = None
        self.answered = False
        self.discarded: list[tuple[float, str]] = []   # keys pressed during non-interruptible prompts

    # -- hangup state ----------------------------------------------------------------------------
    @property
    def hungup(self) -> bool:
        if not self._hung and self.idx < len(self.tokens):
            self._skip_waits()
            if self.idx < len(self.tokens) and self.tokens[self.idx].kind == "hangup" \
                    and self.ready <= self.clock.monotonic():
                self.idx += 1
                self._mark_hung("NORMAL_CLEARING")
        return self._hung

    @hungup.setter
    def hungup(self, value: bool) -> None:
        self._hung = value

    def _mark_hung(self, cause: str) -> None:
        self._hung = True
        self.hangup_cause = cause

    def _check(self) -> None:
        if self.hungup:
            raise CallHangup(self.hangup_cause or "NORMAL_CLEARING")

    # -- the caller's next move -------------------------------------------------------------------
    def _skip_waits(self) -> None:
        toks = self.tokens
        while self.idx < len(toks) and toks[self.idx].kind == "wait":
            self.ready += toks[self.idx].seconds
            self.idx += 1

    def _next(self, now: float, until: float, mode: str) -> tuple[Token, float] | None:
        """The caller's next action in [now, until] while the IVR is in ``mode``
        (listen | record | barge | nobarge), without consuming it."""
        self._skip_waits()
        if self.idx >= len(self.tokens):
            if self.explore and mode in ("listen", "record"):
                raise ScriptExhausted(mode)
            return None
        tok = self.tokens[self.idx]
        at = max(now, self.ready)
        if at > until:
            return None
        if tok.kind == "hangup" or (tok.kind == "keys" and tok.now):
            return tok, at
        if mode in ("listen", "record"):          # polite moves wait for the IVR to listen
            return tok, at
        return None

    def _take(self, tok: Token, at: float) -> None:
        self.idx += 1
        self.ready = at
        self.clock.advance_to(at)

    # -- Channel -----------------------------------------------------------------------------------
    async def answer(self) -> None:
        self._check()
        self.answered = True

    async def play(self, items: Sequence[PlayItem], barge_in: bool = True) -> str | None:
        self._check()
        if barge_in and self.keys:
            return self.keys.peek()
        clock = self.clock
        fixed = self.options.prompt_seconds
        end = clock.monotonic() + sum((fixed if fixed is not None else self._duration(i)) for i in items)
        while True:
            nxt = self._next(clock.monotonic(), end, "barge" if barge_in else "nobarge")
            if nxt is None:
                break
            tok, at = nxt
            self._take(tok, at)
            if tok.kind == "hangup":
                self._mark_hung("NORMAL_CLEARING")
                raise CallHangup("NORMAL_CLEARING")
            if barge_in:
                for k in tok.keys:
                    self.keys.push(k, at)
                if self.keys:
                    return self.keys.peek()
            else:
                self.discarded.append((at, tok.keys))
        clock.advance_to(end)
        return None

    async def read_key(self, timeout: float) -> str | None:
        self._check()
        k = self.keys.pop()
        if k is not None:
            return k
        clock = self.clock
        until = clock.monotonic() + max(0.0, timeout)
        while True:
            if timeout <= 0:
                return None
            nxt = self._next(clock.monotonic(), until, "listen")
            if nxt is None:
                clock.advance_to(until)
                return None
            tok, at = nxt
            self._take(tok, at)
            if tok.kind == "hangup":
                self._mark_hung("NORMAL_CLEARING")
                raise CallHangup("NORMAL_CLEARING")
            if tok.kind == "timeout":
                clock.advance_to(until)
                self.ready = until
                return None
            if tok.kind == "speak":
                self.ready = at + tok.seconds
                clock.advance_to(min(self.ready, until))
                continue
            for key in tok.keys:
                self.keys.push(key, at)
            k = self.keys.pop()
            if k is not None:
                return k

    def key_time(self) -> float:
        return self.clock.monotonic()

    async def record(self, path: str, *, max_seconds: float, silence_seconds: float,
                     terminator: str | None) -> RecordResult:
        self._check()
        self.keys.clear()                       # keys typed before the recording are dropped
        clock = self.clock
        start = clock.monotonic()
        hard_end = start + max_seconds
        last_sound = start
        while True:
            deadline = min(hard_end, last_sound + silence_seconds)
            nxt = self._next(clock.monotonic(), deadline, "record")
            if nxt is None or nxt[0].kind == "timeout":
                if nxt is not None:
                    self._take(*nxt)
                clock.advance_to(deadline)
                self.ready = max(self.ready, deadline)
                if deadline >= hard_end:
                    return RecordResult(path, max_seconds, "max")
                return RecordResult(path, last_sound - start, "silence")
            tok, at = nxt
            self._take(tok, at)
            if tok.kind == "hangup":
                self._mark_hung("NORMAL_CLEARING")
                raise CallHangup("NORMAL_CLEARING", partial=RecordResult(path, at - start, "hangup"))
            if tok.kind == "speak":
                stop = at + tok.seconds
                if stop >= hard_end:
                    clock.advance_to(hard_end)
                    self.ready = stop
                    return RecordResult(path, max_seconds, "max")
                last_sound = stop
                self.ready = stop
                clock.advance_to(stop)
                continue
            if tok.kind == "keys" and terminator and terminator in tok.keys:
                rest = tok.keys[tok.keys.index(terminator) + 1:]
                for k in rest:
                    self.keys.push(k, at)
                return RecordResult(path, at - start, "terminator")
            # other keys during a recording are ignored

    async def transfer(self, target: TransferTarget) -> None:
        self._check()
        fail = self.options.fail_transfers
        name = target.queue if target.queue is not None else target.extension
        if fail is True or (fail and name in fail):
            raise TransferFailed(f"{target.describe()} refused the call (simulated)")
        self.transferred_to = target

    async def conference(self, room: str, *, role: str = "member", profile: str | None = None,
                         limit: float | None = None, warn_before: float = 60.0,
                         warning: Sequence[PlayItem] = ()) -> ConferenceResult:
        self._check()
        fail = self.options.fail_conferences
        if fail is True or (fail and room in fail):
            raise ConferenceFailed(f"room {room} refused the caller (simulated)")
        clock = self.clock
        start = clock.monotonic()
        closes = start + self.options.conference_seconds
        cut = start + limit if limit is not None else math.inf
        stop = min(closes, cut)
        while True:
            nxt = self._next(clock.monotonic(), stop, "nobarge")
            if nxt is None:
                break
            tok, at = nxt
            self._take(tok, at)
            if tok.kind == "hangup":
                self._mark_hung("NORMAL_CLEARING")
                raise CallHangup("NORMAL_CLEARING", partial=ConferenceResult(at - start, "hangup"))
        clock.advance_to(stop)
        if cut <= closes:
            self._mark_hung("ALLOTTED_TIMEOUT")
            raise CallHangup("ALLOTTED_TIMEOUT", partial=ConferenceResult(limit, "limit"))
        return ConferenceResult(stop - start, "ended")

    async def set_var(self, name: str, value: str) -> None:
        self._check()
        self.chan_vars[name] = value

    async def get_var(self, name: str) -> str | None:
        self._check()
        v = self.chan_vars.get(name)
        return None if v is None else str(v)

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if not self._hung:
            self._mark_hung(cause)
