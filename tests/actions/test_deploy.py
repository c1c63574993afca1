"""deploy/: the systemd units and the cron line of the no-show refund job are well formed and
the command they run refunds a no-show on a real database."""

import configparser
import os
import shlex
import re
import shutil
import subprocess
import sys
from pathlib import Path

from act_helpers import FAST_PIN, TZ, Clock, at

from engine.store import Store
from engine.store.migrate import upgrade
from engine.store.seed import seed_demo

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None, strict=True)
    cp.optionxform = str
    cp.read_string((DEPLOY / name).read_text())
    return cp


def job_argv() -> list[str]:
    argv = shlex.split(unit("ivrflow-refund-no-shows.service")["Service"]["ExecStart"])
    assert Path(argv[0]).name == "ivrflow" and argv[1:] == ["jobs", "refund-no-shows"]
    return argv


def test_service_and_timer():
    svc = unit("ivrflow-refund-no-shows.service")
    assert svc["Service"]["Type"] == "oneshot"
    assert svc["Service"]["EnvironmentFile"] == "/etc/ivrflow/ivrflow.env"
    env = dict(line.split("=", 1) for line in (DEPLOY / "ivrflow.env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    assert set(env) == {"IVRFLOW_DB", "IVRFLOW_TZ", "IVRFLOW_ESL_PASSWORD"}
    # the serve example config reads every variable it needs from this same file
    example = (DEPLOY.parent / "freeswitch" / "ivrflow-serve.example.yaml").read_text()
    assert set(re.findall(r"\$\{(IVRFLOW_\w+)\}", example)) <= set(env)
    timer = unit("ivrflow-refund-no-shows.timer")
    cal = timer["Timer"]["OnCalendar"]
    assert cal.endswith("Asia/Shanghai") and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "calendar", cal], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


def test_cron_line_runs_the_same_job():
    lines = [x for x in (DEPLOY / "crontab").read_text().splitlines() if x and not x.startswith("#")]
    env = dict(x.split("=", 1) for x in lines if "=" in x.split()[0])
    assert env["CRON_TZ"] == env["IVRFLOW_TZ"] == "Asia/Shanghai"
    (entry,) = [x for x in lines if "=" not in x.split()[0]]
    fields = entry.split(None, 5)
    assert fields[:5] == ["15", "0", "*", "*", "*"]
    assert "ivrflow jobs refund-no-shows" in fields[5]


def test_the_job_refunds_a_no_show(tmp_path):
    url = f"sqlite:///{tmp_path / 'ivrflow.db'}"
    upgrade(url)
    with Store(url, tz=TZ, clock=Clock(at()), pin_params=FAST_PIN) as s:
        seed_demo(s)
        reg = s.register("10000001", date="2025-03-04", session="am", department="01")
        assert reg.outcome == "registered" and s.balance("10000001") == 49000
    ivrflow = shutil.which("ivrflow", path=str(Path(sys.executable).parent)) or shutil.which("ivrflow")
    argv = [ivrflow, *job_argv()[1:]]
    env = {**os.environ, "IVRFLOW_DB": url, "IVRFLOW_TZ": "Asia/Shanghai"}
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "refunded 1 registration(s), 1000 cents" in r.stdout
    with Store(url, tz=TZ) as s:
        assert s.balance("10000001") == 50000
        assert s.booking(reg.confirmation_no).status == "refunded"
    again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert "refunded 0 registration(s)" in again.stdout
