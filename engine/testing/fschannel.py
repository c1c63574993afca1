"""One emulated FreeSWITCH channel: private event queue, application stack, DTMF, hangup.

Model (each point backed by a capture, see docs/esl.md):
* Frame clock (frame_ms=20): the channel takes its input (keys, queued requests, uuid_break) at
  media frame boundaries, counted in whole frames from the channel's origin. Input that arrived
  before the current frame was taken is handled in that frame; anything later waits for the next
  one (tick(): strictly the next boundary).
* sendmsg executes go to the channel's private queue. When idle (parked) the next one starts on
  the next frame (g2: completion 598 ms, the next execute 618 ms); requests already queued run
  back to back in one frame (p, q2), except after a uuid_break (n3: the next one a frame later).
  While an application that reads the private queue (playback, play_and_get_digits, record,
  conference, bridge, park, sleep, speak) runs *without* event-lock, a queued request runs
  nested: the outer one pauses and resumes (q1/q3); one already queued when the outer one
  started runs at once, before its first frame (q3: 1 ms apart). An application started with
  event-lock keeps the queue locked until it ends (q2).
* Digits are queued on the channel and dequeued (DTMF event fired) by the innermost running
  application, or by the park loop when idle (which discards them, one per frame): keys that
  arrived together are all read in one frame, and digits beyond a read's maximum come out as
  DTMF events right after its completion, in the same frame (1.log).
* Hangup fires CHANNEL_HANGUP at once; running applications then unwind innermost first with
  their completions, then CHANNEL_UNPARK, the socket application's completion, CHANNEL_STATE
  CS_HANGUP / CS_REPORTING and CHANNEL_HANGUP_COMPLETE, all in the frame the hangup is seen in
  (1, 3, g1-g5: one Event-Date-Timestamp). A hangup from another thread between two frames
  (sched_hangup: o, o2) is seen by the running media application at the next frame.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid as uuidlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import fswire
from .fswire import Header
from .vclock import VirtualTimeLoop

if TYPE_CHECKING:  # pragma: no cover
    from .fsemu import FreeSwitchEmulator
    from .fssession import EmuSession

log = logging.getLogger("ivrflow.fsemu")

DONE, STOPPED, BREAK, HANGUP, ENDED = "done", "stopped", "break", "hangup", "ended"

STATE_NUMBERS = {"CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3,
                 "CS_EXECUTE": 4, "CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7,
                 "CS_HIBERNATE": 8, "CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11,
                 "CS_DESTROY": 12}


@dataclass
class AppRequest:
    """An application to run: from sendmsg, the dialplan, or a (scheduled) broadcast."""

    app: str
    arg: str = ""
    event_uuid: str | None = None
    event_lock: bool = False
    loops: int = 1
    origin: str = "sendmsg"
    seq: int = 0                      # arrival number on the channel (set by enqueue)


@dataclass
class RunningApp:
    req: AppRequest
    parses_events: bool
    app_uuid: str
    break_flag: bool = False
    break_seq: int = 0                # arrival number of the uuid_break (0: before the start)
    ended: str | None = None          # set by others (kicked, conference ended, bridge over)
    data: dict[str, Any] = field(default_factory=dict)


_Q850 = {"UNALLOCATED_NUMBER": 1, "NO_ROUTE_DESTINATION": 3, "NORMAL_CLEARING": 16,
         "USER_BUSY": 17, "NO_USER_RESPONSE": 18, "NO_ANSWER": 19, "CALL_REJECTED": 21,
         "DESTINATION_OUT_OF_ORDER": 27, "NORMAL_UNSPECIFIED": 31,
         "NORMAL_TEMPORARY_FAILURE": 41}


class EmuChannel:
    """State and behaviour of one channel. Created by FreeSwitchEmulator."""

    def __init__(self, emu: "FreeSwitchEmulator", *, uuid: str, name: str, caller_number: str,
                 destination: str, caller_name: str = "", context: str = "default",
                 direction: str = "inbound", source: str = "mod_loopback",
                 variables: dict[str, str] | None = None, dtmf_source: str = "UNKNOWN",
                 notice_position: str | None = None) -> None:
        self.emu = emu
        self.uuid = uuid
        self.name = name
        self.caller_number = caller_number
        self.caller_name = caller_name
        self.destination = destination
        self.context = context
        self.direction = direction
        self.source = source
        self.dtmf_source = dtmf_source
        self.notice_position = notice_position or emu.notice_position
        self.vars: dict[str, str] = dict(variables or {})
        self.state = "CS_EXECUTE"
        self.call_state = "RINGING"
        self.answer_state = "ringing"
        self.hangup_cause: str | None = None
        self.hangup_in_app = False           # hangup executed from the private event queue
        self.created_us = emu.epoch_us()
        self.answered_us = 0
        self.hangup_us = 0
        self.origin = emu.loop.time()          # frame clock origin
        self.queue: deque[AppRequest] = deque()
        self.stack: list[RunningApp] = []
        self.dtmf_q: deque[str] = deque()
        self._dtmf_seq: deque[int] = deque()   # arrival number of each queued digit
        self._arrivals = 0                     # input counter: digits, requests, breaks
        self._frame_at = -1.0                  # loop time of the frame the input was last taken
        self._frame_k = -1                     # ... and its number (real clock)
        # virtual time: "the same frame" is the same instant; on a real clock time moves on
        # between taking the input and handling it, so it is the same frame number
        self._exact = isinstance(emu.loop, VirtualTimeLoop)
        self._frame_seq = 0                    # ... and the inputs that had arrived by then
        self._broke = False                    # the last media wait ended by uuid_break
        self.socket: EmuSession | None = None
        self.socket_app: RunningApp | None = None
        self.transfer_to: tuple[str, str] | None = None
        self.other_leg: "EmuChannel | None" = None
        self.caller: Any = None                 # CallerScript
        self.audio: list[tuple[float, float]] = []   # caller speech (loop time start, end)
        self.hangup_done: asyncio.Future[None] = emu.loop.create_future()
        self.app_history: list[tuple[str, str]] = []
        self._signal = asyncio.Event()
        self._app_starts: dict[str, int] = {}
        self._task: asyncio.Task | None = None
        self._tearing_down = False
        self._sched: list[asyncio.TimerHandle] = []
        self.sched_tasks: dict[int, asyncio.TimerHandle] = {}
        self.pending_break = False             # CF_BREAK set while no media application ran
        self._hangup_after_keys: str | None = None
        self._var_version = 0
        self._var_cache: tuple | None = None
        self._chan_cache: tuple | None = None

    # ---------------------------------------------------------------- basics

    @property
    def hungup(self) -> bool:
        return self.hangup_cause is not None

    def signal(self) -> None:
        self._signal.set()

    def var(self, name: str, default: str | None = None) -> str | None:
        return self.vars.get(name, default)

    def set_var(self, name: str, value: str | None) -> None:
        """Set (moving it last, as FreeSWITCH re-adds the header) or unset (None / "")."""
        self._var_version += 1
        self.vars.pop(name, None)
        if value not in (None, ""):
            self.vars[name] = str(value)

    def _frame_pos(self) -> tuple[int, bool]:
        """(number of the frame boundary at or before now, whether now is on it). Exact: loop
        times near 1e6 s carry ~1e-10 s of float error, far below the 1e-6 frame tolerance."""
        pos = (self.emu.loop.time() - self.origin) / (self.emu.frame_ms / 1000.0)
        k = round(pos)
        if abs(pos - k) < 1e-6:
            return k, True
        return math.floor(pos), False

    def on_frame(self) -> bool:
        return not self.emu.frame_ms or self._frame_pos()[1]

    def next_frame_delay(self) -> float:
        """Seconds to the next frame boundary, strictly later (0 without a frame clock)."""
        if self.emu.frame_ms <= 0:
            return 0.0
        k, _ = self._frame_pos()
        frame = self.emu.frame_ms / 1000.0
        return max(0.0, self.origin + (k + 1) * frame - self.emu.loop.time())

    async def tick(self) -> None:
        """Wait for the next media frame boundary (strictly later), or just yield."""
        await asyncio.sleep(self.next_frame_delay())

    def _arrive(self) -> int:
        self._arrivals += 1
        return self._arrivals

    def _take_frame(self) -> None:
        """The channel takes its input now: what has arrived so far is handled in this frame."""
        self._frame_at = self.emu.loop.time()
        if not self._exact and self.emu.frame_ms:
            self._frame_k = self._frame_pos()[0]
        self._frame_seq = self._arrivals

    def _ready(self, seq: int) -> bool:
        if seq > self._frame_seq:
            return False
        if self._exact:
            return self._frame_at == self.emu.loop.time()
        return self._frame_k == self._frame_pos()[0]

    def schedule(self, delay: float, fn: Callable[[], Any]) -> None:
        self._sched.append(self.emu.loop.call_later(max(0.0, delay), fn))

    def sched_task(self, delay: float, fn: Callable[[], Any]) -> int:
        """A task of FreeSWITCH's scheduler (sched_hangup / sched_broadcast): its group is the
        channel's uuid, so `sched_del <uuid>` cancels it. Returns the task id."""
        self.emu.sched_id += 1
        task_id = self.emu.sched_id
        handle = self.emu.loop.call_later(max(0.0, delay), fn)
        self.sched_tasks[task_id] = handle
        self._sched.append(handle)
        return task_id

    def sched_cancel(self, task_id: int | None = None) -> int:
        """Cancel one scheduled task, or all of this channel's; returns how many."""
        ids = [task_id] if task_id is not None else list(self.sched_tasks)
        count = 0
        for i in ids:
            handle = self.sched_tasks.pop(i, None)
            if handle is not None and not handle.cancelled():
                handle.cancel()
                count += 1
        return count

    # ---------------------------------------------------------------- events

    def profile(self, prefix: str) -> list[Header]:
        h = [(f"{prefix}-Direction", self.direction),
             (f"{prefix}-Logical-Direction", self.direction), (f"{prefix}-Dialplan", "xml")]
        if self.caller_name:
            h.append((f"{prefix}-Caller-ID-Name", self.caller_name))
        h += [(f"{prefix}-Caller-ID-Number", self.caller_number)]
        if self.caller_name:
            h.append((f"{prefix}-Orig-Caller-ID-Name", self.caller_name))
        h += [
            (f"{prefix}-Orig-Caller-ID-Number", self.caller_number),
            (f"{prefix}-Callee-ID-Name", "Outbound Call"),
            (f"{prefix}-Callee-ID-Number", "default"),
            (f"{prefix}-ANI", self.caller_number),
            (f"{prefix}-Destination-Number", self.destination),
            (f"{prefix}-Unique-ID", self.uuid),
            (f"{prefix}-Source", self.source),
            (f"{prefix}-Context", self.context),
            (f"{prefix}-Channel-Name", self.name),
            (f"{prefix}-Profile-Index", "1"),
            (f"{prefix}-Profile-Created-Time", str(self.created_us)),
            (f"{prefix}-Channel-Created-Time", str(self.created_us)),
            (f"{prefix}-Channel-Answered-Time", str(self.answered_us)),
            (f"{prefix}-Channel-Progress-Time", "0"),
            (f"{prefix}-Channel-Progress-Media-Time", "0"),
            (f"{prefix}-Channel-Hangup-Time", str(self.hangup_us)),
            (f"{prefix}-Channel-Transfer-Time", "0"),
            (f"{prefix}-Channel-Resurrect-Time", "0"),
            (f"{prefix}-Channel-Bridged-Time", "0"),
            (f"{prefix}-Channel-Last-Hold", "0"),
            (f"{prefix}-Channel-Hold-Accum", "0"),
            (f"{prefix}-Screen-Bit", "true"),
            (f"{prefix}-Privacy-Hide-Name", "false"),
            (f"{prefix}-Privacy-Hide-Number", "false"),
        ]
        return h

    def channel_block(self, *, caller: bool = True) -> list[Header]:
        h = [("Channel-State", self.state), ("Channel-Call-State", self.call_state),
             ("Channel-State-Number", str(STATE_NUMBERS.get(self.state, 4))),
             ("Channel-Name", self.name), ("Unique-ID", self.uuid),
             ("Call-Direction", self.direction), ("Presence-Call-Direction", self.direction),
             ("Channel-HIT-Dialplan", "true"), ("Channel-Call-UUID", self.uuid),
             ("Answer-State", self.answer_state)]
        if self.hangup_cause:
            h.append(("Hangup-Cause", self.hangup_cause))
        h += [("Channel-Read-Codec-Name", "L16"), ("Channel-Read-Codec-Rate", "8000"),
              ("Channel-Read-Codec-Bit-Rate", "128000"), ("Channel-Write-Codec-Name", "L16"),
              ("Channel-Write-Codec-Rate", "8000"), ("Channel-Write-Codec-Bit-Rate", "128000")]
        if caller:
            h += self.profile("Caller")
        return h

    def other_leg_block(self) -> list[Header]:
        other = self.other_leg
        if other is None:
            return []
        return [("Other-Type", "originatee"), ("Other-Leg-Direction", "outbound"),
                ("Other-Leg-Logical-Direction", "outbound"), ("Other-Leg-Dialplan", "xml"),
                ("Other-Leg-Caller-ID-Number", self.caller_number),
                ("Other-Leg-Destination-Number", other.destination),
                ("Other-Leg-Unique-ID", other.uuid), ("Other-Leg-Source", other.source),
                ("Other-Leg-Context", other.context), ("Other-Leg-Channel-Name", other.name)]

    def var_headers(self) -> list[Header]:
        return [(f"variable_{k}", v) for k, v in self.vars.items()]

    def fire(self, name: str, *, variables: bool = True, extra: list[Header] = (),
             prefix: list[Header] = (), body: str | None = None) -> None:
        if self.emu.probe is not None:
            self.emu.probe(name, self, next((v for n, v in extra if n == "Application"), ""))
        core = self.emu.host.core(name, self.emu.epoch_us())
        # the channel's and the variables' part of the event is serialized once per change
        chan_key = (self.state, self.call_state, self.answer_state, self.hangup_cause, self.answered_us,
                    self.hangup_us, self.destination, self.context, self.caller_number, self.caller_name,
                    self.name, self.other_leg)
        if self._chan_cache is None or self._chan_cache[0] != chan_key:
            self._chan_cache = (chan_key, self.channel_block() + self.other_leg_block(), None)
        chan_headers = self._chan_cache[1]
        if self._chan_cache[2] is None:
            self._chan_cache = (chan_key, chan_headers, fswire.header_block(chan_headers))
        var_headers: list[Header] = []
        var_text = ""
        if variables:
            if self._var_cache is None or self._var_cache[0] != self._var_version:
                vh = self.var_headers()
                self._var_cache = (self._var_version, vh, fswire.header_block(vh))
            var_headers, var_text = self._var_cache[1], self._var_cache[2]
        extra, prefix = list(extra), list(prefix)
        text = fswire.header_block(core) + fswire.header_block(prefix) + self._chan_cache[2] + var_text + \
            fswire.header_block(extra)
        self.emu.fire_text(name, None, self.uuid, text, body,
                           lambda: core + prefix + chan_headers + var_headers + extra)

    def fire_custom(self, subclass: str, action: str, pre: list[Header], post: list[Header],
                    *, with_channel: bool = True) -> None:
        """CUSTOM event with the conference layout: subclass, core, pre, channel, post."""
        core = self.emu.host.core("CUSTOM", self.emu.epoch_us(), calling=action)
        headers = [("Event-Subclass", subclass)] + core + list(pre)
        if with_channel:
            headers += self.channel_block()
        headers += list(post)
        self.emu.fire(headers, None)

    # ---------------------------------------------------------------- inputs

    def enqueue(self, req: AppRequest, *, front: bool = False) -> None:
        if self.hungup:
            return          # a command for a dead channel never executes (9.log)
        req.seq = self._arrive()
        if front:
            self.queue.appendleft(req)
        else:
            self.queue.append(req)
        self.signal()

    def push_dtmf(self, digits: str) -> None:
        if self.hungup:
            return
        for digit in digits:
            self.dtmf_q.append(digit)
            self._dtmf_seq.append(self._arrive())
        self.signal()

    def add_audio(self, seconds: float) -> None:
        """Caller audio (speech or tone) starting now, for record's silence detection."""
        now = self.emu.loop.time()
        self.audio.append((now, now + seconds))
        self.signal()

    def request_break(self, flush: bool = False) -> None:
        """uuid_break sets CF_BREAK on the channel: the running media application stops; with
        none running the flag waits for the next one (switch_ivr_play_file checks it)."""
        if self.stack and self.stack[-1].parses_events:
            self.stack[-1].break_flag = True
            self.stack[-1].break_seq = self._arrive()
        else:
            self.pending_break = True
        if flush:
            self.queue.clear()      # flushed apps report nothing (n2)
        self.signal()

    def dequeue_dtmf(self) -> str:
        digit = self.dtmf_q.popleft()
        self._dtmf_seq.popleft()
        self.fire("DTMF", variables=False, extra=[("DTMF-Digit", digit),
                                                  ("DTMF-Duration", "2000"),
                                                  ("DTMF-Source", self.dtmf_source)])
        if not self.dtmf_q and self._hangup_after_keys is not None:
            cause, self._hangup_after_keys = self._hangup_after_keys, None
            self.emu.loop.call_soon(self.hangup, cause)
        return digit

    def hangup_after_keys(self, cause: str = "NORMAL_CLEARING") -> None:
        """Hang up as soon as the keys pressed so far have been read (a caller who presses a
        key and hangs up at once); at once if none is waiting."""
        if self.dtmf_q:
            self._hangup_after_keys = cause
        else:
            self.hangup(cause)

    # ---------------------------------------------------------------- state changes

    def answer(self) -> None:
        if self.answer_state == "answered" or self.hungup:
            return
        self.answer_state = "answered"
        self.call_state = "ACTIVE"
        self.answered_us = self.emu.epoch_us()
        self.set_var("endpoint_disposition", "ANSWER")
        self.fire("CHANNEL_ANSWER")

    def pre_answer(self) -> None:
        if self.answer_state in ("answered", "early") or self.hungup:
            return
        self.answer_state = "early"
        self.call_state = "EARLY"
        self.fire("CHANNEL_PROGRESS_MEDIA")

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None:
        """Hang up now: CHANNEL_HANGUP at once, the unwinding follows in the session task."""
        if self.hungup:
            return
        self._notice("before_hangup")
        self.hangup_cause = cause
        self.answer_state = "hangup"
        self.call_state = "HANGUP"
        self.hangup_us = self.emu.epoch_us()
        self.fire("CHANNEL_HANGUP")      # without variable_hangup_cause (set at HANGUP_COMPLETE)
        self._notice("after_hangup")
        for handle in self._sched:
            handle.cancel()
        self.queue.clear()
        self.signal()
        if self.other_leg is not None:
            self.other_leg.signal()
        if self.other_leg is not None and not self.other_leg.hungup and \
                self.other_leg.socket is None and self.other_leg._task is None:
            self.other_leg.hangup(cause)
        if self._task is None or self._task.done():
            self.emu.loop.create_task(self._teardown(socket_app=False))

    def _notice(self, position: str) -> None:
        if self.socket is not None and self.notice_position == position:
            self.socket.hangup_notice()

    # ---------------------------------------------------------------- media primitive

    async def media(self, app: RunningApp, ms: float | None, *,
                    on_digit: Callable[[str], bool] | None = None,
                    until: Callable[[], bool] | None = None) -> str:
        """Let `ms` of media time pass as the innermost application (None: until interrupted).

        Returns DONE, STOPPED (on_digit returned True, or `until()` became true), BREAK,
        ENDED (app.ended set) or HANGUP. Input is taken per frame (see the module docstring):
        a uuid_break ends the wait, digits are dequeued (DTMF events) and queued requests run
        nested when allowed; media time is paused while a nested application runs."""
        loop = self.emu.loop
        remaining = None if ms is None else ms / 1000.0
        while True:
            self._signal.clear()
            if self.hungup:
                if self.socket_app is not None and app.req.app != "conference" and \
                        not self.on_frame():
                    # o / o2: sched_hangup (another thread) is seen at the next frame read;
                    # a conference member is ended by the conference thread instead (l_1)
                    await self.tick()
                return HANGUP
            if app.ended:
                return ENDED
            if until is not None and until():
                return STOPPED
            nest = bool(self.queue) and self._can_nest(app)
            seq = app.break_seq if app.break_flag else self._dtmf_seq[0] if self.dtmf_q else \
                self.queue[0].seq if nest else None
            if seq is not None:
                if self.emu.frame_ms and not self._ready(seq):
                    delay = self.next_frame_delay()
                    if remaining is not None and remaining < delay - 1e-9:
                        await asyncio.sleep(remaining)      # the media ends between frames
                        return DONE
                    t0 = loop.time()
                    await asyncio.sleep(delay)
                    self._take_frame()
                    if remaining is not None:
                        remaining -= loop.time() - t0
                    continue
                if app.break_flag:
                    app.break_flag = False
                    self._broke = True
                    return BREAK
                if self.dtmf_q:
                    digit = self.dequeue_dtmf()
                    if on_digit is not None and on_digit(digit):
                        return STOPPED
                    continue
                await self.run_app(self.queue.popleft())
                self._take_frame()        # switch_ivr_parse_all_events goes on with the queue
                continue
            if remaining is not None and remaining <= 1e-9:
                return DONE
            t0 = loop.time()
            try:
                await asyncio.wait_for(self._signal.wait(), remaining)
            except asyncio.TimeoutError:
                pass
            if remaining is not None:
                remaining -= loop.time() - t0

    def _can_nest(self, app: RunningApp) -> bool:
        return app.parses_events and not app.req.event_lock and bool(self.stack) and \
            self.stack[-1] is app

    # ---------------------------------------------------------------- running applications

    async def run_app(self, req: AppRequest) -> None:
        from .fsapps import APPS, AppContext
        spec = APPS.get(req.app)
        if spec is None:
            log.warning("%s: invalid application %r (no events, like FreeSWITCH)", self.name,
                        req.app)
            return
        loops = req.loops if req.loops and req.loops > 0 else 1
        app_uuid = req.event_uuid or str(uuidlib.uuid4())
        for n in range(loops):
            if self.hungup and n:
                break
            app = RunningApp(req, spec.parses_events, app_uuid)
            if req.origin == "sendmsg":
                self.set_var("current_loop", str(n + 1))
                self.set_var("total_loops", str(loops))
            self.set_var("current_application_response", None)
            self.set_var("current_application", req.app)
            self.set_var("current_application_data", req.arg or None)
            extra = [("Application", req.app)]
            if req.arg:
                extra.append(("Application-Data", req.arg))
            if self.pending_break and spec.parses_events:
                app.break_flag, self.pending_break = True, False
            self.stack.append(app)
            self.app_history.append((req.app, req.arg))
            self.fire("CHANNEL_EXECUTE", extra=extra + [("Application-UUID", app_uuid)])
            self._take_frame()      # its first loop parses what is queued before any frame (q3)
            self._app_started(req.app)
            try:
                response = await spec.handler(AppContext(self, app), req.arg)
            except Exception:
                log.exception("%s: emulated application %s failed", self.name, req.app)
                response = "_none_"
            finally:
                self.stack.remove(app)
            self.fire("CHANNEL_EXECUTE_COMPLETE", extra=extra + [
                ("Application-Response", response or "_none_"), ("Application-UUID", app_uuid)])

    def _app_started(self, app: str) -> None:
        self._app_starts[app] = self._app_starts.get(app, 0) + 1
        if self.caller is not None:
            self.caller.app_started(self, app, self._app_starts[app])

    async def park_loop(self) -> None:
        """The socket application's park (switch_ivr_park): per frame, run the queued requests,
        then dequeue (and drop) one digit."""
        while not self.hungup and self.transfer_to is None:
            self._signal.clear()
            if self.dtmf_q or self.queue:
                await self.tick()
                self._take_frame()
                if self.hungup:
                    break
                # switch_ivr_parse_all_events: queued applications run back to back in one
                # frame (p.log: answer completes and the playback starts at the same timestamp;
                # q2), but one ended by uuid_break lets the next start a frame later (n3)
                while self.queue and not self.hungup and self.transfer_to is None:
                    self._broke = False
                    await self.run_app(self.queue.popleft())
                    if self._broke:
                        break
                # then the key check, still in this frame: a digit left over by a read comes
                # out right after its completion (1.log: the '#')
                if self.dtmf_q and not self.hungup and self.transfer_to is None:
                    self.dequeue_dtmf()
                continue
            await self._signal.wait()

    async def socket_session(self, socket_arg: str) -> None:
        """Run the `socket` application for an outbound ESL session until hangup/transfer."""
        self._task = asyncio.current_task()
        self.socket_app = RunningApp(AppRequest("socket", socket_arg, origin="dialplan"), True,
                                     str(uuidlib.uuid4()))
        try:
            await self.tick()
            if not self.hungup:
                self.fire("CHANNEL_PARK")
            await self.park_loop()
            await self._end_socket_app()
            if self.transfer_to is not None and not self.hungup:
                await self._run_transfer()
        finally:
            await self._teardown(socket_app=True)

    async def _end_socket_app(self) -> None:
        if self.socket_app is None:
            return
        app, self.socket_app = self.socket_app, None
        self.fire("CHANNEL_UNPARK")
        response = self.var("current_application_response", "_none_")
        self.fire("CHANNEL_EXECUTE_COMPLETE", extra=[
            ("Application", "socket"), ("Application-Data", app.req.arg),
            ("Application-Response", response), ("Application-UUID", app.app_uuid)])

    async def _run_transfer(self) -> None:
        dest, context = self.transfer_to or ("", "default")
        self.transfer_to = None
        self.destination, self.context = dest, context
        self.state = "CS_ROUTING"
        self.fire("CHANNEL_STATE", variables=False)
        if dest not in self.emu.dialplan:
            # no extension matches: FreeSWITCH aborts routing and hangs up
            await self.tick()
            self.hangup("NO_ROUTE_DESTINATION")
            return
        self.state = "CS_EXECUTE"
        self.fire("CHANNEL_STATE", variables=False)
        for app, arg in self.emu.dialplan.get(dest, []):
            if self.hungup or self.transfer_to is not None:
                break
            await self.run_app(AppRequest(app, arg, origin="dialplan"))
        if not self.hungup and self.transfer_to is None:
            self.hangup("NORMAL_CLEARING")     # dialplan exhausted

    async def _teardown(self, *, socket_app: bool) -> None:
        """CS_HANGUP, CS_REPORTING, CHANNEL_HANGUP_COMPLETE. Our socket channel does it in the
        frame of the hangup (1, 2, g1-g5: same timestamp); a channel without one (the
        originate's A leg in park, an agent leg) at its next frame (a_inbound, g1_inbound,
        k_inbound: HANGUP_COMPLETE one frame after CHANNEL_HANGUP)."""
        if self.hangup_done.done() or not self.hungup or self._tearing_down:
            return
        self._tearing_down = True
        if not socket_app:
            await self.tick()
        for state in ("CS_HANGUP", "CS_REPORTING"):
            self.state = state
            self.fire("CHANNEL_STATE", variables=False)
        # every capture: hangup_cause and hangup_cause_q850 first appear on HANGUP_COMPLETE;
        # causes without a Q.850 code (ALLOTTED_TIMEOUT, ORIGINATOR_CANCEL: o.log) report 16
        cause = self.hangup_cause or "NORMAL_CLEARING"
        self.set_var("hangup_cause", cause)
        self.set_var("hangup_cause_q850", str(_Q850.get(cause, 16)))
        self.fire("CHANNEL_HANGUP_COMPLETE", prefix=[("Hangup-Cause", self.hangup_cause or "")])
        self._notice("after_hangup_complete")
        if not self.hangup_done.done():
            self.hangup_done.set_result(None)
        self.emu.channel_gone(self)
