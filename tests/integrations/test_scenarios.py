"""Scenario files with integrations: HTTP routes served by a real local server, external
databases seeded per case, the example suites, explore and the --config option."""

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.scenario.runner import Runner, failure_report
from engine.scenario.spec import load_suite

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"


@pytest.fixture
def runner():
    r = Runner(prompts_root=ROOT / "prompts")
    yield r
    r.close()


@pytest.mark.parametrize("suite", ["school.test.yaml", "logistics.test.yaml"])
def test_example_suites_pass_with_full_coverage(runner, suite):
    sr = runner.run_file(FLOWS / suite)
    bad = [failure_report(c) for c in sr.cases if c.status != "pass"]
    assert sr.ok and not bad, "\n".join(bad)
    cov = runner.coverage[(FLOWS / suite.replace(".test", "")).resolve()]
    assert cov.to_json()["percent"] == 100.0


@pytest.mark.parametrize("only", ["scores of the latest term", "does not answer"])
def test_school_cases_on_postgresql(pg_required, pg_tools, only):
    """The school's database is made on PostgreSQL too (an isolated schema per case)."""
    r = Runner(prompts_root=ROOT / "prompts", db_url=pg_tools.conninfo)
    try:
        sr = r.run_file(FLOWS / "school.test.yaml", only=only)
    finally:
        r.close()
    assert sr.cases and all(c.status == "pass" for c in sr.cases), [failure_report(c) for c in sr.cases]


def write(tmp_path, text, name="t.test.yaml"):
    f = tmp_path / name
    f.write_text(textwrap.dedent(text), encoding="utf-8")
    return f


FLOW = """\
flow: t
languages: [en]
start: look
variables: {item: "0"}
states:
  look:
    action: http
    params: {url: "http://api.example/items/{{ item }}", map: {name: name}, timeout: 2}
    next: {ok: found, not_found: bye, default: bye}
  found:
    action: sql
    params: {database: shop, query: "SELECT price FROM prices WHERE name = :n", args: {n: "{{ name }}"}, map: {price: price}}
    next: {found: bye, not_found: bye, failed: bye}
  bye: {hangup: true}
"""


def test_spec_errors_have_positions(tmp_path):
    (tmp_path / "t.yaml").write_text(FLOW)
    f = write(tmp_path, """\
        defaults:
          config: {http: {alow_hosts: [x]}}
          http:
            "FETCH /x": {}
            "GET /y": {stauts: 200}
        cases:
          - name: a
            databases:
              Shop: {}
              shop: {setup: missing.sql, rows: {prices: {name: x}}, down: maybe, extra: 1}
            expect: {requests: [{verb: GET}]}
    """)
    s = load_suite(f)
    got = [d.headline().split(": ", 1)[1] for d in s.diagnostics]
    assert any("config http: unknown key 'alow_hosts' (did you mean 'allow_hosts'?)" in g for g in got)
    assert any("http: route 'FETCH /x': write it as \"METHOD /path\"" in g for g in got)
    assert any("database name 'Shop'" in g for g in got)
    assert any("setup script" in g and "missing.sql not found" in g for g in got)
    assert any("rows of table 'prices' must be a list of mappings" in g for g in got)
    assert any("down must be true" in g for g in got)
    assert any("unknown key 'extra' in database 'shop'" in g for g in got)
    assert any("unknown key 'verb' in an expected request" in g for g in got)
    pos = {d.message.split(":")[0]: d.position.line for d in s.diagnostics}
    assert pos["config http"] == 2


