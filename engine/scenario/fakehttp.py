"""A real local HTTP server answering a scenario's declared routes (``http:`` in a case).

The runner starts one per run on 127.0.0.1, port chosen by the OS, and points every host of
the flow at it (``http.resolve: {"*": ...}``), so the ``http`` action goes through its real
client, sockets included, and nothing leaves the machine.  Routes are swapped per case;
every request received is kept for ``expect.requests``.

Route keys: ``"METHOD /path"``, ``"METHOD /path?name=value"`` (the query must match),
``"METHOD http://host/path"`` (that host only); ``METHOD`` may be ``*``; a path segment
``*`` matches any one segment.  The most specific route wins: exact path before ``*``
segments, with a query before without.  Route values: ``status`` (200), ``json``, ``body``
(raw text), ``headers``, ``hang: true`` (accept the request and never answer, until the
client gives up).
"""

from __future__ import annotations

import json
import select
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from engine.integrations.config import split_host_port

__all__ = ["Route", "RouteError", "parse_routes", "FakeHttpServer", "ROUTE_KEYS"]

ROUTE_KEYS = ("status", "json", "body", "headers", "hang")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*")
_NOTHING = object()


class RouteError(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    key: str
    method: str                  # or "*"
    host: str | None
    path: tuple[str, ...]        # segments; "*" matches one
    query: tuple | None          # sorted (name, value) pairs that must be present, or None
    status: int = 200
    json: Any = _NOTHING
    body: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    hang: bool = False

    def rank(self) -> tuple:
        return ("*" not in self.path, self.query is not None, self.host is not None, self.method != "*")

    def matches(self, method: str, host: str, path: str, query: list) -> bool:
        if self.method not in ("*", method):
            return False
        if self.host is not None and self.host != host:
            return False
        segs = _segments(path)
        if len(segs) != len(self.path) or any(p != "*" and p != s for p, s in zip(self.path, segs)):
            return False
        if self.query is not None and sorted(query) != list(self.query):
            return False
        return True


def _segments(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/") if s != "") or ("",)


def parse_routes(spec: Any) -> list[Route]:
    """Routes from a scenario's ``http:`` mapping; RouteError says what is wrong."""
    if not isinstance(spec, Mapping):
        raise RouteError("'http' must map \"METHOD /path\" to a response ({status, json, body, headers, hang})")
    out = []
    for key, val in spec.items():
        method, _, target = str(key).strip().partition(" ")
        method = method.upper()
        target = target.strip()
        if method not in METHODS or not target:
            raise RouteError(f"route {key!r}: write it as \"METHOD /path\" (METHOD: {', '.join(METHODS)})")
        if val is None:
            val = {}
        if not isinstance(val, Mapping):
            raise RouteError(f"route {key!r}: the response must be a mapping (status, json, body, headers, hang)")
        bad = [k for k in val if k not in ROUTE_KEYS]
        if bad:
            from engine.flow.diagnostics import did_you_mean

            hint = did_you_mean(str(bad[0]), ROUTE_KEYS)
            raise RouteError(f"route {key!r}: unknown key '{bad[0]}'" + (f" ({hint})" if hint else ""))
        p = urlsplit(target)
        if not p.path.startswith("/"):
            raise RouteError(f"route {key!r}: the path must start with / (or give a full http:// URL)")
        status = val.get("status", 200)
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise RouteError(f"route {key!r}: status must be an HTTP status code (100-599)")
        if "json" in val and "body" in val:
            raise RouteError(f"route {key!r}: give json or body, not both")
        if "body" in val and not isinstance(val["body"], str):
            raise RouteError(f"route {key!r}: body must be text (use json: for a JSON document)")
        hdrs = val.get("headers") or {}
        if not isinstance(hdrs, Mapping):
            raise RouteError(f"route {key!r}: headers must be a mapping")
        if "hang" in val and not isinstance(val["hang"], bool):
            raise RouteError(f"route {key!r}: hang must be true or false")
        out.append(Route(str(key), method, (p.hostname or "").lower() or None, _segments(p.path),
                         tuple(sorted(parse_qsl(p.query, keep_blank_values=True))) if p.query else None,
                         status, val.get("json", _NOTHING), val.get("body"),
                         {str(k): str(v) for k, v in hdrs.items()}, bool(val.get("hang", False))))
    return out


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *args: Any) -> None:      # quiet
        pass

    def _handle(self) -> None:
        srv = self.server
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        p = urlsplit(self.path)
        query = parse_qsl(p.query, keep_blank_values=True)
        try:
            host = split_host_port(self.headers.get("Host") or "")[0]
        except ValueError:
            host = ""
        text = raw.decode("utf-8", "replace")
        try:
            body_json = json.loads(text) if text.strip() else None
        except ValueError:
            body_json = None
        q: dict[str, Any] = {}
        for k, v in query:
            q[k] = [*q[k], v] if isinstance(q.get(k), list) else ([q[k], v] if k in q else v)
        with srv.lock:
            routes = list(srv.routes)
        cands = [r for r in routes if r.matches(self.command, host, p.path, query)]
        route = max(cands, key=Route.rank) if cands else None
        with srv.lock:
            srv.requests.append({"method": self.command, "host": host, "path": p.path, "query": q,
                                 "headers": dict(self.headers.items()), "json": body_json, "body": text,
                                 "route": route.key if route else None})
        if route is None:
            self._send(404, b'{"error": "no route"}', {"Content-Type": "application/json"})
            return
        if route.hang:
            self._hang()
            return
        if route.json is not _NOTHING:
            payload = json.dumps(route.json, ensure_ascii=False).encode("utf-8")
            hdrs = {"Content-Type": "application/json; charset=utf-8"}
        else:
            payload = (route.body or "").encode("utf-8")
            hdrs = {"Content-Type": "text/plain; charset=utf-8"} if route.body else {}
        hdrs.update(route.headers)
        self._send(route.status, payload, hdrs)

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _hang(self) -> None:
        """Never answer: wait until the client closes the connection (or the server stops)."""
        self.close_connection = True
        sock = self.connection
        while not self.server.stopping.is_set():
            r, _, _ = select.select([sock], [], [], 0.05)
            if r:
                try:
                    if not sock.recv(1024):
                        return
                except OSError:
                    return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.routes: list[Route] = []
        self.requests: list[dict] = []
        self.stopping = threading.Event()


class FakeHttpServer:
    """The local server; ``address`` is ``127.0.0.1:PORT``.  ``tls=(certfile, keyfile)``
    serves HTTPS instead."""

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self._srv = _Server()
        if tls is not None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._srv.socket = ctx.wrap_socket(self._srv.socket, server_side=True)
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ivrflow-fakehttp", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._srv.server_address[:2]
        return f"{host}:{port}"

    def set_routes(self, routes: list[Route]) -> None:
        with self._srv.lock:
            self._srv.routes = list(routes)
            self._srv.requests = []

    @property
    def requests(self) -> list[dict]:
        with self._srv.lock:
            return list(self._srv.requests)

    def close(self) -> None:
        self._srv.stopping.set()
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)
