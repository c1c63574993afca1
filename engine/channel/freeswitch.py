"""The runtime's Channel over FreeSWITCH's outbound Event Socket (one ESL connection per call).

Every choice here follows a capture of a real FreeSWITCH 1.10 (tests/fixtures/esl, docs/esl.md);
docs/freeswitch.md explains them.  In short:

* Keys come from DTMF events only (``myevents``).  ``play_and_get_digits`` is not used: it
  reports ``read_result=success`` when every try was invalid (h2), hides its retries (h) and
  delivers keys beyond its maximum as separate DTMF events anyway (1); a key pressed during a
  ``playback`` that does not stop it is consumed by FreeSWITCH (g5), but its DTMF event still
  reaches us.  So the one source of keys is the event stream, fed into the same ``KeyBuffer``
  every channel uses, and ``collect`` is the base class's: ESL calls collect exactly like the
  simulator.
* Barge-in is ``playback_terminators=any`` (unset = ``*`` only, g1/g4); prompts that cannot be
  interrupted run with ``none`` and the DTMF events seen while they play are dropped (g3).  The
  variable is only re-sent when it changes.
* Every execute carries ``event-lock: true`` (q2; without it back-to-back prompts play in
  reverse order, q1/q3) except the conference, so that a ``sched_broadcast`` warning can nest
  into it (o).  Waits end on the completion *or* the hangup / disconnect notice / dropped
  socket (3, 9, l), and every wait has a deadline (a flushed application never reports, n2).
* ``record`` needs RECORD_START/STOP subscribed (i) and ``record_fill_cng=true`` so the file
  keeps its real length over loopback / VAD (i3); it uses ``playback_terminators`` as its
  terminator set (i2).
* Paid time: ``sched_hangup +N ALLOTTED_TIMEOUT`` and ``sched_broadcast +M file aleg``
  (whole seconds, o/o2), cancelled with ``api sched_del <uuid>`` when the caller leaves the
  room with the call up; member time = del-member minus add-member ``Event-Date-Timestamp``
  of our own member (l).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import re
import time
import wave
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Collection, Sequence

from engine.channel.esl import (ChannelData, ChannelHangup, CommandError, ConnectionLost,
                                ESLError, ESLTimeout, Event, Execution, ExecutionFlushed,
                                OutboundConnection)
from engine.channel.esl.futures import resolve as _resolve
from engine.runtime.channel import (CallHangup, Channel, ChannelError, ConferenceFailed,
                                    ConferenceResult, DigitsResult, PlayItem, RecordResult, TransferFailed,
                                    TransferTarget)

__all__ = ["FreeSwitchChannel", "FsOptions", "media_arg", "BEEP"]

log = logging.getLogger("ivrflow.freeswitch")

#: the `beep` tone (0.5 s, 800 Hz: the simulator counts a beep as 0.5 s too)
BEEP = "tone_stream://%(500,0,800)"
#: what FreeSWITCH's `playback_terminators=any` means (mod_dptools on_dtmf)
ANY_KEYS = "1234567890*#"

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_TOKEN = re.compile(r"^[^\s{}]{1,200}$")
_ALL_KEYS = "0123456789*#ABCD"          # what `playback_terminators=any` means
_TONE = re.compile(r"%\((\d+),(\d+)")

# set by the dialplan (not by the caller): every `transfer: {to: X}` of the call goes to
# `X XML <its value>`, a flow's other context or a dial string fails the transfer
TRANSFER_CONTEXT_VAR = "ivrflow_transfer_context"

# what a DTMF event means while one of our applications runs
M_BARGE, M_QUIET, M_RECORD, M_CONF, M_BRIDGE, M_OTHER = \
    "barge", "quiet", "record", "conference", "bridge", "other"


@dataclass(frozen=True)
class FsOptions:
    """Deployment knobs of the FreeSWITCH channel (ivrflow serve's config `freeswitch:`)."""

    default_context: str = "default"        # `transfer: {to: X}` without a context
    queue_context: str = "ivrflow_queues"   # `transfer: {queue: Q}` -> `transfer Q XML <this>`
    conference_profile: str = "default"     # a conference state without `profile`
    record_threshold: int = 200             # record's silence energy threshold (i: 200)
    speak: str | None = None                # e.g. "tts_commandline": speak text without audio
    bridge_timeout: int = 30                # call_timeout of a dial-string transfer (s)
    transfer_confirm: float = 3.0           # wait for the new extension to start (s)
    hangup_grace: float = 1.0               # wait for record's completion after a hangup (s)
    media_margin: float = 30.0              # a prompt may take this much longer than its file
    max_wait: float = 4 * 3600.0            # bound of waits without a known length
    command_timeout: float = 10.0


def media_arg(item: PlayItem) -> str | None:
    """What `playback` plays for an item: its file, else its tone; None when it has neither."""
    if item.path:
        return str(item.path)
    tone = item.tone
    if tone is not None:
        if tone == "beep":
            return BEEP
        return tone if "://" in tone else "tone_stream://" + tone
    return None


@functools.lru_cache(maxsize=4096)
def _file_seconds(path: str) -> float | None:
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate() or 8000)
    except (OSError, EOFError, wave.Error):
        return None


