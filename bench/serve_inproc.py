"""Per-call CPU of the `ivrflow serve` stack without sockets, for profiling.

    python bench/serve_inproc.py                 # 2,000 calls, prints CPU per call by layer
    python bench/serve_inproc.py --calls 500 --profile out.prof   # + a cProfile dump

The benchmark's call (bench/flows/bench.yaml, as in bench/serve_load.py) runs between the real
`Server` (ivrflow serve's call handling: ESL connection, FreeSWITCH channel, interpreter, call
record to the spool) and the project's FreeSWITCH emulator in ONE process on a virtual clock,
joined by in-memory transports instead of TCP: what the one writes is handed to the other's
`data_received` on the next loop turn.  No kernel, no second process, no waiting for prompts:
a repeatable measure of the Python work per call, to find where it goes.  CPU is split between
the server side and the emulator side with cProfile's own accounting of the functions in
`engine/testing/` (the emulator); the load figures that count are bench/serve_load.py's.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIB = str(Path(asyncio.__file__).resolve().parent.parent) + "/"
sys.path.insert(0, str(ROOT))

from engine.serve.cli import quiet_gc  # noqa: E402
from engine.serve.config import parse_config  # noqa: E402
from engine.serve.logs import setup_logging  # noqa: E402
from engine.serve.server import Server  # noqa: E402
from engine.testing import CallerScript, FreeSwitchEmulator  # noqa: E402
from engine.testing.vclock import run_virtual  # noqa: E402

MEDIA = {"/srv/ivrflow-bench/welcome.wav": 3000.0, "/srv/ivrflow-bench/menu.wav": 3000.0,
         "/srv/ivrflow-bench/account.wav": 3000.0, "/srv/ivrflow-bench/result.wav": 3000.0}


#: where the server's time goes: label -> (file, function) whose cumulative time is shown
ENTRY = {
    "ESL reading (data_received)": ("engine/channel/esl/connection.py", "data_received"),
    "  parsing (Parser.feed)": ("engine/channel/esl/parser.py", "feed"),
    "  events to their waiters (_on_event)": ("engine/channel/esl/connection.py", "_on_event"),
    "the call's task (OutboundServer._run)": ("engine/channel/esl/outbound.py", "_run"),
    "  handshake (FreeSwitchChannel.open)": ("engine/channel/freeswitch.py", "open"),
    "  the flow (Call.run)": ("engine/runtime/interpreter.py", "run"),
    "    prompts (FreeSwitchChannel.play)": ("engine/channel/freeswitch.py", "play"),
    "    digit entries (FreeSwitchChannel.collect)": ("engine/channel/freeswitch.py", "collect"),
    "  call record (Server._spool)": ("engine/serve/server.py", "_spool"),
    "logging (Logger._log)": ("logging/__init__.py", "_log"),
    "event loop turns (_run_once, both sides)": ("asyncio/base_events.py", "_run_once"),
}


class MemTransport(asyncio.Transport):
    """One direction of an in-memory connection: writes reach the peer on the next turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, peer_protocol: asyncio.Protocol) -> None:
        super().__init__()
        self.loop = loop
        self.peer = peer_protocol
        self.other: "MemTransport | None" = None
        self.closing = False
        self._pending: list[bytes] = []
        self.record: list[bytes] | None = None          # what was delivered (--cold)
        self.lost = False

    def write(self, data: bytes) -> None:
        if self.closing:
            return
        if not self._pending:
            self.loop.call_soon(self._deliver)
        self._pending.append(bytes(data))

    def _deliver(self) -> None:
        data, self._pending = b"".join(self._pending), []
        if self.record is not None:
            self.record.append(data)
        if data and not self.lost:
            self.peer.data_received(data)

    def close(self) -> None:
        """Either side closing ends the connection for both (after what was written)."""
        if self.closing:
            return
        self.closing = True
        if self._pending:
            self._deliver()
        self.loop.call_soon(self._lose)

    def _lose(self) -> None:
        for t in (self, self.other):
            if t is not None and not t.lost:
                t.lost = t.closing = True
                t.peer.connection_lost(None)

    abort = close

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def scenario(calls: int, concurrency: int, spool: Path, prof: "cProfile.Profile | _NoProfile",
                   wire: list[bytes] | None = None, floor: bool = False) -> tuple[int, int, float]:
    loop = asyncio.get_running_loop()
    if floor:
        sys.path.insert(0, str(ROOT / "bench"))
        import serve_floor
        floor_base = serve_floor.STATS["completed"]
    server = None
    if not floor:
        cfg = parse_config({"listen": "127.0.0.1:0", "flows": str(ROOT / "bench" / "flows"), "db": "none",
                            "prompts": {"tts": "none"}, "reload": {"interval": 0},
                            "logging": {"format": "json", "level": "WARNING"}, "cdr_spool": str(spool)})
        setup_logging("json", "INFO", stream=open(os.devnull, "w", encoding="utf-8"))   # as serve logs
        server = Server(cfg)
        await server.start()
        assert server.outbound is not None
    emu = FreeSwitchEmulator(frame_ms=20, media=MEDIA, keep_wire=False, coalesce_writes=False)

    async def create_connection(factory, host, port):
        emu_side = factory()
        srv_side = serve_floor.Call() if server is None else server.outbound._make_connection()
        to_srv = MemTransport(loop, srv_side)          # written by the emulator
        to_emu = MemTransport(loop, emu_side)          # written by the server
        to_srv.other, to_emu.other = to_emu, to_srv
        if wire is not None and not wire:
            to_srv.record = wire                       # the first call's bytes to the server
        srv_side.connection_made(to_emu)
        emu_side.connection_made(to_srv)
        return to_srv, emu_side

    emu.loop.create_connection = create_connection  # type: ignore[method-assign]
    done = 0
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        nonlocal done
        async with sem:
            caller = CallerScript().press("1", on="playback", nth=2, after=0.5) \
                .press("1234#", on="playback", nth=3, after=1.0)
            call = await emu.place_call("127.0.0.1", 1, caller=caller,
                                        uuid=f"00000000-0000-4000-8000-{i:012d}", timeout=30)
            await call.wait_hangup(120)
            done += 1

    t0 = time.process_time()
    prof.enable()
    await asyncio.gather(*(one(i) for i in range(calls)))
    for _ in range(100):                    # the server ends its calls (records, sockets)
        if server is None or not server.active:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    prof.disable()
    cpu = time.process_time() - t0
    if server is None:
        completed = serve_floor.STATS["completed"] - floor_base
    else:
        completed = server.metrics.by_disposition.get("completed", 0)
        await server.stop(grace=1)
    await emu.close()
    return done, completed, cpu


