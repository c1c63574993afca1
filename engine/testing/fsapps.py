"""Dialplan applications of the emulator: one coroutine per application in the `APPS` table.

A handler gets an `AppContext` and the argument string and returns the Application-Response.
To add an application: write `async def app_x(ctx, arg) -> str` and register it with
`APPS["x"] = AppSpec(app_x, parses_events=...)` (`parses_events`: a queued sendmsg without
event-lock may run nested inside it, as FreeSWITCH's playback loop parses the private queue).
"""

from __future__ import annotations

import functools
import math
import os
import re
import struct
import uuid as uuidlib
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .fschannel import BREAK, DONE, HANGUP, STOPPED, AppRequest, RunningApp

if TYPE_CHECKING:  # pragma: no cover
    from .fschannel import EmuChannel

DIGITS = "0123456789*#ABCD"
READ_AHEAD_MS = 2048       # playback_ms after an early stop counts whole read-ahead blocks (g2)
RATE = 8000                # samples a second of the captured channels (L16 8 kHz)
FRAME_SAMPLES = 160        # one 20 ms media frame at 8 kHz
READ_SAMPLES = READ_AHEAD_MS * RATE // 1000   # one file read of switch_ivr_play_file


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

    def parent(self) -> RunningApp | None:
        """The application this one runs nested in (None at the top of the stack)."""
        stack = self.chan.stack
        if len(stack) > 1 and stack[-1] is self.app:
            return stack[-2]
        return None

    def whole_frames(self, ms: float) -> float:
        """`ms` rounded up to whole media frames (unchanged without a frame clock)."""
        frame = self.emu.frame_ms
        if not frame or ms <= 0:
            return ms
        return frame * math.ceil(ms / frame - 1e-9)

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "handler", _timed(self.handler))


def _timed(handler: Callable[[AppContext, str], Awaitable[str]]):
    """Wrap a handler so the time it runs nested is added to its parent's
    `data["nested_s"]`: a prompt's own play time excludes what played nested in it (o2)."""
    if getattr(handler, "_nested_timed", False):
        return handler

    @functools.wraps(handler)
    async def run(ctx: AppContext, arg: str) -> str:
        if getattr(ctx, "_timed", False):      # a replaced handler calling the original
            return await handler(ctx, arg)
        ctx._timed = True
        parent = ctx.parent()
        start = ctx.now()
        try:
            return await handler(ctx, arg)
        finally:
            if parent is not None:
                parent.data["nested_s"] = parent.data.get("nested_s", 0.0) + ctx.now() - start

    run._nested_timed = True
    return run


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


def _stopper(terms: str) -> tuple[Callable[[str], bool], list[str]]:
    """`on_digit` for a media wait that a key in `terms` stops (the key is noted in the list);
    other keys are consumed, not kept for the next read (g5)."""
    used: list[str] = []

    def on_digit(d: str) -> bool:
        if d in terms:
            used.append(d)
            return True
        return False
    return on_digit, used


async def _play(ctx: AppContext, path: str, terminators: str, *,
                stop_on_any: bool = False) -> tuple[str, float, str | None]:
    """Play one file. Returns (outcome, played_ms, digit that stopped it)."""
    total = media_ms(ctx.emu, path)
    if total is None:
        return "not-found", 0.0, None
    on_digit, stopped = _stopper(DIGITS if stop_on_any else terminators)

    start = _own_clock(ctx)
    outcome = await ctx.media(None if math.isinf(total) else total, on_digit=on_digit)
    played = min(total, (_own_clock(ctx) - start) * 1000.0)
    return outcome, played, (stopped[0] if stopped else None)


def _own_clock(ctx: AppContext) -> float:
    """Loop time minus the time applications ran nested in this one: a prompt's own clock."""
    return ctx.now() - ctx.app.data.get("nested_s", 0.0)


def _tone_cycle_ms(path: str) -> float | None:
    """One loop of a tone_stream (its buffer holds one loop; `;loops=` replays it)."""
    path = path.strip()
    if not path.startswith("tone_stream://"):
        return None
    cycle = sum(int(a) + int(b) for a, b in _TONE.findall(path.split("://", 1)[1]))
    return float(cycle) if cycle > 0 else None


def _samples_read(frames: int, total: float, cycle: int) -> int:
    """`fh->samples_in` of switch_ivr_play_file after it took `frames` frames: it reads the
    file READ_SAMPLES at a time (a tone_stream at most to the end of its loop) whenever its
    buffer holds one frame or less (g2/n: 520 ms -> 2048 ms; o: 2320 -> 4096; j: an endless
    1000 ms loop read loop by loop, 6720 ms -> 7000)."""
    read = 0
    left = 0                  # samples of the current loop not read yet
    loops = math.inf if math.isinf(total) else max(1, round(total / cycle))
    buffered = 0
    i = 0
    while i < frames:
        if left <= 0:
            if loops <= 0:
                break         # end of file
            loops -= 1
            left = cycle
        chunk = min(READ_SAMPLES, left)
        left -= chunk
        read += chunk
        rest = buffered + chunk - FRAME_SAMPLES         # after the frame taken with this read
        more = max(0, math.ceil((rest - FRAME_SAMPLES) / FRAME_SAMPLES))
        i += 1 + more
        buffered = max(0, rest - more * FRAME_SAMPLES)
    return read


