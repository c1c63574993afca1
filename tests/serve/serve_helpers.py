"""Helpers for the `ivrflow serve` tests: an in-process server and the emulator on the virtual
clock, a caller that follows a simulator script, and the comparison of call records.

The caller (`ScriptCaller`) gives the ESL run the caller model of the simulator
(docs/runtime.md, "The caller script"): polite keys are pressed when the IVR waits for input,
`!keys` and `hangup` at their time, `speak:N` is voice heard by a recording, `timeout` lets a
read time out.  "The IVR waits for input" is the channel's own signal (`on_wait`): the moment a
read starts waiting with nothing typed ahead - what a real caller hears as silence.  The keys
themselves travel as DTMF through the emulated FreeSWITCH and the ESL socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path
from typing import Any, Callable

from engine.flow import compile_file
from engine.runtime.channel import PlayItem
from engine.runtime.clock import DEFAULT_SIM_START, LoopClock, VirtualClock
from engine.runtime.interpreter import Interpreter
from engine.runtime.resolver import CatalogResolver
from engine.runtime.script import parse_script
from engine.runtime.sim import SimChannel, SimOptions, estimate_seconds
from engine.serve.config import parse_config
from engine.serve.server import Server
from engine.testing import FreeSwitchEmulator

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
RT_FIX = ROOT / "tests" / "runtime" / "fixtures"


def speak_ms(text: str) -> float:
    """The emulator's `speak` lasts what the simulator estimates for the same text."""
    return 1000.0 * estimate_seconds(PlayItem(text=text))


def build_audio(cache_dir: Path, roots_and_catalogs: list[tuple[Path, str]]) -> Any:
    """Synthesize the static prompts of catalogs into a prompt cache (real espeak-ng)."""
    from engine.prompts.build import build
    from engine.prompts.cache import PromptCache
    from engine.prompts.catalog import load_catalog
    from engine.prompts.tts import EspeakCliBackend

    backend = EspeakCliBackend()
    cache = PromptCache(cache_dir)
    cats = [load_catalog(root, name) for root, name in roots_and_catalogs]
    report = build(cats, backend, cache)
    assert not report.failed, report.failed
    return backend, cache


def serve_config(flows: Path, prompts_root: Path, cache_dir: Path, spool: Path, **extra: Any):
    data = {"listen": "127.0.0.1:0", "flows": str(flows), "metrics": "off",
            "prompts": {"dir": str(prompts_root), "cache": str(cache_dir), "tts": "espeak-cli",
                        "synthesize": False},
            "freeswitch": {"speak": "tts_commandline", "transfer_confirm": 1},
            "reload": {"interval": 0}, "cdr_spool": str(spool), "recordings": str(spool.parent)}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    return parse_config(data)


class ScriptCaller:
    """Plays a simulator caller script against one emulated call (see the module docstring)."""

    def __init__(self, script: str | None) -> None:
        self.tokens = parse_script(script or "")
        self.signals: asyncio.Queue = asyncio.Queue()
        self.channel: Any = None
        self.pressed = 0
        self.log: list[tuple[float, str]] = []

    def on_wait(self, channel: Any, kind: str, seconds: float) -> None:
        self.channel = channel
        # a read waiting while keys we pressed are still on their way is not a new listen
        if kind == "record" or channel.keys_received >= self.pressed:
            self.signals.put_nowait((kind, asyncio.get_running_loop().time(), seconds))

    async def _signal(self) -> tuple[str, float, float]:
        while True:
            kind, at, seconds = await self.signals.get()
            if kind == "record" or (self.channel is not None and self.channel.listening):
                return kind, at, seconds

    async def run(self, call: Any) -> None:
        loop = asyncio.get_running_loop()
        ready = loop.time()
        for tok in self.tokens:
            if tok.kind == "wait":
                ready += tok.seconds
                continue
            if tok.kind == "hangup" or (tok.kind == "keys" and tok.now):
                await asyncio.sleep(max(0.0, ready - loop.time()))
                if tok.kind == "hangup":
                    self.log.append((loop.time(), "hangup"))
                    call.channel.hangup_after_keys("NORMAL_CLEARING")   # keys pressed before count
                    return
                self._press(call, tok.keys)
                ready = loop.time()
                continue
            await self._delivered()
            if self._recording(call):
                # still in the recording the previous token spoke into: act at its time
                await asyncio.sleep(max(0.0, ready - loop.time()))
                if self._recording(call):
                    if tok.kind == "speak":
                        call.speak(tok.seconds)
                        ready = loop.time() + tok.seconds
                    elif tok.kind == "keys":
                        self._press(call, tok.keys)
                        ready = loop.time()
                    continue
            while True:            # polite: keys, speak, timeout wait for the IVR to listen
                kind, at, seconds = await self._signal()
                if kind == "listen" and max(at, ready) > at + seconds:
                    continue       # this read times out before the caller acts
                await asyncio.sleep(max(0.0, ready - loop.time()))
                if kind == "listen" and not self.channel.listening:
                    continue
                break
            now = loop.time()
            if tok.kind == "timeout":
                self.log.append((now, "timeout"))
                ready = now + seconds if kind == "listen" else now
            elif tok.kind == "speak":
                if kind == "record":
                    await self._record_started(call)
                    call.speak(tok.seconds)
                self.log.append((loop.time(), f"speak:{tok.seconds:g}"))
                ready = loop.time() + tok.seconds
            else:
                if kind == "record":
                    await self._record_started(call)
                self._press(call, tok.keys)
                ready = loop.time()

    @staticmethod
    def _recording(call: Any) -> bool:
        return any(app.req.app == "record" for app in call.channel.stack)

    async def _delivered(self) -> None:
        """Wait (up to 1 s) until the keys pressed so far reached the IVR as DTMF events."""
        for _ in range(50):
            if self.channel is None or self.channel.keys_received >= self.pressed or self.pressed == 0:
                return
            await asyncio.sleep(0.02)

    def _press(self, call: Any, keys: str) -> None:
        self.log.append((asyncio.get_running_loop().time(), keys))
        self.pressed += len(keys)
        call.press(keys)

    @staticmethod
    async def _record_started(call: Any) -> None:
        for _ in range(200):
            if any(app.req.app == "record" for app in call.channel.stack):
                return
            await asyncio.sleep(0.005)


