"""Scenario files: loading, running, failure reports, coverage, databases."""

import json
import textwrap

import pytest
from rt_helpers import FIX, registry

from engine.scenario.coverage import Coverage, merge_table, total_percent
from engine.scenario.runner import Runner, failure_report
from engine.scenario.spec import discover, load_suite

SUITES = FIX / "suites"
FAILING = FIX / "failing"


@pytest.fixture(scope="module")
def databases():
    from engine.scenario.db import MemoryDatabases

    dbs = MemoryDatabases()
    yield dbs
    dbs.close()


@pytest.fixture
def runner(databases):
    r = Runner(registry=registry(), prompts_root=FIX / "prompts", databases=databases)
    yield r
    r.close()


def test_discover_finds_test_files_and_tests_dirs(tmp_path):
    (tmp_path / "flows" / "tests").mkdir(parents=True)
    (tmp_path / "flows" / "a.yaml").write_text("x")
    (tmp_path / "flows" / "a.test.yaml").write_text("x")
    (tmp_path / "flows" / "tests" / "b.yaml").write_text("x")
    (tmp_path / "flows" / "tests" / "notes.txt").write_text("x")
    files, problems = discover([tmp_path / "flows", tmp_path / "missing"])
    assert sorted(f.name for f in files) == ["a.test.yaml", "b.yaml"]
    assert problems == [f"{tmp_path / 'missing'}: no such file or directory"]


def test_flow_is_found_next_to_the_suite_or_above_tests_dir(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "x.yaml").write_text("flow: x")
    for f in (tmp_path / "x.test.yaml", tmp_path / "tests" / "x.yaml"):
        f.write_text("cases:\n  - {name: a, expect: {disposition: completed}}\n")
        assert load_suite(f).flow_path.resolve() == (tmp_path / "x.yaml").resolve()


def headlines(suite):
    return [d.headline().split(": ", 1)[1] for d in suite.diagnostics]


def test_scenario_errors_have_positions(tmp_path):
    f = tmp_path / "bad.test.yaml"
    f.write_text(textwrap.dedent("""\
        flow: nowhere.yaml
        defualts: {}
        cases:
          - name: one
            input: "1 2 zz"
            expect: {disposition: finished, staets: [a]}
          - name: one
            inputs: "1"
            expect: {path: a}
          - input: "1"
    """))
    s = load_suite(f)
    assert not s.ok
    got = headlines(s)
    assert any(h.startswith("error[T004]: flow file") for h in got)
    assert "error[T002]: unknown key 'defualts' in the scenario file (did you mean 'defaults'?)" in got
    assert any("input: unknown token 'zz'" in h for h in got)
    assert any("unknown disposition 'finished'" in h for h in got)
    assert "error[T002]: unknown key 'staets' in 'expect' (did you mean 'states'?)" in got
    assert "error[T003]: two cases are named 'one'" in got
    assert "error[T002]: unknown key 'inputs' in a case (did you mean 'input'?)" in got
    assert "error[T003]: expect.path must be a list" in got
    assert any("every case needs a 'name'" in h for h in got)
    pos = {d.message.split(":")[0]: (d.position.line, d.position.col) for d in s.diagnostics}
    assert pos["input"] == (5, 17)          # the bad token inside the quoted script


def test_suite_passes_with_data_rows_and_actions(runner):
    sr = runner.run_file(SUITES / "bank.test.yaml")
    assert sr.suite.ok and sr.flow is not None
    assert [(c.case.name, c.status) for c in sr.cases] == [
        ("top up with the right PIN", "pass"), ("a wrong PIN is counted", "pass"),
        ("star goes back to the card prompt", "pass"), ("unknown card", "pass"), ("nobody there", "pass")]
    assert sr.ok


def test_each_case_gets_a_fresh_database(runner):
    sr1 = runner.run_file(SUITES / "bank.test.yaml", only="right PIN")
    sr2 = runner.run_file(SUITES / "bank.test.yaml", only="right PIN")   # would be 2000 if shared
    assert sr1.ok and sr2.ok


def test_failures_are_readable_with_divergence_position(runner):
    sr = runner.run_file(FAILING / "bank_wrong_expectations.yaml")
    status = {c.case.name: c for c in sr.cases}
    assert status["passes"].status == "pass"
    bad = status["expects the top-up but the PIN is wrong"]
    assert bad.status == "fail"
    text = "\n".join(bad.failures)
    assert "state topup was never reached after auth: the call went another way at auth (" in text
    assert "bank.yaml:15:3): outcome failed -> wrong" in text
    assert "visited: card -> pin -> auth -> wrong -> bye" in text
    assert "balance is not set (expected 1500)" in text
    assert "closest: {card_no: '20000001', balance_cents: 1000}" in text
    assert f"expect.states ({FAILING / 'bank_wrong_expectations.yaml'}:11:15)" in text
    typo = status["typo in a state name"]
    assert typo.failures == [f"expect.visited ({FAILING / 'bank_wrong_expectations.yaml'}:25:16): no state 'tpoup' in flow bank "
                             "(did you mean 'topup'?)"]
    report = failure_report(bad)
    assert report.startswith("FAIL  expects the top-up but the PIN is wrong")
    assert "transcript:" in report and "action test.auth(card='20000001', pin='****') -> failed" in report
    assert "999999" in report       # the script is the test's own input ...
    assert "999999" not in "\n".join(report.splitlines()[report.splitlines().index("      transcript:"):])  # ... not the record


