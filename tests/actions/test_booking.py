"""booking.book, registration.pay and booking.cancel on both databases: every outcome, the
day relative to the call's clock in the store's time zone, idempotency, money with ledger rows."""

import pytest
from act_helpers import TODAY, act, at, rows

from engine.actions.builtin._common import ActionFailure

BOOK = dict(card="10000001", department="01", doctor="0", days_ahead=1, session="am")


def booking_row(store, conf):
    return next(r for r in rows(store, "bookings") if r["confirmation_no"] == conf)


def test_book_general_clinic_tomorrow(ctx, store):
    r = act("booking.book", ctx, **BOOK)
    assert r.outcome == "booked"
    v = r.variables
    assert v["booking_date"] == "2025-03-04" and v["booking_session"] == "am"
    assert v["department_name"] == "内科" and v["doctor_name"] == ""
    assert len(v["confirmation_no"]) == 8 and v["confirmation_no"].isdigit()
    b = store.booking(v["confirmation_no"])
    assert (b.kind, b.status, b.card_no, b.fee_cents, b.doctor_number) == ("appointment", "booked", "10000001", 0, None)
    assert b.day.isoformat() == "2025-03-04"
    assert booking_row(store, v["confirmation_no"])["request_id"] == "call-1:s:1"
    assert store.balance("10000001") == 50000            # appointments are free


def test_book_an_expert_in_english(ctx, store):
    ctx.language = "en"
    r = act("booking.book", ctx, **{**BOOK, "doctor": "101", "days_ahead": 2})   # Wednesday morning
    assert r.outcome == "booked"
    assert r.variables["doctor_name"] == "Zhang Wei" and r.variables["department_name"] == "Internal Medicine"
    assert store.booking(r.variables["confirmation_no"]).doctor_number == "101"


def test_days_ahead_counts_from_the_local_day(ctx, store):
    # 00:30 on Tuesday in Shanghai is still Monday in UTC: "today" is Tuesday
    ctx.clock.t = at(TODAY.replace(day=4), 0, 30)
    r = act("booking.book", ctx, **{**BOOK, "days_ahead": 0})
    assert r.variables["booking_date"] == "2025-03-04"


def test_same_step_twice_is_one_booking(ctx, store):
    a = act("booking.book", ctx, **BOOK)
    b = act("booking.book", ctx, **BOOK)                  # a retry of the same step
    assert a.variables == b.variables and b.outcome == "booked"
    assert len(rows(store, "bookings")) == 1


def test_the_same_slot_again_is_a_duplicate(ctx, store):
    first = act("booking.book", ctx, **BOOK).variables["confirmation_no"]
    ctx.step = 9
    r = act("booking.book", ctx, **BOOK)
    assert r.outcome == "duplicate" and r.variables["confirmation_no"] == first
    assert r.variables["booking_date"] == "2025-03-04"


def test_full_slot(ctx, store):
    store.add_doctor("901", "01", "测试", "Test Doctor")
    store.add_slot("2025-03-04", "am", 1, doctor="901", fee_cents=1500)
    assert act("booking.book", ctx, **{**BOOK, "doctor": "901"}).outcome == "booked"
    ctx.step, ctx.call_id = 2, "call-2"
    r = act("booking.book", ctx, **{**BOOK, "card": "10000002", "doctor": "901"})
    assert r.outcome == "full" and r.variables == {}


def test_no_clinic_that_session(ctx):
    # expert 101 works Monday and Wednesday mornings and Friday afternoon: not Tuesday
    assert act("booking.book", ctx, **{**BOOK, "doctor": "101"}).outcome == "no_session"
    # no general clinic on Sunday (days_ahead 6 from Monday)
    assert act("booking.book", ctx, **{**BOOK, "days_ahead": 6}).outcome == "no_session"


@pytest.mark.parametrize("dept, doctor", [("99", "0"), ("01", "999"), ("02", "101")])
def test_unknown_department_or_doctor(ctx, dept, doctor):
    # the last: doctor 101 exists but works in department 01, not 02
    assert act("booking.book", ctx, **{**BOOK, "department": dept, "doctor": doctor}).outcome == "not_found"


def test_unknown_card(ctx, store):
    assert act("booking.book", ctx, **{**BOOK, "card": "12345678"}).outcome == "unknown_card"
    assert rows(store, "bookings") == []


# -- paid registration ---------------------------------------------------------------------------------

def test_paid_registration_debits_with_a_ledger_row(ctx, store):
    r = act("registration.pay", ctx, **{**BOOK, "doctor": "101", "days_ahead": 2})
    assert r.outcome == "paid"
    assert r.variables["fee"] == 5000 and r.variables["balance"] == 45000
    assert store.balance("10000001") == 45000
    b = booking_row(store, r.variables["confirmation_no"])
    assert (b["kind"], b["fee_cents"], b["vip_free"]) == ("registration", 5000, False)
    fee = [x for x in rows(store, "ledger") if x["kind"] == "registration_fee"]
    assert len(fee) == 1 and fee[0]["amount_cents"] == -5000 and fee[0]["balance_after"] == 45000
    assert fee[0]["key"] == f"fee:{b['id']}"
    assert store.check_ledger() == []