def _set_playback_vars(ctx: AppContext, played_ms: float, total_ms: float | None,
                       early: bool, cycle_ms: float | None = None) -> None:
    """What switch_ivr_play_file sets at its end, in its order: playback_last_offset_pos
    (the samples taken, one frame at a time), playback_seconds, playback_ms and
    playback_samples (the samples read from the file, whole read-ahead blocks)."""
    total = math.inf if total_ms is None or math.isinf(total_ms) else float(total_ms)
    if early or math.isinf(total):
        frames = max(1, int(round(played_ms / 20.0))) if not math.isinf(played_ms) else 0
        if not math.isinf(total):
            frames = min(frames, math.ceil(total * RATE / 1000 / FRAME_SAMPLES))
        offset = frames * FRAME_SAMPLES
        if total > 0:
            cycle = cycle_ms if cycle_ms and cycle_ms <= total else total
            cycle_samples = READ_SAMPLES if math.isinf(cycle) else \
                max(1, int(round(cycle * RATE / 1000)))
            samples = _samples_read(frames, total * RATE / 1000, cycle_samples)
        else:
            samples = 0
        if not math.isinf(total):
            offset = min(offset, int(round(total * RATE / 1000)))
    else:
        samples = offset = int(round(max(total, 0.0) * RATE / 1000))
    ctx.set_var("playback_last_offset_pos", str(offset))
    ctx.set_var("playback_seconds", str(samples // RATE))
    ctx.set_var("playback_ms", str(samples * 1000 // RATE))
    ctx.set_var("playback_samples", str(samples))


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
    _set_playback_vars(ctx, played, total, early=outcome in (STOPPED, HANGUP, BREAK),
                       cycle_ms=_tone_cycle_ms(arg))
    return response


async def app_speak(ctx: AppContext, arg: str) -> str:
    """speak engine|voice|text (m): only EXECUTE/COMPLETE; stops on a playback terminator.
    The audio is played frame by frame: it lasts whole 20 ms frames (m: 2180 and 7080 ms)."""
    text = arg.split("|", 2)[-1]
    ms = ctx.emu.speak_ms(text) if ctx.emu.speak_ms else 80.0 + 66.0 * len(text)
    ms = ctx.whole_frames(ms)
    on_digit, used = _stopper(ctx.terminators())

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

    # files play and timeouts run in whole 20 ms frames: silence_stream://250 takes 13
    # (2.log: 100 ms prompt + 3000 ms timeout + 260 ms; g5: 100 + 1500 + 100 ms)
    async def play(path: str, keys) -> str:
        total = media_ms(ctx.emu, path) or 0.0
        start = ctx.now()
        outcome = await ctx.media(ctx.whole_frames(total), on_digit=keys)
        played = min(total, (ctx.now() - start) * 1000.0)   # 2.log: playback_ms=250
        _set_playback_vars(ctx, played, total, early=outcome != DONE)
        return outcome

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

        outcome = await play(prompt, on_digit)
        if outcome == HANGUP:
            result = "failure"
            break
        while len(digits) < mx and not terminated[0]:
            got: list[str] = []
            limit = timeout if not digits else digit_timeout

            def take(d: str) -> bool:
                got.append(d)
                return True
            outcome = await ctx.media(ctx.whole_frames(limit), on_digit=take)
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
            await play(invalid, None)
            if chan.hungup:
                result = "failure"
                break
    ctx.set_var("read_result", result)
    return "_none_"


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
    on_digit, used = _stopper(ctx.terminators())

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
        if by_silence and ctx.emu.frame_ms:
            # the frame that exhausts the silence hits ends the loop before it is written
            # (switch_ivr_record_file); i3: a 3640 ms run wrote 3620 ms
            rec_ms = max(0.0, rec_ms - ctx.emu.frame_ms)
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
    """transfer <ext> [dialplan] [context] (j): switch_ivr_session_transfer counts
    max_forwards down (70 when unset; none left: EXCHANGE_ROUTING_ERROR) and records
    `<epoch s>:<new caller profile uuid>:bl_xfer:<ext>/<context>/<dialplan>` as
    transfer_history (pushed: ARRAY::a|:b) and transfer_source."""
    parts = arg.split()
    if parts:
        chan = ctx.chan
        dialplan = parts[1] if len(parts) > 1 else "XML"
        context = parts[2] if len(parts) > 2 else "default"
        raw = (ctx.var("max_forwards") or "").strip()
        try:
            forwards = int(raw) - 1 if raw else 70
        except ValueError:
            forwards = -1
        if forwards <= 0:
            chan.hangup("EXCHANGE_ROUTING_ERROR")
            return "_none_"
        ctx.set_var("max_forwards", str(forwards))
        entry = (f"{ctx.emu.epoch_us() // 1_000_000}:{uuidlib.uuid4()}:bl_xfer:"
                 f"{parts[0]}/{context}/{dialplan}")
        history = ctx.var("transfer_history")
        if history:
            items = history[len("ARRAY::"):].split("|:") if history.startswith("ARRAY::") \
                else [history]
            ctx.set_var("transfer_history", "ARRAY::" + "|:".join(items + [entry]))
        else:
            ctx.set_var("transfer_history", entry)
        ctx.set_var("transfer_source", entry)
        chan.transfer_to = (parts[0], context)
        chan.signal()
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
