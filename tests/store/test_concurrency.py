"""Concurrency guarantees, proved with real threads on PostgreSQL (and SQLite).

Each test starts many threads at once (a barrier) against one database and checks the
invariants: no overbooking, no double charge, refunds and consultation charges exactly
once, PIN attempts never beyond the limit.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from engine.store import Store
from engine.store.db import make_engine
from engine.store.models import Booking, LedgerEntry

from .conftest import FAST_PIN, TODAY, TZ, at

THREADS = 20


def run_together(n, fn):
    """Call fn(i) for i in range(n) in n threads released at the same instant."""
    gate = threading.Barrier(n)

    def go(i):
        gate.wait(timeout=30)
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(go, range(n)))


@pytest.fixture
def cstore(migrated_url, clock):
    """A store whose pool lets every thread hold its own connection at once."""
    engine = make_engine(migrated_url, pool_size=THREADS + 2, max_overflow=0)
    s = Store(engine, tz=TZ, clock=clock, pin_params=FAST_PIN)
    s.add_department("01", "内科", "Internal Medicine")
    s.add_doctor("101", "01", "张伟", "Zhang Wei", is_expert=True, rate_cents=200)
    yield s
    engine.dispose()


def _count(store, model, *where):
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(*where)).scalar()


def test_twenty_callers_for_three_places_book_exactly_three(cstore):
    cstore.add_slot(TODAY, "am", 3, doctor="101")
    cards = [f"7{i:03d}" for i in range(THREADS)]
    for c in cards:
        cstore.create_patient(c, f"P{c}")
    outcomes = run_together(THREADS, lambda i: cstore.book(
        cards[i], doctor="101", date=TODAY, session="am").outcome)
    assert Counter(outcomes) == {"booked": 3, "full": THREADS - 3}
    [slot] = cstore.available_slots(doctor="101", days=1, only_free=False)
    assert slot.booked == 3
    assert _count(cstore, Booking, Booking.status == "booked") == 3


def test_paid_last_places_charge_exactly_the_winners(cstore):
    cstore.add_slot(TODAY, "pm", 3, doctor="101", fee_cents=500)
    cards = [f"8{i:03d}" for i in range(THREADS)]
    for c in cards:
        cstore.create_patient(c, f"P{c}", balance_cents=1000)
    outcomes = run_together(THREADS, lambda i: cstore.register(
        cards[i], doctor="101", date=TODAY, session="pm").outcome)
    assert Counter(outcomes) == {"registered": 3, "full": THREADS - 3}
    balances = Counter(cstore.balance(c) for c in cards)
    assert balances == {500: 3, 1000: THREADS - 3}
    assert _count(cstore, LedgerEntry, LedgerEntry.kind == "registration_fee") == 3
    assert cstore.check_ledger() == []


def test_one_card_many_simultaneous_debits_never_goes_negative(cstore):
    for i in range(10):
        cstore.add_slot(TODAY + dt.timedelta(days=i // 2), ("am", "pm")[i % 2], 5,
                        doctor="101", fee_cents=500)
    cstore.create_patient("9000", "Rich Enough For Three", balance_cents=1500)
    outcomes = run_together(10, lambda i: cstore.register(
        "9000", doctor="101", date=TODAY + dt.timedelta(days=i // 2),
        session=("am", "pm")[i % 2]).outcome)
    assert Counter(outcomes) == {"registered": 3, "insufficient_funds": 7}
    assert cstore.balance("9000") == 0
    assert cstore.check_ledger() == []


def test_same_card_same_slot_at_once_books_once(cstore):
    cstore.add_slot(TODAY, "am", 10, doctor="101")
    cstore.create_patient("9100", "Impatient")
    res = run_together(10, lambda i: cstore.book("9100", doctor="101", date=TODAY,
                                                 session="am"))
    assert Counter(r.outcome for r in res) == {"booked": 1, "duplicate": 9}
    assert len({r.confirmation_no for r in res}) == 1
    [slot] = cstore.available_slots(doctor="101", days=1, only_free=False)
    assert slot.booked == 1


def test_concurrent_refund_jobs_refund_each_registration_once(cstore, clock):
    cstore.add_slot(TODAY, "am", 20, doctor="101", fee_cents=700)
    cards = [f"6{i:03d}" for i in range(12)]
    for c in cards:
        cstore.create_patient(c, f"P{c}", balance_cents=1000)
        assert cstore.register(c, doctor="101", date=TODAY, session="am").outcome == "registered"
    clock.t = at(TODAY + dt.timedelta(days=1), 0, 5)
    reports = run_together(6, lambda i: cstore.refund_no_shows())
    refunded = [conf for rep in reports for conf in rep.refunded]
    assert len(refunded) == 12 and len(set(refunded)) == 12      # each once, none twice
    assert sum(rep.refunded_cents for rep in reports) == 12 * 700
    assert all(cstore.balance(c) == 1000 for c in cards)
    assert _count(cstore, LedgerEntry, LedgerEntry.kind == "refund") == 12
    assert cstore.check_ledger() == []


def test_close_consultation_from_two_paths_charges_once(cstore, clock):
    cstore.create_patient("5500", "Caller", balance_cents=10000)
    opened = cstore.open_consultation("101", card_no="5500")
    joined = clock.now()
    left = joined + dt.timedelta(minutes=4, seconds=1)        # 5 started minutes
    res = run_together(8, lambda i: cstore.close_consultation(opened.consultation_id,
                                                              joined, left))
    assert Counter(r.outcome for r in res) == {"closed": 1, "already_closed": 7}
    assert {(r.minutes, r.charge_cents) for r in res} == {(5, 1000)}
    assert cstore.balance("5500") == 9000
    assert _count(cstore, LedgerEntry, LedgerEntry.kind == "consultation_fee") == 1


def test_parallel_pin_guessing_cannot_exceed_the_limit(cstore):
    cstore.create_patient("5600", "Target", pin="2580")
    res = run_together(12, lambda i: cstore.verify_pin("5600", f"{1000 + i}"))
    statuses = Counter(r.status for r in res)
    assert statuses == {"failed": 2, "locked": 10}
    assert cstore.patient("5600").pin_failures == 3
    assert cstore.verify_pin("5600", "2580").status == "locked"
