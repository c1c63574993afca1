"""Input rules (docs/runtime.md, "Input"): barge-in, timeouts, terminator, extra digits,
attempts, global keys."""

from rt_helpers import flow_from_text, run_call

MENU = """
flow: t
languages: [en]
start: m
on: {keys: {"*": m, "0": agent}}
states:
  m:
    menu: {prompt: menu, options: {1: c, 2: p}, timeout: 5s, attempts: 3, invalid: bad, no_input: silence}
    next: {failed: fail}
  c:
    collect: {prompt: ask, into: code, digits: 4..6, terminator: "#", timeout: 5s, inter_digit: 3s,
              attempts: 2, invalid: bad, no_input: silence}
    next: {ok: m2, failed: fail}
  p:
    collect: {prompt: ask_pin, into: pin, digits: 4, keys: false, attempts: 1}
    next: {ok: m2, failed: fail}
  m2:
    menu: {prompt: menu2, options: {1: end, "#": end}, timeout: 4s, attempts: 1}
    next: {failed: fail}
  agent:
    transfer: {to: "8000"}
  fail:
    hangup: CALL_REJECTED
  end:
    hangup: true
"""


def ev(res, type_):
    return [e for e in res.record.events if e["type"] == type_]


def inputs(res):
    return [(e["state"], e["keys"], e["result"]) for e in ev(res, "input")]


def test_barge_in_stops_prompt_and_key_is_the_input():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "wait:0.5 !1 1234#")
    p = ev(res, "prompt")[0]
    assert p["prompt"] == "menu" and p["interrupted"] == "1"
    # the key was kept: the menu took it at once, at 0.5 s (not after the 2 s prompt)
    first = ev(res, "input")[0]
    assert (first["keys"], first["result"], first["t"]) == ("1", "ok", 0.5)
    assert res.variables["code"] == "1234"


def test_type_ahead_skips_following_prompts():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "!11234#")
    prompts = ev(res, "prompt")
    assert prompts[0]["interrupted"] == "1"
    ask = next(p for p in prompts if p["prompt"] == "ask")
    assert ask.get("skipped") is True           # not heard: the caller was ahead
    assert "ask" not in [p["prompt"] for p in res.record.prompts()]
    assert res.variables["code"] == "1234"


def test_keys_during_non_interruptible_prompt_are_discarded():
    flow = flow_from_text("""
flow: t
languages: [en]
start: bye
states:
  bye:
    hangup: {cause: NORMAL_CLEARING, prompt: goodbye}
""")
    res, ch = run_call(flow, "!5")
    assert [k for _, k in ch.discarded] == ["5"]
    assert "interrupted" not in ev(res, "prompt")[0]
    assert res.disposition == "completed"


def test_first_digit_timeout_is_no_input_and_counts_as_attempt():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "timeout 2 4321 1")
    i = ev(res, "input")[0]
    assert i["result"] == "no_input" and i["attempt"] == 1
    # prompt 2 s, then 5 s without a key
    assert i["t"] == 7.0
    heard = [p["prompt"] for p in res.record.prompts()]
    assert heard[:3] == ["menu", "silence", "menu"]
    assert inputs(res)[1] == ("m", "2", "ok")


def test_no_input_timeout_uses_the_state_timeout_value():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 1234# timeout")
    m2 = [e for e in ev(res, "input") if e["state"] == "m2"][0]
    start = [e for e in ev(res, "prompt") if e["prompt"] == "menu2"][0]["t"]
    assert m2["result"] == "no_input" and m2["t"] - start == 2.0 + 4.0


def test_inter_digit_timeout_ends_the_entry():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 12345 wait:10 1")
    c = [e for e in ev(res, "input") if e["state"] == "c"][0]
    assert c["reason"] == "timeout" and c["result"] == "ok"
    assert res.variables["code"] == "12345"
    # keys at 4 s (prompt 2 + 2 for menu ... ) then 3 s inter-digit wait
    assert c["t"] == [e for e in ev(res, "prompt") if e["prompt"] == "ask"][0]["t"] + 2.0 + 3.0


def test_inter_digit_timeout_with_too_few_digits_is_invalid():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 12 wait:5 1234#")
    c = [e for e in ev(res, "input") if e["state"] == "c"]
    assert [(x["keys"], x["result"], x["reason"]) for x in c] == [("12", "invalid", "timeout"),
                                                                    ("1234#", "ok", "terminator")]
    assert "bad" in [p["prompt"] for p in res.record.prompts()]


def test_terminator_ends_entry_and_is_not_part_of_value():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 1234# 1")
    assert res.variables["code"] == "1234"
    assert res.variables["last_key"] == "1"
    c = [e for e in ev(res, "input") if e["state"] == "c"][0]
    assert c["reason"] == "terminator" and c["digits"] == "1234"


