"""Paid registration: fee and ledger in one transaction, VIP policy, refunds exactly once."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.store import InvalidInput, Policy

from .conftest import TODAY, at

MON, TUE = TODAY, TODAY + dt.timedelta(days=1)


def _booked(store, doctor, day, session):
    return next(s.booked for s in store.available_slots(doctor=doctor, date_from=day, days=1,
                                                        only_free=False) if s.session == session)


def test_fee_debited_with_ledger_row(demo):
    res = demo.register("10000001", doctor="101", date=MON, session="am")
    assert (res.outcome, res.fee_cents, res.balance_cents) == ("registered", 5000, 45000)
    assert demo.balance("10000001") == 45000
    row = demo.ledger("10000001")[0]
    assert (row.kind, row.amount_cents, row.balance_after) == ("registration_fee", -5000, 45000)
    assert demo.booking(res.confirmation_no).kind == "registration"
    assert demo.check_ledger() == []


def test_insufficient_balance_changes_nothing(demo):
    res = demo.register("10000004", doctor="101", date=MON, session="am")   # has 3 yuan
    assert (res.outcome, res.fee_cents, res.balance_cents) == ("insufficient_funds", 5000, 300)
    assert demo.balance("10000004") == 300
    assert _booked(demo, "101", MON, "am") == 0
    assert demo.bookings("10000004") == []
    assert len(demo.ledger("10000004")) == 1              # opening balance only


def test_exact_balance_reaches_zero(demo):
    demo.top_up("10000005", 1000, reference="cash-1")
    res = demo.register("10000005", department="01", date=MON, session="pm")
    assert (res.outcome, res.balance_cents) == ("registered", 0)
    assert demo.register("10000005", department="02", date=MON,
                         session="pm").outcome == "insufficient_funds"


def test_vip_free_by_policy(demo):
    res = demo.register("10000003", doctor="101", date=MON, session="am", vip=True)
    assert (res.outcome, res.fee_cents, res.vip_free) == ("registered", 0, True)
    assert demo.balance("10000003") == 100000
    paid = demo.register("10000003", doctor="201", date=TUE, session="am", vip=True,
                         policy=Policy(vip_free_registration=False))
    assert (paid.fee_cents, paid.vip_free, paid.balance_cents) == (5000, False, 95000)
    # policy straight from deployment config (a mapping) works too, and is validated
    cfg = demo.register("10000003", department="01", date=TUE, session="am", vip=True,
                        policy={"vip_free_registration": False})
    assert cfg.fee_cents == 1000
    with pytest.raises(InvalidInput):
        demo.register("10000003", department="02", date=TUE, session="am", vip=True,
                      policy={"vip_free": True})


def test_full_and_duplicate_roll_back_money(demo):
    for c in ("10000001", "10000002", "10000006"):
        assert demo.register(c, doctor="101", date=MON, session="am").outcome == "registered"
    before = demo.balance("10000003")
    assert demo.register("10000003", doctor="101", date=MON, session="am").outcome == "full"
    assert demo.register("10000001", doctor="101", date=MON,
                         session="am").outcome == "duplicate"
    assert demo.balance("10000003") == before and demo.balance("10000001") == 45000
    assert demo.check_ledger() == []


def test_retry_with_request_id_charges_once(demo):
    a = demo.register("10000001", doctor="101", date=MON, session="am", request_id="c9:reg")
    b = demo.register("10000001", doctor="101", date=MON, session="am", request_id="c9:reg")
    assert b.replayed and b.confirmation_no == a.confirmation_no
    assert demo.balance("10000001") == 45000
    with pytest.raises(InvalidInput):           # same id, different operation
        demo.book("10000001", doctor="101", date=MON, session="am", request_id="c9:reg")


def test_cancel_refunds_fee(demo):
    res = demo.register("10000001", doctor="101", date=MON, session="am")
    c = demo.cancel(res.confirmation_no, "10000001")
    assert (c.outcome, c.refund_cents, c.balance_cents) == ("cancelled", 5000, 50000)
    assert demo.ledger("10000001")[0].kind == "refund"
    assert demo.cancel(res.confirmation_no, "10000001").outcome == "already_cancelled"
    assert demo.balance("10000001") == 50000
    assert demo.check_ledger() == []


def test_no_show_refund_exactly_once(demo, clock):
    kept = demo.register("10000001", doctor="101", date=MON, session="am")
    used = demo.register("10000002", doctor="101", date=MON, session="am")
    later = demo.register("10000006", doctor="701", date=TUE, session="am")
    vipfree = demo.register("10000003", department="05", date=MON, session="am", vip=True)
    appt = demo.book("10000001", department="02", date=MON, session="am")
    assert demo.check_in(used.confirmation_no).outcome == "checked_in"

    # during Monday nothing is refunded: the day is not over
    assert demo.refund_no_shows(at(MON, 23, 59)).refunded == ()
    rep = demo.refund_no_shows(TUE)
    assert rep.refunded == (kept.confirmation_no,) and rep.refunded_cents == 5000
    assert rep.no_shows == 2                               # VIP-free registration + appointment
    assert demo.balance("10000001") == 50000
    assert demo.balance("10000002") == 20000 - 5000        # checked in: fee kept
    assert demo.booking(kept.confirmation_no).status == "refunded"
    assert demo.booking(vipfree.confirmation_no).status == "no_show"
    assert demo.booking(appt.confirmation_no).status == "no_show"
    assert demo.booking(later.confirmation_no).status == "booked"

    again = demo.refund_no_shows(TUE)                      # run twice: nothing more
    assert (again.refunded, again.refunded_cents, again.no_shows) == ((), 0, 0)
    assert demo.balance("10000001") == 50000
    assert [r.kind for r in demo.ledger("10000001")].count("refund") == 1
    # a refunded registration cannot be cancelled for a second refund
    assert demo.cancel(kept.confirmation_no, "10000001").outcome == "not_cancellable"

    clock.advance(days=2)
    rep3 = demo.refund_no_shows()                          # default: now
    assert rep3.refunded == (later.confirmation_no,)
    assert demo.check_ledger() == []


def test_top_up_idempotent_by_reference(demo):
    assert demo.top_up("10000005", 2000, reference="till-7/0042") == 2000
    assert demo.top_up("10000005", 2000, reference="till-7/0042") == 2000
    with pytest.raises(InvalidInput):
        demo.top_up("10000005", 3000, reference="till-7/0042")
    for bad in (0, -5, 1.5, True):
        with pytest.raises(InvalidInput):
            demo.top_up("10000005", bad, reference="x")


def test_policy_from_mapping_validates():
    assert Policy.from_mapping({"vip_free_registration": False}).vip_free_registration is False
    assert Policy.from_mapping(None) == Policy()
    for bad in ({"vip_free": True}, {"listener_rate_cents": -1},
                {"min_consult_minutes": 0}, {"vip_free_consultation": "yes"}, ["x"]):
        with pytest.raises(InvalidInput):
            Policy.from_mapping(bad)
