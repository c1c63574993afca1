"""``ivrflow db`` commands (the click group the lead mounts in cli.py)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from click.testing import CliRunner

from engine.store import Store
from engine.store.cli import db, jobs
from engine.store.migrate import head_revision


def run(*args, env=None):
    res = CliRunner().invoke(db, list(args), env=env, catch_exceptions=False)
    assert "Traceback" not in res.output
    return res


def test_upgrade_seed_check_info(db_url):
    assert run("--db", db_url, "upgrade").output.strip() == f"database at revision {head_revision()}"
    assert f"database: {head_revision()}" in run("current", "--db", db_url).output
    out = run("seed", "--demo", "--today", "2030-03-04", "--db", db_url)
    assert out.exit_code == 0 and "patients +6" in out.output
    assert "patients +0" in run("seed", "--demo", "--today", "2030-03-04", "--db", db_url).output
    assert run("check", "--db", db_url).output.strip() == "ledger consistent"
    out = run("info", "new_drugs", "--lang", "en", "--db", db_url)
    assert out.output.startswith("New this month")
    assert "hospital_intro: en, zh" in run("info", "--db", db_url).output
    with Store(db_url) as s:
        assert min(x.day for x in s.available_slots(date_from="2030-03-04")).isoformat() == \
            "2030-03-04"


def test_env_var_and_default_path(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/env.db"
    assert run("upgrade", env={"IVRFLOW_DB": url}).exit_code == 0
    assert "database: " + head_revision() in run("current", env={"IVRFLOW_DB": url}).output
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IVRFLOW_DB", raising=False)
    assert run("upgrade").exit_code == 0
    assert (tmp_path / "var" / "ivrflow.db").is_file()


def test_load_info(tmp_path, sqlite_url):
    run("upgrade", "--db", sqlite_url)
    good = tmp_path / "info.yaml"
    good.write_text("hospital_intro:\n  zh: 新介绍\n  en: New intro\n", encoding="utf-8")
    out = run("load-info", str(good), "--db", sqlite_url)
    assert out.exit_code == 0 and "loaded 2" in out.output
    assert run("info", "hospital_intro", "--db", sqlite_url).output.strip() == "新介绍"
    bad = tmp_path / "bad.yaml"
    bad.write_text("hospital_intro:\n  zh: 再改\nBAD TOPIC:\n  zh: x\n", encoding="utf-8")
    out = run("load-info", str(bad), "--db", sqlite_url)
    assert out.exit_code == 1 and "BAD TOPIC" in out.output and str(bad) in out.output
    assert run("info", "hospital_intro", "--db", sqlite_url).output.strip() == "新介绍"


def test_refund_no_shows_command(sqlite_url):
    run("upgrade", "--db", sqlite_url)
    run("seed", "--demo", "--today", "2030-03-04", "--db", sqlite_url)
    monday_morning = dt.datetime(2030, 3, 4, 9, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai"))
    with Store(sqlite_url, tz="Asia/Shanghai") as s:
        assert s.register("10000001", doctor="101", date="2030-03-04", session="am",
                          now=monday_morning).outcome == "registered"
    out = run("refund-no-shows", "--today", "2030-03-05", "--db", sqlite_url)
    assert "refunded 1 registration(s), 5000 cents" in out.output
    out = run("refund-no-shows", "--today", "2030-03-05", "--db", sqlite_url)
    assert "refunded 0 registration(s)" in out.output
    res = CliRunner().invoke(jobs, ["--db", sqlite_url, "refund-no-shows", "--today",
                                    "2030-03-05"])
    assert res.exit_code == 0 and "refunded 0 registration(s)" in res.output


@pytest.mark.parametrize("args,code,message", [
    (["seed"], 2, "use --demo"),
    (["seed", "--demo", "--today", "2030-02-30"], 2, "not a valid date"),
    (["--db", "mysql://x/y", "upgrade"], 1, "unsupported database"),
    (["info", "x", "--db", "sqlite:///{tmp}/empty.db"], 1, "ivrflow db upgrade"),
    (["seed", "--demo", "--db", "sqlite:///{tmp}/empty.db"], 1, "ivrflow db upgrade"),
    (["load-info", "{tmp}/missing.yaml", "--db", "sqlite:///{tmp}/x.db"], 1, "cannot read"),
    (["seed", "--demo", "--tz", "Mars/Olympus", "--db", "sqlite:///{tmp}/x.db"], 1,
     "unknown time zone"),
])
def test_errors_are_clean(tmp_path, args, code, message):
    res = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == code and message in res.output
