"""PIN verification with persisted lockout; birth-date second factor; no PIN leaks."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.store import InvalidInput, NotFound
from engine.store.models import Patient

PIN = "918273"


@pytest.fixture
def card(store):
    store.create_patient("5001", "Test Patient", pin=PIN, birth_date="1970-06-15")
    return "5001"


def test_ok_and_wrong(store, card):
    assert store.verify_pin(card, PIN).status == "ok"
    res = store.verify_pin(card, "000000")
    assert (res.status, res.reason, res.attempts_left) == ("failed", "wrong_pin", 2)


def test_lockout_after_n_failures_persists_and_blocks_correct_pin(store, make_store, card):
    assert store.verify_pin(card, "1111").attempts_left == 2
    assert store.verify_pin(card, "2222").attempts_left == 1
    locked = store.verify_pin(card, "3333")
    assert locked.status == "locked"
    assert locked.locked_until == store.now() + dt.timedelta(seconds=1800)
    # persisted: a different Store instance (another process) sees the lock
    other = make_store()
    assert other.verify_pin(card, PIN).status == "locked"
    assert other.patient(card).pin_failures == 3


def test_lock_expires_after_duration(store, clock, card):
    for _ in range(3):
        store.verify_pin(card, "0000")
    clock.advance(seconds=1799)
    assert store.verify_pin(card, PIN).status == "locked"
    clock.advance(seconds=1)
    assert store.verify_pin(card, PIN).status == "ok"
    assert store.patient(card).pin_failures == 0


def test_after_expiry_failures_count_afresh(store, clock, card):
    for _ in range(3):
        store.verify_pin(card, "0000")
    clock.advance(hours=1)
    res = store.verify_pin(card, "0000")
    assert (res.status, res.attempts_left) == ("failed", 2)


def test_lock_until_reset_and_configurable_n(make_store, clock):
    s = make_store(max_pin_failures=2, pin_lock_seconds=None)
    s.create_patient("5002", "P", pin="4444")
    assert s.verify_pin("5002", "1").status == "failed"          # malformed counts
    res = s.verify_pin("5002", "9999")
    assert res.status == "locked" and res.locked_until is None
    clock.advance(days=30)
    assert s.verify_pin("5002", "4444").status == "locked"
    s.reset_pin_lock("5002")
    assert s.verify_pin("5002", "4444").status == "ok"


def test_success_resets_failures(store, card):
    store.verify_pin(card, "0000")
    store.verify_pin(card, "0000")
    assert store.verify_pin(card, PIN).ok
    assert store.verify_pin(card, "0000").attempts_left == 2


def test_unknown_card_and_no_pin(store):
    assert store.verify_pin("999999", "1234").reason == "unknown_card"
    store.create_patient("5003", "No Pin")
    assert store.verify_pin("5003", "1234").reason == "no_pin"


def test_set_pin_replaces_and_unlocks(store, card):
    for _ in range(3):
        store.verify_pin(card, "0000")
    store.set_pin(card, "2468")
    assert store.verify_pin(card, PIN).status == "failed"
    assert store.verify_pin(card, "2468").ok
    with pytest.raises(NotFound):
        store.set_pin("nope", "2468")


@pytest.mark.parametrize("bad", [None, 1234, b"1234"])
def test_programming_errors_are_clear(store, card, bad):
    with pytest.raises(InvalidInput):
        store.verify_pin(card, bad)


def test_card_number_validated(store):
    for bad in ("", "12 34", "x" * 21, None, "1;DROP TABLE patients"):
        with pytest.raises(InvalidInput):
            store.verify_pin(bad, "1234")


def test_pin_stored_as_scrypt_hash_never_read_back(store, card, caplog):
    with Session(store.engine) as s:
        p = s.scalars(select(Patient).where(Patient.card_no == card)).one()
        assert "pin" not in repr(p) and PIN not in repr(p)
        assert "pin_hash" not in p.__dict__            # deferred: not loaded by default
        h = p.pin_hash
    assert h.startswith("scrypt$") and PIN not in h
    info = store.patient(card)
    assert info.has_pin and not hasattr(info, "pin_hash")
    assert h not in repr(info) and h not in str(info.as_dict())


def test_pin_never_logged(store, card, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)   # log all SQL + params
    try:
        store.set_pin(card, "735914")
        store.verify_pin(card, "735914")
        store.verify_pin(card, "735915")
        with pytest.raises(InvalidInput) as e:
            store.set_pin(card, "73591x")
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    assert "SELECT" in caplog.text                        # logging really was on
    assert "735914" not in caplog.text and "735915" not in caplog.text
    assert "scrypt$" not in caplog.text and "5001" not in caplog.text   # parameters hidden
    assert "73591x" not in str(e.value)


def test_birth_date_second_factor(store, card):
    assert store.verify_birth_date(card, "19700615")
    assert store.verify_birth_date(card, dt.date(1970, 6, 15))
    assert not store.verify_birth_date(card, "1970-06-16")
    assert not store.verify_birth_date(card, "19701345")          # keyed nonsense
    assert not store.verify_birth_date("nobody", "19700615")
    with pytest.raises(InvalidInput):
        store.verify_birth_date(card, 19700615)
