"""Dialplan applications of the emulator: one coroutine per application in the `APPS` table.

A handler gets an `AppContext` and the argument string and returns the Application-Response.
To add an application: write `async def app_x(ctx, arg) -> str` and register it with
`APPS["x"] = AppSpec(app_x, parses_events=...)` (`parses_events`: a queued sendmsg without
event-lock may run nested inside it, as FreeSWITCH's playback loop parses the private queue).
"""

from __future__ import annotations

import math
import os
import re
import struct
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fschannel import BREAK, DONE, HANGUP, STOPPED, AppRequest, RunningApp

if TYPE_CHECKING:  # pragma: no cover
    from .fschannel import EmuChannel

DIGITS = "0123456789*#ABCD"
READ_AHEAD_MS = 2048       # playback_ms after an early stop counts whole read-ahead blocks (g2)


class AppContext:
    """What an application handler may use."""

    def __init__(self, chan: "EmuChannel", app: RunningApp) -> None:
        self.chan = chan
        self.app = app
        self.emu = chan.emu

    def var(self, name: str, default: str | None = None) -> str | None:
        return self.chan.var(name, default)

    def set_var(self, name: str, value: str | None) -> None:
        self.chan.set_var(name, value)

    def true(self, name: str, default: bool = False) -> bool:
        value = self.chan.var(name)
        if value is None:
            return default
        return value.strip().lower() in ("true", "yes", "on", "1", "enabled", "active", "allow")

    def now(self) -> float:
        return self.emu.loop.time()

    async def media(self, ms: float | None, **kw) -> str:
        return await self.chan.media(self.app, ms, **kw)

    def terminators(self) -> str:
        """`playback_terminators`: unset -> '*', 'none' -> '', 'any' -> every key."""
        value = self.chan.var("playback_terminators")
        if value is None:
            return "*"
        if value.lower() == "none":
            return ""
        if value.lower() == "any":
            return DIGITS
        return value


@dataclass(frozen=True)
class AppSpec:
    handler: Callable[[AppContext, str], Awaitable[str]]
    parses_events: bool = False


# ------------------------------------------------------------------ media durations

_TONE = re.compile(r"%\((\d+),(\d+)(?:,[^)]*)?\)")


def media_ms(emu, path: str) -> float | None:
    """Duration of a playable in ms; None = not found; math.inf = endless."""
    path = path.strip()
    if path in emu.media:
        return emu.media[path]
    if path.startswith("silence_stream://"):
        return float(path.split("://", 1)[1].split(",")[0] or 0)
    if path.startswith("tone_stream://"):
        spec = path.split("://", 1)[1]
        loops = 1
        m = re.search(r";loops=(-?\d+)", spec)
        if m:
            loops = int(m.group(1))
        cycle = sum(int(a) + int(b) for a, b in _TONE.findall(spec))
        if loops < 0:
            return math.inf
        return float(cycle * max(loops, 1))
    if path.startswith("file_string://"):
        total = 0.0
        for part in path.split("://", 1)[1].split("!"):
            ms = media_ms(emu, part)
            if ms is None:
                return None
            total += ms
        return total
    if path.startswith(("say:", "speak:")):
        return 80.0 + 66.0 * len(path.split(":", 1)[1])
    if os.path.isfile(path):
        try:
            with wave.open(path, "rb") as w:
                return 1000.0 * w.getnframes() / (w.getframerate() or 8000)
        except (wave.Error, EOFError, OSError):
            return 1000.0
    return None


async def _play(ctx: AppContext, path: str, terminators: str, *,
                stop_on_any: bool = False) -> tuple[str, float, str | None]:
    """Play one file. Returns (outcome, played_ms, digit that stopped it)."""
    total = media_ms(ctx.emu, path)
    if total is None:
        return "not-found", 0.0, None
    stopped: list[str] = []

    def on_digit(d: str) -> bool:
        if stop_on_any or d in terminators:
            stopped.append(d)
            return True
        return False          # consumed, not kept for the next read (g5)

    start = ctx.now()
    outcome = await ctx.media(None if math.isinf(total) else total, on_digit=on_digit)
    played = min(total, (ctx.now() - start) * 1000.0)
    return outcome, played, (stopped[0] if stopped else None)


