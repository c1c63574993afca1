"""The Channel interface: everything the interpreter asks of a call, and nothing about sockets.

The simulated channel (``engine.runtime.sim``), the interactive terminal channel and the
FreeSWITCH ESL channel implement it.  Contract (see docs/runtime.md, "The Channel interface"):

- Every ``async`` method may raise ``CallHangup`` instead of completing, whenever the far end
  is gone -- before, during or instead of the operation's completion.  After the first
  ``CallHangup``, ``hungup`` is True and every later operation raises it again at once.
- Keys the caller presses are queued in ``self.keys`` (a ``KeyBuffer``) in arrival order and
  stay there until ``read_key`` consumes them (type-ahead).  ``play(barge_in=True)`` stops on a
  key and *leaves it queued*; keys pressed during a ``play(barge_in=False)`` are discarded.
- ``collect`` is implemented here on top of ``play`` and ``read_key``, so digit collection
  behaves the same on every channel.
"""

from __future__ import annotations

import abc
from collections import deque
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

__all__ = [
    "Channel", "CallHangup", "ChannelError", "TransferFailed", "ConferenceFailed", "PlayItem",
    "DigitsResult", "RecordResult", "TransferTarget", "ConferenceResult", "KeyBuffer", "DTMF_KEYS",
]

DTMF_KEYS = "0123456789*#ABCD"


class CallHangup(Exception):
    """The call is gone.  ``cause`` is the hangup cause (Q.850 name, e.g. NORMAL_CLEARING).

    ``partial`` carries what an interrupted ``record`` or ``conference`` had achieved
    (a RecordResult / ConferenceResult), so the flow's hangup handler can still use it."""

    def __init__(self, cause: str = "NORMAL_CLEARING", partial: Any = None):
        super().__init__(cause)
        self.cause = cause
        self.partial = partial


class ChannelError(Exception):
    """The telephony platform failed an operation (not a hangup)."""


class TransferFailed(ChannelError):
    """The transfer could not be made; the caller is still on the line."""


class ConferenceFailed(ChannelError):
    """The room could not be joined; the caller is still on the line."""


@dataclass(frozen=True)
class PlayItem:
    """One thing to play.  A channel plays ``path`` if set, else the ``tone``, else speaks
    ``text`` with the platform's TTS.  ``text`` is also what transcripts show."""

    text: str | None = None
    path: str | None = None
    tone: str | None = None
    prompt_id: str | None = None
    lang: str | None = None
    source: str = "none"           # recording | cache | synth | none | file | tone | id

    def label(self) -> str:
        if self.tone is not None:
            return f"tone {self.tone}"
        if self.text:
            return self.text
        if self.prompt_id:
            return f"[{self.prompt_id}]"
        return f"file {self.path}"


@dataclass(frozen=True)
class DigitsResult:
    digits: str                    # the digits entered (terminator excluded)
    keys: str                      # every key consumed, terminator included
    reason: str                    # max | terminator | timeout | no_input | stop_key


@dataclass(frozen=True)
class RecordResult:
    path: str
    seconds: float                 # length of what was recorded (trailing silence excluded)
    reason: str                    # terminator | silence | max | hangup


@dataclass(frozen=True)
class TransferTarget:
    extension: str | None = None   # an extension or number ...
    queue: str | None = None       # ... or an agent queue
    priority: int = 0              # queue priority 0-100 (higher is served first)
    context: str | None = None     # dialplan context for an extension

    def describe(self) -> str:
        if self.queue is not None:
            return f"queue {self.queue} (priority {self.priority})"
        return f"extension {self.extension}" + (f"@{self.context}" if self.context else "")


@dataclass(frozen=True)
class ConferenceResult:
    seconds: float                 # time spent in the room
    reason: str = "ended"          # ended (room closed) | left (caller key) | kicked


class KeyBuffer:
    """Keys pressed and not yet consumed, oldest first.

    ``swallow(key, until)`` drops the next key if it is ``key`` and arrives by ``until``
    (used for a terminator pressed right after a full-length entry)."""

    __slots__ = ("_q", "_swallow")

    def __init__(self) -> None:
        self._q: deque[str] = deque()
        self._swallow: tuple[str, float] | None = None

    def push(self, key: str, at: float) -> bool:
        sw = self._swallow
        if sw is not None:
            self._swallow = None
            if key == sw[0] and at <= sw[1]:
                return False
        self._q.append(key)
        return True

    def pop(self) -> str | None:
        # a pending swallow stays: it is for the next key *pushed* (a read that starts before
        # the terminator arrives must not let it through)
        return self._q.popleft() if self._q else None

    def peek(self) -> str | None:
        return self._q[0] if self._q else None

    def swallow(self, key: str, until: float) -> None:
        self._swallow = (key, until)

    def swallowing(self, now: float) -> str | None:
        """The key a pending swallow would drop if it came now (None if none is pending)."""
        sw = self._swallow
        return sw[0] if sw is not None and now <= sw[1] else None

    def clear(self) -> None:
        self._q.clear()
        self._swallow = None

    def text(self) -> str:
        return "".join(self._q)

    def __len__(self) -> int:
        return len(self._q)

    def __bool__(self) -> bool:
        return bool(self._q)


