"""A minimal HTTP/1.1 endpoint on asyncio streams: GET /metrics (Prometheus text) and
GET /health (JSON; 503 while draining or with no flow loaded).  Nothing else is served."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Callable

__all__ = ["StatusServer"]

log = logging.getLogger("ivrflow.serve")

_MAX_REQUEST = 8192


class StatusServer:
    def __init__(self, metrics_text: Callable[[], str], health: Callable[[], tuple[bool, dict]]) -> None:
        self.metrics_text = metrics_text
        self.health = health
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split()
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                return await self._reply(writer, 400, "text/plain", "bad request\n")
            method, target = parts[0], parts[1].split("?", 1)[0]
            if method not in ("GET", "HEAD"):
                return await self._reply(writer, 405, "text/plain", "method not allowed\n")
            if target == "/metrics":
                return await self._reply(writer, 200, "text/plain; version=0.0.4; charset=utf-8",
                                         self.metrics_text(), head_only=method == "HEAD")
            if target in ("/health", "/healthz", "/"):
                ok, body = self.health()
                return await self._reply(writer, 200 if ok else 503, "application/json",
                                         json.dumps(body, ensure_ascii=False) + "\n",
                                         head_only=method == "HEAD")
            return await self._reply(writer, 404, "text/plain", "not found\n")
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        except Exception:  # noqa: BLE001 - never let a status request hurt the server
            log.exception("status endpoint failed")
        finally:
            writer.close()

    @staticmethod
    async def _reply(writer: asyncio.StreamWriter, status: int, ctype: str, body: str,
                     head_only: bool = False) -> None:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                  503: "Service Unavailable"}[status]
        data = body.encode("utf-8")
        head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode("ascii")
        writer.write(head if head_only else head + data)
        try:
            await asyncio.wait_for(writer.drain(), 5.0)
        except (asyncio.TimeoutError, ConnectionError):
            pass
