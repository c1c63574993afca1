"""Call-level rules (docs/runtime.md): hangup, errors, limits, sub-flows, hours, record,
conference, transfer, masking, the clock."""

import asyncio
import json
import logging
import time

import pytest
from rt_helpers import CALLS, flow_from_text, registry, run_call

from engine.actions import Action, Result
from engine.runtime import Interpreter, SimChannel, SimOptions, VirtualClock
from engine.runtime.clock import parse_start


def ev(res, type_):
    return [e for e in res.record.events if e["type"] == type_]


# -- hangup ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("script, where", [
    ("hangup", None),                       # before anything
    ("wait:1 hangup", "welcome"),           # during the first prompt
    ("1 hangup", "main"),                   # right after a key (noticed before the next state)
    ("1 1234 wait:1 hangup", "account"),    # in the middle of an entry (inter-digit wait)
    ("1 12345678# wait:0.5 hangup", "pin"),  # during a prompt
    ("3 speak:2 hangup", "record_msg"),     # during a recording
    ("4 wait:30 hangup", "talk"),           # in a conference
])
def test_hangup_anywhere_ends_flow_and_runs_handler_once(demo, script, where):
    res, _ = run_call(demo, script)
    rec = res.record
    assert rec.disposition == "hangup"
    assert rec.hangup_by == "caller" and rec.hangup_cause == "NORMAL_CLEARING"
    assert rec.error is None and not [e for e in ev(res, "error")]     # never an error
    assert [e["to"] for e in ev(res, "jump") if e["via"] == "on.hangup"] == ["after_hangup"]
    assert [c for c in CALLS if c[0] == "test.note"] == [("test.note", {"what": f"hung up in {res.variables['last_key']}"})]
    assert rec.states()[-2:] == ["after_hangup", "done"]
    if where:
        h = ev(res, "hangup")[0]
        assert h["state"] == where


def test_hangup_during_handler_action_ends_handler_quietly():
    async def touches_channel(ctx, params):
        await ctx.channel.get_var("x")        # the channel is gone: raises CallHangup
        return Result("ok", {})

    reg = registry(Action("t.chan", "x", {"type": "object"}, ("ok",), touches_channel))
    flow = flow_from_text("""
flow: t
languages: [en]
start: m
on: {hangup: h}
states:
  m:
    menu: {prompt: m, options: {1: bye}}
    next: {failed: bye}
  bye:
    hangup: true
  h:
    action: t.chan
    next: h2
  h2:
    action: t.chan
    next: done
  done:
    hangup: true
""", reg)
    res, _ = run_call(flow, "hangup", reg=reg)
    assert res.disposition == "hangup"
    assert res.record.states() == ["h"]
    assert ev(res, "action")[0]["outcome"] == "hangup"
    assert not ev(res, "error")


def test_hangup_during_goodbye_prompt_is_completed_without_handler():
    flow = flow_from_text("""
flow: t
languages: [en]
start: m
on: {hangup: h}
states:
  m:
    menu: {prompt: m, options: {1: bye}}
    next: {failed: bye}
  bye:
    hangup: {cause: NORMAL_CLEARING, prompt: goodbye}
  h:
    action: test.note
    next: done
  done:
    hangup: true
""")
    res, _ = run_call(flow, "1")
    assert res.disposition == "completed" and res.record.hangup_by == "flow"
    res, _ = run_call(flow, "1 wait:1 hangup")          # goodbye plays from 2 s to 4 s
    assert res.record.states() == ["m", "bye"]
    assert res.disposition == "completed" and res.record.hangup_by == "caller"
    assert not CALLS                                    # the handler did not run


def test_hangup_cause_variable_is_set_for_the_handler():
    flow = flow_from_text("""
flow: t
languages: [en]
start: m
on: {hangup: h}
states:
  m:
    conference: {room: r, limit: "30"}
    next: bye
  bye:
    hangup: true
  h:
    set: {why: "{{ hangup_cause }}"}
    next: done
  done:
    hangup: true
""")
    res, _ = run_call(flow, "")
    assert res.variables["why"] == "ALLOTTED_TIMEOUT"
    assert res.record.hangup_cause == "ALLOTTED_TIMEOUT"


