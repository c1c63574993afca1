"""ivrflow explore: finds crashes, step limits and dead ends with the shortest input."""

from rt_helpers import load_flow, registry, run_call

from engine.flow import ir
from engine.scenario.explore import Explorer, valid_entry


def test_finds_each_problem_once_with_shortest_input():
    flow = load_flow("buggy.yaml")
    rep = Explorer(flow, registry=registry(), depth=4).run()
    got = {(p.kind, p.state): p for p in rep.problems}
    assert set(got) == {("step_limit", "spin_check"), ("unhandled_error", "divide"),
                        ("dead_end", "call_it"), ("unhandled_error", "call_it")}
    assert got[("step_limit", "spin_check")].script == "2"
    assert got[("unhandled_error", "divide")].script == "1"
    assert "ZeroDivisionError" in got[("unhandled_error", "divide")].message
    assert got[("dead_end", "call_it")].script == "3 2"
    assert got[("unhandled_error", "call_it")].script == "3 3"
    assert all(p.pos and p.pos.split(":")[-2].isdigit() for p in rep.problems)
    # the reported input reproduces the problem in an ordinary simulation
    for p in rep.problems:
        res, _ = run_call(flow, p.script)
        assert res.disposition == {"step_limit": "step_limit", "unhandled_error": "error",
                                   "dead_end": "dead_end"}[p.kind]


def test_clean_flow_has_no_problems_and_deduplicates(demo):
    rep = Explorer(demo, registry=registry(), depth=4, values={"pin": ["4321"], "topic": ["7", "0"]}).run()
    assert rep.problems == []
    assert rep.merged > 0                       # configurations reached twice were not walked twice
    assert rep.decision_points < rep.runs
    assert set(rep.ends) <= {"completed", "hangup", "transferred"}
    assert rep.coverage.state_hits[("", "balance")] > 0        # reached with the PIN given by --value
    assert rep.coverage.state_hits[("", "oops")] > 0           # topic 0 makes the action raise: on.error
    j = rep.to_json()
    assert j["problems"] == [] and j["depth"] == 4


def test_hangups_everywhere_reach_the_handler(demo):
    rep = Explorer(demo, registry=registry(), depth=2, hangups="all").run()
    assert rep.problems == []
    assert rep.coverage.handler_hits["on.hangup"] > rep.ends["hangup"] / 2
    none = Explorer(demo, registry=registry(), depth=2, hangups="none").run()
    assert none.ends.get("hangup", 0) == 0


def test_handled_flow_errors_are_reported():
    flow = load_flow("buggy.yaml")
    text = open(flow.file, encoding="utf-8").read().replace("limits: {max_steps: 60}",
                                                               "limits: {max_steps: 60}\non: {error: fine}")
    from rt_helpers import flow_from_text

    f2 = flow_from_text(text)
    rep = Explorer(f2, registry=registry(), depth=2).run()
    kinds = {(p.kind, p.state) for p in rep.problems}
    assert ("flow_error", "divide") in kinds                     # a template bug, even though handled
    assert ("unhandled_error", "divide") not in kinds


def test_depth_limits_the_walk(demo):
    shallow = Explorer(demo, registry=registry(), depth=1).run()
    deep = Explorer(demo, registry=registry(), depth=3).run()
    assert shallow.runs < deep.runs and shallow.cut > 0
    assert len(shallow.unreached()) > len(deep.unreached())


def test_max_runs_truncates():
    flow = load_flow("buggy.yaml")
    rep = Explorer(flow, registry=registry(), depth=6, max_runs=5).run()
    assert rep.truncated and rep.runs == 5 and "--max-runs" in rep.notes[0]


def test_valid_entry_respects_digits_and_pattern():
    def col(lo, hi, pattern=None):
        return ir.Collect((), "x", lo, hi, pattern=pattern)

    assert valid_entry(col(8, 8)) == "12345678"
    assert valid_entry(col(2, 3)) == "12"
    d = valid_entry(col(8, 8, r"^(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])$"))
    assert d in ("19800101", "20000101")
    assert valid_entry(col(4, 4, "^7{4}$")) is None


def test_hangups_in_a_flow_that_never_waits_for_input():
    from rt_helpers import flow_from_text

    flow = flow_from_text("""
flow: t
languages: [en]
start: hello
on: {hangup: note}
states:
  hello:
    play: [a, b]
    next: out
  out:
    transfer: {queue: q, announce: c}
  note:
    action: test.note
    next: done
  done:
    hangup: true
""")
    rep = Explorer(flow, registry=registry(), depth=2, hangups="all").run()
    assert rep.ends["transferred"] == 1
    assert rep.ends["hangup"] >= 3            # at once, and during the prompts a, b, c
    assert rep.coverage.state_hits[("", "note")] == rep.ends["hangup"]
    assert rep.problems == []