SUITE = """\
defaults:
  config: {http: {allow_hosts: [api.example], max_timeout: 0.2}}
  http:
    "GET /items/*": {status: 404}
    "GET /items/7": {json: {name: tea}}
  databases:
    shop:
      setup: shop.sql
      rows: {prices: [{name: tea, price: 250}]}
cases:
  - name: found in both systems
    variables: {item: "7"}
    expect:
      path: [look, found, bye]
      variables: {name: tea, price: 250}
      requests: [{method: GET, host: api.example, path: /items/7}]
  - name: a row added by the case, a route replaced by the case
    variables: {item: "7"}
    http: {"GET /items/7": {json: {name: coffee}}}
    databases: {shop: {rows: {prices: [{name: coffee, price: 300}]}}}
    expect: {variables: {price: 300}}
  - name: the price list is down
    variables: {item: "7"}
    databases: {shop: {down: true}}
    expect: {actions: [{action: http, outcome: ok}, {action: sql, outcome: failed}]}
  - name: wrong expectations are reported
    variables: {item: "8"}
    expect: {requests: [{path: /items/9}]}
  - name: a request nobody answers fails the case
    variables: {item: "8/parts"}
    expect: {path: [look, bye]}
"""


def test_routes_and_databases_per_case(tmp_path, runner):
    (tmp_path / "t.yaml").write_text(FLOW)
    (tmp_path / "shop.sql").write_text("CREATE TABLE prices (name VARCHAR(20) PRIMARY KEY, price INTEGER NOT NULL);")
    f = write(tmp_path, SUITE)
    sr = runner.run_file(f)
    status = {c.case.name: c for c in sr.cases}
    for name in ("found in both systems", "a row added by the case, a route replaced by the case",
                 "the price list is down"):
        assert status[name].status == "pass", failure_report(status[name])
    wrong = "\n".join(status["wrong expectations are reported"].failures)
    assert "request 1 does not match {'path': '/items/9'}" in wrong
    assert "1. GET http://api.example/items/8" in wrong
    nobody = "\n".join(status["a request nobody answers fails the case"].failures)
    assert status["a request nobody answers fails the case"].status == "fail"
    assert "the flow sent GET http://api.example/items/8/parts, which no route answers" in nobody


def test_explore_against_a_scenarios_systems():
    from engine.actions import default_registry
    from engine.flow import compile_file
    from engine.runtime.resolver import make_resolver
    from engine.scenario.environment import environment_for
    from engine.scenario.explore import Explorer

    reg = default_registry()
    flow, _ = compile_file(FLOWS / "logistics.yaml", registry=reg)
    resolver, _ = make_resolver(flow, ROOT / "prompts")
    with environment_for({}, str(FLOWS / "logistics.test.yaml")) as env:
        assert env.config["http"]["resolve"] == {"*": env.server.address}
        rep = Explorer(flow, registry=reg, resolver=resolver, depth=4, hangups="none",
                       config=env.config).run()
    assert not rep.problems
    assert "parcel_in_transit_eta" not in [s for s, _ in rep.unreached()]
    with pytest.raises(ValueError, match="no case named 'nope'"):
        environment_for({}, str(FLOWS / "logistics.test.yaml"), "nope")


def test_simulate_with_a_config_file(tmp_path, server, routes):
    from engine.runtime.cli import simulate

    routes({"GET /api/waybills/1234567890": {"json": {"status": "delivered", "location": {"city": "Ningbo"},
                                                       "eta": None}}})
    cfg = tmp_path / "ivrflow.yaml"
    cfg.write_text(f"http:\n  allow_hosts: [dispatch.example]\n  resolve: {{'*': '{server.address}'}}\n")
    r = CliRunner().invoke(simulate, [str(FLOWS / "logistics.yaml"), "--db", "none", "--lang", "en",
                                      "--config", str(cfg), "--input", "1 1234567890# 2"])
    assert r.exit_code == 0, r.output
    assert "was delivered in Ningbo" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("http: {allow_hosts: 5}\n")
    r = CliRunner().invoke(simulate, [str(FLOWS / "logistics.yaml"), "--db", "none", "--config", str(bad),
                                      "--input", "1"])
    assert r.exit_code == 2 and "http.allow_hosts must be a list of host names" in r.output
