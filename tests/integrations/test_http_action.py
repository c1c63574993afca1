"""The http action against a real local HTTP server (real sockets, port chosen by the OS)."""

import asyncio
import json
import socket
import threading

import pytest
from int_helpers import Ctx, closed_port, run

from engine.actions.builtin.http import ACTION, record_params, sensitive
from engine.integrations.config import IntegrationError
from engine.runtime.clock import VirtualClock

URL = "http://dispatch.example"

WAYBILL = {"status": "in_transit", "location": {"city": "杭州"}, "eta": None,
           "events": [{"at": "2025-03-01", "city": "上海"}, {"at": "2025-03-02", "city": "杭州"}]}


def call(ctx, **params):
    return run(ACTION.run(ctx, params))


def test_ok_maps_nested_paths_list_indexes_and_null(ctx, routes):
    routes({"GET /api/waybills/1234567890": {"json": WAYBILL}})
    r = call(ctx, url=f"{URL}/api/waybills/1234567890",
             map={"city": "location.city", "first": "events[0].city", "last": "events.-1.at", "eta": "eta"})
    assert r.outcome == "ok"
    assert r.variables == {"http_status": 200, "city": "杭州", "first": "上海", "last": "2025-03-02", "eta": None}


def test_not_found_default_and_configured_statuses(ctx, routes):
    routes({"GET /a": {"status": 404}, "GET /b": {"status": 410}, "GET /c": {"status": 204}})
    assert call(ctx, url=f"{URL}/a").outcome == "not_found"
    assert call(ctx, url=f"{URL}/b").outcome == "http_error"
    r = call(ctx, url=f"{URL}/b", not_found_status=[404, 410])
    assert (r.outcome, r.variables) == ("not_found", {"http_status": 410})
    assert call(ctx, url=f"{URL}/c", not_found_status=[204]).outcome == "not_found"


def test_server_errors_are_retried_for_get_only(ctx, routes):
    srv = routes({"GET /x": {"status": 503}, "POST /x": {"status": 500}, "PUT /x": {"status": 502},
                  "GET /teapot": {"status": 418}})
    r = call(ctx, url=f"{URL}/x", retries=2)
    assert (r.outcome, r.variables) == ("http_error", {"http_status": 503})
    assert len(srv.requests) == 3
    srv.set_routes(srv._srv.routes)                 # clears the request log
    assert call(ctx, url=f"{URL}/x", method="POST", retries=2, json={}).outcome == "http_error"
    assert [r["method"] for r in srv.requests] == ["POST"]          # never sent twice
    srv.set_routes(srv._srv.routes)
    assert call(ctx, url=f"{URL}/x", method="PUT", retries=1, json={}).outcome == "http_error"
    assert [r["method"] for r in srv.requests] == ["PUT", "PUT"]    # idempotent
    srv.set_routes(srv._srv.routes)
    assert call(ctx, url=f"{URL}/teapot", retries=3).variables == {"http_status": 418}
    assert len(srv.requests) == 1                                     # a 4xx is an answer


def test_timeout_get_is_retried_post_is_not(ctx, routes):
    srv = routes({"GET /slow": {"hang": True}, "POST /slow": {"hang": True}})
    r = call(ctx, url=f"{URL}/slow", retries=1, timeout=5)        # capped by http.max_timeout 0.25
    assert (r.outcome, r.variables) == ("timeout", {})
    assert len(srv.requests) == 2
    srv.set_routes(srv._srv.routes)
    assert call(ctx, url=f"{URL}/slow", method="POST", json={"a": 1}, retries=3).outcome == "timeout"
    assert len(srv.requests) == 1
    assert any("trying again" in m for m, _ in ctx.logs)


def test_refused_connection_is_retried_even_for_post(routes):
    port = closed_port()
    ctx = Ctx({"http": {"allow_hosts": ["dispatch.example"], "resolve": {"dispatch.example": f"127.0.0.1:{port}"}}})
    r = call(ctx, url=f"{URL}/x", method="POST", json={}, retries=2)
    assert (r.outcome, r.variables) == ("http_error", {"http_status": 0})
    assert sum("trying again" in m for m, _ in ctx.logs) == 2      # nothing was sent: safe to retry
    assert "cannot connect" in ctx.logs[-1][0]