def test_vip_registration_is_free_for_a_trusted_vip(ctx, store):
    ctx.caller = "13900000001"
    r = act("registration.pay", ctx, **{**BOOK, "card": "10000003", "vip": True})
    assert r.outcome == "free" and set(r.variables) >= {"confirmation_no", "booking_date"}
    assert store.balance("10000003") == 100000
    assert booking_row(store, r.variables["confirmation_no"])["vip_free"] is True
    assert [x for x in rows(store, "ledger") if x["kind"] == "registration_fee"] == []


@pytest.mark.parametrize("caller, config", [
    (None, {}),                                            # the VIP's number, untrusted
    ("13800000001", {}),                                   # the flow says vip, the number is not on the list
    ("13900000001", {"policy": {"vip_free_registration": False}}),   # policy: VIPs pay
])
def test_vip_flag_is_not_enough(ctx, store, caller, config):
    ctx.caller, ctx.caller_raw, ctx.config = caller, "13900000001", config
    r = act("registration.pay", ctx, **{**BOOK, "card": "10000003", "vip": True})
    assert r.outcome == "paid" and r.variables["fee"] == 1000
    assert store.balance("10000003") == 99000


def test_insufficient_funds_changes_nothing(ctx, store):
    before = len(rows(store, "ledger"))
    r = act("registration.pay", ctx, **{**BOOK, "card": "10000004", "doctor": "101", "days_ahead": 2})
    assert r.outcome == "insufficient_funds" and r.variables == {"fee": 5000, "balance": 300}
    assert store.balance("10000004") == 300 and len(rows(store, "ledger")) == before
    assert rows(store, "bookings") == []
    slot = store.available_slots(doctor="101", date_from="2025-03-05", days=1)[0]
    assert slot.booked == 0


def test_registration_full_no_session_not_found_duplicate(ctx, store):
    store.add_doctor("901", "01", "测试", "Test Doctor")
    store.add_slot("2025-03-04", "am", 0, doctor="901", fee_cents=1500)
    assert act("registration.pay", ctx, **{**BOOK, "doctor": "901"}).outcome == "full"
    assert act("registration.pay", ctx, **{**BOOK, "doctor": "101"}).outcome == "no_session"
    assert act("registration.pay", ctx, **{**BOOK, "department": "77"}).outcome == "not_found"
    first = act("registration.pay", ctx, **BOOK)
    assert first.outcome == "paid"
    ctx.step = 2
    again = act("registration.pay", ctx, **BOOK)
    assert again.outcome == "duplicate" and again.variables["confirmation_no"] == first.variables["confirmation_no"]
    assert store.balance("10000001") == 49000             # charged once


def test_registration_with_an_unknown_card_is_an_error(ctx):
    with pytest.raises(ActionFailure, match="auth.verify"):
        act("registration.pay", ctx, **{**BOOK, "card": "12345678"})


# -- cancellation ----------------------------------------------------------------------------------------

def test_cancel_a_paid_registration_refunds_it(ctx, store):
    conf = act("registration.pay", ctx, **BOOK).variables["confirmation_no"]
    r = act("booking.cancel", ctx, confirmation=conf, card="10000001")
    assert r.outcome == "cancelled" and r.variables == {"refund": 1000, "balance": 50000}
    assert store.booking(conf).status == "cancelled"
    refunds = [x for x in rows(store, "ledger") if x["kind"] == "refund"]
    assert len(refunds) == 1 and refunds[0]["amount_cents"] == 1000
    again = act("booking.cancel", ctx, confirmation=conf, card="10000001")
    assert again.outcome == "already_cancelled" and store.balance("10000001") == 50000


def test_cancel_a_free_appointment_by_number_alone(ctx, store):
    conf = act("booking.book", ctx, **BOOK).variables["confirmation_no"]
    r = act("booking.cancel", ctx, confirmation=conf)
    assert r.outcome == "cancelled" and r.variables["refund"] == 0
    slot = store.available_slots(department="01", date_from="2025-03-04", days=1, only_free=False)
    assert all(s.booked == 0 for s in slot)


def test_cancel_needs_the_right_card(ctx, store):
    conf = act("booking.book", ctx, **BOOK).variables["confirmation_no"]
    assert act("booking.cancel", ctx, confirmation=conf, card="10000002").outcome == "not_found"
    assert act("booking.cancel", ctx, confirmation="11112222").outcome == "not_found"
    assert store.booking(conf).status == "booked"


def test_a_used_or_past_booking_cannot_be_cancelled(ctx, store):
    conf = act("booking.book", ctx, **{**BOOK, "days_ahead": 0}).variables["confirmation_no"]
    assert store.check_in(conf).outcome == "checked_in"
    assert act("booking.cancel", ctx, confirmation=conf, card="10000001").outcome == "not_cancellable"
    ctx.step = 2
    conf2 = act("booking.book", ctx, **BOOK).variables["confirmation_no"]
    ctx.clock.advance(days=2)                              # its day is over
    assert act("booking.cancel", ctx, confirmation=conf2, card="10000001").outcome == "not_cancellable"


@pytest.mark.parametrize("config, message", [
    ({"policy": {"vip_free": True}}, "unknown policy key"),
    ({"policy": {"vip_free_registration": "yes"}}, "must be true or false"),
    ({"policy": "free"}, "must be a mapping"),
])
def test_a_bad_policy_is_a_clear_error(ctx, store, config, message):
    ctx.config = config
    with pytest.raises((ValueError, ActionFailure), match=message):     # InvalidInput is a ValueError
        act("registration.pay", ctx, **BOOK)
    assert rows(store, "bookings") == []