def summary(rec: Any) -> list:
    """What must be the same in a simulated and an ESL run of one call: the states, prompts
    (heard, interrupted or skipped), inputs, actions, transfers, conferences, recordings,
    errors and the end - without times and durations."""
    out = []
    for e in rec.events:
        t = e["type"]
        if t == "state":
            out.append(("state", e["scope"], e["state"]))
        elif t == "prompt":
            out.append(("prompt", e.get("state"), e.get("prompt"), e.get("text"), e.get("tone"),
                        e.get("interrupted"), bool(e.get("skipped")), e.get("during")))
        elif t == "input":
            out.append(("input", e["state"], e["keys"], e.get("digits"), e["result"], e["reason"], e["attempt"]))
        elif t == "action":
            out.append(("action", e["state"], e["action"], e.get("params"), e.get("outcome"), e.get("set")))
        elif t == "transfer":
            out.append(("transfer", e["state"], e.get("target"), e.get("result")))
        elif t == "conference":
            out.append(("conference", e["state"], e.get("room"), e.get("role"), e.get("result")))
        elif t == "record":
            out.append(("record", e["state"], e.get("reason"), e.get("outcome")))
        elif t in ("transition", "jump", "call", "return", "set", "hours"):
            out.append((t, e.get("state"), e.get("outcome") or e.get("via") or e.get("values")
                        or e.get("subflow"), e.get("to")))
        elif t == "error":
            out.append(("error", e.get("kind"), e.get("state")))
        elif t == "hangup":
            out.append(("hangup", e.get("by"), e.get("cause"), e.get("state")))
    out.append(("end", rec.disposition, rec.hangup_cause, rec.hangup_by, rec.final_state))
    return out


def sim_resolver(flow: Any, prompts_root: Path, backend: Any, cache: Any) -> CatalogResolver:
    from engine.prompts.catalog import load_catalog
    from engine.prompts.media import Prompts

    return CatalogResolver(Prompts(load_catalog(prompts_root, flow.prompts), backend, cache, synthesize=False))


async def run_sim(flow: Any, registry: Any, resolver: Any, script: str | None, *, store: Any = None,
                  clock: Any = None, caller: str = "13800000001", trusted: bool = True,
                  variables: dict | None = None, channel_vars: dict | None = None,
                  options: SimOptions | None = None, lang: str | None = None,
                  recordings_dir: str = "recordings", config: dict | None = None) -> Any:
    clock = clock or VirtualClock(DEFAULT_SIM_START)
    ch = SimChannel(script, clock, caller=caller, caller_trusted=trusted, variables=channel_vars,
                    options=options or SimOptions(), destination="5000")
    interp = Interpreter(flow, registry=registry, resolver=resolver, store=store,
                         recordings_dir=recordings_dir, config=config)
    return await interp.run(ch, clock, lang=lang, variables=variables)