# -- errors -------------------------------------------------------------------------------------------

def test_action_exception_goes_to_on_error_and_is_logged_with_position(demo, caplog):
    with caplog.at_level(logging.WARNING, logger="ivrflow.runtime"):
        res, _ = run_call(demo, "2 0")
    err = ev(res, "error")[0]
    assert err["kind"] == "action" and err["state"] == "find" and err["scope"] == "lookup"
    assert err["pos"].endswith("demo.yaml:115:7")
    assert "database down" in err["message"]
    assert [(j["via"], j["to"]) for j in ev(res, "jump")] == [("on.error", "oops")]
    assert res.disposition == "completed"
    logged = [r.getMessage() for r in caplog.records]
    assert any("demo.yaml:115:7" in m and "database down" in m for m in logged)


def test_explicit_error_outcome_wins_over_on_error():
    async def boom(ctx, params):
        raise ValueError("nope")

    reg = registry(Action("t.boom", "x", {"type": "object"}, ("ok",), boom))
    flow = flow_from_text("""
flow: t
languages: [en]
start: a
on: {error: oops}
states:
  a:
    action: t.boom
    next: {ok: bye, error: handled}
  handled:
    play: handled
    next: bye
  oops:
    play: oops
    next: bye
  bye:
    hangup: true
""", reg)
    res, _ = run_call(flow, "", reg=reg)
    assert res.record.states() == ["a", "handled", "bye"]
    tr = ev(res, "transition")[0]
    assert (tr["outcome"], tr["to"]) == ("error", "handled")


PARAMS_FLOW = """
flow: t
languages: [en]
start: v
variables: {account: "1", n: 0}
on: {error: oops}
states:
  v:
    action: test.verify
    params: {account: "{{ account }}", pin: PIN}
    next: {ok: bye, bad: bye}
  oops:
    play: oops
    next: bye
  bye:
    hangup: true
"""


@pytest.mark.parametrize("pin, kind, text", [
    ('"{{ 12 }}"', "params", "parameter pin"),                 # fails the action's schema at run time
    ('"{{ 1 // n }}"', "template", "ZeroDivisionError"),     # the template itself fails
])
def test_bad_params_go_to_error_handler(pin, kind, text):
    flow = flow_from_text(PARAMS_FLOW.replace("PIN", pin))
    res, _ = run_call(flow, "")
    err = ev(res, "error")[0]
    assert err["kind"] == kind and text in err["message"] and err["state"] == "v"
    assert res.record.states() == ["v", "oops", "bye"]
    assert not CALLS   # the action never ran


def test_undeclared_outcome_is_an_error():
    async def weird(ctx, params):
        return Result("maybe", {})

    reg = registry(Action("t.weird", "x", {"type": "object"}, ("yes", "no"), weird))
    flow = flow_from_text("""
flow: t
languages: [en]
start: a
states:
  a:
    action: t.weird
    next: {yes: bye, no: bye}
  bye:
    hangup: true
""", reg)
    res, _ = run_call(flow, "", reg=reg)
    assert res.disposition == "error"
    assert res.record.error["kind"] == "outcome" and res.record.error["unhandled"] == "no error handler"
    assert res.record.hangup_cause == "NORMAL_TEMPORARY_FAILURE"


def test_error_in_error_handler_ends_call():
    flow = flow_from_text("""
flow: t
languages: [en]
start: a
variables: {n: 0}
on: {error: oops}
states:
  a:
    set: {x: "{{ 1 // n }}"}
    next: bye
  oops:
    set: {y: "{{ 2 // n }}"}
    next: bye
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "")
    assert res.disposition == "error"
    assert [e["state"] for e in ev(res, "error")] == ["a", "oops"]
    assert res.record.error["unhandled"] == "the error handler failed"


def test_step_limit_stops_runaway_loop():
    flow = flow_from_text("""
flow: t
languages: [en]
start: a
variables: {i: 0}
limits: {max_steps: 50}
states:
  a:
    set: {i: "{{ i + 1 }}"}
    next: b
  b:
    branch:
      - {if: "i < 1000000", then: a}
    next: bye
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "")
    assert res.disposition == "step_limit"
    assert res.record.steps == 50 and res.variables["i"] == 25
    assert res.record.error["kind"] == "step_limit"