def test_terminator_alone_is_invalid():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 # 4444#")
    c = [(e["keys"], e["result"]) for e in ev(res, "input") if e["state"] == "c"]
    assert c == [("#", "invalid"), ("4444#", "ok")]


def test_digits_beyond_maximum_are_kept_for_the_next_input():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 12345671")
    assert res.variables["code"] == "123456"
    # the 7 went to the next menu (invalid there), the 1 chose option 1 ... no: m2 has attempts 1
    m2 = [(e["keys"], e["result"]) for e in ev(res, "input") if e["state"] == "m2"]
    assert m2 == [("7", "invalid")]


def test_terminator_right_after_full_entry_is_dropped():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "2 4321# 1")
    assert res.variables["pin"] == "4321"
    # '#' is option of m2: if it had been kept, m2 would have taken '#'
    m2 = [(e["keys"], e["result"]) for e in ev(res, "input") if e["state"] == "m2"]
    assert m2 == [("1", "ok")]


def test_terminator_swallow_window_for_late_key():
    """A terminator arriving just after a full entry (a real caller is slower) is dropped too."""
    from engine.runtime.channel import KeyBuffer

    kb = KeyBuffer()
    kb.swallow("#", until=10.0)
    assert kb.push("#", at=9.5) is False and not kb
    kb.swallow("#", until=10.0)
    assert kb.push("#", at=10.5) is True and kb.text() == "#"
    kb.clear()
    kb.swallow("#", until=10.0)
    assert kb.push("1", at=9.0) is True and kb.push("#", at=9.1) is True   # only the very next key
    kb.clear()
    kb.swallow("#", until=10.0)
    assert kb.pop() is None                       # a read starts before the terminator comes
    assert kb.push("#", at=9.5) is False and not kb, "the late terminator is still dropped"


def test_invalid_and_no_input_use_attempts_then_failed_exit():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "7 timeout 8")
    assert [(k, r) for _, k, r in inputs(res)] == [("7", "invalid"), ("", "no_input"), ("8", "invalid")]
    heard = [p["prompt"] for p in res.record.prompts()]
    assert heard == ["menu", "bad", "menu", "silence", "menu", "bad"]
    tr = [e for e in ev(res, "transition") if e["state"] == "m"][0]
    assert (tr["outcome"], tr["to"]) == ("failed", "fail")
    assert res.record.hangup_cause == "CALL_REJECTED"


def test_flow_level_failed_exit():
    flow = flow_from_text("""
flow: t
languages: [en]
start: m
on: {failed: sorry}
states:
  m:
    menu: {prompt: menu, options: {1: bye}, attempts: 2}
  sorry:
    play: sorry
    next: bye
  bye:
    hangup: true
""")
    res, _ = run_call(flow, "5 6")
    j = ev(res, "jump")
    assert [(x["via"], x["to"]) for x in j] == [("on.failed", "sorry")]
    assert res.record.states() == ["m", "sorry", "bye"]


def test_global_key_in_menu_and_as_first_key_of_collect():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 * 0")
    assert res.record.states() == ["m", "c", "m", "agent"]
    assert [(e["via"], e["to"]) for e in ev(res, "jump")] == [("key *", "m"), ("key 0", "agent")]
    assert res.disposition == "transferred"


def test_global_key_not_first_is_a_digit():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "1 1200# 1")
    assert res.variables["code"] == "1200"


def test_global_keys_off_in_collect_with_keys_false():
    flow = flow_from_text(MENU)
    res, _ = run_call(flow, "2 0123 1")
    assert res.variables["pin"] == "0123"
    assert not ev(res, "jump")


def test_menu_option_shadows_global_key():
    flow = flow_from_text(MENU.replace("options: {1: end, \"#\": end}", "options: {1: end, \"0\": end}"))
    res, _ = run_call(flow, "1 1234# 0")
    assert res.record.states()[-1] == "end"


def test_global_key_inside_subflow_unwinds_to_main_flow():
    flow = flow_from_text("""
flow: t
languages: [en]
start: c
on: {keys: {"*": top}}
states:
  c:
    call: sub
    next: {done: bye}
  top:
    menu: {prompt: top, options: {1: bye}}
    next: {failed: bye}
  bye:
    hangup: true
subflows:
  sub:
    start: ask
    states:
      ask:
        collect: {prompt: ask, into: x, digits: 2}
        next: {ok: r, failed: r}
      r:
        return: done
""")
    res, _ = run_call(flow, "* 1")
    assert res.record.states() == ["c", "sub.ask", "top", "bye"]
    assert not ev(res, "return")