def _media_seconds(arg: str) -> float | None:
    if arg.startswith("tone_stream://"):
        if "loops=-1" in arg:
            return None
        return sum(int(a) + int(b) for a, b in _TONE.findall(arg)) / 1000.0
    if arg.startswith("silence_stream://"):
        try:
            return int(arg.split("://", 1)[1].split(",")[0]) / 1000.0
        except ValueError:
            return None
    return _file_seconds(arg) if os.path.isabs(arg) else None


class _Collector:
    """One `collect` in progress: the same decisions as `Channel.collect`, one key at a time."""

    __slots__ = ("max_digits", "terminator", "inter_digit", "stop_keys", "digits", "keys",
                 "result", "future", "_timer", "_loop", "_deadline")

    def __init__(self, loop: asyncio.AbstractEventLoop, max_digits: int, terminator: str | None,
                 inter_digit: float, stop_keys: Collection[str]) -> None:
        self._loop = loop
        self.max_digits = max_digits
        self.terminator = terminator
        self.inter_digit = inter_digit
        self.stop_keys = stop_keys
        self.digits = ""
        self.keys = ""
        self.result: DigitsResult | None = None
        self.future: asyncio.Future | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    def feed(self, k: str) -> None:
        self.keys += k
        if len(self.keys) == 1 and k in self.stop_keys:
            self.result = DigitsResult("", self.keys, "stop_key")
        elif self.terminator and k == self.terminator:
            self.result = DigitsResult(self.digits, self.keys, "terminator")
        else:
            self.digits += k
            if len(self.digits) >= self.max_digits:
                self.result = DigitsResult(self.digits, self.keys, "max")

    def timed_out(self) -> None:
        if self.result is None:
            self.result = DigitsResult(self.digits, self.keys, "timeout" if self.keys else "no_input")

    def arm(self, seconds: float) -> None:
        """Time out `seconds` from now.  A later deadline than the timer's is only noted (the
        timer, when it fires, waits on for the rest): one timer per entry, not one per key."""
        self._deadline = deadline = self._loop.time() + seconds
        timer = self._timer
        if timer is not None:
            if deadline >= timer.when():
                return
            timer.cancel()
        self._timer = self._loop.call_at(deadline, self._expire)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._expire)
            return
        self._timer = None
        self.timed_out()
        _resolve(self.future, True)


def _ts(ev: Event) -> float:
    try:
        return int(ev.get("Event-Date-Timestamp") or 0) / 1e6
    except ValueError:
        return 0.0