def test_max_duration_is_a_time_limit():
    flow = flow_from_text("""
flow: t
languages: [en]
start: m
limits: {max_duration: 20s}
states:
  m:
    menu: {prompt: m, options: {1: m}, attempts: 1}
    next: {failed: bye}
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "1 1 1 1 1 1 1 1 1 1 1 1")
    assert res.disposition == "time_limit" and res.record.hangup_cause == "ALLOTTED_TIMEOUT"
    assert 20 < res.record.duration <= 22


def test_dead_end_when_an_outcome_has_no_transition():
    async def sometimes(ctx, params):
        return Result("rare", {})

    reg = registry(Action("t.opt", "x", {"type": "object"}, ("usual", "rare"), sometimes, optional_outcomes=("rare",)))
    flow = flow_from_text("""
flow: t
languages: [en]
start: a
states:
  a:
    action: t.opt
    next: {usual: bye}
  bye:
    hangup: true
""", reg)
    res, _ = run_call(flow, "", reg=reg)
    assert res.disposition == "dead_end"
    assert "outcome 'rare'" in res.record.error["message"]


# -- sub-flows, set, branch, say ------------------------------------------------------------------------

def test_subflow_shares_variables_and_returns_to_callers_target(demo):
    res, _ = run_call(demo, "2 7")
    assert res.record.states()[:6] == ["welcome", "main", "info", "lookup.ask", "lookup.find", "lookup.yes"]
    r = ev(res, "return")[0]
    assert (r["outcome"], r["to"]) == ("found", "info")
    assert res.variables["topic"] == "7" and res.variables["info_text"] == "七号主题"
    assert "info_say" in res.record.states()


def test_say_uses_the_language_and_lang_can_change(demo, text_resolver):
    res, _ = run_call(demo, "1 12345678# 4321", resolver=text_resolver, lang="en")
    said = [p["text"] for p in res.record.prompts()]
    assert said[0] == "Welcome to the demo line." and "Your balance is 128 yuan" in said


def test_set_keeps_expression_types():
    flow = flow_from_text("""
flow: t
languages: [en]
start: s
variables: {a: 2}
states:
  s:
    set: {n: "{{ a * 3 }}", txt: "x{{ a }}", b: "{{ a > 1 }}", lit: 5}
    next: bye
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "")
    v = res.variables
    assert (v["n"], v["txt"], v["b"], v["lit"]) == (6, "x2", True, 5)


# -- hours ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("at, expected", [
    ("2025-03-03T10:00:00+08:00", "agent"),       # Monday 10:00
    ("2025-03-03T18:00:00+08:00", "closed"),      # closing time is exclusive
    ("2025-03-08T10:00:00+08:00", "closed"),      # Saturday
    ("2025-05-02T10:00:00+08:00", "closed"),      # holiday (falls back to closed)
    ("2025-03-03T02:30:00+00:00", "agent"),       # 10:30 in Shanghai, given in UTC
])
def test_hours_open_closed_holiday(demo, at, expected):
    res, _ = run_call(demo, "5", start=parse_start(at))
    h = ev(res, "hours")[0]
    assert res.record.states()[3] == expected
    if at.startswith("2025-05-02"):
        assert h["outcome"] == "holiday"
        assert ev(res, "transition")[2]["edge"] == "closed"


# -- record ------------------------------------------------------------------------------------------------------