def test_bad_responses(ctx, routes):
    routes({"GET /html": {"body": "<html>maintenance</html>"}, "GET /empty": {"status": 204},
            "GET /partial": {"json": {"id": 7}}, "GET /list": {"json": [1, 2]}})
    r = call(ctx, url=f"{URL}/html")
    assert (r.outcome, r.variables) == ("bad_response", {"http_status": 200})
    assert "not JSON" in ctx.logs[-1][0]
    assert call(ctx, url=f"{URL}/empty").outcome == "ok"                       # nothing to map
    assert call(ctx, url=f"{URL}/empty", map={"x": "id"}).outcome == "bad_response"
    assert call(ctx, url=f"{URL}/partial", map={"a": "id", "b": "name"}).outcome == "bad_response"
    assert "no 'name' in the answer" in ctx.logs[-1][0]
    assert call(ctx, url=f"{URL}/list", map={"a": "[1]"}).variables == {"http_status": 200, "a": 2}
    assert call(ctx, url=f"{URL}/list", map={"a": "[5]"}).outcome == "bad_response"


def test_response_size_limit_with_and_without_content_length(server, routes):
    routes({"GET /big": {"json": {"blob": "x" * 5000}}})
    ctx = Ctx({"http": {"allow_hosts": ["dispatch.example", "raw.example"], "max_response_bytes": 1000,
                        "resolve": {"dispatch.example": server.address}}})
    r = call(ctx, url=f"{URL}/big", map={"b": "blob"})
    assert r.outcome == "bad_response" and "over the limit of 1000" in ctx.logs[-1][0]
    # a streamed answer (no Content-Length) is cut while it is read
    with _raw_server(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                     + b'{"a": "' + b"y" * 50_000 + b'"}') as port:
        ctx2 = Ctx({"http": {"allow_hosts": ["raw.example"], "max_response_bytes": 1000,
                             "resolve": {"raw.example": f"127.0.0.1:{port}"}}})
        assert call(ctx2, url="http://raw.example/").outcome == "bad_response"


def test_one_deadline_for_the_whole_request(ctx, routes, monkeypatch):
    """A server that keeps sending cannot stretch the timeout: the deadline covers reading."""
    import engine.integrations.httpclient as hc

    routes({"GET /stream": {"json": {"blob": "z" * 300_000}}})
    now = [1000.0]

    def fake_monotonic():
        now[0] += 0.05                  # every check costs 50 ms of the request's time
        return now[0]

    monkeypatch.setattr(hc.time, "monotonic", fake_monotonic)
    assert call(ctx, url=f"{URL}/stream", timeout=0.2).outcome == "timeout"


def test_allow_list(server, routes):
    routes({"GET /x": {"json": {}}})
    r = {"*": server.address}

    def outcome(allow, url):
        return call(Ctx({"http": {"allow_hosts": allow, "resolve": r}}), url=url).outcome

    with pytest.raises(IntegrationError, match="no host is .configure http.allow_hosts"):
        outcome([], f"{URL}/x")
    with pytest.raises(IntegrationError, match="host evil.example is not in http.allow_hosts"):
        outcome(["dispatch.example"], "http://evil.example/x")
    assert outcome(["*.example"], f"{URL}/x") == "ok"
    with pytest.raises(IntegrationError, match="not in http.allow_hosts"):
        outcome(["*.dispatch.example"], f"{URL}/x")              # subdomains only, not the domain itself
    assert outcome(["dispatch.example:8080"], "http://dispatch.example:8080/x") == "ok"
    with pytest.raises(IntegrationError, match=r"dispatch.example:9090 is not in"):
        outcome(["dispatch.example:8080"], "http://dispatch.example:9090/x")
    for bad, msg in (("ftp://dispatch.example/x", "only http:// and https://"),
                     ("http://user:pw@dispatch.example/x", "credentials in the URL"),
                     ("http:///x", "no host")):
        with pytest.raises(IntegrationError, match=msg):
            outcome(["dispatch.example"], bad)
    with pytest.raises(IntegrationError, match="https_only"):
        call(Ctx({"http": {"allow_hosts": ["dispatch.example"], "https_only": True}}), url=f"{URL}/x")


