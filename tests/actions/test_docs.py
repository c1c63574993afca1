"""docs/actions.md documents every registered action with exactly its parameters (and which are
required), outcomes and declared variables; its examples use real parameters and outcomes."""

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from engine.actions import default_registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "actions.md"
HEAD = re.compile(r"^### `([^`]+)`\s*$", re.M)


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    ref = text.split("\n## Reference\n", 1)[1]
    parts = HEAD.split(ref)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def ticked(s: str) -> list[str]:
    return re.findall(r"`([^`]+)`", s)


def params_table(body: str) -> dict[str, bool]:
    rows = re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|(?:[^|\\]|\\.)*\| (yes|no) \|", body, re.M)
    return {name: req == "yes" for name, req in rows}


def outcomes(body: str) -> list[str]:
    m = re.search(r"^\*\*Outcomes:\*\* (.+)$", body, re.M)
    assert m, "no **Outcomes:** line"
    return ticked(m.group(1))


def sets(body: str) -> dict[str, set[str]]:
    m = re.search(r"^\*\*Sets:\*\*\n((?:- .*\n)+)", body, re.M)
    assert m, "no **Sets:** list"
    out: dict[str, set[str]] = {}
    for line in m.group(1).splitlines():
        head, _, tail = line[2:].partition(":")
        names = set() if tail.strip().startswith("nothing") else set(ticked(tail.split(";")[0]))
        for outcome in ticked(head):
            out[outcome] = names
    return out


def examples(body: str) -> list[dict]:
    return [YAML(typ="safe", pure=True).load(b) for b in re.findall(r"```yaml\n(.*?)```", body, re.S)]


REG = default_registry()
DOCS = sections()


def test_every_documented_action_exists():
    assert sorted(DOCS) == sorted(REG), "docs/actions.md and the registry list different actions"


@pytest.mark.parametrize("name", sorted(REG))
def test_action_is_documented_exactly(name):
    assert name in DOCS, f"{name} is not documented in docs/actions.md"
    action, body = REG[name], DOCS[name]
    props = action.params.get("properties", {})
    required = set(action.params.get("required", ()))
    documented = params_table(body)
    if props:
        assert documented == {p: p in required for p in props}, f"{name}: parameter table differs"
    else:
        assert not documented and "No parameters." in body
    assert outcomes(body) == list(action.outcomes), f"{name}: outcomes differ"
    declared = action.sets if isinstance(action.sets, dict) else {o: action.sets for o in action.outcomes}
    want = {o: set(v) for o, v in declared.items() if v}
    got = {o: v for o, v in sets(body).items() if v}
    assert got == want, f"{name}: variables differ"


@pytest.mark.parametrize("name", sorted(REG))
def test_examples_use_real_parameters_and_outcomes(name):
    action, found = REG[name], 0
    props = set(action.params.get("properties", {}))
    for doc in examples(DOCS[name]):
        for state in doc.values():
            if not isinstance(state, dict) or state.get("action") != name:
                continue
            found += 1
            params = state.get("params") or {}
            assert set(params) <= props and set(action.params.get("required", ())) <= set(params)
            nxt = state.get("next")
            if isinstance(nxt, dict):
                assert set(nxt) <= set(action.outcomes) | {"default", "error"}
    assert found, f"{name}: no example state"


def test_the_checker_catches_a_drift():
    """A changed action no longer matches its documentation (the test is not vacuous)."""
    import dataclasses

    action = dataclasses.replace(REG["booking.cancel"], outcomes=("cancelled", "not_found"))
    assert outcomes(DOCS["booking.cancel"]) != list(action.outcomes)
    body = DOCS["info.read"].replace("| `key` |", "| `keys` |")
    assert params_table(body) != {"topic": True, "key": False}
