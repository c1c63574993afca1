"""Scripted far end of an emulated call: key presses, speech and hangup on a timeline.

Times are in seconds of the event loop's clock (virtual under `VirtualTimeLoop`), either
absolute (`at=`: after the call reached the socket) or relative to the n-th start
(CHANNEL_EXECUTE) of an application (`on="playback", nth=1, after=0.5`), the way the capture
driver timed its `uuid_send_dtmf` from B's CHANNEL_EXECUTE events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .fschannel import EmuChannel

__all__ = ["CallerScript", "Step"]


@dataclass
class Step:
    kind: str                 # "press" | "hangup" | "speak"
    value: str | float
    at: float | None = None
    on: str | None = None
    nth: int = 1
    after: float = 0.0
    done: bool = False


class CallerScript:
    """Fluent builder: `CallerScript().press("5", on="playback", after=0.5).hangup(at=10)`."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.log: list[tuple[float, str, str]] = []

    def _add(self, kind: str, value, at, on, nth, after) -> "CallerScript":
        if (at is None) == (on is None):
            raise ValueError("give exactly one of at= or on=")
        self.steps.append(Step(kind, value, at, on, nth, after))
        return self

    def press(self, digits: str, *, at: float | None = None, on: str | None = None,
              nth: int = 1, after: float = 0.0) -> "CallerScript":
        return self._add("press", digits, at, on, nth, after)

    def speak(self, seconds: float, *, at: float | None = None, on: str | None = None,
              nth: int = 1, after: float = 0.0) -> "CallerScript":
        return self._add("speak", float(seconds), at, on, nth, after)

    def hangup(self, *, at: float | None = None, on: str | None = None, nth: int = 1,
               after: float = 0.0, cause: str = "NORMAL_CLEARING") -> "CallerScript":
        return self._add("hangup", cause, at, on, nth, after)

    # ---------------------------------------------------------------- driven by the channel

    def attach(self, chan: "EmuChannel") -> None:
        for step in self.steps:
            if step.at is not None:
                chan.schedule(step.at, lambda s=step: self._run(chan, s))

    def app_started(self, chan: "EmuChannel", app: str, count: int) -> None:
        for step in self.steps:
            if step.on == app and step.nth == count and not step.done:
                chan.schedule(step.after, lambda s=step: self._run(chan, s))

    def _run(self, chan: "EmuChannel", step: Step) -> None:
        if step.done:
            return
        step.done = True
        self.log.append((chan.emu.loop.time(), step.kind, str(step.value)))
        if step.kind == "press":
            chan.push_dtmf(str(step.value))
        elif step.kind == "speak":
            chan.add_audio(float(step.value))
        elif step.kind == "hangup":
            chan.hangup(str(step.value))
