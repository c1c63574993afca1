"""Expert consultation: per-started-minute charging, VIP/listener policy, idempotent close,
affordability and call-detail records."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.store import InvalidInput, NotFound, Policy
from engine.store.consult import started_minutes

UTC = dt.timezone.utc
T0 = dt.datetime(2030, 3, 4, 2, 0, tzinfo=UTC)


def s(sec):
    return T0 + dt.timedelta(seconds=sec)


@pytest.mark.parametrize("seconds,minutes", [(0, 0), (0.5, 1), (1, 1), (59, 1), (60, 1),
                                             (60.000001, 2), (61, 2), (3600, 60)])
def test_started_minutes(seconds, minutes):
    assert started_minutes(T0, s(seconds))[1] == minutes


@given(st.integers(min_value=0, max_value=10**11))
def test_started_minutes_property(us):
    secs, mins = started_minutes(T0, T0 + dt.timedelta(microseconds=us))
    assert mins * 60_000_000 >= us > (mins - 1) * 60_000_000 or (us == 0 and mins == 0)
    assert secs == us // 1_000_000


def test_never_joined_or_bad_times():
    assert started_minutes(None, s(30)) == (0, 0)
    with pytest.raises(InvalidInput):
        started_minutes(s(10), s(5))
    with pytest.raises(InvalidInput):
        started_minutes(dt.datetime(2030, 1, 1), s(5))


def test_open_and_close_charges_per_started_minute(demo):
    o = demo.open_consultation("101", card_no="10000001", caller="13800000001", call_id="c1")
    assert (o.outcome, o.rate_cents, o.free, o.conference_room) == ("opened", 200, False,
                                                                   "expert-101")
    assert o.max_minutes == 50000 // 200 and o.role == "participant"
    c = demo.close_consultation(o.consultation_id, s(0), s(125))
    assert (c.outcome, c.seconds, c.minutes, c.charge_cents, c.paid_cents) == (
        "closed", 125, 3, 600, 600)
    assert c.balance_cents == 49400 == demo.balance("10000001")
    row = demo.ledger("10000001")[0]
    assert (row.kind, row.amount_cents, row.key) == ("consultation_fee", -600,
                                                     f"consult:{o.consultation_id}")


def test_close_is_idempotent(demo):
    o = demo.open_consultation("501", card_no="10000002")          # 5 yuan/min
    first = demo.close_consultation(o.consultation_id, s(0), s(30))
    second = demo.close_consultation(o.consultation_id, s(0), s(600))   # different times!
    assert first.outcome == "closed" and second.outcome == "already_closed"
    assert (second.minutes, second.charge_cents) == (1, 500)       # stored figures win
    assert demo.balance("10000002") == 19500
    assert demo.check_ledger() == []
    assert demo.close_consultation(999999, s(0), s(1)).outcome == "not_found"


def test_vip_is_free_by_policy(demo):
    o = demo.open_consultation("101", card_no="10000003", vip=True)
    assert (o.free, o.rate_cents, o.max_minutes) == (True, 0, None)
    c = demo.close_consultation(o.consultation_id, s(0), s(3000))
    assert (c.minutes, c.charge_cents) == (50, 0)
    assert demo.balance("10000003") == 100000
    paid = demo.open_consultation("101", card_no="10000003", vip=True,
                                  policy=Policy(vip_free_consultation=False))
    assert paid.rate_cents == 200 and not paid.free


def test_vip_without_card(demo):
    o = demo.open_consultation("201", vip=True, caller="13900000002")
    assert o.outcome == "opened" and o.free
    assert demo.close_consultation(o.consultation_id, s(0), s(90)).charge_cents == 0


def test_card_required_when_paid(demo):
    assert demo.open_consultation("201").outcome == "unknown_card"
    assert demo.open_consultation("201", card_no="4040").outcome == "unknown_card"


def test_listener_rate(demo):
    free = demo.open_consultation("101", card_no="10000005", role="listener")
    assert (free.outcome, free.rate_cents) == ("opened", 0)           # default policy: free
    pol = Policy(listener_rate_cents=None)                           # expert's rate
    assert demo.open_consultation("101", card_no="10000001", role="listener",
                                  policy=pol).rate_cents == 200
    pol = Policy(listener_rate_cents=50)
    assert demo.open_consultation("101", card_no="10000001", role="listener",
                                  policy=pol).rate_cents == 50


def test_insufficient_funds_and_unknown_expert(demo):
    o = demo.open_consultation("501", card_no="10000004")             # 300 cents, 500/min
    assert (o.outcome, o.max_minutes, o.balance_cents) == ("insufficient_funds", 0, 300)
    ok = demo.open_consultation("101", card_no="10000004")            # 200/min: 1 minute
    assert (ok.outcome, ok.max_minutes) == ("opened", 1)
    need3 = demo.open_consultation("101", card_no="10000004",
                                   policy=Policy(min_consult_minutes=3))
    assert need3.outcome == "insufficient_funds"
    assert demo.open_consultation("102", card_no="10000001").outcome == "unknown_expert"
    assert demo.open_consultation("999", card_no="10000001").outcome == "unknown_expert"


def test_overrun_takes_what_balance_allows_and_records_unpaid(demo):
    o = demo.open_consultation("101", card_no="10000004")             # 300 cents
    c = demo.close_consultation(o.consultation_id, s(0), s(150))      # 3 min = 600
    assert (c.charge_cents, c.paid_cents, c.unpaid_cents, c.balance_cents) == (600, 300, 300, 0)
    assert demo.check_ledger() == []


def test_never_joined_charges_nothing(demo):
    o = demo.open_consultation("101", card_no="10000001")
    c = demo.close_consultation(o.consultation_id, None, None)
    assert (c.outcome, c.minutes, c.charge_cents) == ("closed", 0, 0)
    assert demo.balance("10000001") == 50000


def test_request_id_replays_open(demo):
    a = demo.open_consultation("101", card_no="10000001", request_id="call7:open")
    b = demo.open_consultation("101", card_no="10000001", request_id="call7:open")
    assert b.replayed and a.consultation_id == b.consultation_id


def test_affordable_minutes(demo):
    assert demo.affordable_minutes("10000001", expert_no="501") == 100
    assert demo.affordable_minutes("10000004", rate_cents=200) == 1
    assert demo.affordable_minutes("10000001", rate_cents=0) is None
    with pytest.raises(NotFound):
        demo.affordable_minutes("4040", expert_no="101")
    with pytest.raises(NotFound):
        demo.affordable_minutes("10000001", expert_no="102")          # not an expert
    with pytest.raises(InvalidInput):
        demo.affordable_minutes("10000001")


def test_recent_consultations_cdr(demo, clock):
    ids = []
    for i, expert in enumerate(["101", "201", "701"]):
        o = demo.open_consultation(expert, card_no="10000001", call_id=f"call-{i}")
        demo.close_consultation(o.consultation_id, s(0), s(61 * (i + 1)))
        ids.append(o.consultation_id)
        clock.advance(minutes=10)
    recent = demo.recent_consultations("10000001", 2)
    assert [r.consultation_id for r in recent] == [ids[2], ids[1]]
    assert (recent[0].expert_number, recent[0].expert_name_zh, recent[0].minutes,
            recent[0].charge_cents, recent[0].call_id) == ("701", "赵明", 4, 800, "call-2")
    assert recent[0].joined_at == s(0) and recent[0].left_at == s(183)
    assert demo.recent_consultations("10000002") == []
    assert demo.consultation(ids[0]).charge_cents == 400
    assert isinstance(recent[0].as_dict()["opened_at"], str)


def test_bad_arguments(demo):
    with pytest.raises(InvalidInput):
        demo.open_consultation("101", card_no="10000001", role="speaker")
    with pytest.raises(InvalidInput):
        demo.close_consultation("1", s(0), s(1))
    with pytest.raises(InvalidInput):
        demo.close_consultation(1, dt.datetime(2030, 3, 4), s(1))
    with pytest.raises(InvalidInput):
        demo.recent_consultations("10000001", 0)