def _set_playback_vars(ctx: AppContext, played_ms: float, total_ms: float | None,
                       early: bool) -> None:
    ms = played_ms
    if early and total_ms:
        ms = min(total_ms, READ_AHEAD_MS * math.ceil(max(played_ms, 1) / READ_AHEAD_MS))
    ms = int(round(ms)) if not math.isinf(ms) else 0
    ctx.set_var("playback_ms", str(ms))
    ctx.set_var("playback_samples", str(ms * 8))


# ------------------------------------------------------------------ applications

async def app_answer(ctx: AppContext, arg: str) -> str:
    ctx.chan.answer()
    return "_none_"


async def app_pre_answer(ctx: AppContext, arg: str) -> str:
    ctx.chan.pre_answer()
    return "_none_"


async def app_set(ctx: AppContext, arg: str) -> str:
    name, _, value = arg.partition("=")
    if name.strip():
        ctx.set_var(name.strip(), value)
    return "_none_"


async def app_unset(ctx: AppContext, arg: str) -> str:
    ctx.set_var(arg.strip(), None)
    return "_none_"


async def app_hangup(ctx: AppContext, arg: str) -> str:
    ctx.chan.hangup(arg.strip() or "NORMAL_CLEARING")
    return "_none_"


async def app_sleep(ctx: AppContext, arg: str) -> str:
    await ctx.media(float(arg or 0))
    return "_none_"


async def app_park(ctx: AppContext, arg: str) -> str:
    while await ctx.media(None) == BREAK:
        pass
    return "_none_"


async def app_playback(ctx: AppContext, arg: str) -> str:
    total = media_ms(ctx.emu, arg)
    outcome, played, digit = await _play(ctx, arg, ctx.terminators())
    if outcome == "not-found":
        ctx.set_var("current_application_response", "FILE NOT FOUND")
        return "FILE NOT FOUND"
    if digit is not None:
        ctx.set_var("playback_terminator_used", digit)
    # a hangup from outside makes the read fail; one parsed from the queue ends it cleanly (j)
    response = "PLAYBACK ERROR" if outcome == HANGUP and not ctx.chan.hangup_in_app \
        else "FILE PLAYED"
    ctx.set_var("current_application_response", response)
    _set_playback_vars(ctx, played, total, early=outcome in (STOPPED, HANGUP, BREAK))
    return response


async def app_speak(ctx: AppContext, arg: str) -> str:
    """speak engine|voice|text (m): only EXECUTE/COMPLETE; stops on a playback terminator."""
    text = arg.split("|", 2)[-1]
    ms = ctx.emu.speak_ms(text) if ctx.emu.speak_ms else 80.0 + 66.0 * len(text)
    terms = ctx.terminators()
    used: list[str] = []

    def on_digit(d: str) -> bool:
        if d in terms:
            used.append(d)
            return True
        return False

    await ctx.media(ms, on_digit=on_digit)
    if used:
        ctx.set_var("playback_terminator_used", used[0])
    return "_none_"


