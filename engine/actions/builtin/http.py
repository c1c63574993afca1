"""Call a hospital (or any) system over HTTP: templated request, timeout, retries, JSON mapped into variables.

Outcomes: ``ok`` (2xx; ``map`` variables set from the JSON answer), ``not_found`` (404 or
``not_found_status``), ``http_error`` (any other status, or no HTTP answer at all:
``http_status`` 0), ``timeout``, ``bad_response`` (not JSON, too large, a mapped path
missing).  Retries: connection failures before anything was sent, and for idempotent
methods (GET, PUT, DELETE) also timeouts, broken connections and 500/502/503/504, with
exponential backoff on the call's clock.  Hosts must be in ``http.allow_hosts``; a host
outside it, a bad URL or a bad header raises (the call takes ``error`` / ``on.error``).
Credential headers and query parameters are masked in the call record; headers from the
configuration (``http.headers``) never enter it.  See docs/integrations.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engine import __version__
from engine.actions import Action, Result
from engine.integrations.blocking import run_blocking
from engine.integrations.config import IntegrationError, http_settings
from engine.integrations.httpclient import HttpFailure, Request, send, target
from engine.integrations.jsonpath import MISSING, PathError, lookup, parse_path

log = logging.getLogger("ivrflow.runtime.integrations")

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({500, 502, 503, 504})
#: headers a flow may not set (the client owns them; Host would dodge the allow-list)
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "te", "upgrade",
                              "trailer", "keep-alive", "proxy-connection"})
_SENSITIVE = frozenset({"authorization", "auth", "token", "secret", "password", "passwd", "pwd", "key", "apikey",
                        "signature", "sig", "session", "sessionid", "cookie", "credential", "credentials", "pin",
                        "otp", "jwt", "bearer", "cert", "ticket"})
MASKED = "****"


def sensitive(name: str) -> bool:
    """Does this header / parameter name carry a credential (Authorization, X-Api-Key, token...)?"""
    n = str(name).lower()
    if any(w in n for w in ("token", "secret", "password", "apikey", "api_key", "authorization", "cookie")):
        return True
    return any(part in _SENSITIVE for part in re.split(r"[-_.\s]+", n))


def _mask_url(url: Any) -> Any:
    if not isinstance(url, str) or "?" not in url:
        return url
    try:
        p = urlsplit(url)
        q = parse_qsl(p.query, keep_blank_values=True)
    except ValueError:
        return url
    if not any(sensitive(k) for k, _ in q):
        return url
    masked = "&".join(f"{k}={MASKED}" if sensitive(k) else urlencode([(k, v)]) for k, v in q)
    return urlunsplit((p.scheme, p.netloc, p.path, masked, p.fragment))


def _mask_tree(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: (MASKED if sensitive(k) and x is not None else _mask_tree(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_mask_tree(x) for x in v]
    return v


def record_params(shown: Mapping[str, Any]) -> dict:
    """The params as the call record shows them: credentials masked."""
    out = dict(shown)
    if "url" in out:
        out["url"] = _mask_url(out["url"])
    for k in ("headers", "query", "json"):
        if k in out:
            out[k] = _mask_tree(out[k])
    return out


def _mapped(params):
    names = tuple((params.get("map") or {}).keys())
    return {"ok": names}


def _query_value(k: str, v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, bool):
        return ["true" if v else "false"]
    if isinstance(v, (str, int, float)):
        return [str(v)]
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return [v.isoformat()]
    if isinstance(v, (list, tuple)):
        return [x for item in v for x in _query_value(k, item)]
    raise IntegrationError(f"http: query parameter '{k}' must be text, a number or a list of them")


def build_url(url: str, query: Mapping[str, Any] | None) -> str:
    if not query:
        return url
    p = urlsplit(url)
    pairs = parse_qsl(p.query, keep_blank_values=True)
    for k, v in query.items():
        pairs.extend((str(k), x) for x in _query_value(str(k), v))
    return urlunsplit((p.scheme, p.netloc, p.path or "/", urlencode(pairs), ""))


def _headers(flow_headers: Mapping[str, Any], extra: Mapping[str, str], has_body: bool) -> dict[str, str]:
    out = {"User-Agent": f"ivrflow/{__version__}", "Accept": "application/json"}
    if has_body:
        out["Content-Type"] = "application/json; charset=utf-8"
    for k, v in flow_headers.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", k):
            raise IntegrationError(f"http: bad header name {k!r}")
        if k.lower() in RESERVED_HEADERS:
            raise IntegrationError(f"http: the flow may not set the {k} header")
        v = str(v)
        if "\r" in v or "\n" in v or "\0" in v:
            raise IntegrationError(f"http: header {k} has a line break in its value")
        out = {n: x for n, x in out.items() if n.lower() != k.lower()}
        out[k] = v
    for k, v in extra.items():                   # the deployment's credentials win
        out = {n: x for n, x in out.items() if n.lower() != k.lower()}
        out[k] = v
    return out


def _json_default(v: Any) -> Any:
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    raise TypeError(f"{type(v).__name__} is not JSON")


def _body(params: Mapping[str, Any]) -> bytes | None:
    if "json" not in params:
        return None
    try:
        return json.dumps(params["json"], ensure_ascii=False, default=_json_default).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise IntegrationError(f"http: the json body cannot be encoded: {e}") from None


async def run(ctx, params):
    settings = http_settings(ctx.config)
    method = params.get("method", "GET")
    url = build_url(str(params["url"]), params.get("query"))
    _scheme, host, port = target(url, settings)
    mapping = dict(params.get("map") or {})
    for var, path in mapping.items():
        try:
            parse_path(path)
        except PathError as e:
            raise IntegrationError(f"http: map {var}: {e}") from None
    body = _body(params)
    headers = _headers(params.get("headers") or {}, settings.extra_headers(host, port), body is not None)
    timeout = min(float(params.get("timeout", settings.timeout)), settings.max_timeout)
    retries = int(params.get("retries", 0))
    not_found = set(params.get("not_found_status") or [404])
    req = Request(method, url, headers, body, timeout)
    shown_url = _mask_url(url)
    idempotent = method in IDEMPOTENT
    t0 = time.monotonic()
    resp, failure, attempt = None, None, 0
    for attempt in range(1, retries + 2):
        resp, failure = None, None
        try:
            resp = await run_blocking(send, req, settings)
        except HttpFailure as f:
            failure = f
            again = (not f.sent and f.kind in ("connect", "timeout")) or \
                (idempotent and f.kind in ("timeout", "send"))
        else:
            again = idempotent and resp.status in RETRY_STATUSES
        if not again or attempt > retries:
            break
        ctx.log(f"http {method} {shown_url}: {failure.kind if failure else resp.status}, trying again",
                attempt=attempt)
        await ctx.clock.sleep(min(5.0, settings.retry_backoff * 2 ** (attempt - 1)))
    outcome, variables, detail = _outcome(resp, failure, not_found, mapping)
    ms = (time.monotonic() - t0) * 1000
    status = resp.status if resp is not None else (failure.kind if failure else "?")
    note = f"; {resp.note}" if resp is not None and resp.note else ""
    ctx.log(f"http {method} {shown_url} -> {status}: {outcome}{note}" + (f" ({detail})" if detail else ""),
            attempts=attempt)
    if outcome not in ("ok", "not_found"):       # for operators; the path may hold caller data: host only
        log.warning("http %s %s in state %s: %s (%s) after %d attempt(s), %.0f ms", method, host,
                    getattr(ctx, "state", "?"), outcome, status, attempt, ms)
    return Result(outcome, variables)


def _outcome(resp, failure, not_found: set, mapping: Mapping[str, str]) -> tuple[str, dict, str | None]:
    if failure is not None:
        if failure.kind == "timeout":
            return "timeout", {}, str(failure)
        if failure.kind == "too_large":
            return "bad_response", {"http_status": 0}, str(failure)
        return "http_error", {"http_status": 0}, str(failure)
    status = resp.status
    if status in not_found:
        return "not_found", {"http_status": status}, None
    if not 200 <= status < 300:
        return "http_error", {"http_status": status}, None
    text = resp.body.strip()
    if not text:
        if mapping:
            return "bad_response", {"http_status": status}, "empty body, nothing to map"
        return "ok", {"http_status": status}, None
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "bad_response", {"http_status": status}, "the answer is not JSON"
    out: dict[str, Any] = {"http_status": status}
    for var, path in mapping.items():
        v = lookup(doc, path)
        if v is MISSING:
            return "bad_response", {"http_status": status}, f"no '{path}' in the answer"
        out[var] = v
    return "ok", out, None


ACTION = Action(
    name='http',
    summary='Call a hospital (or any) system over HTTP: templated request, timeout, retries, JSON mapped into variables.',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['url'],
 'properties': {'url': {'type': 'string', 'pattern': '^(https?://|\\{\\{)'},
                'method': {'enum': ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']},
                'headers': {'type': 'object', 'additionalProperties': {'type': 'string'}},
                'query': {'type': 'object'},
                'json': {},
                'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 60},
                'retries': {'type': 'integer', 'minimum': 0, 'maximum': 5},
                'map': {'type': 'object',
                        'description': 'variable -> dotted path in the JSON response (e.g. '
                                       'data.status, items[0].name)',
                        'propertyNames': {'pattern': '^[A-Za-z_][A-Za-z0-9_]*$'},
                        'additionalProperties': {'type': 'string'}},
                'not_found_status': {'type': 'array', 'items': {'type': 'integer', 'minimum': 100, 'maximum': 599}}}},
    outcomes=('ok', 'not_found', 'http_error', 'timeout', 'bad_response'),
    sets={'ok': ('http_status',), 'not_found': ('http_status',), 'http_error': ('http_status',),
          'bad_response': ('http_status',)},
    dynamic_sets=_mapped,
    record_params=record_params,
    run=run,
)