def test_coverage_counts_states_and_transitions(runner):
    runner.run_file(SUITES / "bank.test.yaml")
    cov = next(iter(runner.coverage.values()))
    assert (len(cov.states), cov.states_covered) == (8, 7)
    assert (len(cov.edges), cov.edges_covered) == (12, 8)
    assert cov.percent() == pytest.approx(100 * 15 / 20)
    unc = cov.uncovered()
    assert {"what": "state", "state": "oops", "pos": f"{SUITES / 'bank.yaml'}:29:3"} in unc
    assert any(u["what"] == "transition" and u["state"] == "auth" and u["outcome"] == "locked" for u in unc)
    j = cov.to_json()
    assert j["states"] == {"total": 8, "covered": 7} and j["percent"] == 75.0
    assert j["handlers"] == {"key *": 1, "on.error": 0}
    json.dumps(j)
    table = merge_table([cov])
    assert "7/8" in table and "8/12" in table and "75.0%" in table
    assert f"{SUITES / 'bank.yaml'}:18:38: transition auth --locked--> wrong" in table
    assert total_percent([cov]) == 75.0


def test_coverage_of_subflow_call_edges():
    from rt_helpers import load_flow, run_call

    flow = load_flow()
    cov = Coverage(flow)
    res, _ = run_call(flow, "2 7")
    cov.add(res.record)
    assert cov.edge_hits[("", "info", "found")] == 1          # the call state's edge, taken on return
    assert cov.edge_hits[("lookup", "find", "found")] == 1
    assert cov.state_hits[("lookup", "yes")] == 1


def test_seeded_demo_database(runner, tmp_path):
    """seed: true (the default) gives the store's demo data set for the simulated day."""
    import shutil

    shutil.copy(SUITES / "bank.yaml", tmp_path / "bank.yaml")
    (tmp_path / "bank.test.yaml").write_text(textwrap.dedent("""\
        defaults: {at: "2025-03-03T10:00:00+08:00"}
        cases:
          - name: demo patient tops up
            input: "10000001 123456"
            expect:
              variables: {balance: 50500}
              rows:
                patients: [{card_no: "10000001", balance_cents: 50500}]
    """))
    sr = runner.run_file(tmp_path / "bank.test.yaml")
    assert [c.status for c in sr.cases] == ["pass"], sr.cases[0].failures


def test_bad_seed_data_is_a_case_error(runner, tmp_path):
    import shutil

    shutil.copy(SUITES / "bank.yaml", tmp_path / "bank.yaml")
    (tmp_path / "bank.test.yaml").write_text(textwrap.dedent("""\
        defaults: {seed: false}
        cases:
          - name: bad table
            data: {patient: [{card_no: "1"}]}
            expect: {disposition: completed}
          - name: bad column
            data: {patients: [{card: "1"}]}
            expect: {disposition: completed}
    """))
    sr = runner.run_file(tmp_path / "bank.test.yaml")
    assert [c.status for c in sr.cases] == ["error", "error"]
    assert sr.cases[0].failures == ["data: unknown table 'patient' (did you mean 'patients'?)"]
    assert sr.cases[1].failures[0].startswith("data: table patients has no column 'card'")


def test_suite_on_postgresql(pg_url):
    r = Runner(registry=registry(), prompts_root=FIX / "prompts", db_url=pg_url)
    try:
        sr = r.run_file(SUITES / "bank.test.yaml", only="PIN")
    finally:
        r.close()
    assert [c.status for c in sr.cases] == ["pass", "pass"], [c.failures for c in sr.cases]


def test_call_record_is_stored_as_cdr(tmp_path):
    """The record feeds the store's call-detail record as is."""
    from rt_helpers import load_flow, run_call

    from engine.runtime.clock import VirtualClock
    from engine.scenario.db import open_store
    from engine.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'cdr.db'}"
    upgrade(url)
    store = open_store(url, VirtualClock(), "Asia/Shanghai")
    try:
        res, _ = run_call(load_flow(), "1 12345678# 4321")
        store.record_call(**res.record.cdr())
        got = store.call_record(res.record.call_id)
        assert got.disposition == "completed" and got.flow == "demo"
        assert got.trace["events"][0]["type"] == "state"
        assert "4321" not in json.dumps(got.trace)
    finally:
        store.close()


def test_input_as_a_list_and_stable_call_ids(runner, tmp_path):
    import shutil

    shutil.copy(SUITES / "bank.yaml", tmp_path / "bank.yaml")
    (tmp_path / "bank.test.yaml").write_text(textwrap.dedent("""\
        defaults: {seed: false, data: {patients: [{card_no: "20000001", name: x, pin: "654321"}]}}
        cases:
          - name: listed tokens
            input: [20000001, "654321"]
            expect: {visited: [told]}
    """))
    a = runner.run_file(tmp_path / "bank.test.yaml")
    b = runner.run_file(tmp_path / "bank.test.yaml")
    assert a.ok and b.ok
    assert a.cases[0].record.call_id == b.cases[0].record.call_id == "test-" + format(
        __import__("zlib").crc32(b"listed tokens"), "08x")