async def app_play_and_get_digits(ctx: AppContext, arg: str) -> str:
    """min max tries timeout terminators file invalid_file var_name regexp [digit_timeout]"""
    parts = arg.split()
    if len(parts) < 9:
        return "_none_"
    mn, mx, tries, timeout = (int(p) for p in parts[:4])
    terms, prompt, invalid, var, regexp = parts[4:9]
    digit_timeout = int(parts[9]) if len(parts) > 9 else timeout
    terms = "" if terms == "none" else terms
    chan = ctx.chan
    result = "failure"
    for _ in range(max(tries, 1)):
        digits: list[str] = []
        terminated = [False]

        def on_digit(d: str) -> bool:
            if d in terms:
                terminated[0] = True
            else:
                digits.append(d)
            return True           # any key stops the prompt; it is kept for the read

        outcome, _, _ = await _prompt(ctx, prompt, on_digit)
        if outcome == HANGUP:
            result = "failure"
            break
        while len(digits) < mx and not terminated[0]:
            got: list[str] = []
            limit = timeout if not digits else digit_timeout

            def take(d: str) -> bool:
                got.append(d)
                return True
            outcome = await ctx.media(limit, on_digit=take)
            if outcome == HANGUP or not got:
                break
            if got[0] in terms:
                terminated[0] = True
            else:
                digits.append(got[0])
        if chan.hungup:
            result = "failure"
            break
        text = "".join(digits)
        if text and len(text) >= mn and re.search(regexp, text):
            ctx.set_var(var, text)
            result = "success"
            break
        result = "success" if text else "failure"
        if text:
            ctx.set_var(f"{var}_invalid", text)
        ctx.set_var(var, None)
        if invalid and invalid != "none":
            await _prompt(ctx, invalid, None)
            if chan.hungup:
                result = "failure"
                break
    ctx.set_var("read_result", result)
    return "_none_"


async def _prompt(ctx: AppContext, path: str, on_digit) -> tuple[str, float, None]:
    total = media_ms(ctx.emu, path) or 0.0
    start = ctx.now()
    outcome = await ctx.media(total, on_digit=on_digit)
    played = (ctx.now() - start) * 1000.0
    _set_playback_vars(ctx, played, total, early=outcome != DONE)
    return outcome, played, None


