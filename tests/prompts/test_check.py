"""check_prompts / check_flows: flows against their catalog."""

from pathlib import Path

from engine.flow.diagnostics import Position
from engine.prompts.catalog import load_catalog
from engine.prompts.check import BUILTIN_VARIABLES, FlowUse, check_flows, check_prompts, unused_prompts

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prompts"
CAT = load_catalog(FIXTURES, "clinic")
ALL_VARS = frozenset({"balance", "day", "at", "department", "confirmation"})


def at(line, col=5, file="flows/clinic.yaml"):
    return Position(file, line, col)


def codes(diags):
    return sorted((d.code, d.severity, d.position.line, d.message, d.hint) for d in diags)


def test_clean_flow_using_every_prompt():
    refs = [(pid, at(i + 1)) for i, pid in enumerate(sorted(CAT.ids("en")))]
    assert check_prompts(refs, ALL_VARS, CAT, ["zh-CN", "en"]) == []


def test_missing_prompt_with_suggestion():
    diags = check_prompts([("welcome", at(3)), ("goodby", at(9))], ALL_VARS, CAT, ["zh-CN", "en"],
                          report_unused=False)
    assert codes(diags) == [
        ("E501", "error", 9, "prompt 'goodby' is not defined in clinic/en.yaml", "did you mean 'goodbye'?"),
        ("E501", "error", 9, "prompt 'goodby' is not defined in clinic/zh-CN.yaml", "did you mean 'goodbye'?"),
    ]


def test_prompt_missing_in_one_language_only(tmp_path):
    for lang, body in {"en": "  a: A\n  b: B\n", "zh-CN": "  a: 甲\n"}.items():
        (tmp_path / "c").mkdir(exist_ok=True)
        (tmp_path / "c" / f"{lang}.yaml").write_text("prompts:\n" + body, encoding="utf-8")
    cat = load_catalog(tmp_path, "c")
    diags = check_prompts([("a", at(1)), ("b", at(2))], set(), cat, ["en", "zh-CN"])
    assert [(d.code, d.position.line, d.message) for d in diags] == [
        ("E501", 2, "prompt 'b' is not defined in c/zh-CN.yaml")]
    # a flow declaring only English is fine
    assert check_prompts([("a", at(1)), ("b", at(2))], set(), cat, ["en"]) == []


def test_template_variable_never_set():
    diags = check_prompts([("balance_is", at(4)), ("appointment_confirmed", at(7))],
                          {"balanse", "day", "at", "department"}, CAT, ["zh-CN", "en"], report_unused=False)
    assert codes(diags) == [
        ("E502", "error", 4, "prompt 'balance_is' (zh-CN, en) reads variable 'balance', which this flow never sets",
         "did you mean 'balanse'?"),
        ("E502", "error", 7, "prompt 'appointment_confirmed' (zh-CN, en) reads variable 'confirmation', "
                             "which this flow never sets", None),
    ]


def test_builtins_count_as_set(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "en.yaml").write_text('prompts:\n  l: "Language {{ lang }}"\n', encoding="utf-8")
    cat = load_catalog(tmp_path, "c")
    assert "lang" in BUILTIN_VARIABLES
    assert check_prompts([("l", at(1))], set(), cat, ["en"]) == []


def test_language_missing_from_catalog():
    lp = at(2, 12)
    diags = check_prompts([("welcome", at(5))], ALL_VARS, CAT, ["zh-CN", "en-US", "fr"],
                          languages_position=lp, report_unused=False)
    assert [(d.code, d.position, d.message.split(" (")[0], d.hint) for d in diags] == [
        ("E504", lp, "prompt catalog 'clinic' has no language 'en-US'", "add clinic/en-US.yaml"),
        ("E504", lp, "prompt catalog 'clinic' has no language 'fr'", "add clinic/fr.yaml"),
    ]


def test_unused_prompts_are_warnings_at_the_catalog():
    diags = check_prompts([("welcome", at(1))], ALL_VARS, CAT, ["zh-CN", "en"])
    unused = [d for d in diags if d.code == "W503"]
    assert {d.severity for d in unused} == {"warning"}
    assert len(unused) == 2 * (len(CAT.ids("en")) - 1)
    bal = [d for d in unused if "'balance_is'" in d.message]
    assert sorted((d.position.file.rsplit("/", 1)[-1], d.position.line) for d in bal) == [
        ("en.yaml", 7), ("zh-CN.yaml", 11)]


def test_unused_judged_over_all_flows():
    ids = sorted(CAT.ids("en"))
    half = len(ids) // 2
    flow_a = FlowUse([(pid, at(i, file="flows/a.yaml")) for i, pid in enumerate(ids[half:])], ALL_VARS, ("zh-CN", "en"))
    flow_b = FlowUse([(pid, at(i, file="flows/b.yaml")) for i, pid in enumerate(ids[:half])], frozenset(), ("en",))
    diags = check_flows(CAT, [flow_a, flow_b])
    assert not [d for d in diags if d.code == "W503"]            # each flow alone would leave some unused
    assert [d for d in check_prompts(flow_a.refs, ALL_VARS, CAT, ["en"]) if d.code == "W503"]
    # flow b never sets the variables its templates read: reported against flow b only
    e502 = [d for d in diags if d.code == "E502"]
    assert e502 and {d.position.file for d in e502} == {"flows/b.yaml"}
    assert {d.code for d in unused_prompts(CAT, [])} == {"W503"}


def test_variables_passed_by_the_reference_count_for_it_only():
    refs = [("balance_is", at(4)), ("balance_is", at(8))]
    diags = check_prompts(refs, set(), CAT, ["en"], ref_vars=[{"balance"}, frozenset()], report_unused=False)
    assert [(d.code, d.position.line) for d in diags] == [("E502", 8)]
