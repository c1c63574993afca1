"""Each bad flow in tests/flow/bad/ has a .expected file: the exact diagnostics, one per line.

Set IVRFLOW_REGEN=1 to rewrite the .expected files (then review the diff)."""

import os
from pathlib import Path

import pytest

from engine.flow import compile_file

HERE = Path(__file__).parent

BAD = sorted((HERE / "bad").glob("*.yaml"))
GOOD = sorted((HERE / "good").glob("*.yaml"))


def headlines(path: Path, registry):
    flow, diags = compile_file(path, registry=registry, display_name=path.name)
    return [d.headline() for d in diags], flow


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_flow_exact_diagnostics(path, registry):
    lines, flow = headlines(path, registry)
    expected_file = path.with_suffix(".expected")
    if os.environ.get("IVRFLOW_REGEN"):
        expected_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = expected_file.read_text(encoding="utf-8").splitlines()
    assert lines == expected
    code = path.stem.split("_")[0].upper()
    assert any(f"[{code}]" in l for l in lines), f"{path.name} must produce a {code}"
    if code.startswith("E"):
        assert flow is None


@pytest.mark.parametrize("path", GOOD, ids=[p.stem for p in GOOD])
def test_good_flow_compiles(path, registry):
    lines, flow = headlines(path, registry)
    assert lines == []
    assert flow is not None


def test_every_check_has_a_fixture():
    codes = {p.stem.split("_")[0].upper() for p in BAD}
    documented = set()
    doc = (HERE.parent.parent / "docs" / "flow-language.md").read_text(encoding="utf-8")
    import re

    documented = set(re.findall(r"\| `?([EW][0-9]{3})`? \|", doc))
    # every documented flow check (not the prompt ones, E5xx, tested in tests/prompts) has a bad fixture
    missing = {c for c in documented if not c.startswith("E5") and c not in ("E000",)} - codes
    assert not missing, f"no bad fixture for {sorted(missing)}"
