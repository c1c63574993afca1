"""The click commands: simulate, test, explore (and the interactive terminal channel)."""

import re
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import rt_helpers
from click.testing import CliRunner
from rt_helpers import FIX

import engine.runtime.cli as cli

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(FIX / "demo.yaml")
PROMPTS = str(FIX / "prompts")


@pytest.fixture(autouse=True)
def test_registry(monkeypatch):
    monkeypatch.setattr(cli, "_registry", lambda: rt_helpers.registry())


def invoke(cmd, *args, input=None):
    return CliRunner().invoke(cmd, [str(a) for a in args], input=input, catch_exceptions=False)


# -- simulate -----------------------------------------------------------------------------------------

def test_simulate_prints_a_readable_transcript():
    r = invoke(cli.simulate, DEMO, "--input", "1 12345678# 4321", "--prompts", PROMPTS,
               "--at", "2025-03-03T10:00", "--prompt-seconds", "2")
    assert r.exit_code == 0, r.output
    out = r.output
    assert re.search(r"call sim-20250303100000-[0-9a-f]{8}  flow demo", out)
    assert "── welcome [play]" in out and "demo.yaml:20:3)" in out
    assert "IVR: [welcome] 欢迎致电示范热线。" in out
    assert "caller: 1  attempt 1" in out and "caller: ****  attempt 1" in out
    assert "action test.verify(account='12345678', pin='****') -> ok  sets balance=128" in out
    assert "IVR: 您的余额是128元" in out
    assert "end: completed, cause NORMAL_CLEARING after 12 s, 8 steps, in state bye" in out
    assert "4321" not in out


def test_simulate_in_english_without_positions():
    r = invoke(cli.simulate, DEMO, "-i", "2 7", "--prompts", PROMPTS, "--lang", "en", "--no-positions")
    assert r.exit_code == 0
    assert "IVR: [welcome] Welcome to the demo line." in r.output
    assert "demo.yaml:" not in r.output.split("\n", 1)[1]


def test_simulate_json_is_the_call_record():
    r = invoke(cli.simulate, DEMO, "-i", "9", "--json", "--var", "tries=3", "--caller", "13900000001",
               "--untrusted", "--chan", "sip_h_x=1")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["disposition"] == "transferred" and d["caller"] == "13900000001" and d["caller_trusted"] is False
    assert [e["type"] for e in d["events"]][:2] == ["state", "prompt"]
    assert d["events"][-1] == {**d["events"][-1], "type": "transfer", "queue": "agents", "priority": 50}
    assert d["variables"]["caller"] is None and d["variables"]["tries"] == 3


def test_simulate_exit_code_and_error_position():
    r = invoke(cli.simulate, FIX / "buggy.yaml", "-i", "1")
    assert r.exit_code == 1
    assert "!! template error at" in r.output and "buggy.yaml:14:3" in r.output
    assert "end: error" in r.output


def test_simulate_reads_the_script_from_stdin():
    r = invoke(cli.simulate, DEMO, "--prompt-seconds", "1", input="9\n")
    assert r.exit_code == 0 and "end: transferred" in r.output


@pytest.mark.parametrize("args, words", [
    (["-i", "1 x"], "unknown token 'x'"),
    (["-i", "1", "--lang", "fr"], "the flow speaks zh-CN, en, not 'fr'"),
    (["-i", "1", "--at", "tomorrow"], "bad time 'tomorrow'"),
    (["-i", "1", "--var", "novalue"], "use NAME=VALUE"),
    (["-i", "1", "--tz", "Mars/Base"], "unknown time zone"),
])
def test_simulate_bad_options_are_clear(args, words):
    r = invoke(cli.simulate, DEMO, *args)
    assert r.exit_code == 2 and words in r.output


def test_simulate_flow_with_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: x\nlanguages: [en]\nstart: nowhere\nstates:\n  a:\n    hangup: true\n")
    r = invoke(cli.simulate, bad, "-i", "1")
    assert r.exit_code == 2
    assert "error[E201]: start state 'nowhere' does not exist" in r.stderr
    assert "the flow has errors" in r.stderr


def test_simulate_with_memory_database():
    r = invoke(cli.simulate, FIX / "suites" / "bank.yaml", "-i", "10000001 123456", "--db", ":memory:",
               "--prompts", PROMPTS)
    assert r.exit_code == 0, r.output
    assert "action test.topup(card='10000001', cents=500) -> ok  sets balance=50500" in r.output


def test_simulate_without_database_notes_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = invoke(cli.simulate, FIX / "suites" / "bank.yaml", "-i", "10000001 123456", "--prompts", PROMPTS)
    assert "no database at var/ivrflow.db" in r.output
    assert "action error" in r.output          # ctx.store is None: the action fails, on.error takes over


def test_simulate_at_a_time_for_hours():
    r = invoke(cli.simulate, DEMO, "-i", "5", "--at", "2025-03-08T10:00")
    assert "local time Sat 2025-03-08 10:00: closed" in r.output