def test_redirects_stay_on_the_same_host(ctx, routes):
    srv = routes({"GET /old": {"status": 301, "headers": {"Location": "/new?x=1"}},
                  "GET /new?x=1": {"json": {"v": 2}},
                  "GET /away": {"status": 302, "headers": {"Location": "http://evil.example/steal"}},
                  "POST /form": {"status": 303, "headers": {"Location": "/done"}},
                  "GET /done": {"json": {"v": 3}},
                  "GET /loop": {"status": 302, "headers": {"Location": "/loop"}}})
    assert call(ctx, url=f"{URL}/old", map={"v": "v"}).variables == {"http_status": 200, "v": 2}
    r = call(ctx, url=f"{URL}/away")
    assert (r.outcome, r.variables) == ("http_error", {"http_status": 302})
    assert "redirect to another host (evil.example) refused" in ctx.logs[-1][0]
    assert not any(q["host"] == "evil.example" for q in srv.requests)
    assert call(ctx, url=f"{URL}/form", method="POST", json={"a": 1}, map={"v": "v"}).variables["v"] == 3
    assert [q["method"] for q in srv.requests][-2:] == ["POST", "GET"]        # 303: then GET, no body
    assert call(ctx, url=f"{URL}/loop").outcome == "http_error"
    assert "more than 3 redirects" in ctx.logs[-1][0]


def test_headers_from_config_and_flow(server, routes):
    srv = routes({"GET /h": {"json": {}}})
    ctx = Ctx({"http": {"allow_hosts": ["dispatch.example"], "resolve": {"*": server.address},
                        "headers": {"dispatch.example": {"Authorization": "Bearer from-config"},
                                    "other.example": {"X-Other": "no"}}}})
    call(ctx, url=f"{URL}/h", headers={"X-Trace": "abc", "Authorization": "Bearer from-flow"})
    h = srv.requests[-1]["headers"]
    assert h["Authorization"] == "Bearer from-config"          # the deployment's credentials win
    assert h["X-Trace"] == "abc" and h["Host"] == "dispatch.example"
    assert h["User-Agent"].startswith("ivrflow/") and "X-Other" not in h
    with pytest.raises(IntegrationError, match="may not set the Host header"):
        call(ctx, url=f"{URL}/h", headers={"Host": "evil.example"})
    with pytest.raises(IntegrationError, match="line break"):
        call(ctx, url=f"{URL}/h", headers={"X-A": "1\r\nX-Injected: 2"})


def test_query_and_json_body(ctx, routes):
    import datetime as dt

    srv = routes({"GET /q": {"json": {}}, "POST /j": {"status": 201, "json": {"n": "7"}}})
    call(ctx, url=f"{URL}/q?fixed=1", query={"phone": "138 0000", "tags": ["a", "b"], "vip": True, "none": None})
    q = srv.requests[-1]
    assert q["query"] == {"fixed": "1", "phone": "138 0000", "tags": ["a", "b"], "vip": "true"}
    r = call(ctx, url=f"{URL}/j", method="POST", json={"day": dt.date(2025, 3, 4), "kg": 12, "名": "张"},
             map={"n": "n"})
    assert r.outcome == "ok" and r.variables["n"] == "7"
    q = srv.requests[-1]
    assert q["json"] == {"day": "2025-03-04", "kg": 12, "名": "张"}
    assert q["headers"]["Content-Type"] == "application/json; charset=utf-8"


def test_credentials_never_reach_the_call_record(server, routes):
    """Flow-written credential headers and query parameters are masked; config headers never appear."""
    from engine.actions import default_registry
    from engine.flow import compile_text
    from engine.runtime import Interpreter, SimChannel

    srv = routes({"GET /secure": {"json": {"ok": True}}})
    flow, diags = compile_text("""
flow: t
languages: [en]
start: ask
states:
  ask:
    action: http
    params:
      url: "http://dispatch.example/secure?api_key=LITERALKEY&x=1"
      headers: {X-Api-Key: "FLOWSECRET", X-Trace: visible}
      query: {token: "QUERYSECRET", page: 2}
      map: {ok: ok}
    next: {ok: bye, default: bye}
  bye: {hangup: true}
""", "t.yaml", registry=default_registry())
    assert flow is not None, diags
    cfg = {"http": {"allow_hosts": ["dispatch.example"], "resolve": {"*": server.address},
                    "headers": {"dispatch.example": {"Authorization": "Bearer CONFIGSECRET"}}}}
    clock = VirtualClock()
    res = run(Interpreter(flow, config=cfg).run(SimChannel("", clock), clock))
    assert res.record.disposition == "completed"
    text = json.dumps(res.record.to_dict(), ensure_ascii=False)
    for secret in ("LITERALKEY", "FLOWSECRET", "QUERYSECRET", "CONFIGSECRET"):
        assert secret not in text
    ev = next(res.record.of_type("action"))
    assert ev["params"]["headers"] == {"X-Api-Key": "****", "X-Trace": "visible"}
    assert ev["params"]["query"] == {"token": "****", "page": 2}
    assert "api_key=****" in ev["params"]["url"] and "x=1" in ev["params"]["url"]
    sent = srv.requests[-1]                                    # ... while the server got the real values
    assert sent["headers"]["X-Api-Key"] == "FLOWSECRET" and sent["query"]["token"] == "QUERYSECRET"
    assert sent["headers"]["Authorization"] == "Bearer CONFIGSECRET"


