"""`ivrflow validate` checks prompt ids and template variables against the flow's catalog."""

from pathlib import Path

from click.testing import CliRunner

import cli

FLOW = """\
flow: t
languages: [zh-CN, en]
prompts: mini
start: a
states:
  a:
    play: [welcom, {prompt: balance, vars: {amount: "{{ 1250 }}"}}, fee]
    next: b
  b:
    hangup: true
"""


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "prompts" / "mini").mkdir(parents=True)
    (tmp_path / "prompts" / "mini" / "zh-CN.yaml").write_text(
        "language: zh-CN\nprompts:\n  welcome: 您好\n  balance: '余额{{ amount | money }}'\n  fee: '挂号费{{ fee | money }}'\n",
        encoding="utf-8")
    (tmp_path / "prompts" / "mini" / "en.yaml").write_text(
        "language: en\nprompts:\n  welcome: Hello\n  balance: 'Balance {{ amount | money }}'\n  fee: 'Fee {{ fee | money }}'\n",
        encoding="utf-8")
    p = tmp_path / "flows" / "t.yaml"
    p.write_text(FLOW, encoding="utf-8")
    return p


def test_missing_prompt_and_unset_variable(tmp_path):
    p = _tree(tmp_path)
    r = CliRunner().invoke(cli.main, ["validate", str(p)])
    assert r.exit_code == 1
    heads = [l.split(": ", 1)[1] for l in r.output.splitlines() if ": error[" in l]
    assert "error[E501]: prompt 'welcom' is not defined in mini/en.yaml (did you mean 'welcome'?)" in heads
    assert "error[E501]: prompt 'welcom' is not defined in mini/zh-CN.yaml (did you mean 'welcome'?)" in heads
    # `amount` is passed by the reference; `fee` is set nowhere
    assert not any("'amount'" in h for h in heads)
    assert any(h.startswith("error[E502]: prompt 'fee' (") and "reads variable 'fee'" in h for h in heads)
    assert f"{p}:7:12:" in r.output  # position of the bad reference


def test_missing_catalog_and_language(tmp_path):
    p = _tree(tmp_path)
    (tmp_path / "prompts" / "mini" / "en.yaml").unlink()
    r = CliRunner().invoke(cli.main, ["validate", str(p)])
    assert r.exit_code == 1 and "E504" in r.output
    r = CliRunner().invoke(cli.main, ["validate", "--prompts", str(tmp_path / "nowhere"), str(p)])
    assert r.exit_code == 1 and "E500" in r.output
    assert CliRunner().invoke(cli.main, ["validate", "--no-prompts", str(p)]).exit_code == 0