class Channel(abc.ABC):
    """One call, as the interpreter sees it.  Subclasses implement the abstract methods."""

    #: short platform name, shown in records ("sim", "terminal", "freeswitch")
    name: str = "channel"

    def __init__(self, call_id: str, caller_raw: str | None = None, destination: str | None = None, *,
                 caller_trusted: bool = False, variables: Mapping[str, Any] | None = None):
        self.call_id = call_id
        self.caller_raw = caller_raw
        #: True when the caller number comes from a trusted source (network-asserted identity)
        self.caller_trusted = caller_trusted
        self.destination = destination
        #: the channel's variables when the call arrived (SIP headers, dialplan variables)
        self.variables: dict[str, Any] = dict(variables or {})
        self.keys = KeyBuffer()
        self.hungup = False
        self.hangup_cause: str | None = None

    # -- the platform's operations ---------------------------------------------------------
    @abc.abstractmethod
    async def answer(self) -> None:
        """Answer the call (no-op if already answered)."""

    @abc.abstractmethod
    async def play(self, items: Sequence[PlayItem], barge_in: bool = True) -> str | None:
        """Play items in order.  With ``barge_in``, return at once if a key is already queued,
        and stop as soon as a key is pressed; return that key (it stays queued).  Without it,
        play to the end and discard keys pressed meanwhile.  None when played to the end."""

    @abc.abstractmethod
    async def read_key(self, timeout: float) -> str | None:
        """Consume the oldest queued key, or wait up to ``timeout`` seconds for one.
        None on timeout.  ``timeout`` 0 only consumes what is already queued."""

    @abc.abstractmethod
    async def record(self, path: str, *, max_seconds: float, silence_seconds: float,
                     terminator: str | None) -> RecordResult:
        """Record the caller into ``path`` until the terminator key, ``silence_seconds`` of
        silence, or ``max_seconds``.  On hangup raise CallHangup(partial=RecordResult)."""

    @abc.abstractmethod
    async def transfer(self, target: TransferTarget) -> None:
        """Hand the call to an extension or queue.  Returning means the platform took it
        (the flow ends).  Raise TransferFailed if it could not."""

    @abc.abstractmethod
    async def conference(self, room: str, *, role: str = "member", profile: str | None = None,
                         limit: float | None = None, warn_before: float = 60.0,
                         warning: Sequence[PlayItem] = ()) -> ConferenceResult:
        """Join ``room`` as moderator | member | listener (muted) and return when the caller
        leaves it with the call still up.  With ``limit``, play ``warning`` ``warn_before``
        seconds before the limit and hang the call up at the limit (cause ALLOTTED_TIMEOUT,
        raised as CallHangup(partial=ConferenceResult)).  Raise ConferenceFailed if the room
        cannot be joined."""

    @abc.abstractmethod
    async def set_var(self, name: str, value: str) -> None:
        """Set a channel variable."""

    @abc.abstractmethod
    async def get_var(self, name: str) -> str | None:
        """Read a channel variable (None if unset)."""

    @abc.abstractmethod
    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """Hang the call up from our side.  Never raises CallHangup."""

    # -- built on the primitives -------------------------------------------------------------
    def pending_keys(self) -> str:
        """Keys typed ahead and not yet consumed."""
        return self.keys.text()

    async def collect(self, prompt: Sequence[PlayItem] = (), *, min_digits: int = 1, max_digits: int = 1,
                      terminator: str | None = "#", first_timeout: float = 5.0, inter_digit: float = 3.0,
                      barge_in: bool = True, stop_keys: Collection[str] = ()) -> DigitsResult:
        """Play ``prompt`` (interruptible) and collect one entry of digits.

        Ends on: ``max_digits`` digits (reason max), the terminator (terminator), no key for
        ``first_timeout`` s (no_input), no further key for ``inter_digit`` s (timeout), or a
        ``stop_keys`` key pressed first (stop_key).  A terminator pressed right after a
        full-length entry belongs to it and is dropped (within ``inter_digit`` seconds);
        other keys beyond the maximum stay queued for the next input.  Validation against
        ``min_digits`` is the caller's business."""
        if prompt:
            await self.play(prompt, barge_in=barge_in)
        digits = ""
        keys = ""
        timeout = first_timeout
        while True:
            k = await self.read_key(timeout)
            if k is None:
                return DigitsResult(digits, keys, "timeout" if keys else "no_input")
            keys += k
            if len(keys) == 1 and k in stop_keys:
                return DigitsResult("", keys, "stop_key")
            if terminator and k == terminator:
                return DigitsResult(digits, keys, "terminator")
            digits += k
            if len(digits) >= max_digits:
                if terminator:
                    await self.drop_terminator(terminator, inter_digit)
                return DigitsResult(digits, keys, "max")
            timeout = inter_digit

    async def drop_terminator(self, terminator: str, window: float) -> None:
        """After a full-length entry: consume the terminator if it is already queued, else
        arrange for it to be dropped if it is the next key within ``window`` seconds.
        Channels whose key arrival times are on another clock override this."""
        if self.keys.peek() == terminator:
            self.keys.pop()
        elif not self.keys:
            self.keys.swallow(terminator, self.key_time() + window)

    def key_time(self) -> float:
        """The time base of ``KeyBuffer.push(at=...)`` (monotonic seconds)."""
        import time

        return time.monotonic()