def test_sensitive_names():
    for name in ("Authorization", "X-Api-Key", "apikey", "access_token", "Cookie", "client_secret", "pin", "sig"):
        assert sensitive(name), name
    for name in ("X-Trace", "page", "phone", "shipping", "Accept", "keep"):
        assert not sensitive(name), name
    assert record_params({"url": "http://h/x?a=1"})["url"] == "http://h/x?a=1"


def test_the_event_loop_keeps_running_during_a_request(ctx, routes):
    routes({"GET /slow": {"hang": True}, "GET /fast": {"json": {"v": 1}}})

    ctx = Ctx({"http": {**ctx.config["http"], "max_timeout": 1.0}})    # ample margin for the fast one

    async def main():
        slow = asyncio.create_task(ACTION.run(ctx, {"url": f"{URL}/slow", "timeout": 1.0}))
        await asyncio.sleep(0)
        fast = await ACTION.run(ctx, {"url": f"{URL}/fast", "map": {"v": "v"}})
        assert not slow.done()                 # the slow one still waits in its thread
        return fast, await slow

    fast, slow = run(main())
    assert fast.outcome == "ok" and slow.outcome == "timeout"


def test_backoff_waits_on_the_call_clock(ctx, routes):
    """Between attempts the action sleeps on ctx.clock: simulated time, no wall time."""
    routes({"GET /down": {"status": 503}})
    clock = VirtualClock()
    c = Ctx({"http": {**ctx.config["http"], "retry_backoff": 2}}, clock=clock)
    assert call(c, url=f"{URL}/down", retries=3).outcome == "http_error"
    assert clock.monotonic() == pytest.approx(2 + 4 + 5)          # doubling, capped at 5 s


def test_bad_map_path_is_a_flow_error(ctx, routes):
    routes({"GET /x": {"json": {}}})
    with pytest.raises(IntegrationError, match="map v: bad path"):
        call(ctx, url=f"{URL}/x", map={"v": "a..b"})


class _raw_server:
    """A one-shot TCP server writing fixed bytes (for answers http.server cannot produce)."""

    def __init__(self, payload: bytes):
        self.payload = payload
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            try:
                conn.sendall(self.payload)
            except OSError:
                pass

    def __enter__(self):
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()
        return self.sock.getsockname()[1]

    def __exit__(self, *exc):
        self.sock.close()
        self.t.join(timeout=5)


FIXTURES = __import__("pathlib").Path(__file__).parent / "fixtures"


def test_tls_checks_the_urls_name_even_when_resolved_elsewhere():
    from engine.scenario.fakehttp import FakeHttpServer, parse_routes

    crt, key = str(FIXTURES / "dispatch.crt"), str(FIXTURES / "dispatch.key")
    srv = FakeHttpServer(tls=(crt, key))
    try:
        srv.set_routes(parse_routes({"GET /x": {"json": {"v": 1}}}))
        base = {"allow_hosts": ["dispatch.example", "other.example"], "resolve": {"*": srv.address},
                "max_timeout": 2}
        ctx = Ctx({"http": {**base, "ca_file": crt}})
        assert call(ctx, url="https://dispatch.example/x", map={"v": "v"}).variables == {"http_status": 200, "v": 1}
        r = call(ctx, url="https://other.example/x")           # same server, certificate for another name
        assert (r.outcome, r.variables) == ("http_error", {"http_status": 0})
        assert "TLS with other.example" in ctx.logs[-1][0]
        unknown_ca = Ctx({"http": base})
        assert call(unknown_ca, url="https://dispatch.example/x").outcome == "http_error"
        assert "CERTIFICATE_VERIFY_FAILED" in unknown_ca.logs[-1][0]
        assert call(Ctx({"http": {**base, "verify_tls": False}}), url="https://other.example/x").outcome == "ok"
        assert len([q for q in srv.requests]) == 2               # refused handshakes sent nothing
    finally:
        srv.close()
