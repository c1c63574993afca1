"""flows/hospital.test.yaml passes with 100 % state and transition coverage of flows/hospital.yaml
on in-memory SQLite; its money cases (ledger rows asserted) also pass on PostgreSQL, a fresh schema
per case (the whole suite there: ``ivrflow test flows/hospital.test.yaml --db postgresql://...``)."""

import os
from pathlib import Path

from engine.scenario.runner import Runner

SUITE = Path(__file__).resolve().parents[2] / "flows" / "hospital.test.yaml"


#: cases whose names contain one of these write money (bookings, ledger rows)
MONEY = ("paid registration", "VIP registration", "VIPs pay", "cancel a paid", "charged", "runs out")


def run_suite(db_url=None):
    runner = Runner(db_url=db_url)
    try:
        sr = runner.run_file(SUITE)
        cov = runner.coverage[sr.suite.flow_path.resolve()]
        return sr, cov
    finally:
        runner.close()


def check(sr, cov):
    assert sr.suite.ok and sr.flow is not None, [d.headline() for d in sr.suite.diagnostics + sr.flow_diagnostics]
    bad = {c.case.name: c.failures for c in sr.cases if c.status != "pass"}
    assert not bad, bad
    assert len(sr.cases) >= 50
    assert cov.percent() == 100.0, cov.uncovered()


def test_hospital_suite_on_sqlite():
    check(*run_suite())


def test_money_cases_on_postgresql(pg_required):
    runner = Runner(db_url=os.environ.get("IVRFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test"))
    try:
        results = [c for word in MONEY for c in runner.run_file(SUITE, only=word).cases]
    finally:
        runner.close()
    assert len(results) >= 8
    bad = {c.case.name: c.failures for c in results if c.status != "pass"}
    assert not bad, bad