# -- test ---------------------------------------------------------------------------------------------

def test_test_command_passes_with_coverage(tmp_path):
    cj = tmp_path / "cov.json"
    r = invoke(cli.test, FIX / "suites", "--prompts", PROMPTS, "--coverage-json", cj, "-v")
    assert r.exit_code == 0, r.output
    assert "bank.test.yaml: 5 cases (5 passed)" in r.output
    assert "PASS  top up with the right PIN" in r.output
    assert "7/8  87.5%" in r.output and "transition auth --locked--> wrong" in r.output
    assert r.output.strip().endswith("ok: 0 failing cases")
    data = json.loads(cj.read_text())
    assert data["total"] == 75.0 and data["flows"][0]["transitions"] == {"total": 12, "covered": 8}


def test_test_command_fail_under():
    r = invoke(cli.test, FIX / "suites", "--prompts", PROMPTS, "--fail-under", "80", "--no-coverage")
    assert r.exit_code == 1
    assert "coverage 75.0% is under --fail-under 80%" in r.output
    assert "not covered" not in r.output


def test_test_command_reports_failures():
    r = invoke(cli.test, FIX / "failing" / "bank_wrong_expectations.yaml", "--prompts", PROMPTS)
    assert r.exit_code == 1
    assert "3 cases (1 passed, 2 failed)" in r.output
    assert "FAIL  expects the top-up but the PIN is wrong" in r.output
    assert "the call went another way at auth" in r.output
    assert "FAILED: 2 failing cases" in r.output


def test_test_command_json():
    r = invoke(cli.test, FIX / "failing" / "bank_wrong_expectations.yaml", FIX / "suites", "--prompts", PROMPTS,
               "--json", "-k", "PIN")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert [s["counts"] for s in d["suites"]] == [{"pass": 0, "fail": 1, "error": 0, "skip": 0},
                                                   {"pass": 2, "fail": 0, "error": 0, "skip": 0}]
    assert d["failed"] == 1 and d["coverage"]["total"] > 0


def test_test_command_bad_files(tmp_path):
    (tmp_path / "x.test.yaml").write_text("cases: 3\n")
    r = invoke(cli.test, tmp_path / "x.test.yaml", tmp_path / "nothing")
    assert r.exit_code == 2
    assert "no such file or directory" in r.output and "'cases' must be a non-empty list" in r.output


# -- explore ------------------------------------------------------------------------------------------

def test_explore_reports_problems_with_reproducible_input():
    r = invoke(cli.explore, FIX / "buggy.yaml", "--depth", "3", "--db", "none")
    assert r.exit_code == 1
    assert "problems (4):" in r.output
    assert f'shortest input: ivrflow simulate {FIX / "buggy.yaml"} --input "3 2"' in r.output
    assert "dead_end in state call_it" in r.output


def test_explore_clean_flow_json():
    r = invoke(cli.explore, DEMO, "--depth", "2", "--db", "none", "--value", "pin=4321", "--json")
    assert r.exit_code == 0
    d = json.loads(r.stdout)
    assert d["problems"] == [] and d["runs"] > 10 and d["depth"] == 2


def test_explore_rejects_a_server_database():
    r = invoke(cli.explore, DEMO, "--db", "sqlite:///x.db")
    assert r.exit_code == 2 and "needs a database it can copy" in r.output


# -- interactive ------------------------------------------------------------------------------------------

INTERACTIVE_FLOW = """
flow: live
languages: [en]
start: m
states:
  m:
    menu: {prompt: menu, options: {1: agent, 2: bye}, timeout: 0.3s, attempts: 2}
    next: {failed: bye}
  agent:
    transfer: {to: "8000"}
  bye:
    hangup: {cause: NORMAL_CLEARING, prompt: goodbye}
"""


def _interactive(tmp_path, keys: bytes):
    f = tmp_path / "live.yaml"
    f.write_text(INTERACTIVE_FLOW)
    code = "from engine.runtime.cli import simulate; simulate(prog_name='ivrflow simulate')"
    return subprocess.run([sys.executable, "-c", code, str(f), "--interactive"], input=keys, cwd=tmp_path,
                          capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_interactive_keys_from_the_terminal(tmp_path):
    p = _interactive(tmp_path, b"1")
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert "IVR: [menu]" in out and "caller: 1" in out
    assert "[call transferred to extension 8000]" in out and "end: transferred" in out


def test_interactive_end_of_input_is_a_hangup(tmp_path):
    p = _interactive(tmp_path, b"")
    out = p.stdout.decode()
    assert "[caller hung up: NORMAL_CLEARING]" in out and "end: hangup" in out


def test_interactive_hangup_key(tmp_path):
    p = _interactive(tmp_path, b"7h")
    out = p.stdout.decode()
    assert "caller: 7" in out and "end: hangup" in out