def cold() -> None:
    """The same work - reading one call's ~30 frames with the ESL parser and looking at each
    event's name and Application-UUID - timed (thread CPU time) back to back, then after the
    process idled 0.5, 2 and 20 ms before each run: what a wake-up from idle costs here."""
    from engine.channel.esl.parser import Parser

    wire: list[bytes] = []
    with tempfile.TemporaryDirectory(prefix="ivrflow-inproc-") as d:
        run_virtual(lambda: scenario(1, 1, Path(d) / "spool.jsonl", _NoProfile(), wire), stall_timeout=30)

    def one(p: Parser, chunk: bytes) -> None:
        for m in p.feed(chunk):
            ev = m.event
            if ev is not None:
                ev.name
                ev.application_uuid

    print(f"one call's stream to the server: {len(wire)} reads, {sum(map(len, wire))} bytes")
    for gap in (0.0, 0.0005, 0.002, 0.02):
        total, runs = 0.0, 40 if gap >= 0.02 else 200
        for _ in range(runs):
            p = Parser()
            for chunk in wire:                    # each read as its own wake-up
                if gap:
                    time.sleep(gap)
                t = time.thread_time()
                one(p, chunk)
                total += time.thread_time() - t
        print(f"  idle {1000 * gap:4.1f} ms before each read: {1e6 * total / runs:6.0f} us CPU per call "
              f"({1e6 * total / runs / len(wire):.0f} us per read)")


class _NoProfile:
    def enable(self) -> None:
        pass

    def disable(self) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=400)
    ap.add_argument("--profile", metavar="FILE", help="also write the cProfile statistics here")
    ap.add_argument("--no-profile", action="store_true", help="only the CPU per call (both sides)")
    ap.add_argument("--floor", action="store_true",
                    help="the same calls answered by bench/serve_floor.py instead (with --no-profile)")
    ap.add_argument("--cold", action="store_true",
                    help="parse one call's event stream after idle gaps of 0-20 ms (cache effects)")
    a = ap.parse_args()
    quiet_gc()
    if a.cold:
        return cold()
    with tempfile.TemporaryDirectory(prefix="ivrflow-inproc-") as d:
        prof = cProfile.Profile() if not a.no_profile else _NoProfile()
        done, completed, cpu = run_virtual(
            lambda: scenario(a.calls, a.concurrency, Path(d) / "spool.jsonl", prof, floor=a.floor),
            stall_timeout=30)
    if a.no_profile:
        print(f"{done} calls ({completed} completed their flow), {a.concurrency} at a time; "
              f"CPU {1000 * cpu / max(1, done):.2f} ms per call, {'floor' if a.floor else 'ivrflow'} "
              f"and emulator")
        return
    st = pstats.Stats(prof)
    cum: dict[str, float] = {}
    for (file, _line, fn), (_cc, _nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        where = file.replace(str(ROOT) + "/", "").replace(LIB, "")
        for label, (f, name) in ENTRY.items():
            if where == f and fn == name:
                cum[label] = cum.get(label, 0.0) + ct
    scale = 1000.0 / max(1, done)
    print(f"{done} calls ({completed} completed their flow), {a.concurrency} at a time; "
          f"CPU {cpu:.2f} s under cProfile = {cpu * scale:.2f} ms per call, both sides")
    print("  server side, cumulative ms per call (cProfile, so inflated; compare runs):")
    for label in ENTRY:
        print(f"    {cum.get(label, 0.0) * scale:7.3f}  {label}")
    if a.profile:
        st.dump_stats(a.profile)
        print(f"  profile: {a.profile}")


if __name__ == "__main__":
    main()