async def app_record(ctx: AppContext, arg: str) -> str:
    """record <path> [max_seconds] [silence_threshold] [silence_hits_seconds]"""
    parts = arg.split()
    if not parts:
        return "_none_"
    path = parts[0]
    max_s = float(parts[1]) if len(parts) > 1 and parts[1] != "0" else 3600.0
    hits = float(parts[3]) if len(parts) > 3 else 0.0
    chan = ctx.chan
    start = ctx.now()
    ctx.set_var("silence_hits_exhausted", "false")
    chan.fire("RECORD_START", extra=[("Record-File-Path", path)])
    terms = ctx.terminators()
    used: list[str] = []

    def on_digit(d: str) -> bool:
        if d in terms:
            used.append(d)
            return True
        return False

    def silent_too_long() -> bool:
        if hits <= 0:
            return False
        now = ctx.now()
        last = start
        for a, b in chan.audio:
            if a <= now and b > start:
                if b > now:
                    return False       # audio is playing now
                last = max(last, b)
        return now - last >= hits - 1e-9

    outcome = DONE
    stuck = 0
    while stuck < 3:                  # guard: a deadline that does not move time
        now = ctx.now()
        deadline = start + max_s
        if hits > 0:
            last = start
            playing = False
            for a, b in chan.audio:
                if a <= now and b > start:
                    playing = playing or b > now
                    last = max(last, b)
            if playing:
                ends = [b for a, b in chan.audio if a <= now < b]
                deadline = min(deadline, max(ends) + hits)
            else:
                deadline = min(deadline, last + hits)
        outcome = await ctx.media(max(0.0, (deadline - now) * 1000.0), on_digit=on_digit,
                                  until=silent_too_long)
        stuck = stuck + 1 if ctx.now() == now else 0
        if outcome != DONE or ctx.now() >= start + max_s - 1e-9:
            break
        if silent_too_long():
            outcome = STOPPED
            break
    stop = ctx.now()
    by_silence = outcome == STOPPED and not used
    total_ms = (stop - start) * 1000.0
    if ctx.true("record_fill_cng"):
        rec_ms = total_ms
    else:
        rec_ms = sum(max(0.0, min(b, stop) - max(a, start)) for a, b in chan.audio) * 1000.0
    rec_ms = int(round(rec_ms / 20.0) * 20)
    samples = rec_ms * 8
    if used:
        ctx.set_var("playback_terminator_used", used[0])
    ctx.set_var("record_ms", str(rec_ms))
    ctx.set_var("record_samples", str(samples))
    ctx.set_var("record_seconds", str(rec_ms // 1000))
    ctx.set_var("silence_hits_exhausted", "true" if by_silence else "false")
    size = _write_wav(path, samples) if ctx.emu.write_recordings else None
    if size is not None:
        ctx.set_var("record_file_size", str(size))
        ctx.set_var("record_record_file_size", str(size))
    chan.fire("RECORD_STOP", extra=[("Record-File-Path", path)])
    return "_none_"


def _write_wav(path: str, samples: int) -> int | None:
    """Write an 8 kHz mono 16-bit WAV of `samples` (a 500 Hz tone); None if impossible."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        return None
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 500 * i / 8000)))
                      for i in range(samples))
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(frames)
    return os.path.getsize(path)


async def app_transfer(ctx: AppContext, arg: str) -> str:
    parts = arg.split()
    if parts:
        ctx.chan.transfer_to = (parts[0], parts[2] if len(parts) > 2 else "default")
        ctx.chan.signal()
    return "_none_"


async def app_bridge(ctx: AppContext, arg: str) -> str:
    return await ctx.emu.run_bridge(ctx, arg.strip())


async def app_conference(ctx: AppContext, arg: str) -> str:
    return await ctx.emu.conferences.run_member(ctx, arg.strip())


def sched_delay(emu, spec: str) -> float:
    """`+N` seconds on FreeSWITCH's whole-second scheduler clock (o2: +1 fired after 0.70 s)."""
    n = float(spec.lstrip("+") or 0)
    epoch = emu.epoch_us() / 1e6
    return math.floor(epoch) + n - epoch


async def app_sched_hangup(ctx: AppContext, arg: str) -> str:
    parts = arg.split()
    if parts:
        cause = parts[1] if len(parts) > 1 else "ALLOTTED_TIMEOUT"
        chan = ctx.chan
        chan.sched_task(sched_delay(ctx.emu, parts[0]), lambda: chan.hangup(cause))
    return "_none_"


async def app_sched_broadcast(ctx: AppContext, arg: str) -> str:
    parts = arg.split()
    if len(parts) >= 2:
        chan = ctx.chan
        path = parts[1]
        task_id = chan.sched_task(sched_delay(ctx.emu, parts[0]),
                                  lambda: ctx.emu.broadcast(chan, path))
        ctx.set_var("last_sched_id", str(task_id))
    return "_none_"


async def app_log(ctx: AppContext, arg: str) -> str:
    return "_none_"


APPS: dict[str, AppSpec] = {
    "answer": AppSpec(app_answer),
    "pre_answer": AppSpec(app_pre_answer),
    "set": AppSpec(app_set),
    "export": AppSpec(app_set),
    "unset": AppSpec(app_unset),
    "hangup": AppSpec(app_hangup),
    "log": AppSpec(app_log),
    "sleep": AppSpec(app_sleep, parses_events=True),
    "park": AppSpec(app_park, parses_events=True),
    "playback": AppSpec(app_playback, parses_events=True),
    "speak": AppSpec(app_speak, parses_events=True),
    "play_and_get_digits": AppSpec(app_play_and_get_digits, parses_events=True),
    "record": AppSpec(app_record, parses_events=True),
    "transfer": AppSpec(app_transfer),
    "bridge": AppSpec(app_bridge, parses_events=True),
    "conference": AppSpec(app_conference, parses_events=True),
    "sched_hangup": AppSpec(app_sched_hangup),
    "sched_broadcast": AppSpec(app_sched_broadcast),
}

__all__ = ["APPS", "AppSpec", "AppContext", "AppRequest", "media_ms"]
