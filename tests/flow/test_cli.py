import json
from pathlib import Path

from click.testing import CliRunner

import cli

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "flow" / "bad"


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def test_validate_examples_ok():
    r = run("validate", str(ROOT / "flows"))
    assert r.exit_code == 0, r.output
    assert "3 flows checked: 3 valid — OK" in r.output


def test_validate_reports_all_files_sorted_with_caret():
    r = run("validate", "--no-prompts", str(BAD / "e201_unknown_state.yaml"), str(BAD / "e002_duplicate_key.yaml"))
    assert r.exit_code == 1
    lines = r.output.splitlines()
    heads = [l for l in lines if ": error[" in l]
    assert heads[0].endswith("e002_duplicate_key.yaml:7:3: error[E002]: duplicate key 'a' (first defined at line 5)")
    assert "error[E201]: state 'resluts' does not exist in this flow (did you mean 'results'?)" in heads[1]
    i = lines.index(heads[1])
    assert lines[i + 1].strip() == "options: {1: resluts, 2: bye}"
    assert lines[i + 2].index("^") - 2 == 19  # column 20, under 'resluts'
    assert lines[-1] == "2 flows checked: 0 valid, 2 errors, 0 warnings"


def test_validate_json():
    r = run("validate", "--format", "json", "--no-prompts", str(BAD / "e305_unset_variable.yaml"))
    assert r.exit_code == 1
    data = json.loads(r.output)
    assert data["valid"] is False
    d = data["diagnostics"][0]
    assert (d["code"], d["line"], d["col"], d["severity"]) == ("E305", 14, 10, "error")
    assert d["hint"] == "did you mean 'exam_code'?"


def test_warnings_do_not_fail_unless_strict():
    p = str(BAD / "w310_option_hides_key.yaml")
    assert run("validate", "--no-prompts", p).exit_code == 0
    assert run("validate", "--no-prompts", "--strict", p).exit_code == 1


def test_usage_errors_exit_2(tmp_path):
    assert run("validate").exit_code == 2
    assert run("validate", str(tmp_path)).exit_code == 2       # a directory with no flows
    assert run("graph", "--format", "gif", str(ROOT / "flows" / "school.yaml")).exit_code == 2


def test_unreadable_file_is_a_diagnostic(tmp_path):
    r = run("validate", "--no-prompts", str(tmp_path / "missing.yaml"))
    assert r.exit_code == 1 and "error[E000]: cannot read file" in r.output
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"flow: t\nname: caf\xe9\n")
    r = run("validate", "--no-prompts", str(bad))
    assert "latin1.yaml:2:10: error[E001]: the file is not valid UTF-8" in r.output


def test_graph_formats(tmp_path):
    r = run("graph", str(ROOT / "flows" / "hospital.yaml"))
    assert r.exit_code == 0
    assert r.output.startswith("flowchart TD")
    assert 'main_menu -->|"key 3"| expert_auth' in r.output
    assert "subgraph authenticate" in r.output
    r = run("graph", "--format", "dot", str(ROOT / "flows" / "hospital.yaml"))
    assert '"vip_check" -> "vip_greeting" [label="vip", style=solid];' in r.output
    assert "Noto Sans CJK SC" in r.output
    out = tmp_path / "h.svg"
    r = run("graph", "--format", "svg", "-o", str(out), str(ROOT / "flows" / "hospital.yaml"))
    assert r.exit_code == 0
    svg = out.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "电话挂号与咨询" in svg


def test_graph_refuses_invalid_flow():
    r = run("graph", str(BAD / "e201_unknown_state.yaml"))
    assert r.exit_code == 1


def test_cjk_font_installed():
    import subprocess

    out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    assert "Noto Sans CJK SC" in out, "graph labels need fonts-noto-cjk (make sysdeps)"


def test_actions_command_lists_builtins():
    r = run("actions")
    assert r.exit_code == 0
    assert "booking.book  (ivrflow)" in r.output
    data = json.loads(run("actions", "--format", "json").output)
    names = {a["name"] for a in data}
    assert {"vip.check", "auth.verify", "http", "sql"} <= names
