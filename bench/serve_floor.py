"""The floor for bench/serve_load.py: the benchmark's call handled by a minimal hand-written
asyncio outbound-ESL server, with none of ivrflow (no flow, no interpreter, no records).

Same wire work as `ivrflow serve` on that call: connect, myevents, linger, the same event
subscription, `set playback_terminators=any`, answer and the welcome in one write; every
execute event-locked with its own Event-UUID; waits matched by Application-UUID; barge-in keys
from DTMF events; the menu key; 4 digits then the terminator (which may still be on its way:
the result then goes out with `set playback_terminators` without '#', in the same write, as
ivrflow sends it); the result; hangup.  Frames are
cut by Content-Length and the few values needed are found with bytes.find - no URL decoding.

Run by the benchmark:  python bench/serve_floor.py --listen 127.0.0.1:PORT
On SIGTERM it prints one JSON line: calls done, and the same latency histogram ivrflow
exposes (event arrival -> next command written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from engine.serve.metrics import LATENCY_BUCKETS, Histogram  # noqa: E402  (a counter class, nothing else)

PROMPTS = {"welcome": "/srv/ivrflow-bench/welcome.wav", "menu": "/srv/ivrflow-bench/menu.wav",
           "account": "/srv/ivrflow-bench/account.wav", "result": "/srv/ivrflow-bench/result.wav"}
LAT = Histogram(LATENCY_BUCKETS)
STATS = {"calls": 0, "completed": 0, "hangup": 0}


def execute(app: str, arg: str | None = None) -> tuple[bytes, str]:
    eid = str(uuid.uuid4())
    lines = ["sendmsg", "call-command: execute", f"execute-app-name: {app}"]
    if arg is not None:
        lines.append(f"execute-app-arg: {arg}")
    lines += ["event-lock: true", f"Event-UUID: {eid}"]
    return ("\n".join(lines) + "\n\n").encode(), eid


def value(block: bytes, name: bytes) -> bytes | None:
    i = block.find(b"\n" + name + b": ")
    if i < 0:
        return None
    i += len(name) + 3
    j = block.find(b"\n", i)
    return block[i:j if j >= 0 else None]


class Call(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""
        self.need = -1
        self.head = b""
        self.transport = None
        self.wait_uuid = None
        self.step = "welcome"
        self.keys = ""
        self.digits = ""
        self.cause_at = None
        self.timer = None
        self.done = False
        self.rx_at = 0.0

    # -- wire
    def connection_made(self, transport) -> None:
        self.transport = transport
        STATS["calls"] += 1
        first, self.wait_uuid = execute("playback", PROMPTS["welcome"])
        transport.write(b"connect\n\nmyevents\n\nlinger\n\n"
                        b"event plain RECORD_START RECORD_STOP CUSTOM conference::maintenance\n\n"
                        + execute("set", "playback_terminators=any")[0] + execute("answer")[0] + first)

    def write(self, data: bytes) -> None:
        if self.cause_at is not None:
            LAT.observe(time.perf_counter() - self.cause_at)
            self.cause_at = None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.rx_at = time.perf_counter()
        self.buf += data
        while True:
            if self.need < 0:
                end = self.buf.find(b"\n\n")
                if end < 0:
                    return
                head, self.buf = self.buf[:end + 1], self.buf[end + 2:]
                n = value(b"\n" + head, b"Content-Length")
                if n is None:
                    continue                       # a reply: nothing to do
                self.head, self.need = head, int(n)
            if len(self.buf) < self.need:
                return
            body, self.buf = self.buf[:self.need], self.buf[self.need:]
            self.need = -1
            if b"text/event-plain" in self.head:
                self.event(b"\n" + body)
            elif b"disconnect-notice" in self.head:
                self.finish("hangup")

    def connection_lost(self, exc) -> None:
        self.finish("hangup")

    # -- the call
    def event(self, block: bytes) -> None:
        name = value(block, b"Event-Name")
        if name == b"CHANNEL_EXECUTE_COMPLETE":
            if value(block, b"Application-UUID") == (self.wait_uuid or "").encode():
                self.wait_uuid = None
                self.cause_at = self.rx_at
                self.completed()
        elif name == b"DTMF":
            self.keys += value(block, b"DTMF-Digit").decode()
            if self.wait_uuid is None:
                self.cause_at = self.rx_at
                self.advance()
        elif name == b"CHANNEL_HANGUP":
            self.finish("hangup")

    def play(self, what: str, step: str) -> None:
        data, self.wait_uuid = execute("playback", PROMPTS[what])
        self.step = step
        self.write(data)

    def completed(self) -> None:
        if self.step == "result":
            self.step = "bye"
            self.write(b"sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")
            return
        if self.step == "welcome":
            self.play("menu", "menu")
            return
        self.advance(start_timer=True)

    def advance(self, start_timer: bool = False) -> None:
        if self.step == "menu":
            if self.keys:
                key, self.keys = self.keys[0], self.keys[1:]
                self.cancel_timer()
                if key == "1":
                    self.digits = ""
                    self.play("account", "account")
                else:
                    self.hangup()
            elif start_timer:
                self.arm(5.0)
        elif self.step == "account":
            while self.keys and len(self.digits) < 4:
                k, self.keys = self.keys[0], self.keys[1:]
                if k == "#":
                    break
                self.digits += k
            if len(self.digits) >= 4:
                self.cancel_timer()
                if self.keys.startswith("#"):
                    self.keys = self.keys[1:]
                    self.play("result", "result")
                else:
                    # the '#' may still come: it must not cut the result (as ivrflow does)
                    data, self.wait_uuid = execute("playback", PROMPTS["result"])
                    self.step = "result"
                    self.write(execute("set", "playback_terminators=0123456789*ABCD")[0] + data)
            else:
                self.arm(5.0 if not self.digits else 3.0)

    def arm(self, seconds: float) -> None:
        self.cancel_timer()
        self.timer = asyncio.get_running_loop().call_later(seconds, self.hangup)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def hangup(self) -> None:
        self.write(b"sendmsg\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n")

    def finish(self, how: str) -> None:
        if self.done:
            return
        self.done = True
        self.cancel_timer()
        STATS["completed" if self.step == "bye" else "hangup"] += 1
        if self.transport is not None:
            self.transport.close()


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Call, host, port, backlog=4096)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(json.dumps({"listening": server.sockets[0].getsockname()[1]}), flush=True)
    await stop.wait()
    server.close()
    print(json.dumps({**STATS, "latency": {"bounds": LAT.bounds, "counts": LAT.counts, "sum": LAT.sum,
                                           "count": LAT.count}}), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description="the floor handler of bench/serve_load.py")
    ap.add_argument("--listen", default=None, metavar="HOST:PORT")
    a = ap.parse_args()
    if a.listen is None:            # `make bench` runs every bench/*.py: this one is a server
        print("bench/serve_floor.py is started by bench/serve_load.py (--listen HOST:PORT)")
        sys.exit(0)
    h, _, p = a.listen.rpartition(":")
    import gc
    gc.freeze()
    gc.set_threshold(700, 1000, 1000)       # the same collector settings as ivrflow serve
    asyncio.run(main(h, int(p)))