class FreeSwitchChannel(Channel):
    """One call controlled through an outbound ESL connection.

    Create it on a fresh `OutboundConnection`, then `await open(...)` (the handshake); the
    call's identity (`call_id` = FreeSWITCH's Unique-ID, caller, destination, variables) is
    known afterwards.  `synth(text, lang) -> path | None` produces audio for items that have
    only text; `conference_hook(channel, room, role, profile)` runs before joining a room
    (ivrflow serve uses it to call the expert's own phone)."""

    name = "freeswitch"

    def __init__(self, conn: OutboundConnection, *, options: FsOptions | None = None,
                 synth: Callable[[str, str | None], Awaitable[str | None]] | None = None,
                 conference_hook: Callable[..., Awaitable[None]] | None = None,
                 on_wait: Callable[["FreeSwitchChannel", str, float], Any] | None = None) -> None:
        super().__init__("", None, None)
        self.conn = conn
        self.opts = options or FsOptions()
        self.synth = synth
        self.conference_hook = conference_hook
        self.on_wait = on_wait                  # test hook: (channel, "listen"|"record", seconds)
        self.keys_received = 0                  # DTMF events seen (kept or dropped)
        self.data: ChannelData | None = None
        self.loop = asyncio.get_running_loop()
        self.first_prompt_at: float | None = None   # perf_counter when the first prompt went out
        self.bridged = False                    # a dial-string transfer was answered
        self.transferred = False
        self.discarded = 0                      # DTMF dropped (non-interruptible prompts...)
        self._modes: dict[str, str] = {}        # Application-UUID -> M_*
        self._running: list[str] = []           # our applications started and not completed
        self._term: str | None = None           # playback_terminators as last set (None: '*')
        self._vars_set: set[str] = set()
        self._answered = False
        self._spec: tuple[str, Execution] | None = None    # speculative first prompt
        self._waiter: asyncio.Future | None = None
        self._collector: _Collector | None = None  # a collect waiting for keys
        self._cause_known: asyncio.Future | None = None
        self._rec_term: str | None = None
        self._rec_hit = False
        self._conf: dict[str, Any] = {}
        self._conf_fut: asyncio.Future | None = None
        self._state_fut: asyncio.Future | None = None
        self._bridge_fut: asyncio.Future | None = None
        conn.on("*", self._on_event)

    # ------------------------------------------------------------------ opening

    async def open(self, opening: Sequence[tuple[str, str | None, str]] = (), *,
                   linger: bool | int = True, timeout: float | None = None) -> ChannelData:
        """The handshake: `connect`, `myevents`, `linger`, `event plain RECORD_START RECORD_STOP
        CUSTOM conference::maintenance` and the `opening` executes ((app, arg, mode) tuples,
        e.g. set playback_terminators, answer and the first prompt) in ONE write (p)."""
        ops = list(opening)

        def prepare(executions: list[Execution]) -> None:
            for (app, arg, mode), exe in zip(ops, executions):
                self._modes[exe.event_uuid] = mode
                self._note_sent(app, arg, exe)

        hs = await self.conn.handshake(events=("RECORD_START", "RECORD_STOP"),
                                       custom=("conference::maintenance",),
                                       executes=[(a, g) for a, g, _ in ops], linger=linger,
                                       timeout=timeout or self.opts.command_timeout,
                                       prepare=prepare)
        data = self.data = hs.channel
        self.call_id = data.unique_id
        self.caller_raw = data.caller_number or None
        self.destination = data.destination or None
        self.variables = dict(data.variables)
        self.conn.name = f"call {data.unique_id}"
        self._cause_known = self.loop.create_future()
        self.conn.on_hangup(self._hangup_seen)
        return data

    def _note_sent(self, app: str, arg: str | None, exe: Execution) -> None:
        if app == "answer":
            self._answered = True
        elif app == "set" and arg:
            name, _, value = arg.partition("=")
            if name == "playback_terminators":
                self._term = value
            else:
                self._vars_set.add(arg)
        elif app == "playback" and arg:
            if self.first_prompt_at is None:
                self.first_prompt_at = time.perf_counter()
                if self.data is None:           # sent with the handshake: speculative
                    self._spec = (arg, exe)

    # ------------------------------------------------------------------ events

    def _on_event(self, ev: Event) -> None:
        name = ev.name
        if name == "DTMF":
            self._dtmf(ev.get("DTMF-Digit") or "")
        elif name == "CHANNEL_EXECUTE":
            uid = ev.application_uuid
            if uid in self._modes:
                self._running.append(uid)
        elif name == "CHANNEL_EXECUTE_COMPLETE":
            uid = ev.application_uuid
            if uid in self._modes:
                del self._modes[uid]
                if uid in self._running:
                    self._running.remove(uid)
        elif name == "CUSTOM":
            if ev.subclass == "conference::maintenance":
                self._conference_event(ev)
        elif name == "CHANNEL_HANGUP" or name == "CHANNEL_HANGUP_COMPLETE":
            cause = ev.get("Hangup-Cause")
            if cause and self.hangup_cause is None:
                self.hangup_cause = cause
            if cause and self._cause_known is not None and not self._cause_known.done():
                self._cause_known.set_result(cause)
            self._mark_gone()
        elif name == "CHANNEL_BRIDGE":
            self.bridged = True
            _resolve(self._bridge_fut, True)
        elif name == "CHANNEL_STATE":
            if ev.get("Channel-State") == "CS_EXECUTE":
                _resolve(self._state_fut, True)

    def _dtmf(self, digit: str) -> None:
        if not digit:
            return
        self.keys_received += 1
        mode = self._modes.get(self._running[-1]) if self._running else None
        if mode is None or mode == M_BARGE:
            if self.keys.push(digit, self.loop.time()):     # False: a swallowed terminator
                if self._collector is not None:
                    self._collect_keys(self._collector)
                else:
                    _resolve(self._waiter, True)
        elif mode == M_RECORD:
            if self._rec_term and digit == self._rec_term:
                self._rec_hit = True
            self.discarded += 1
        else:                              # quiet prompt, conference, bridge: consumed
            self.discarded += 1

    def _conference_event(self, ev: Event) -> None:
        action = ev.get("Action")
        conf = self._conf
        if action == "add-member":
            conf["add"] = _ts(ev)
            conf["member"] = ev.get("Member-ID")
        elif action == "del-member" and ev.get("Member-ID") == conf.get("member"):
            conf["del"] = _ts(ev)
            _resolve(self._conf_fut, True)
        elif action == "kick-member":
            conf["kicked"] = True

    def _hangup_seen(self, info: Any, exc: BaseException | None) -> None:
        """CHANNEL_HANGUP, the disconnect notice, or the socket closing (then `exc` is the
        ConnectionLost and the cause stays unknown); called inside the reader."""
        if exc is None and info is not None and info.cause and self.hangup_cause is None:
            self.hangup_cause = info.cause
        self._mark_gone()

    def _mark_gone(self) -> None:
        self.hungup = True
        _resolve(self._waiter, True)
        _resolve(self._conf_fut, True)
        _resolve(self._state_fut, False)
        _resolve(self._bridge_fut, False)

    async def _gone(self, cause: str | None = None) -> CallHangup:
        """The CallHangup to raise, with the best cause known (the disconnect notice can come
        before CHANNEL_HANGUP, 9.log: wait a moment for the cause)."""
        self.hungup = True
        if cause and self.hangup_cause is None:
            self.hangup_cause = cause
        if self.hangup_cause is None and not self.conn.closed and self._cause_known is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._cause_known), 0.3)
            except (asyncio.TimeoutError, ESLError):
                pass
        if self.hangup_cause is None:
            self.hangup_cause = "NORMAL_CLEARING" if not self.conn.closed else "ESL_CONNECTION_LOST"
        return CallHangup(self.hangup_cause)

    async def _check(self) -> None:
        if self.hungup:
            raise await self._gone()

    def key_time(self) -> float:
        return self.loop.time()

    @property
    def listening(self) -> bool:
        """A read is waiting for a key now."""
        return self._waiter is not None

    # ------------------------------------------------------------------ sending

    def _exec(self, app: str, arg: str | None = None, mode: str = M_OTHER, *,
              event_lock: bool = True) -> Execution:
        """Queue an application; its events are understood from the moment it is written."""
        try:
            exe = self.conn.execute_nowait(app, arg, event_lock=event_lock)
        except ChannelHangup:
            self.hungup = True
            raise
        except ValueError as e:              # a line break in an argument
            raise ChannelError(f"{app}: {e}") from None
        self._modes[exe.event_uuid] = mode
        self._note_sent(app, arg, exe)
        return exe

    def _set_terminators(self, value: str) -> None:
        if self._term != value:
            self._exec("set", f"playback_terminators={value}")

    def _set_once(self, name: str, value: str) -> None:
        if f"{name}={value}" not in self._vars_set:
            self._exec("set", f"{name}={value}")

    async def _wait(self, exe: Execution, timeout: float, what: str) -> Event:
        try:
            ev = await exe.wait(timeout)
            self.conn.pending_cause = self.conn.last_rx     # what we send next answers it
            return ev
        except ChannelHangup as e:
            raise await self._gone(e.cause) from None
        except ConnectionLost:
            raise await self._gone() from None
        except ESLTimeout:
            raise ChannelError(f"{what}: FreeSWITCH did not complete it within {timeout:g} s") \
                from None
        except ExecutionFlushed:
            raise ChannelError(f"{what}: flushed before it ran") from None
        except CommandError as e:
            raise ChannelError(f"{what}: {e}") from None

    # ------------------------------------------------------------------ Channel

    async def answer(self) -> None:
        await self._check()
        if not self._answered:
            try:
                self._exec("answer")
            except ChannelHangup:
                raise await self._gone() from None
            except ConnectionLost:
                raise await self._gone() from None

    async def play(self, items: Sequence[PlayItem], barge_in: bool = True) -> str | None:
        await self._check()
        for item in items:
            if barge_in and self.keys:
                return self.keys.peek()
            app, arg = await self._media(item)
            exe = self._adopt(app, arg, barge_in)
            if exe is None:
                term = "any" if barge_in else "none"
                if barge_in:
                    # a terminator still expected after a full-length entry must not stop
                    # this prompt inside FreeSWITCH (the keys buffer drops it, as the
                    # simulator does): every key but that one stops it
                    late = self.keys.swallowing(self.key_time())
                    if late is not None:
                        term = _ALL_KEYS.replace(late, "")
                try:
                    if self._term == term:          # the usual case: one command, no batch
                        exe = self._exec(app, arg, M_BARGE if barge_in else M_QUIET)
                    else:
                        with self.conn.batch():
                            self._set_terminators(term)
                            exe = self._exec(app, arg, M_BARGE if barge_in else M_QUIET)
                except (ChannelHangup, ConnectionLost):
                    raise await self._gone() from None
            secs = _media_seconds(arg) if app == "playback" else None
            limit = self.opts.max_wait if secs is None else secs * 1.5 + self.opts.media_margin
            done = await self._wait(exe, limit, f"{app} {arg}")
            if done.get("Application-Response") == "FILE NOT FOUND":
                raise ChannelError(f"FreeSWITCH cannot play {arg}: FILE NOT FOUND")
        if barge_in and self.keys:
            return self.keys.peek()
        return None

    def _adopt(self, app: str, arg: str, barge_in: bool) -> Execution | None:
        """The first prompt may already have gone out with the handshake (pipelining)."""
        spec, self._spec = self._spec, None
        if spec is None:
            return None
        sent_arg, exe = spec
        if app == "playback" and sent_arg == arg and barge_in and self._term == "any":
            return exe
        # the call needs something else first: stop the speculative prompt (a plain break
        # lets what is queued after it start, n3); not once it is over (a break with nothing
        # playing would cut the next prompt)
        if not exe.completion.done() and not self.hungup:
            self.loop.create_task(self._break_quietly())
        return None

    async def _break_quietly(self) -> None:
        try:
            await self.conn.break_media(timeout=self.opts.command_timeout)
        except ESLError:
            pass

    async def _media(self, item: PlayItem) -> tuple[str, str]:
        arg = media_arg(item)
        if arg is not None:
            return "playback", arg
        text = (item.text or "").strip()
        if text and self.synth is not None:
            try:
                path = await self.synth(text, item.lang)
            except Exception as e:  # noqa: BLE001 - a broken synthesizer is a platform failure
                log.warning("call %s: synthesis failed: %s", self.call_id, e)
                path = None
            if path:
                return "playback", str(path)
        if text and self.opts.speak:
            from engine.prompts import lang as langs

            voice = langs.default_voice(item.lang or "") or "default"
            return "speak", f"{self.opts.speak}|{voice}|{' '.join(text.split())}"
        what = item.prompt_id or text[:40] or "?"
        raise ChannelError(f"no audio for prompt {what!r} (no file, no synthesis, speak not enabled)")

    async def collect(self, prompt: Sequence[PlayItem] = (), *, min_digits: int = 1, max_digits: int = 1,
                      terminator: str | None = "#", first_timeout: float = 5.0, inter_digit: float = 3.0,
                      barge_in: bool = True, stop_keys: Collection[str] = ()) -> DigitsResult:
        """`Channel.collect` with the same outcome, key for key, but the keys are applied as
        their DTMF events are read: the call's task wakes once per entry (when it is complete
        or timed out), not once per key."""
        if prompt:
            await self.play(prompt, barge_in=barge_in)
        await self._check()
        c = _Collector(self.loop, max_digits, terminator, inter_digit, stop_keys)
        self._collect_keys(c, waiting=False)
        if c.result is None:
            timeout = first_timeout if not c.keys else inter_digit
            if timeout <= 0:
                c.timed_out()
            else:
                if self.on_wait is not None:
                    self.on_wait(self, "listen", timeout)
                    self._collect_keys(c, waiting=False)
                if c.result is None:
                    fut = self._waiter = c.future = self.loop.create_future()
                    self._collector = c
                    c.arm(timeout)
                    try:
                        await fut
                    finally:
                        c.disarm()
                        self._collector = None
                        self._waiter = None
                    if c.result is None or c.result.reason in ("timeout", "no_input"):
                        await self._check()          # woken by the hangup, or it timed out
                        c.timed_out()
        r = c.result
        assert r is not None
        if r.reason == "max" and terminator:
            await self.drop_terminator(terminator, inter_digit)
        return r

    def _collect_keys(self, c: "_Collector", waiting: bool = True) -> None:
        """Apply the keys buffered to a collect (from the DTMF handler while it waits)."""
        keys = self.keys
        while c.result is None:
            k = keys.pop()
            if k is None:
                break
            c.feed(k)
            if waiting or c.result is not None:
                self.conn.pending_cause = self.conn.last_rx      # what we send next answers it
        if not waiting:
            return
        if c.result is not None:
            _resolve(c.future, True)
        elif c.inter_digit <= 0:
            c.timed_out()
            _resolve(c.future, True)
        else:
            c.arm(c.inter_digit)                     # a new wait for the next key
            if self.on_wait is not None:
                self.on_wait(self, "listen", c.inter_digit)
                if keys:
                    self._collect_keys(c)

    async def read_key(self, timeout: float) -> str | None:
        await self._check()
        k = self.keys.pop()
        if k is not None or timeout <= 0:
            return k
        if self.on_wait is not None:
            self.on_wait(self, "listen", timeout)
            k = self.keys.pop()
            if k is not None:
                return k
        fut = self._waiter = self.loop.create_future()
        handle = self.loop.call_later(timeout, _resolve, fut, False)
        try:
            await fut
        finally:
            handle.cancel()
            self._waiter = None
        k = self.keys.pop()
        if k is None:
            await self._check()
        else:
            self.conn.pending_cause = self.conn.last_rx
        return k

    async def record(self, path: str, *, max_seconds: float, silence_seconds: float,
                     terminator: str | None) -> RecordResult:
        await self._check()
        if not path or any(c.isspace() for c in path):
            raise ChannelError(f"record: the path must not contain spaces: {path!r}")
        self.keys.clear()
        max_s = max(1, math.ceil(max_seconds))
        hits = max(1, round(silence_seconds))
        self._rec_term, self._rec_hit = terminator, False
        try:
            with self.conn.batch():
                self._set_terminators(terminator or "none")
                self._set_once("record_fill_cng", "true")
                exe = self._exec("record", f"{path} {max_s} {self.opts.record_threshold} {hits}",
                                 M_RECORD)
        except (ChannelHangup, ConnectionLost):
            raise await self._gone() from None
        if self.on_wait is not None:
            self.on_wait(self, "record", max_seconds)
        start = self.loop.time()
        try:
            ev = await exe.wait(max_s + self.opts.media_margin, hangup_grace=self.opts.hangup_grace)
        except ChannelHangup as e:
            ms = _int(e.completion.variable("record_ms")) if e.completion is not None else None
            secs = ms / 1000.0 if ms is not None else self.loop.time() - start
            exc = await self._gone(e.cause)
            raise CallHangup(exc.cause, partial=RecordResult(path, secs, "hangup")) from None
        except ConnectionLost:
            exc = await self._gone()
            raise CallHangup(exc.cause, partial=RecordResult(path, self.loop.time() - start,
                                                             "hangup")) from None
        except (ESLTimeout, ExecutionFlushed, CommandError) as e:
            raise ChannelError(f"record {path}: {e}") from None
        finally:
            self._rec_term = None
        secs = (_int(ev.variable("record_ms")) or 0) / 1000.0
        if self._rec_hit:
            reason = "terminator"
        elif ev.variable("silence_hits_exhausted") == "true":
            reason = "silence"
            secs = max(0.0, secs - hits)        # fill_cng: the trailing silence is in the file
        else:
            reason = "max"
            secs = min(secs, float(max_seconds))
        return RecordResult(path, secs, reason)

    async def transfer(self, target: TransferTarget, *, confined: bool = True) -> None:
        """`Channel.transfer`; `confined=False` (ivrflow serve's own fallback, from its
        configuration) ignores the call's `ivrflow_transfer_context`."""
        await self._check()
        if target.queue is not None:
            queue = target.queue
            if not _TOKEN.match(queue):
                raise TransferFailed(f"invalid queue name {queue!r}")
            ops = [("set", f"ivrflow_queue={queue}"),
                   ("set", f"ivrflow_queue_priority={int(target.priority)}"),
                   ("transfer", f"{queue} XML {self.opts.queue_context}")]
            await self._transfer(ops, target)
            return
        ext = (target.extension or "").strip()
        if not ext or not _TOKEN.match(ext):
            raise TransferFailed(f"invalid transfer destination {ext!r}")
        # the dialplan may confine this call's transfers to one context (public callers):
        # then no dial string (it would bypass every context) and no other context
        only = (self.variables.get(TRANSFER_CONTEXT_VAR) or None) if confined else None
        if "/" in ext:
            if only:
                raise TransferFailed(f"dial string {ext!r} refused: this call's transfers are "
                                     f"confined to context {only!r} ({TRANSFER_CONTEXT_VAR})")
            await self._bridge(ext)
            return
        if only and target.context and target.context != only:
            raise TransferFailed(f"context {target.context!r} refused: this call's transfers are "
                                 f"confined to context {only!r} ({TRANSFER_CONTEXT_VAR})")
        context = only or target.context or self.opts.default_context
        if not _TOKEN.match(context):
            raise TransferFailed(f"invalid dialplan context {context!r}")
        await self._transfer([("transfer", f"{ext} XML {context}")], target)

    async def _transfer(self, ops: list[tuple[str, str]], target: TransferTarget) -> None:
        self._state_fut = self.loop.create_future()
        try:
            with self.conn.batch():
                exes = [self._exec(a, g) for a, g in ops]
        except (ChannelHangup, ConnectionLost):
            raise await self._gone() from None
        try:
            await self._wait(exes[-1], self.opts.command_timeout, "transfer")
        except ChannelError as e:
            raise TransferFailed(str(e)) from None
        # j: the socket application ends, the new extension starts (CS_EXECUTE); no route:
        # FreeSWITCH hangs the call up (NO_ROUTE_DESTINATION)
        try:
            started = await asyncio.wait_for(asyncio.shield(self._state_fut),
                                             self.opts.transfer_confirm)
        except asyncio.TimeoutError:
            started = True
        if not started or self.hungup:
            raise await self._gone()
        self.transferred = True

    async def _bridge(self, dial: str) -> None:
        self._bridge_fut = self.loop.create_future()
        try:
            with self.conn.batch():
                self._set_once("continue_on_fail", "true")
                self._set_once("hangup_after_bridge", "true")
                self._set_once("call_timeout", str(int(self.opts.bridge_timeout)))
                exe = self._exec("bridge", dial, M_BRIDGE)
        except (ChannelHangup, ConnectionLost):
            raise await self._gone() from None
        waiting = self.loop.create_task(exe.wait(self.opts.max_wait))
        try:
            await asyncio.wait({self._bridge_fut, waiting},
                               timeout=self.opts.bridge_timeout + self.opts.media_margin,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not waiting.done():
                waiting.cancel()
        if self.bridged:
            self.transferred = True
            return                          # k: the agent answered; the platform has the call
        if waiting.done() and not waiting.cancelled() and waiting.exception() is None:
            ev = waiting.result()
            why = ev.variable("originate_disposition") or ev.variable("DIALSTATUS") or "failed"
            raise TransferFailed(f"{dial}: {why}")
        if self.hungup or waiting.done():
            raise await self._gone()
        raise TransferFailed(f"{dial}: no answer within {self.opts.bridge_timeout} s")

    async def conference(self, room: str, *, role: str = "member", profile: str | None = None,
                         limit: float | None = None, warn_before: float = 60.0,
                         warning: Sequence[PlayItem] = ()) -> ConferenceResult:
        await self._check()
        if not _TOKEN.match(room) or any(c in room for c in "@+"):
            raise ConferenceFailed(f"invalid room name {room!r}")
        profile = profile or self.opts.conference_profile
        if not _TOKEN.match(profile):
            raise ConferenceFailed(f"invalid conference profile {profile!r}")
        flags = {"moderator": "moderator", "listener": "mute"}.get(role)
        arg = f"{room}@{profile}" + (f"+flags{{{flags}}}" if flags else "")
        if self.conference_hook is not None:
            await self.conference_hook(self, room, role, profile)
            await self._check()
        warn_arg = None
        if limit is not None and warning:
            args = [await self._media(i) for i in warning]
            paths = [g for a, g in args if a == "playback" and not any(c.isspace() for c in g)]
            if paths:
                warn_arg = paths[0] if len(paths) == 1 else "file_string://" + "!".join(paths)
        self._conf = {}
        self._conf_fut = self.loop.create_future()
        scheduled = False
        try:
            with self.conn.batch():
                # l2: the app returns when the room ends instead of hanging the caller up
                self._set_once("hangup_after_conference", "false")
                if limit is not None:
                    cut = max(1, math.floor(limit))     # whole seconds: never past the paid time
                    self._exec("sched_hangup", f"+{cut} ALLOTTED_TIMEOUT")
                    if warn_arg is not None:
                        at = max(0, math.floor(limit - warn_before))
                        self._exec("sched_broadcast", f"+{at} {warn_arg} aleg")
                    scheduled = True
                # no event-lock: the scheduled warning must be able to nest into it (o)
                exe = self._exec("conference", arg, M_CONF, event_lock=False)
        except (ChannelHangup, ConnectionLost):
            raise await self._gone() from None
        bound = (limit + self.opts.media_margin) if limit is not None else self.opts.max_wait
        started = self.loop.time()
        try:
            await exe.wait(bound)
        except (ChannelHangup, ConnectionLost) as e:
            secs = await self._member_seconds(started)
            exc = await self._gone(getattr(e, "cause", None))
            reason = "limit" if exc.cause == "ALLOTTED_TIMEOUT" else "hangup"
            raise CallHangup(exc.cause, partial=ConferenceResult(secs, reason)) from None
        except (ESLTimeout, ExecutionFlushed, CommandError) as e:
            raise ChannelError(f"conference {room}: {e}") from None
        if scheduled:
            await self._unschedule()
        if "add" not in self._conf:
            raise ConferenceFailed(f"room {room} refused the caller")
        secs = await self._member_seconds(started)
        return ConferenceResult(secs, "kicked" if self._conf.get("kicked") else "ended")

    def start_hold(self, media: str) -> Execution | None:
        """Play `media` (e.g. an endless ringback tone) until `stop_hold`; keys are ignored."""
        if self.hungup:
            return None
        try:
            with self.conn.batch():
                self._set_terminators("none")
                return self._exec("playback", media, M_QUIET)
        except (ESLError, ChannelError):
            return None

    async def stop_hold(self, exe: Execution | None) -> None:
        """Stop the hold music with a plain `uuid_break` (n: it ends the running playback and
        lets what is queued after it start) once it has started, and wait for its end."""
        if exe is None or self.hungup:
            return
        try:
            await asyncio.wait_for(asyncio.shield(exe.started), self.opts.command_timeout)
            await self.conn.break_media(timeout=self.opts.command_timeout)
            await exe.wait(self.opts.command_timeout)
        except (ESLError, asyncio.TimeoutError):
            if not self.hungup:
                raise ChannelError("the hold music did not stop") from None

    async def _member_seconds(self, started: float) -> float:
        conf = self._conf
        if "add" in conf and "del" not in conf and self._conf_fut is not None and \
                not self.conn.closed:
            # del-member can follow the hangup and the disconnect notice (l)
            try:
                await asyncio.wait_for(asyncio.shield(self._conf_fut), 2.0)
            except asyncio.TimeoutError:
                pass
        if "add" in conf and "del" in conf:
            return max(0.0, conf["del"] - conf["add"])
        return max(0.0, self.loop.time() - started) if "add" in conf else 0.0

    async def _unschedule(self) -> None:
        try:
            await self.conn.api(f"sched_del {self.call_id}", timeout=self.opts.command_timeout)
        except ESLError as e:
            log.warning("call %s: could not cancel the scheduled hangup: %s", self.call_id, e)

    async def set_var(self, name: str, value: str) -> None:
        await self._check()
        if not _NAME.match(name):
            raise ChannelError(f"invalid channel variable name {name!r}")
        exe = self._exec("set", f"{name}={value}")
        await self._wait(exe, self.opts.command_timeout, f"set {name}")
        self.variables[name] = value

    async def get_var(self, name: str) -> str | None:
        await self._check()
        if not _NAME.match(name):
            raise ChannelError(f"invalid channel variable name {name!r}")
        try:
            return await self.conn.get_var(name, timeout=self.opts.command_timeout)
        except (ChannelHangup, ConnectionLost):
            raise await self._gone() from None
        except ESLError as e:
            if self.hungup:
                raise await self._gone() from None
            raise ChannelError(f"uuid_getvar {name}: {e}") from None

    async def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        if self.hungup or self.conn.closed:
            self.hungup = True
            return
        if not _NAME.match(cause):
            cause = "NORMAL_CLEARING"
        try:
            await self.conn.hangup(cause, timeout=self.opts.command_timeout)
        except ESLError:
            await self.kill(cause)
        if self.hangup_cause is None:
            self.hangup_cause = cause
        self.hungup = True

    async def kill(self, cause: str) -> None:
        """Hang up at once whatever runs (`api uuid_kill`; sendmsg hangup waits for an
        event-locked application to end).  Never raises."""
        if self.conn.closed or not self.call_id:
            return
        try:
            await self.conn.api(f"uuid_kill {self.call_id} {cause}", timeout=self.opts.command_timeout,
                                check=False)
            await self.conn.wait_hangup(timeout=self.opts.command_timeout)
        except ESLError:
            pass
        self.hungup = True
        if self.hangup_cause is None:
            self.hangup_cause = cause

    async def wait_gone(self, timeout: float) -> bool:
        """After a bridge: wait until the call ends (True) or `timeout` (False)."""
        try:
            await self.conn.wait_hangup(timeout=timeout)
            return True
        except ESLTimeout:
            return False
        except ESLError:
            return True


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None



