"""`ivrflow serve`: one asyncio task per call on FreeSWITCH's outbound Event Socket.

Per call: the handshake (with `answer` and, when every route starts the same way, the first
prompt in the same write), routing, caller ID trust, the interpreter on a
`FreeSwitchChannel`, and the call record written with `Store.record_call` at the end - also
after an error or at shutdown.  A record the database refuses is appended to a spool file
(JSON lines) and written later: no call record is lost.  SIGTERM: stop accepting, let calls
finish up to the grace period, then hang up the rest (SYSTEM_SHUTDOWN) with a final record.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from engine.channel.esl import ESLError, OutboundConnection, OutboundServer
from engine.channel.freeswitch import M_BARGE, M_OTHER, FreeSwitchChannel
from engine.runtime.channel import CallHangup, ChannelError, PlayItem, TransferFailed, TransferTarget
from engine.runtime.clock import RealClock
from engine.runtime.record import CallRecord

from .config import ServeConfig
from .flows import FlowSet, LoadedFlow, opening_of
from .http import StatusServer
from .logs import CALL_ID
from .metrics import Metrics
from .routing import Decision, caller_trusted, route_call

__all__ = ["Server", "ActiveCall"]

log = logging.getLogger("ivrflow.serve")

SHUTDOWN_CAUSE = "SYSTEM_SHUTDOWN"
_CDR_JSON = json.JSONEncoder(ensure_ascii=False, default=str)     # one spool line per call


@dataclass
class ActiveCall:
    channel: FreeSwitchChannel
    flow: LoadedFlow | None
    call: Any = None                  # engine.runtime.interpreter.Call
    runner: asyncio.Task | None = None
    shutdown: bool = False


class Server:
    """Build it with a checked `ServeConfig`; `await start()`, then `await stop()` (or
    `run_forever()` which handles the signals).  `store` is an `engine.store.Store` (or None:
    call records then go to the spool file only)."""

    def __init__(self, config: ServeConfig, *, registry: Mapping[str, Any] | None = None,
                 store: Any = None, clock: Any = None, backend: Any = None, cache: Any = None,
                 on_wait: Callable[[FreeSwitchChannel, str, float], Any] | None = None,
                 on_call_end: Callable[[Any], Any] | None = None) -> None:
        if registry is None:
            from engine.actions import default_registry
            registry = default_registry()
        self.config = config
        self.registry = registry
        self.store = store
        self.clock = clock or RealClock(config.timezone)
        self.on_wait = on_wait                # test hooks: a read waits; a call ended (CallResult)
        self.on_call_end = on_call_end
        self.metrics = Metrics()
        self.backend, self.cache = backend, cache
        if backend is None and config.tts != "none":
            self.backend, self.cache = _tts(config)
        self.flows = FlowSet(config.flows, registry=registry, prompts_root=config.prompts_dir, store=store,
                             action_config=config.action_config, recordings_dir=config.recordings,
                             backend=self.backend, cache=self.cache, synth_timeout=config.synth_timeout,
                             synthesize=config.synthesize, on_reload=self._reloaded)
        self.generic_prompts = None
        self.active: dict[str, ActiveCall] = {}
        self.records: collections.deque = collections.deque(maxlen=256)
        self.outbound: OutboundServer | None = None
        self.status: StatusServer | None = None
        self.status_port: int | None = None
        self.inbound: Any = None
        self.dialer: Any = None
        self.opening: str | None = None
        self._stopping = False
        self._spool_dirty = False
        self._spool_fd: int | None = None
        self._spool_id: tuple[int, int] = (0, 0)        # (st_dev, st_ino) of the open spool
        self._spool_lock = threading.Lock()
        self._port: int | None = None
        self._stopped: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._reload_lock: asyncio.Lock | None = None

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> "Server":
        self._stopped = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        if self.backend is not None:
            from engine.prompts.media import Prompts
            self.generic_prompts = Prompts(None, self.backend, self.cache, synthesize=self.config.synthesize,
                                           timeout=self.config.synth_timeout)
        await self.reload()
        if not self.flows.by_name:
            log.error("no valid flow in %s: every call gets the fallback (apology, then %s)",
                      self.config.flows, self.config.fallback.transfer)
        if self.config.esl is not None:
            from engine.channel.esl import InboundClient
            esl = self.config.esl
            self.inbound = InboundClient(esl.host, esl.port, esl.password,
                                         custom=("conference::maintenance",))
            try:
                await self.inbound.connect()
            except ESLError as e:
                log.warning("inbound Event Socket %s:%s not reachable yet (%s); retrying in the "
                            "background", esl.host, esl.port, e)
                self._spawn(self._connect_inbound())
            if self.config.experts.originate:
                from .experts import ExpertDialer
                self.dialer = ExpertDialer(self.config.experts, self.inbound)
        host, port = self.config.listen
        self.outbound = OutboundServer(self._handle, host=host, port=port,
                                       command_timeout=self.config.freeswitch.command_timeout)
        await self.outbound.start()
        self._port = self.outbound.port
        if self.config.metrics is not None:
            self.status = StatusServer(self.metrics.render, self._health)
            self.status_port = await self.status.start(*self.config.metrics)
        if self.config.reload_interval > 0:
            self._spawn(self._reload_loop())
        self._spawn(self._replay_spool())
        self._spawn(self._sync_spool_loop())
        log.info("ivrflow serve listening on %s:%s (%d flow%s: %s)%s", host, self.port,
                 len(self.flows.by_name), "" if len(self.flows.by_name) == 1 else "s",
                 ", ".join(sorted(self.flows.by_name)) or "none",
                 f"; metrics on http://{self.config.metrics[0]}:{self.status_port}/metrics"
                 if self.status_port else "")
        return self

    @property
    def port(self) -> int:
        assert self._port is not None, "server not started"
        return self._port

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _connect_inbound(self) -> None:
        delay = 1.0
        while not self._stopping:
            await asyncio.sleep(delay)
            try:
                await self.inbound.connect()
                log.info("inbound Event Socket connected")
                return
            except ESLError:
                delay = min(30.0, delay * 2)

    async def run_forever(self) -> None:
        """Serve until SIGTERM/SIGINT (graceful stop); SIGHUP reloads the flows now."""
        loop = asyncio.get_running_loop()
        for sig, fn in ((signal.SIGTERM, self._signal_stop), (signal.SIGINT, self._signal_stop),
                        (signal.SIGHUP, lambda: self._spawn(self.reload()))):
            try:
                loop.add_signal_handler(sig, fn)
            except (NotImplementedError, RuntimeError):
                pass
        assert self._stopped is not None
        await self._stopped.wait()

    def _signal_stop(self) -> None:
        if not self._stopping:
            log.info("signal received: graceful shutdown (grace %g s)", self.config.shutdown_grace)
            self._spawn(self.stop())

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting calls, let calls in progress finish for `grace` seconds, then hang up
        the rest with SYSTEM_SHUTDOWN (their records say `aborted`)."""
        if self._stopping:
            if self._stopped is not None:
                await self._stopped.wait()
            return
        self._stopping = True
        self.metrics.draining = True
        grace = self.config.shutdown_grace if grace is None else grace
        if self.outbound is not None:
            self.outbound.stop_accepting()
        handlers = list(self.outbound.active.values()) if self.outbound else []
        if handlers:
            log.info("shutdown: %d call%s in progress, waiting up to %g s", len(handlers),
                     "" if len(handlers) == 1 else "s", grace)
            _, pending = await asyncio.wait(handlers, timeout=grace)
            if pending:
                log.warning("shutdown: hanging up %d call%s still in progress (%s)", len(self.active),
                            "" if len(self.active) == 1 else "s", SHUTDOWN_CAUSE)
                for entry in list(self.active.values()):
                    entry.shutdown = True
                    if entry.runner is not None and not entry.runner.done():
                        entry.runner.cancel()
                for conn in list(self.outbound.active) if self.outbound else []:
                    if not conn.channel_uuid:           # still in its handshake
                        conn.close()
                _, pending = await asyncio.wait(pending, timeout=15.0)
                for task in pending:
                    task.cancel()
        me = asyncio.current_task()
        for task in list(self._tasks):
            if task is not me:
                task.cancel()
        await self._sync_spool()
        self._close_spool()
        if self.status is not None:
            await self.status.close()
        if self.inbound is not None:
            try:
                await self.inbound.close()
            except Exception:  # noqa: BLE001
                pass
        if self.outbound is not None:
            await self.outbound.close(grace=0.5)
        self.flows.close()
        if self.generic_prompts is not None:
            self.generic_prompts.close()
        log.info("ivrflow serve stopped (%d calls handled)", self.metrics.accepted)
        if self._stopped is not None:
            self._stopped.set()

    def _health(self) -> tuple[bool, dict]:
        ok = not self._stopping and bool(self.flows.by_name)
        return ok, {"status": "draining" if self._stopping else ("ok" if ok else "no flows"),
                    "active_calls": self.metrics.active,
                    "flows": {n: lf.version for n, lf in sorted(self.flows.by_name.items())},
                    "rejected": [str(p) for p in sorted(self.flows.problems)]}

    # ------------------------------------------------------------------ flows

    def _reloaded(self, path: str, ok: bool) -> None:
        self.metrics.reloads["ok" if ok else "rejected"] += 1

    async def reload(self) -> None:
        assert self._reload_lock is not None
        async with self._reload_lock:
            before = {n: lf.version for n, lf in self.flows.by_name.items()}
            try:
                await asyncio.to_thread(self.flows.reload)
            except Exception:  # noqa: BLE001 - a reload bug must not stop the server
                log.exception("flow reload failed")
                return
            self.metrics.flows_loaded = len(self.flows.by_name)
            if {n: lf.version for n, lf in self.flows.by_name.items()} != before or self.opening is None:
                self.opening = await self._common_opening()

    async def _reload_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.config.reload_interval)
            await self.reload()

    async def _common_opening(self) -> str | None:
        """The first prompt every routed call plays, when it is the same for all (then it goes
        out with the handshake: the caller hears it one media frame after the connect)."""
        if not self.config.pipeline:
            return None
        cands: list[tuple[LoadedFlow, str]] = []
        for r in self.config.routes:
            lf = self.flows.get(r.flow)
            if lf is not None:
                cands.append((lf, r.lang or (lf.flow.languages[0] if lf.flow.languages else "zh-CN")))
        if self.config.flow_variable or not self.config.routes:
            cands += [(lf, lf.flow.languages[0] if lf.flow.languages else "zh-CN")
                      for lf in self.flows.by_name.values()]
        if not cands:
            return None
        found = {await opening_of(lf, lang) for lf, lang in cands}
        return found.pop() if len(found) == 1 and None not in found else None

    # ------------------------------------------------------------------ one call

    async def _handle(self, conn: OutboundConnection) -> None:
        m = self.metrics
        conn.on_latency = m.step_latency.observe
        ch = FreeSwitchChannel(conn, options=self.config.freeswitch, synth=self._synth,
                               conference_hook=self.dialer, on_wait=self.on_wait)
        opening: list[tuple[str, str | None, str]] = [("set", "playback_terminators=any", M_OTHER),
                                                      ("answer", None, M_OTHER)]
        if self.opening and not self._stopping:
            opening.append(("playback", self.opening, M_BARGE))
        try:
            await ch.open(opening)
        except ESLError as e:
            log.warning("connection from FreeSWITCH dropped before the call's data: %s", e)
            return
        token = CALL_ID.set(ch.call_id)
        m.accepted += 1
        m.active += 1
        started = self.clock.now()
        rec: CallRecord | None = None
        try:
            variables = ch.variables
            ch.caller_trusted = caller_trusted(variables, self.config.trusted_networks)
            decision = route_call(self.config.routes, self.flows.by_name, ch.destination, variables,
                                  flow_variable=self.config.flow_variable)
            if decision.flow is None:
                rec = await self._fallback(ch, decision)
            else:
                rec = await self._run_flow(ch, decision)
        except Exception as e:  # noqa: BLE001 - a bug here must still leave a record and no open call
            log.exception("call failed outside its flow: %s", e)
            rec = self._bare_record(ch, started, f"{type(e).__name__}: {e}")
            await ch.kill("NORMAL_TEMPORARY_FAILURE")
        finally:
            m.active -= 1
            if rec is None:                     # cancelled: the server is going down
                rec = self._bare_record(ch, started, "the server stopped during the call")
                rec.disposition, rec.hangup_cause = "aborted", SHUTDOWN_CAUSE
            if ch.first_prompt_at is not None and conn.connected_at is not None:
                m.setup.observe(max(0.0, ch.first_prompt_at - conn.connected_at))
            m.ended(rec.disposition)
            if self.store is not None:
                await asyncio.shield(self._save(rec))     # not lost to a cancellation
            else:
                self._spool(rec.cdr())                   # no database: one write, no task
            self.records.append(rec)
            log.info("call end: %s (%s) after %.1f s, %d steps, in %s", rec.disposition,
                     rec.hangup_cause or "-", rec.duration, rec.steps, rec.final_state or "-",
                     extra={"disposition": rec.disposition, "hangup_cause": rec.hangup_cause,
                            "duration": round(rec.duration, 3), "flow": rec.flow})
            CALL_ID.reset(token)

    def _bare_record(self, ch: FreeSwitchChannel, started: Any, message: str) -> CallRecord:
        rec = CallRecord(call_id=ch.call_id, flow="(none)", flow_file="", flow_sha256="", channel=ch.name,
                         caller=ch.caller_raw, caller_trusted=ch.caller_trusted, destination=ch.destination,
                         lang="", started_at=started, clock=self.clock)
        rec.add("error", kind="internal", message=message)
        rec.error = {"kind": "internal", "message": message}
        rec.disposition, rec.hangup_by, rec.hangup_cause = "error", "flow", "NORMAL_TEMPORARY_FAILURE"
        rec.ended_at = self.clock.now()
        rec.duration = max(0.0, (rec.ended_at - started).total_seconds())
        return rec

    async def _run_flow(self, ch: FreeSwitchChannel, decision: Decision) -> CallRecord:
        lf = decision.flow
        assert lf is not None
        call = lf.interp.new_call(ch, self.clock, lang=decision.lang)
        entry = ActiveCall(ch, lf, call)
        log.info("call start: flow %s (version %s, %s), caller %s%s, destination %s",
                 lf.name, lf.version, decision.why, ch.caller_raw or "-",
                 "" if ch.caller_trusted else " (untrusted)", ch.destination or "-",
                 extra={"flow": lf.name, "version": lf.version, "caller": ch.caller_raw,
                        "caller_trusted": ch.caller_trusted, "destination": ch.destination})
        # the flow runs in this call's own task (no second task: one hop less per step);
        # a shutdown cancels this task, the interpreter records the abort and re-raises
        entry.runner = asyncio.current_task()
        self.active[ch.call_id] = entry
        crash: BaseException | None = None
        try:
            await self._call_body(ch, call)
        except asyncio.CancelledError:
            if not entry.shutdown:
                raise
            if entry.runner is not None:
                entry.runner.uncancel()
        except Exception as e:  # noqa: BLE001 - a crash still gets its record below
            crash = e
        finally:
            self.active.pop(ch.call_id, None)
        rec = call.rec
        if entry.shutdown:
            if rec.disposition is None:          # cancelled before the interpreter started
                rec.disposition, rec.hangup_by, rec.hangup_cause = "aborted", "flow", SHUTDOWN_CAUSE
                rec.add("error", kind="aborted", message="the runtime was stopped during the call")
                call.close_record()
            if not ch.hungup:
                await ch.kill(SHUTDOWN_CAUSE)
        elif crash is not None:
            exc = crash
            log.error("call crashed: %r", exc, exc_info=exc)
            if rec.disposition is None:
                rec.disposition = "error"
                rec.error = {"kind": "internal", "message": f"{type(exc).__name__}: {exc}"}
                call.close_record()
            if not ch.hungup:
                await ch.kill("NORMAL_TEMPORARY_FAILURE")
        if self.on_call_end is not None:
            self.on_call_end(call.result())
        return rec

    async def _call_body(self, ch: FreeSwitchChannel, call: Any) -> None:
        await call.run()
        if ch.bridged and not ch.hungup:
            # k: the bridge runs inside our socket application; closing the socket now would
            # end it, so hold the connection until the call ends
            await ch.wait_gone(ch.opts.max_wait)

    async def _fallback(self, ch: FreeSwitchChannel, decision: Decision) -> CallRecord:
        """No flow for this call: an apology, then a person; recorded like any call."""
        fb = self.config.fallback
        log.warning("call start: %s; apology and transfer to %s", decision.why, fb.transfer,
                    extra={"caller": ch.caller_raw, "destination": ch.destination})
        rec = CallRecord(call_id=ch.call_id, flow="(no route)", flow_file="", flow_sha256="",
                         channel=ch.name, caller=ch.caller_raw, caller_trusted=ch.caller_trusted,
                         destination=ch.destination, lang=fb.lang, started_at=self.clock.now(),
                         clock=self.clock)
        rec.add("error", kind="route", message=decision.why)
        text = fb.say.get(fb.lang) or fb.say.get("*") or next(iter(fb.say.values()), None)
        item = PlayItem(text, fb.file, None, None, fb.lang, "file" if fb.file else "none")
        try:
            ev = rec.add("prompt", state=None, prompt=None, text=text, lang=fb.lang, source=item.source)
            try:
                await ch.play([item], barge_in=False)
            except ChannelError as e:
                ev["error"] = str(e)
            target = TransferTarget(extension=fb.transfer, context=fb.context)
            tev = rec.add("transfer", state=None, target=target.describe(), extension=fb.transfer,
                          queue=None, priority=0)
            try:
                await ch.transfer(target, confined=False)     # the deployment's own target
                tev["result"] = "ok"
                rec.disposition = "transferred"
            except TransferFailed as e:
                tev["result"], tev["reason"] = "failed", str(e)
                rec.disposition, rec.hangup_by, rec.hangup_cause = "error", "flow", "NORMAL_TEMPORARY_FAILURE"
                await ch.hangup("NORMAL_TEMPORARY_FAILURE")
        except CallHangup as h:
            for e in rec.of_type("transfer"):
                e.setdefault("result", "failed")
                e.setdefault("reason", f"the call ended ({h.cause})")
            rec.disposition, rec.hangup_by, rec.hangup_cause = "hangup", "caller", h.cause
            rec.add("hangup", by="caller", cause=h.cause, state=None)
        except asyncio.CancelledError:
            rec.disposition, rec.hangup_by, rec.hangup_cause = "aborted", "flow", SHUTDOWN_CAUSE
            await ch.kill(SHUTDOWN_CAUSE)
        rec.duration = rec.elapsed()
        rec.ended_at = rec.started_at + dt.timedelta(seconds=rec.duration)
        return rec

    async def _synth(self, text: str, lang: str | None) -> str | None:
        prompts = self.generic_prompts
        if prompts is None or not lang or "{{" in text or "{%" in text:
            return None
        from engine.prompts.media import PromptError
        try:
            media = await prompts.resolve_text(lang, text)
        except PromptError:
            return None
        return str(media.path) if media.path is not None else None

    # ------------------------------------------------------------------ call records

    async def _save(self, rec: CallRecord) -> None:
        cdr = rec.cdr()
        if self.store is not None:
            from engine.store import StoreError
            last: Exception | None = None
            for attempt in range(3):
                try:
                    await asyncio.to_thread(self.store.record_call, **cdr)
                    return
                except StoreError as e:
                    last = e
                    await asyncio.sleep(0.2 * (2 ** attempt))
                except Exception as e:  # noqa: BLE001 - spool it rather than lose it
                    last = e
                    break
            self.metrics.cdr_failures += 1
            log.error("call record not written to the database (%s); spooled to %s", last,
                      self.config.cdr_spool)
        self._spool(cdr)

    def _spool(self, cdr: dict) -> None:
        """Append one JSON line to the spool: one write(2) on a descriptor kept open (O_APPEND),
        so the record is in the OS at once and survives a crash of ivrflow; fsync follows
        within a second (_sync_spool).  A spool moved or deleted by someone else is recreated."""
        path = self.config.cdr_spool
        line = _CDR_JSON.encode({k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in cdr.items()})
        data = (line + "\n").encode("utf-8")
        try:
            with self._spool_lock:
                fd = self._spool_descriptor()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            self.metrics.cdr_spooled += 1
            self._spool_dirty = True
        except OSError as e:
            self._close_spool()
            log.critical("call record LOST: cannot write the spool %s (%s): %s", path, e, line)

    def _spool_descriptor(self) -> int:
        """The spool's descriptor (under `_spool_lock`), reopened when the file at the path is
        not the one open: moved or deleted behind our back (an operator, logrotate), a record
        would otherwise go to a file nobody reads."""
        path = self.config.cdr_spool
        fd = self._spool_fd
        if fd is not None:
            try:
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == self._spool_id:
                    return fd
            except FileNotFoundError:
                pass
            self._spool_fd = None
            os.close(fd)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        st = os.fstat(fd)
        self._spool_fd, self._spool_id = fd, (st.st_dev, st.st_ino)
        return fd

    def _close_spool(self) -> None:
        with self._spool_lock:
            fd, self._spool_fd = self._spool_fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    async def _sync_spool_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(1.0)
            await self._sync_spool()

    async def _sync_spool(self) -> None:
        if not self._spool_dirty:
            return
        self._spool_dirty = False
        path = self.config.cdr_spool

        def sync() -> None:
            with self._spool_lock:
                try:
                    fd = os.dup(self._spool_fd) if self._spool_fd is not None else os.open(path, os.O_RDONLY)
                except OSError:
                    return
            try:
                os.fsync(fd)
            except OSError as e:
                log.error("cannot fsync the spool %s: %s", path, e)
            finally:
                os.close(fd)
        await asyncio.to_thread(sync)

    async def _replay_spool(self) -> None:
        """Write spooled records to the database (at start, then every minute)."""
        while not self._stopping and self.store is not None:
            try:
                await asyncio.to_thread(self.replay_spool_now)
            except Exception:  # noqa: BLE001
                log.exception("spool replay failed")
            await asyncio.sleep(60.0)

    def replay_spool_now(self) -> int:
        path = self.config.cdr_spool
        if self.store is None or not path.exists():
            return 0
        work = path.with_suffix(path.suffix + f".replay-{os.getpid()}")
        with self._spool_lock:              # no append may land in the file being replayed
            try:
                os.replace(path, work)
            except OSError:
                return 0
            fd, self._spool_fd = self._spool_fd, None
        if fd is not None:
            os.close(fd)
        done, keep = 0, []
        from engine.store import StoreError
        for line in work.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                cdr = json.loads(line)
                for k in ("started_at", "ended_at"):
                    if cdr.get(k):
                        cdr[k] = dt.datetime.fromisoformat(cdr[k])
                self.store.record_call(**cdr)
                done += 1
            except (StoreError, ValueError, TypeError):
                keep.append(line)
        if keep:
            with self._spool_lock, open(path, "a", encoding="utf-8") as f:
                f.write("\n".join(keep) + "\n")
        work.unlink(missing_ok=True)
        if done:
            log.info("%d spooled call record%s written to the database", done, "" if done == 1 else "s")
        return done


def _tts(config: ServeConfig) -> tuple[Any, Any]:
    from engine.prompts.cache import PromptCache
    from engine.prompts.tts import TTSError, get_backend

    try:
        backend = get_backend(config.tts)
    except TTSError as e:
        log.warning("TTS backend %s unavailable (%s): prompts without audio files need "
                    "freeswitch.speak", config.tts, e)
        return None, None
    return backend, PromptCache(config.prompt_cache)