def test_record_ok_by_terminator_and_empty_by_silence(demo):
    res, _ = run_call(demo, "3 speak:5 #")
    r = ev(res, "record")[0]
    assert (r["outcome"], r["reason"], r["seconds"]) == ("ok", "terminator", 5.0)
    assert res.variables["message"] == r["path"] and r["path"].endswith(".wav")
    res, _ = run_call(demo, "3 timeout")
    r = ev(res, "record")[0]
    assert (r["outcome"], r["reason"]) == ("empty", "silence")
    res, _ = run_call(demo, "3 speak:4")
    r = ev(res, "record")[0]
    assert (r["outcome"], r["reason"], r["seconds"]) == ("ok", "silence", 4.0)
    res, _ = run_call(demo, "3 speak:100")
    r = ev(res, "record")[0]
    assert (r["outcome"], r["reason"], r["seconds"]) == ("ok", "max", 30.0)


def test_hangup_while_recording_keeps_the_recording_for_the_handler(demo):
    res, _ = run_call(demo, "3 speak:6 hangup")
    r = ev(res, "record")[0]
    assert r["reason"] == "hangup" and r["seconds"] == 6.0 and r["outcome"] == "ok"
    assert res.variables["message"] == r["path"]
    assert res.disposition == "hangup"


# -- conference and transfer ---------------------------------------------------------------------------------

def test_conference_done_sets_seconds(demo):
    res, _ = run_call(demo, "4", options=SimOptions(prompt_seconds=2.0, conference_seconds=42))
    c = ev(res, "conference")[0]
    assert (c["room"], c["result"], c["seconds"], c["limit"]) == ("room-13800000001", "ended", 42.0, 120.0)
    assert res.variables["talked"] == 42.0
    assert res.record.states()[-2:] == ["goodbye", "bye"]


def test_conference_limit_cuts_the_call_after_warning(demo):
    res, _ = run_call(demo, "4", options=SimOptions(prompt_seconds=2.0, conference_seconds=600),
                      variables={"talk_limit": 90})
    c = ev(res, "conference")[0]
    assert c["seconds"] == 90.0 and c["warned"] is True
    w = [p for p in ev(res, "prompt") if p.get("during") == "conference"]
    assert [p["prompt"] for p in w] == ["time_low"] and w[0]["t"] == c["t"] + 80.0
    assert res.disposition == "hangup" and res.record.hangup_cause == "ALLOTTED_TIMEOUT"
    assert res.variables["talked"] == 90.0


def test_conference_refused_is_failed(demo):
    res, _ = run_call(demo, "4", options=SimOptions(prompt_seconds=2.0, fail_conferences={"room-13800000001"}))
    assert ev(res, "conference")[0]["result"] == "failed"
    assert "agent" in res.record.states()


def test_transfer_to_queue_with_templated_priority(demo):
    res, ch = run_call(demo, "9", variables={"tries": 2})
    t = ev(res, "transfer")[0]
    assert (t["queue"], t["priority"], t["result"]) == ("agents", 50, "ok")
    assert ch.transferred_to.queue == "agents" and ch.transferred_to.priority == 50
    assert res.disposition == "transferred" and res.record.hangup_by is None


def test_transfer_failure_takes_failed_outcome(demo):
    res, _ = run_call(demo, "9", options=SimOptions(prompt_seconds=2.0, fail_transfers=True))
    assert ev(res, "transfer")[0]["result"] == "failed"
    assert res.record.states()[-2:] == ["goodbye", "bye"]


# -- masking ------------------------------------------------------------------------------------------------

def test_pin_never_appears_in_the_record(demo):
    res, _ = run_call(demo, "1 12345678# 4321")
    dumped = json.dumps(res.record.to_dict(), ensure_ascii=False)
    assert "4321" not in dumped
    assert res.variables["pin"] == "4321"                      # the flow itself has it
    assert ev(res, "action")[0]["params"] == {"account": "12345678", "pin": "****"}
    assert res.record.variables["pin"] == "****"
    pin_input = [e for e in ev(res, "input") if e["state"] == "pin"][0]
    assert pin_input["keys"] == "****" and pin_input["digits"] == "****"


