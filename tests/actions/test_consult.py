"""expert.lookup, consult.open, consult.close and consult.history on both databases: the
balance checked before joining, per-started-minute billing exactly once, VIPs free."""

import pytest
from act_helpers import act, rows

from engine.actions.builtin._common import ActionFailure


def consult_ledger(store):
    return [x for x in rows(store, "ledger") if x["kind"] == "consultation_fee"]


def test_expert_found(ctx):
    r = act("expert.lookup", ctx, expert_no="101")
    assert r.outcome == "found"
    assert r.variables == {"expert_name": "张伟", "expert_title": "主任医师",
                           "expert_speciality": "冠心病、高血压的诊治", "rate": 200, "room": "expert-101"}
    ctx.language = "en"
    assert act("expert.lookup", ctx, expert_no="501").variables["expert_name"] == "Yang Guang"


@pytest.mark.parametrize("number", ["999", "102"])           # unknown; an ordinary doctor, not an expert
def test_expert_not_found(ctx, number):
    assert act("expert.lookup", ctx, expert_no=number).outcome == "not_found"


# -- open -------------------------------------------------------------------------------------------------

def test_open_paid_limits_the_time_to_what_the_balance_pays(ctx, store):
    r = act("consult.open", ctx, card="10000006", expert_no="101")       # 80 yuan at 2 yuan/min
    assert r.outcome == "ok"
    v = r.variables
    assert (v["max_seconds"], v["credit_limited"], v["rate"], v["room"]) == (40 * 60, True, 200, "expert-101")
    c = store.consultation(v["consultation_id"])
    assert (c.status, c.rate_cents, c.role, c.call_id) == ("open", 200, "participant", "call-1")


def test_open_paid_with_a_large_balance_is_capped(ctx):
    r = act("consult.open", ctx, card="10000001", expert_no="101")       # 500 yuan: 250 minutes
    assert r.variables["max_seconds"] == 3600 and r.variables["credit_limited"] is False
    ctx.config = {"consultation": {"max_seconds": 600}}
    ctx.step = 2
    assert act("consult.open", ctx, card="10000001", expert_no="101").variables["max_seconds"] == 600


def test_open_vip_is_free_and_capped(ctx, store):
    ctx.caller = "13900000001"
    r = act("consult.open", ctx, card="10000003", expert_no="501", vip=True)
    assert r.outcome == "ok" and r.variables["rate"] == 0 and r.variables["max_seconds"] == 3600
    assert r.variables["credit_limited"] is False and store.consultation(r.variables["consultation_id"]).free


def test_open_card_less_vip(ctx, store):
    ctx.caller = "13900000002"
    r = act("consult.open", ctx, card=None, expert_no="101", vip=True)
    assert r.outcome == "ok" and r.variables["rate"] == 0
    ctx.config, ctx.step = {"policy": {"vip_free_consultation": False}}, 2
    r = act("consult.open", ctx, card=None, expert_no="101", vip=True)
    assert r.outcome == "insufficient_funds" and r.variables == {"balance": 0, "rate": 200}


def test_open_untrusted_vip_pays(ctx):
    ctx.caller, ctx.caller_raw = None, "13900000001"
    r = act("consult.open", ctx, card="10000003", expert_no="101", vip=True)
    assert r.variables["rate"] == 200


def test_open_insufficient_funds(ctx, store):
    r = act("consult.open", ctx, card="10000005", expert_no="101")
    assert r.outcome == "insufficient_funds" and r.variables == {"balance": 0, "rate": 200}
    r = act("consult.open", ctx, card="10000004", expert_no="501")       # 3 yuan at 5 yuan/min
    assert r.outcome == "insufficient_funds" and r.variables == {"balance": 300, "rate": 500}
    assert rows(store, "consultations") == []


def test_open_listen_only_is_free_by_default(ctx, store):
    r = act("consult.open", ctx, card="10000005", expert_no="101", listen_only=True)
    assert r.outcome == "ok" and r.variables["rate"] == 0
    assert store.consultation(r.variables["consultation_id"]).role == "listener"


def test_open_same_step_twice_is_one_consultation(ctx, store):
    a = act("consult.open", ctx, card="10000001", expert_no="101")
    b = act("consult.open", ctx, card="10000001", expert_no="101")
    assert a.variables["consultation_id"] == b.variables["consultation_id"]
    assert len(rows(store, "consultations")) == 1


def test_open_an_unknown_expert_or_card_is_an_error(ctx):
    with pytest.raises(ActionFailure, match="no expert"):
        act("consult.open", ctx, card="10000001", expert_no="999")
    with pytest.raises(ActionFailure, match="unknown"):
        act("consult.open", ctx, card="19999999", expert_no="101")


# -- close ------------------------------------------------------------------------------------------------

def opened(ctx, card="10000001", expert="101", **kw):
    r = act("consult.open", ctx, card=card, expert_no=expert, **kw)
    ctx.step += 1
    return r.variables["consultation_id"]