async def run_esl(config: Any, registry: Any, script: str | None, *, backend: Any, cache: Any,
                  store: Any = None, clock: Any = None, caller: str = "13800000001", trusted: bool = True,
                  channel_vars: dict | None = None, emu_kwargs: dict | None = None,
                  destination: str = "5000", before_call: Callable[[Server, Any], Any] | None = None,
                  timeout: float = 3600.0) -> tuple[Any, Server, Any]:
    """One call through emulator -> TCP -> in-process `ivrflow serve`; returns (CallResult,
    server, emulated call)."""
    loop = asyncio.get_running_loop()
    results: list = []
    driver = ScriptCaller(script)
    done = loop.create_future()

    def ended(res: Any) -> None:
        results.append(res)
        if not done.done():
            done.set_result(res)

    server = Server(config, registry=registry, store=store, clock=clock or LoopClock(DEFAULT_SIM_START),
                    backend=backend, cache=cache, on_wait=driver.on_wait, on_call_end=ended)
    await server.start()
    emu = FreeSwitchEmulator(**{"frame_ms": 20, "speak_ms": speak_ms, **(emu_kwargs or {})})
    try:
        if before_call is not None:
            await before_call(server, emu)
        variables = dict(channel_vars or {})
        if trusted:
            variables.setdefault("ivrflow_caller_trusted", "true")
        call = await emu.place_call("127.0.0.1", server.port, caller_number=caller,
                                    destination=destination, variables=variables)
        drive = loop.create_task(driver.run(call))
        res = await asyncio.wait_for(done, timeout)
        drive.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await drive
        await call.wait_closed(30)
        return res, server, call
    finally:
        await server.stop(grace=5)
        await emu.close()


def compile_flow(path: Path, registry: Any) -> Any:
    flow, diags = compile_file(path, registry=registry)
    assert flow is not None, "\n".join(d.headline() for d in diags)
    return flow


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def without_call_id(obj: Any, call_id: str, *others: str) -> Any:
    """Call ids differ between runs (sim-... vs FreeSWITCH's UUID), and so do random numbers
    (confirmation, ticket): blank them wherever they appear."""
    if isinstance(obj, str):
        for value, mark in [(call_id, "<call>")] + [(o, "<random>") for o in others if o]:
            obj = obj.replace(value, mark)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(without_call_id(x, call_id, *others) for x in obj)
    if isinstance(obj, dict):
        return {k: without_call_id(v, call_id, *others) for k, v in obj.items()}
    return obj


# ---------------------------------------------------------------- one FreeSwitchChannel, no server

class Driven:
    """What `drive_channel` saw: the scenario's value or exception, the bytes we wrote."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.writes: list[bytes] = []
        self.channel: Any = None
        self.call: Any = None
        self.emu: Any = None
        self.t_end: float = 0.0

    @property
    def sent(self) -> str:
        return b"".join(self.writes).decode("utf-8", "replace")

    def commands(self) -> list[dict]:
        """Our sendmsg/api commands as dicts: {'cmd': first line, header: value...}."""
        out = []
        for block in self.sent.split("\n\n"):
            if not block.strip():
                continue
            lines = block.split("\n")
            d = {"cmd": lines[0]}
            for ln in lines[1:]:
                k, _, v = ln.partition(": ")
                d[k] = v
            out.append(d)
        return out

    def executes(self) -> list[tuple[str, str | None, bool]]:
        """(application, argument, event-lock) of every execute we sent, in order."""
        return [(c["execute-app-name"], c.get("execute-app-arg"), c.get("event-lock") == "true")
                for c in self.commands() if c.get("call-command") == "execute"]


async def drive_channel(scenario: Callable[[Any], Any], *, caller: Any = None, emu: Any = None,
                        emu_kwargs: dict | None = None, call_kwargs: dict | None = None,
                        opening: list | None = None, options: Any = None,
                        channel_kwargs: dict | None = None, drain: float = 2.0) -> Driven:
    """Place one emulated call to an outbound server whose handler opens a FreeSwitchChannel
    and runs `scenario(channel)`."""
    from engine.channel.esl import serve_outbound
    from engine.channel.freeswitch import M_OTHER, FreeSwitchChannel

    loop = asyncio.get_running_loop()
    own = emu is None
    emu = emu or FreeSwitchEmulator(**{"frame_ms": 20, "speak_ms": speak_ms, **(emu_kwargs or {})})
    out = Driven()
    out.emu = emu
    done = loop.create_future()

    async def handler(conn: Any) -> None:
        conn.trace = lambda d, data: out.writes.append(data) if d == "send" else None
        ch = FreeSwitchChannel(conn, options=options, **(channel_kwargs or {}))
        out.channel = ch
        try:
            await ch.open(opening if opening is not None else
                          [("set", "playback_terminators=any", M_OTHER), ("answer", None, M_OTHER)])
            out.value = await scenario(ch)
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            out.error = e
        out.t_end = loop.time()
        if drain and not conn.closed:
            with contextlib.suppress(Exception):
                await conn.wait_hangup(timeout=drain)
        done.set_result(out)

    server = await serve_outbound(handler)
    try:
        out.call = await emu.place_call("127.0.0.1", server.port, caller=caller, **(call_kwargs or {}))
        return await asyncio.wait_for(done, 3600)
    finally:
        await server.close(grace=1.0)
        if own:
            await emu.close()
