"""The virtual clock loop: timers jump, real sockets still work, a stuck wait is reported."""

import asyncio
import time

import pytest

from engine.testing import VirtualClockStall, run_virtual


def test_long_sleeps_cost_no_wall_time():
    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.sleep(3600)
        await asyncio.wait_for(asyncio.sleep(10), 20)
        return loop.time() - t0

    start = time.monotonic()
    assert run_virtual(main) == pytest.approx(3610)
    assert time.monotonic() - start < 1.0


def test_socket_io_happens_at_the_same_virtual_instant():
    async def main():
        loop = asyncio.get_running_loop()

        async def echo(reader, writer):
            writer.write(await reader.readexactly(5))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        ticker = asyncio.ensure_future(asyncio.sleep(0.001))   # a pending timer
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        t0 = loop.time()
        writer.write(b"hello")
        data = await reader.readexactly(5)
        elapsed = loop.time() - t0
        writer.close()
        server.close()
        await ticker
        return data, elapsed

    assert run_virtual(main) == (b"hello", 0.0)


def test_a_wait_without_timer_or_io_is_reported():
    async def main():
        await asyncio.get_running_loop().create_future()

    with pytest.raises(VirtualClockStall):
        run_virtual(main, stall_timeout=0.2)
