"""Database faults: a clear StoreError, and nothing half-written."""

from __future__ import annotations

import datetime as dt
import socket

import psycopg
import pytest
from sqlalchemy import event, insert, text

from engine.store import (
    IntegrityViolation,
    InvalidInput,
    Store,
    StoreConflict,
    StoreError,
    StoreUnavailable,
)
from engine.store.db import make_engine
from engine.store.models import LedgerEntry

from engine.store.migrate import upgrade
from engine.store.seed import seed_demo

from .conftest import FAST_PIN, TODAY, TZ, at

MON, TUE = TODAY, TODAY + dt.timedelta(days=1)


def _fail_ledger_inserts(store, on: bool) -> None:
    """A real database failure: a trigger that aborts any INSERT into the ledger."""
    with store.engine.begin() as conn:
        if store.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS fault"))
            if on:
                conn.execute(text("CREATE TRIGGER fault BEFORE INSERT ON ledger "
                                  "BEGIN SELECT RAISE(ABORT, 'injected fault'); END"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS fault ON ledger"))
            if on:
                conn.execute(text(
                    "CREATE OR REPLACE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$"))
                conn.execute(text("CREATE TRIGGER fault BEFORE INSERT ON ledger "
                                  "FOR EACH ROW EXECUTE FUNCTION fault()"))


def _state(store, card):
    return (store.balance(card), len(store.ledger(card)), store.bookings(card),
            [(s.day, s.session, s.booked) for s in store.available_slots(
                doctor="101", only_free=False)])


def test_failure_mid_registration_rolls_everything_back(demo):
    before = _state(demo, "10000001")
    _fail_ledger_inserts(demo, True)
    # slot taken and booking inserted before the ledger insert fails
    with pytest.raises(StoreError, match="injected fault"):
        demo.register("10000001", doctor="101", date=MON, session="am")
    assert _state(demo, "10000001") == before
    _fail_ledger_inserts(demo, False)
    assert demo.register("10000001", doctor="101", date=MON,
                         session="am").outcome == "registered"


def test_failure_mid_close_leaves_consultation_open(demo):
    o = demo.open_consultation("101", card_no="10000001")
    t0 = at(MON)
    _fail_ledger_inserts(demo, True)
    with pytest.raises(StoreError):
        demo.close_consultation(o.consultation_id, t0, t0 + dt.timedelta(seconds=90))
    assert demo.consultation(o.consultation_id).status == "open"
    assert demo.balance("10000001") == 50000
    _fail_ledger_inserts(demo, False)
    c = demo.close_consultation(o.consultation_id, t0, t0 + dt.timedelta(seconds=90))
    assert (c.outcome, c.charge_cents) == ("closed", 400)
    assert demo.balance("10000001") == 49600


def test_failure_mid_cancel_keeps_booking(demo):
    res = demo.register("10000002", doctor="101", date=MON, session="am")
    _fail_ledger_inserts(demo, True)
    with pytest.raises(StoreError):
        demo.cancel(res.confirmation_no, "10000002")
    assert demo.booking(res.confirmation_no).status == "booked"
    assert demo.balance("10000002") == 15000
    _fail_ledger_inserts(demo, False)
    assert demo.cancel(res.confirmation_no, "10000002").refund_cents == 5000


def test_ledger_key_constraint_blocks_a_second_refund(demo, clock):
    """Even if a refund row somehow already exists, the unique ledger key refuses a second
    one: that registration's refund transaction rolls back and the job carries on."""
    a = demo.register("10000001", doctor="101", date=MON, session="am")
    b = demo.register("10000002", doctor="101", date=MON, session="am")
    with demo.engine.begin() as conn:
        bid = conn.execute(text("SELECT id, patient_id FROM bookings WHERE confirmation_no = "
                                ":c"), {"c": a.confirmation_no}).one()
        conn.execute(insert(LedgerEntry).values(
            patient_id=bid.patient_id, amount_cents=1, balance_after=45001, kind="adjustment",
            key=f"refund:{bid.id}", created_at=at(MON)))
        conn.execute(text("UPDATE patients SET balance_cents = balance_cents + 1 "
                          "WHERE id = :p"), {"p": bid.patient_id})
    rep = demo.refund_no_shows(TUE)
    assert rep.failed == (a.confirmation_no,) and rep.refunded == (b.confirmation_no,)
    assert demo.booking(a.confirmation_no).status == "booked"       # rolled back
    assert demo.balance("10000001") == 45001
    assert demo.check_ledger() == []
    with pytest.raises(IntegrityViolation):
        demo._run(lambda conn: conn.execute(insert(LedgerEntry).values(
            patient_id=bid.patient_id, amount_cents=5, balance_after=1, kind="refund",
            key=f"refund:{bid.id}", created_at=at(MON))))


def test_balance_can_never_go_negative_in_the_database(demo):
    with pytest.raises(IntegrityViolation, match="balance"):
        demo._run(lambda conn: conn.execute(text(
            "UPDATE patients SET balance_cents = -1 WHERE card_no = '10000005'")))
    assert demo.balance("10000005") == 0


@pytest.fixture
def pg_demo(pg_url, clock):
    upgrade(pg_url)
    with Store(pg_url, tz=TZ, clock=clock, pin_params=FAST_PIN) as s:
        seed_demo(s, TODAY)
        yield s


def test_connection_killed_mid_transaction(pg_demo, pg_url):
    """PostgreSQL backend terminated just before the ledger insert of a registration."""
    demo = pg_demo
    state = _state(demo, "10000001")

    def kill(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO LEDGER"):
            pid = conn.connection.dbapi_connection.info.backend_pid
            base = pg_url.split("?")[0].replace("postgresql+psycopg", "postgresql")
            with psycopg.connect(base, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    event.listen(demo.engine, "before_cursor_execute", kill)
    try:
        with pytest.raises(StoreError):
            demo.register("10000001", doctor="101", date=MON, session="am")
    finally:
        event.remove(demo.engine, "before_cursor_execute", kill)
    assert _state(demo, "10000001") == state
    assert demo.register("10000001", doctor="101", date=MON, session="am").outcome == \
        "registered"


def test_unreachable_database_is_store_unavailable():
    with socket.socket() as s:                 # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with Store(f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=2") as st:
        with pytest.raises(StoreUnavailable, match="unavailable"):
            st.balance("10000001")


def test_missing_sqlite_directory(tmp_path):
    with pytest.raises(StoreUnavailable, match="does not exist"):
        Store(f"sqlite:///{tmp_path}/no/such/dir/x.db")


@pytest.mark.parametrize("url", ["", "mysql://u@h/db", "postgresql+psycopg2://u@h/db",
                                 "not a url s3cret", None])
def test_bad_urls(url):
    with pytest.raises(InvalidInput) as e:
        Store(url)
    assert "s3cret" not in str(e.value)


def test_sqlite_writer_blocked_too_long_is_a_conflict(tmp_path, clock):
    import sqlite3

    url = f"sqlite:///{tmp_path}/busy.db"
    upgrade(url)
    engine = make_engine(url, sqlite_timeout=0.05)
    s = Store(engine, tz=TZ, clock=clock, pin_params=FAST_PIN)
    s.create_patient("1", "A", balance_cents=100)
    blocker = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreConflict, match="busy"):
            s.top_up("1", 50, reference="r1")
        assert s.balance("1") == 100                 # readers are not blocked (WAL)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert s.top_up("1", 50, reference="r1") == 150
    engine.dispose()
