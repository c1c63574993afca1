"""Demo seeding: complete, relative to 'today', idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from engine.store import SchemaMissing, Store
from engine.store import demo_data
from engine.store.models import Slot
from engine.store.seed import SLOT_DAYS, seed_demo

from .conftest import TODAY


def _slot_days(store):
    with store.engine.connect() as conn:
        days = set(conn.execute(select(Slot.day)).scalars())
        return days, conn.execute(select(func.count()).select_from(Slot)).scalar()


def _open_days(start, n=SLOT_DAYS):
    """Every day of the window except Sundays (no clinic on Sunday)."""
    days = (start + dt.timedelta(days=i) for i in range(n))
    return {d for d in days if d.weekday() != 6}


def test_seed_contents(store):
    made = seed_demo(store, TODAY)
    assert made["departments"] == len(demo_data.DEPARTMENTS)
    assert made["patients"] == len(demo_data.PATIENTS) and made["vips"] == len(demo_data.VIPS)
    days, n = _slot_days(store)
    assert days == _open_days(TODAY)
    assert n == made["slots"] > 100
    assert [e.number for e in store.experts()] == ["101", "201", "301", "501", "701"]
    assert all(e.conference_room == f"expert-{e.number}" for e in store.experts())
    assert store.expert("101").rate_cents == 200 and store.expert("501").rate_cents == 500
    assert store.vip_lookup("13900000001").card_no == "10000003"
    assert store.vip_lookup("13900000002").card_no is None
    assert store.vip_lookup("13800000001") is None
    assert len(store.departments()) == len(demo_data.DEPARTMENTS)


def test_demo_patients_authenticate_with_documented_pins(store):
    seed_demo(store, TODAY)
    for card, _name, _phone, birth, pin, balance in demo_data.PATIENTS:
        assert store.verify_pin(card, pin).ok
        assert store.balance(card) == balance
        assert store.verify_birth_date(card, birth)
    assert store.check_ledger() == []


def test_idempotent(store):
    seed_demo(store, TODAY)
    store.register("10000001", doctor="101", date=TODAY, session="am")
    again = seed_demo(store, TODAY)
    assert set(again.values()) == {0}
    assert store.balance("10000001") == 45000           # state untouched by re-seeding
    assert store.check_ledger() == []


def test_later_today_adds_only_new_days(store):
    seed_demo(store, TODAY)
    _, n1 = _slot_days(store)
    made = seed_demo(store, TODAY + dt.timedelta(days=7))
    days, n2 = _slot_days(store)
    assert days == _open_days(TODAY, 7 + SLOT_DAYS)
    assert made["slots"] == n2 - n1 > 0 and made["patients"] == 0


@pytest.mark.parametrize("today", [dt.date(2031, 1, 1), dt.date(2029, 12, 31)])
def test_dates_follow_today(store, today):
    seed_demo(store, today)
    days, _ = _slot_days(store)
    assert days == _open_days(today)
    r = store.exam_result("800001", "19800512", now=dt.datetime.combine(
        today, dt.time(9), tzinfo=dt.timezone.utc))
    assert r.exam_date == today - dt.timedelta(days=3)
    # general clinics never on Sunday, experts only on their weekdays
    slots = store.available_slots(date_from=today, days=SLOT_DAYS, only_free=False)
    assert all(s.day.weekday() != 6 for s in slots)
    assert {s.day.weekday() for s in slots if s.doctor_number == "501"} == {2, 4}


def test_seed_needs_schema(sqlite_url):
    with Store(sqlite_url) as s:
        with pytest.raises(SchemaMissing):
            seed_demo(s, TODAY)