@pytest.mark.parametrize("seconds, minutes", [(61, 2), (60.4, 1), (59.9, 1), (0.5, 0), (180, 3)])
def test_close_charges_per_started_minute(ctx, store, seconds, minutes):
    cid = opened(ctx)
    ctx.clock.advance(seconds=seconds + 5)
    r = act("consult.close", ctx, consultation_id=cid, seconds=seconds)
    assert r.outcome == "charged"
    assert r.variables == {"minutes": minutes, "charge": 200 * minutes, "paid": 200 * minutes, "unpaid": 0,
                           "balance": 50000 - 200 * minutes}
    led = consult_ledger(store)
    if minutes:
        assert len(led) == 1 and led[0]["amount_cents"] == -200 * minutes and led[0]["key"] == f"consult:{cid}"
    else:
        assert led == []
    c = store.consultation(cid)
    assert (c.status, c.minutes, c.charge_cents) == ("closed", minutes, 200 * minutes)


def test_close_without_seconds_charges_from_the_opening(ctx, store):
    cid = opened(ctx)
    ctx.clock.advance(seconds=130)                         # the caller hung up; the room gave no time
    r = act("consult.close", ctx, consultation_id=str(cid), seconds=None)
    assert r.variables["minutes"] == 3 and r.variables["charge"] == 600
    assert consult_ledger(store)[0]["amount_cents"] == -600


def test_close_is_idempotent(ctx, store):
    cid = opened(ctx)
    ctx.clock.advance(seconds=100)
    first = act("consult.close", ctx, consultation_id=cid, seconds=90)
    ctx.clock.advance(seconds=100)
    again = act("consult.close", ctx, consultation_id=cid, seconds=None)     # e.g. the hangup handler
    assert again.outcome == "charged" and again.variables == first.variables
    assert len(consult_ledger(store)) == 1 and store.balance("10000001") == 49600
    assert store.check_ledger() == []


def test_close_never_joined_charges_nothing(ctx, store):
    cid = opened(ctx, card="10000006")
    r = act("consult.close", ctx, consultation_id=cid, seconds=0)
    assert r.variables["charge"] == 0 and consult_ledger(store) == []


def test_close_vip_is_free(ctx, store):
    ctx.caller = "13900000001"
    cid = opened(ctx, card="10000003", vip=True)
    ctx.clock.advance(minutes=20)
    r = act("consult.close", ctx, consultation_id=cid, seconds=1150)
    assert r.outcome == "free" and r.variables == {"minutes": 20}
    assert consult_ledger(store) == [] and store.balance("10000003") == 100000


def test_close_takes_what_the_balance_covers_and_records_the_rest(ctx, store):
    cid = opened(ctx, card="10000004")                    # 3 yuan: one minute
    ctx.clock.advance(seconds=200)
    r = act("consult.close", ctx, consultation_id=cid, seconds=130)     # 3 minutes = 6 yuan
    assert r.variables == {"minutes": 3, "charge": 600, "paid": 300, "unpaid": 300, "balance": 0}
    assert store.consultation(cid).unpaid_cents == 300


@pytest.mark.parametrize("cid", [4242, "abc"])
def test_close_an_unknown_consultation_is_an_error(ctx, cid):
    with pytest.raises(ActionFailure):
        act("consult.close", ctx, consultation_id=cid, seconds=10)


# -- history ----------------------------------------------------------------------------------------------

def test_history_read_back_in_chinese_and_english(ctx, store):
    cid = opened(ctx, card="10000001", expert="101")
    act("consult.close", ctx, consultation_id=cid, seconds=250)         # 5 minutes, 10 yuan
    cid = opened(ctx, card="10000001", expert="701", listen_only=True)
    act("consult.close", ctx, consultation_id=cid, seconds=30)
    opened(ctx, card="10000001", expert="201")             # still open: not read back
    r = act("consult.history", ctx, card="10000001")
    assert r.outcome == "found" and r.variables["history_count"] == 2
    t = r.variables["history_text"]
    assert t.startswith("您最近的两次咨询记录：")
    assert "二零二五年三月三日，旁听赵明专家一分钟，免费" in t
    assert "咨询张伟专家五分钟，费用十元" in t
    ctx.language = "en"
    t = act("consult.history", ctx, card="10000001", limit=1).variables["history_text"]
    assert t == "Your last consultation: March third, twenty twenty-five, one minute listening to Dr Zhao Ming, " \
                "free of charge."


def test_history_mentions_unpaid_amounts(ctx):
    cid = opened(ctx, card="10000004")
    act("consult.close", ctx, consultation_id=cid, seconds=130)
    assert "其中三元未付" in act("consult.history", ctx, card="10000004").variables["history_text"]


@pytest.mark.parametrize("card", ["10000002", "19999999"])    # no consultations; no such card
def test_history_none(ctx, card):
    assert act("consult.history", ctx, card=card).outcome == "none"


@pytest.mark.parametrize("cap", [30, "1h", True])
def test_a_bad_consultation_cap_is_a_clear_error(ctx, cap):
    ctx.config = {"consultation": {"max_seconds": cap}}
    with pytest.raises(ActionFailure, match="max_seconds must be an integer >= 60"):
        act("consult.open", ctx, card="10000001", expert_no="101")
