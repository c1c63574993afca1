"""Free appointments: booking, capacity, duplicates, idempotent retries, cancel, check-in."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from engine.store import InvalidInput

from .conftest import TODAY, at

MON, TUE, WED = TODAY, TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=2)


def _slot(store, doctor, day, session):
    [s] = [s for s in store.available_slots(doctor=doctor, date_from=day, days=1,
                                            only_free=False) if s.session == session]
    return s


def test_book_doctor_slot(demo):
    res = demo.book("10000001", doctor="101", date=MON, session="am")
    assert res.outcome == "booked"
    assert re.fullmatch(r"[1-9]\d{7}", res.confirmation_no)
    assert (res.day, res.session, res.doctor_number, res.department_code) == (MON, "am", "101", "01")
    assert res.fee_cents == 0 and res.balance_cents == 50000       # free: no money moved
    assert _slot(demo, "101", MON, "am").booked == 1
    info = demo.booking(res.confirmation_no)
    assert (info.kind, info.status, info.card_no) == ("appointment", "booked", "10000001")
    assert demo.ledger("10000001")[0].kind == "topup"              # only the opening balance


def test_book_department_general_clinic(demo):
    res = demo.book("10000002", department="03", date="20300305", session="PM")
    assert res.outcome == "booked" and res.doctor_number is None and res.session == "pm"


def test_capacity_is_never_exceeded(demo):
    cards = ["10000001", "10000002", "10000003", "10000004"]
    outcomes = [demo.book(c, doctor="101", date=MON, session="am").outcome for c in cards]
    assert outcomes == ["booked", "booked", "booked", "full"]
    s = _slot(demo, "101", MON, "am")
    assert (s.booked, s.remaining) == (3, 0)
    assert all(x.doctor_number != "101" or x.day != MON or x.session != "am"
               for x in demo.available_slots(date_from=MON, days=1))


def test_no_slot_reasons(demo):
    assert demo.book("10000001", doctor="999", date=MON, session="am").reason == "unknown_doctor"
    assert demo.book("10000001", department="99", date=MON,
                     session="am").reason == "unknown_department"
    assert demo.book("10000001", doctor="101", date=TUE, session="am").reason == "no_session"
    past = demo.book("10000001", doctor="101", date=MON - dt.timedelta(days=7), session="am")
    assert (past.outcome, past.reason) == ("no_slot", "past")
    far = demo.book("10000001", doctor="101", date=MON + dt.timedelta(days=28), session="am")
    assert far.reason == "no_session"


def test_unknown_card(demo):
    assert demo.book("424242", doctor="101", date=MON, session="am").outcome == "unknown_card"
    assert _slot(demo, "101", MON, "am").booked == 0


def test_duplicate_booking_same_slot(demo):
    first = demo.book("10000001", doctor="101", date=MON, session="am")
    again = demo.book("10000001", doctor="101", date=MON, session="am")
    assert again.outcome == "duplicate" and again.confirmation_no == first.confirmation_no
    assert _slot(demo, "101", MON, "am").booked == 1               # rolled back


def test_request_id_makes_retry_idempotent(demo):
    a = demo.book("10000001", doctor="101", date=MON, session="am", request_id="call-1:book")
    b = demo.book("10000001", doctor="101", date=MON, session="am", request_id="call-1:book")
    assert b.outcome == "booked" and b.replayed and b.confirmation_no == a.confirmation_no
    assert _slot(demo, "101", MON, "am").booked == 1
    with pytest.raises(InvalidInput):
        demo.book("10000002", doctor="101", date=MON, session="am", request_id="call-1:book")


def test_confirmation_numbers_unique(demo):
    nos = {demo.book(c, department=d, date=WED, session=s).confirmation_no
           for c in ("10000001", "10000002", "10000003")
           for d in ("01", "02", "03") for s in ("am", "pm")}
    assert len(nos) == 18


def test_cancel_frees_the_place(demo):
    res = demo.book("10000001", doctor="101", date=MON, session="am")
    assert demo.cancel(res.confirmation_no, "10000002").outcome == "not_found"   # not theirs
    c = demo.cancel(res.confirmation_no, "10000001")
    assert (c.outcome, c.refund_cents) == ("cancelled", 0)
    assert _slot(demo, "101", MON, "am").booked == 0
    assert demo.cancel(res.confirmation_no, "10000001").outcome == "already_cancelled"
    assert demo.booking(res.confirmation_no).status == "cancelled"
    assert demo.cancel("12345678", "10000001").outcome == "not_found"
    again = demo.book("10000001", doctor="101", date=MON, session="am")
    assert again.outcome == "booked"                     # may book the same slot again


def test_cannot_cancel_past_or_used(demo, clock):
    res = demo.book("10000001", doctor="101", date=MON, session="am")
    assert demo.check_in(res.confirmation_no).outcome == "checked_in"
    assert demo.cancel(res.confirmation_no, "10000001").outcome == "not_cancellable"
    other = demo.book("10000002", doctor="101", date=MON, session="am")
    clock.advance(days=1)
    assert demo.cancel(other.confirmation_no, "10000002").outcome == "not_cancellable"


def test_check_in(demo, clock):
    tue = demo.book("10000001", doctor="701", date=TUE, session="am")
    assert demo.check_in(tue.confirmation_no).outcome == "wrong_day"
    clock.t = at(TUE, 8, 30)
    ci = demo.check_in(tue.confirmation_no)
    assert (ci.outcome, ci.card_no) == ("checked_in", "10000001")
    assert demo.check_in(tue.confirmation_no).outcome == "already_checked_in"
    assert demo.check_in("99999999").outcome == "not_found"
    assert demo.booking(tue.confirmation_no).status == "checked_in"


def test_local_day_uses_store_time_zone(demo, clock):
    # Monday 17:00 UTC is already Tuesday 01:00 in Shanghai (the store's time zone)
    clock.t = dt.datetime(2030, 3, 4, 17, 0, tzinfo=dt.timezone.utc)
    assert demo.today() == TUE
    assert demo.book("10000001", doctor="101", date=MON, session="am").reason == "past"


def test_bookings_listing(demo):
    a = demo.book("10000001", doctor="101", date=WED, session="am")
    b = demo.book("10000001", department="02", date=MON, session="pm")
    demo.book("10000002", department="02", date=MON, session="pm")
    assert [x.confirmation_no for x in demo.bookings("10000001")] == [b.confirmation_no,
                                                                      a.confirmation_no]


def test_available_slots_window(demo):
    slots = demo.available_slots(department="01")
    assert min(s.day for s in slots) == TODAY
    assert max(s.day for s in slots) <= TODAY + dt.timedelta(days=13)
    assert {s.doctor_number for s in slots} == {None, "101", "102"}
    expert = demo.available_slots(doctor="101", days=7)
    assert [(s.day.weekday(), s.session) for s in expert] == [(0, "am"), (2, "am"), (4, "pm")]
    assert all(s.fee_cents == 5000 and s.capacity == 3 for s in expert)


@pytest.mark.parametrize("kw", [
    dict(doctor="101", department="01", date=MON, session="am"),
    dict(date=MON, session="am"),
    dict(doctor="101", date=MON, session="evening"),
    dict(doctor="101", date="2030-02-30", session="am"),
    dict(doctor="101", date=dt.datetime(2030, 3, 4), session="am"),
    dict(doctor="1 01", date=MON, session="am"),
])
def test_bad_arguments_raise_invalid_input(demo, kw):
    with pytest.raises(InvalidInput):
        demo.book("10000001", **kw)