def test_pin_masked_in_barge_in_and_error_messages():
    async def leak(ctx, params):
        raise RuntimeError(f"bad pin {params['pin']}")

    reg = registry(Action("t.leak", "x", {"type": "object"}, ("ok",), leak))
    flow = flow_from_text("""
flow: t
languages: [en]
start: p
states:
  p:
    collect: {prompt: ask, into: pin, digits: 6, mask: true}
    next: {ok: a, failed: bye}
  a:
    action: t.leak
    params: {pin: "{{ pin }}"}
    next: bye
  bye:
    hangup: true
""", reg)
    res, _ = run_call(flow, "!987654", reg=reg)
    dumped = json.dumps(res.record.to_dict())
    assert "987654" not in dumped and "9" not in ev(res, "prompt")[0]["interrupted"]
    assert "bad pin ****" in res.record.error["message"]


# -- caller identity and variables -----------------------------------------------------------------------------

def test_untrusted_caller_number_is_not_in_caller():
    flow = flow_from_text("""
flow: t
languages: [en]
start: s
states:
  s:
    set: {who: "{{ caller }}", raw: "{{ caller_raw }}", v: "{{ channel.sip_x | default('none') }}"}
    next: bye
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "", caller="13900000009", trusted=False, channel_vars={"sip_x": "gold"})
    assert (res.variables["who"], res.variables["raw"], res.variables["v"]) == (None, "13900000009", "gold")
    assert res.record.caller == "13900000009" and res.record.caller_trusted is False


# -- the clock --------------------------------------------------------------------------------------------------

def test_virtual_clock_costs_no_wall_time(demo):
    t0 = time.perf_counter()
    res, _ = run_call(demo, "4", options=SimOptions(prompt_seconds=2.0, conference_seconds=7200),
                      variables={"talk_limit": 10_000})
    assert res.record.duration == 2 + 2 + 7200 + 2            # welcome, menu, two hours in a room, goodbye
    assert time.perf_counter() - t0 < 2.0


def test_record_timestamps_follow_the_clock(demo):
    start = parse_start("2025-03-04T08:00:00+08:00")
    res, _ = run_call(demo, "9", start=start)
    rec = res.record
    assert rec.started_at == start
    assert rec.ended_at == start.replace(second=int(rec.duration))
    d = rec.to_dict()
    assert d["disposition"] == "transferred" and d["steps"] == 3 and d["duration"] == 6.0
    json.dumps(d)   # JSON-ready


def test_interpreter_is_reusable_across_concurrent_calls(demo):
    interp = Interpreter(demo, registry=registry())

    async def many():
        calls = []
        for i in range(20):
            clock = VirtualClock()
            ch = SimChannel("9" if i % 2 else "hangup", clock, call_id=f"c{i}",
                            options=SimOptions(prompt_seconds=1.0))
            calls.append(interp.run(ch, clock))
        return await asyncio.gather(*calls)

    results = asyncio.run(many())
    assert [r.disposition for r in results] == ["hangup", "transferred"] * 10
    assert len({r.record.call_id for r in results}) == 20


def test_channel_failure_is_routed_like_an_error(demo):
    from engine.runtime.channel import ChannelError

    class Broken(SimChannel):
        async def play(self, items, barge_in=True):
            if items[0].prompt_id == "welcome":
                raise ChannelError("file not found")
            return await super().play(items, barge_in)

    clock = VirtualClock()
    ch = Broken("9", clock, options=SimOptions(prompt_seconds=1))
    res = asyncio.run(Interpreter(demo, registry=registry()).run(ch, clock))
    err = [e for e in res.record.events if e["type"] == "error"][0]
    assert err["kind"] == "channel" and err["state"] == "welcome" and "file not found" in err["message"]
    assert res.record.states()[:2] == ["welcome", "oops"]


def test_a_secret_said_back_is_masked_in_the_record():
    flow = flow_from_text("""
flow: t
languages: [en]
start: p
states:
  p:
    collect: {prompt: ask, into: pin, digits: 6, mask: true}
    next: {ok: s, failed: bye}
  s:
    say: "you typed {{ pin }}"
    next: bye
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "246813")
    said = [e["text"] for e in ev(res, "prompt") if e["prompt"] is None]
    assert said == ["you typed ****"]
    assert "246813" not in json.dumps(res.record.to_dict())
