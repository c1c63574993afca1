"""A blocking HTTP/1.1 client on ``http.client`` for the ``http`` action (run it in the
integration thread pool).

One request = one connection, bounded by one deadline (connect, send, wait, read).  The
TCP connection may go to another address than the URL's host (``http.resolve``, like curl
``--resolve``) while the Host header, TLS SNI and certificate check keep the URL's name.
Responses are read up to ``max_response_bytes``.  Redirects are followed only to the same
host (never to another host, never from https down to http), up to ``max_redirects``.
No proxy from the environment is used.
"""

from __future__ import annotations

import functools
import http.client
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from .config import HttpSettings, IntegrationError

__all__ = ["Request", "Response", "HttpFailure", "send", "target"]

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float


@dataclass
class Response:
    status: int
    headers: dict[str, str]            # lower-case names
    body: bytes
    url: str                           # the URL that answered (after redirects)
    redirects: int = 0
    note: str | None = None            # e.g. why a redirect was not followed


@dataclass
class HttpFailure(Exception):
    """No usable HTTP answer.  ``kind``: timeout | connect (nothing was sent) | send (the
    request may have reached the server) | tls | too_large."""

    kind: str
    message: str
    sent: bool = field(default=False)

    def __str__(self) -> str:
        return self.message


def target(url: str, settings: HttpSettings) -> tuple[str, str, int]:
    """(scheme, host, port) of an allowed URL; IntegrationError otherwise."""
    try:
        p = urlsplit(url)
        port = p.port
    except ValueError as e:
        raise IntegrationError(f"http: bad URL: {e}") from None
    scheme = p.scheme.lower()
    if scheme not in ("http", "https"):
        raise IntegrationError(f"http: only http:// and https:// URLs are allowed, not {scheme or 'none'}://")
    if p.username is not None or p.password is not None:
        raise IntegrationError("http: credentials in the URL are not allowed (put them in http.headers of the "
                               "deployment configuration)")
    host = (p.hostname or "").lower()
    if not host:
        raise IntegrationError("http: the URL has no host")
    if scheme == "http" and settings.https_only:
        raise IntegrationError(f"http: plain http:// to {host} is refused (http.https_only)")
    port = port or (443 if scheme == "https" else 80)
    if not settings.allowed(host, port):
        if not settings.allow_hosts:
            raise IntegrationError(f"http: host {host} is not allowed: no host is (configure http.allow_hosts)")
        raise IntegrationError(f"http: host {host}{'' if port in (80, 443) else f':{port}'} is not in "
                               "http.allow_hosts")
    return scheme, host, port


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _one(req_method: str, url: str, headers: dict, body: bytes | None, deadline: float,
         settings: HttpSettings) -> Response:
    scheme, host, port = target(url, settings)
    p = urlsplit(url)
    addr = settings.connect_to(host, port)

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        return left

    try:
        first = remaining()
    except socket.timeout:
        raise HttpFailure("timeout", "no answer in time") from None
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=first, context=_tls_context(settings.verify_tls, settings.ca_file))
    else:
        conn = http.client.HTTPConnection(host, port, timeout=first)
    conn._create_connection = lambda _a, t, src=None: socket.create_connection(addr, t, src)  # type: ignore[attr-defined]
    try:
        try:
            conn.connect()
        except socket.timeout:
            raise HttpFailure("timeout", f"connecting to {host}:{port} timed out") from None
        except ssl.SSLError as e:
            raise HttpFailure("tls", f"TLS with {host}: {e.reason or e}", sent=False) from None
        except OSError as e:
            raise HttpFailure("connect", f"cannot connect to {host}:{port}: {e.strerror or type(e).__name__}") from None
        sock = conn.sock
        path = (p.path or "/") + (f"?{p.query}" if p.query else "")
        try:
            sock.settimeout(remaining())
            conn.request(req_method, path, body=body, headers=headers)
            sock.settimeout(remaining())
            r = conn.getresponse()
            limit = settings.max_response_bytes
            cl = r.getheader("Content-Length")
            if cl is not None and cl.strip().isdigit() and int(cl) > limit:
                raise HttpFailure("too_large", f"response of {int(cl)} bytes is over the limit of {limit}", sent=True)
            chunks, total = [], 0
            while True:
                sock.settimeout(remaining())
                b = r.read1(65536)
                if not b:
                    break
                total += len(b)
                if total > limit:
                    raise HttpFailure("too_large", f"response over the limit of {limit} bytes", sent=True)
                chunks.append(b)
            return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, b"".join(chunks), url)
        except socket.timeout:
            raise HttpFailure("timeout", "no answer in time", sent=True) from None
        except (http.client.HTTPException, OSError) as e:
            raise HttpFailure("send", f"the connection failed: {type(e).__name__}"
                                      + (f" ({e})" if str(e) else ""), sent=True) from None
    finally:
        conn.close()


def send(req: Request, settings: HttpSettings) -> Response:
    """Send ``req`` (the URL must have passed ``target``); follow same-host redirects."""
    deadline = time.monotonic() + req.timeout
    method, url, body, headers = req.method, req.url, req.body, dict(req.headers)
    for hop in range(settings.max_redirects + 1):
        resp = _one(method, url, headers, body, deadline, settings)
        resp.redirects = hop
        loc = resp.headers.get("location")
        if resp.status not in REDIRECTS or not loc:
            return resp
        new = urljoin(url, loc)
        old_p, new_p = urlsplit(url), urlsplit(new)
        if (new_p.hostname or "").lower() != (old_p.hostname or "").lower():
            resp.note = f"redirect to another host ({new_p.hostname}) refused"
            return resp
        if old_p.scheme == "https" and new_p.scheme != "https":
            resp.note = "redirect from https to http refused"
            return resp
        if hop == settings.max_redirects:
            resp.note = f"more than {settings.max_redirects} redirects"
            return resp
        try:
            target(new, settings)
        except IntegrationError as e:
            resp.note = f"redirect refused: {e}"
            return resp
        if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
            method, body = "GET", None
            headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
        url = new
    raise AssertionError("unreachable")  # pragma: no cover
