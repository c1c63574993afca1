"""Property tests: whatever the input, validation returns diagnostics, never raises."""

import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from engine.flow import compile_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "flows").glob("*.yaml"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=20), st.sampled_from(["next", "menu", "play", "states", "start", "{{ x", "{{ a | nope }}",
                                                          "5s", "1..3", "hangup", "*", "#"]))
keys = st.one_of(st.text(max_size=12), st.sampled_from(
    ["flow", "languages", "start", "states", "on", "next", "menu", "collect", "play", "say", "action", "params",
     "options", "branch", "set", "hangup", "subflows", "return", "call", "hours", "open", "keys", "prompt", "into"]))
documents = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)), max_leaves=40)


def _dump(data) -> str:
    import io

    y = YAML(typ="safe", pure=True)
    buf = io.StringIO()
    y.dump(data, buf)
    return buf.getvalue()


def _validators_agree(data):
    from engine.flow import schema

    assert schema.is_valid(data) == schema.validator().is_valid(data)


def _check(text: str, registry):
    flow, diags = compile_text(text, "fuzz.yaml", registry)
    for d in diags:
        assert d.position.line >= 1 and d.position.col >= 1
        assert d.code[0] in "EW"
    assert (flow is None) == any(d.severity == "error" for d in diags)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents)
def test_arbitrary_documents_give_diagnostics(registry, data):
    _check(_dump(data), registry)
    _validators_agree(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_arbitrary_text_gives_diagnostics(registry, text):
    _check(text, registry)


def _mutate(data, rnd: random.Random, depth=0):
    """Randomly delete, retype, rename or duplicate something in the tree."""
    if isinstance(data, dict) and data:
        k = rnd.choice(list(data))
        op = rnd.random()
        if op < 0.2:
            del data[k]
        elif op < 0.35:
            data[k + rnd.choice(["x", "_", ""])] = data.pop(k)
        elif op < 0.5:
            data[k] = rnd.choice([None, 1, "nowhere", [], {}, True, "{{ broken", "5x"])
        else:
            _mutate(data[k], rnd, depth + 1)
    elif isinstance(data, list) and data:
        i = rnd.randrange(len(data))
        if rnd.random() < 0.3:
            data.pop(i)
        else:
            _mutate(data[i], rnd, depth + 1)
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1), st.integers(1, 4))
def test_mutated_examples_give_diagnostics(registry, seed, n):
    from engine.actions import default_registry

    rnd = random.Random(seed)
    path = rnd.choice(EXAMPLES)
    y = YAML(typ="safe", pure=True)
    data = y.load(path.read_text(encoding="utf-8"))
    for _ in range(n):
        _mutate(data, rnd)
    _validators_agree(data)
    flow, diags = compile_text(_dump(data), path.name, default_registry())
    assert (flow is None) == any(d.severity == "error" for d in diags)


def test_text_mutations_of_examples(registry):
    """Byte-level damage: truncation, deleted lines, bad indentation, tabs."""
    from engine.actions import default_registry

    rnd = random.Random(1234)
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for _ in range(40):
            cut = list(lines)
            op = rnd.randrange(4)
            i = rnd.randrange(len(cut))
            if op == 0:
                cut = cut[:i]
            elif op == 1:
                del cut[i]
            elif op == 2:
                cut[i] = " " + cut[i]
            else:
                cut[i] = "\t" + cut[i]
            flow, diags = compile_text("\n".join(cut), path.name, default_registry())
            assert (flow is None) == any(d.severity == "error" for d in diags)
