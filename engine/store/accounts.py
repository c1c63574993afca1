"""Patients (cards), PIN authentication with persisted lockout, balances and ledger, VIPs."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Optional

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from . import models as m
from . import results as r
from .base import StoreBase
from .errors import InvalidInput, NotFound
from .pin import PIN_MAX, PIN_MIN, check_pin, hash_pin, validate_pin
from .timeutil import parse_date

_PIN_SHAPE = re.compile(rf"^[0-9]{{{PIN_MIN},{PIN_MAX}}}$")
_PHONE_RE = re.compile(r"^\+?[0-9]{3,20}$")


def normalize_number(number: Any) -> str:
    """Telephone number as digits (keeping a leading '+'); spaces, dashes, dots removed."""
    if not isinstance(number, str):
        raise InvalidInput("telephone number must be a string")
    n = re.sub(r"[\s\-().]", "", number)
    if not _PHONE_RE.match(n):
        raise InvalidInput("telephone number must be 3-20 digits, optionally starting with +")
    return n


class AccountsMixin(StoreBase):
    # -- patients ----------------------------------------------------------------------
    def create_patient(
        self,
        card_no: str,
        name: str,
        *,
        pin: Optional[str] = None,
        birth_date: Any = None,
        phone: Optional[str] = None,
        balance_cents: int = 0,
        now: Optional[dt.datetime] = None,
    ) -> r.PatientInfo:
        """Create a card holder; an opening balance is written as a 'topup' ledger row."""
        card = self._code(card_no, "card number")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise InvalidInput("patient name must be 1-100 characters")
        bd = parse_date(birth_date, "birth date") if birth_date is not None else None
        ph = normalize_number(phone) if phone is not None else None
        self._cents(balance_cents, "opening balance")
        pin_hash = hash_pin(pin, self.pin_params) if pin is not None else None
        t = self._now(now)

        def tx(conn: Connection):
            pid = conn.execute(insert(m.Patient).values(
                card_no=card, name=name.strip(), phone=ph, birth_date=bd, pin_hash=pin_hash,
                created_at=t,
            ).returning(m.Patient.id)).scalar_one()
            if balance_cents:
                self._post(conn, pid, balance_cents, "topup", f"open:{card}", t,
                           note="opening balance")
            return self._patient_info(conn, card)

        return self._run(tx)

    def patient(self, card_no: str) -> Optional[r.PatientInfo]:
        card = self._code(card_no, "card number")
        return self._run(lambda conn: self._patient_info(conn, card), write=False)

    @staticmethod
    def _patient_info(conn: Connection, card: str) -> Optional[r.PatientInfo]:
        P = m.Patient
        row = conn.execute(select(
            P.card_no, P.name, P.phone, P.birth_date, P.balance_cents,
            P.pin_hash.isnot(None).label("has_pin"), P.pin_failures,
        ).where(P.card_no == card)).first()
        return None if row is None else r.PatientInfo(
            row.card_no, row.name, row.phone, row.birth_date, row.balance_cents,
            bool(row.has_pin), row.pin_failures)

    def balance(self, card_no: str) -> Optional[int]:
        """Balance in cents, or None for an unknown card."""
        card = self._code(card_no, "card number")
        return self._run(lambda conn: conn.execute(
            select(m.Patient.balance_cents).where(m.Patient.card_no == card)).scalar(), write=False)

    def top_up(self, card_no: str, amount_cents: int, *, reference: str,
               now: Optional[dt.datetime] = None) -> int:
        """Credit a card (cashier).  Idempotent per ``reference``: a repeat changes nothing.
        Returns the balance."""
        card = self._code(card_no, "card number")
        self._cents(amount_cents, "top-up amount", positive=True)
        ref = self._opt_text(reference, "reference", 100)
        if not ref:
            raise InvalidInput("top-up needs a reference (for idempotency)")
        t = self._now(now)
        key = f"topup:{ref}"

        def tx(conn: Connection):
            pid = self._patient_id(conn, card)
            if pid is None:
                raise NotFound(f"no patient with card {card}")
            done = conn.execute(select(m.LedgerEntry.patient_id, m.LedgerEntry.amount_cents)
                                .where(m.LedgerEntry.key == key)).first()
            if done is not None:
                if (done.patient_id, done.amount_cents) != (pid, amount_cents):
                    raise InvalidInput(f"top-up reference {ref!r} was already used differently")
                return conn.execute(select(m.Patient.balance_cents)
                                    .where(m.Patient.id == pid)).scalar_one()
            return self._post(conn, pid, amount_cents, "topup", key, t)

        return self._run(tx)

    def ledger(self, card_no: str, limit: int = 50) -> list[r.LedgerRow]:
        """The card's ledger rows, newest first."""
        card = self._code(card_no, "card number")
        L = m.LedgerEntry

        def tx(conn: Connection):
            rows = conn.execute(
                select(L.amount_cents, L.balance_after, L.kind, L.key, L.created_at, L.note)
                .join(m.Patient, m.Patient.id == L.patient_id)
                .where(m.Patient.card_no == card).order_by(L.id.desc()).limit(limit))
            return [r.LedgerRow(*row) for row in rows]

        return self._run(tx, write=False)

    def check_ledger(self) -> list[r.LedgerMismatch]:
        """Every card whose balance differs from the sum of its ledger (should be none)."""
        P, L = m.Patient, m.LedgerEntry
        sums = (select(L.patient_id, func.sum(L.amount_cents).label("s"))
                .group_by(L.patient_id).subquery())

        def tx(conn: Connection):
            rows = conn.execute(
                select(P.card_no, P.balance_cents, func.coalesce(sums.c.s, 0))
                .outerjoin(sums, sums.c.patient_id == P.id)
                .where(P.balance_cents != func.coalesce(sums.c.s, 0)))
            return [r.LedgerMismatch(c, int(b), int(s)) for c, b, s in rows]

        return self._run(tx, write=False)

    # -- PIN -----------------------------------------------------------------------------
    def set_pin(self, card_no: str, pin: str) -> None:
        """Set (or reset) a card's PIN; also clears failures and any lock."""
        card = self._code(card_no, "card number")
        h = hash_pin(validate_pin(pin), self.pin_params)

        def tx(conn: Connection):
            n = conn.execute(update(m.Patient).where(m.Patient.card_no == card).values(
                pin_hash=h, pin_failures=0, pin_locked_at=None)).rowcount
            if n != 1:
                raise NotFound(f"no patient with card {card}")

        self._run(tx)

    def reset_pin_lock(self, card_no: str) -> None:
        """Clear a card's PIN failures and lock (staff action)."""
        card = self._code(card_no, "card number")

        def tx(conn: Connection):
            n = conn.execute(update(m.Patient).where(m.Patient.card_no == card).values(
                pin_failures=0, pin_locked_at=None)).rowcount
            if n != 1:
                raise NotFound(f"no patient with card {card}")

        self._run(tx)

    def _lock_expired(self, locked_at: Optional[dt.datetime], now: dt.datetime) -> bool:
        return (self.pin_lock_seconds is not None and locked_at is not None
                and now >= locked_at + dt.timedelta(seconds=self.pin_lock_seconds))

    def _locked_result(self, locked_at: Optional[dt.datetime]) -> r.AuthResult:
        until = (locked_at + dt.timedelta(seconds=self.pin_lock_seconds)
                 if locked_at is not None and self.pin_lock_seconds is not None else None)
        return r.AuthResult("locked", attempts_left=0, locked_until=until)

    def verify_pin(self, card_no: str, pin: str, *, now: Optional[dt.datetime] = None
                   ) -> r.AuthResult:
        """Check a card's PIN.  ok resets the failure count; after ``max_pin_failures`` wrong
        PINs the card is locked (for ``pin_lock_seconds``, or until reset when None).

        A PIN keyed in the wrong shape counts as a wrong PIN.  Concurrent attempts on one
        card cannot exceed the limit: the counter is updated conditionally.
        """
        card = self._code(card_no, "card number")
        if not isinstance(pin, str):
            raise InvalidInput("PIN must be a string of digits")
        t = self._now(now)
        N = self.max_pin_failures
        P = m.Patient

        row = self._run(lambda conn: conn.execute(
            select(P.id, P.pin_hash, P.pin_failures, P.pin_locked_at).where(P.card_no == card)
        ).first(), write=False)
        if row is None:
            check_pin("0000", _dummy_hash(self))      # same work as a real check
            return r.AuthResult("failed", reason="unknown_card")
        if row.pin_hash is None:
            return r.AuthResult("failed", reason="no_pin")
        failures = row.pin_failures
        if failures >= N:
            if not self._lock_expired(row.pin_locked_at, t):
                return self._locked_result(row.pin_locked_at)
            # lock expired: start afresh (only if nobody changed the lock meanwhile)
            self._run(lambda conn: conn.execute(update(P).where(
                P.id == row.id, P.pin_failures == failures,
                P.pin_locked_at == row.pin_locked_at).values(pin_failures=0, pin_locked_at=None)))

        ok = bool(_PIN_SHAPE.match(pin)) and check_pin(pin, row.pin_hash)
        same = (P.id == row.id, P.pin_hash == row.pin_hash, P.pin_failures < N)

        def tx(conn: Connection) -> r.AuthResult:
            if ok:
                if conn.execute(update(P).where(*same).values(
                        pin_failures=0, pin_locked_at=None)).rowcount == 1:
                    return r.AuthResult("ok")
            else:
                new = conn.execute(update(P).where(*same).values(
                    pin_failures=P.pin_failures + 1).returning(P.pin_failures)).scalar()
                if new is not None and new < N:
                    return r.AuthResult("failed", reason="wrong_pin", attempts_left=N - new)
                if new is not None:
                    conn.execute(update(P).where(P.id == row.id).values(pin_locked_at=t))
                    return self._locked_result(t)
            # the row changed under us: locked by concurrent failures, or PIN replaced
            cur = conn.execute(select(P.pin_failures, P.pin_locked_at).where(P.id == row.id)).first()
            if cur is not None and cur.pin_failures >= N:
                return self._locked_result(cur.pin_locked_at)
            return r.AuthResult("failed", reason="wrong_pin")

        return self._run(tx)

    def verify_birth_date(self, card_no: str, birth_date: Any) -> bool:
        """True when the card exists and its birth date matches (second factor)."""
        card = self._code(card_no, "card number")
        try:
            bd = parse_date(birth_date, "birth date")
        except InvalidInput:
            if isinstance(birth_date, str):
                return False
            raise
        got = self._run(lambda conn: conn.execute(select(m.Patient.birth_date).where(
            m.Patient.card_no == card)).scalar(), write=False)
        return got is not None and got == bd

    # -- VIP -----------------------------------------------------------------------------
    def add_vip(self, number: str, name: str, *, card_no: Optional[str] = None,
                level: str = "vip", note: str = "") -> r.Vip:
        num = normalize_number(number)
        card = self._code(card_no, "card number") if card_no is not None else None

        def tx(conn: Connection):
            pid = None
            if card is not None:
                pid = self._patient_id(conn, card)
                if pid is None:
                    raise NotFound(f"no patient with card {card}")
            conn.execute(insert(m.VipNumber).values(
                number=num, name=name, level=level, note=note, patient_id=pid))
            return r.Vip(num, name, level, card, note)

        return self._run(tx)

    def vip_lookup(self, number: Optional[str]) -> Optional[r.Vip]:
        """The active VIP registered for a caller number, or None.  Pass only a trusted
        caller number (the runtime's ``ctx.caller``); a malformed number is simply not VIP."""
        if number is None:
            return None
        try:
            num = normalize_number(number)
        except InvalidInput:
            return None
        V = m.VipNumber

        def tx(conn: Connection):
            row = conn.execute(
                select(V.number, V.name, V.level, m.Patient.card_no, V.note)
                .outerjoin(m.Patient, m.Patient.id == V.patient_id)
                .where(V.number == num, V.active.is_(True))).first()
            return None if row is None else r.Vip(*row)

        return self._run(tx, write=False)


_DUMMY: dict[Any, str] = {}


def _dummy_hash(store: StoreBase) -> str:
    key = store.pin_params
    if key not in _DUMMY:
        _DUMMY[key] = hash_pin("000000", store.pin_params)
    return _DUMMY[key]


__all__ = ["AccountsMixin", "normalize_number"]
