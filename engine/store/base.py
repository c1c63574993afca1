"""StoreBase: construction, clock/timezone, and helpers shared by the operation mixins."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import zoneinfo
from typing import Any, Callable, Optional

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from . import models as m
from .db import Database
from .errors import InvalidInput, StoreError
from .pin import DEFAULT_PARAMS, ScryptParams
from .timeutil import UTC, require_aware

_CODE_RE = re.compile(r"^[0-9A-Za-z]{1,20}$")


class InsufficientFunds(Exception):
    """Internal: a debit would make the balance negative (caller turns it into an outcome)."""

    def __init__(self, balance: int) -> None:
        super().__init__("insufficient funds")
        self.balance = balance


class StoreBase:
    """Construction and shared helpers.  See ``engine.store.Store`` for the operations."""

    def __init__(
        self,
        url_or_engine: str | Engine,
        *,
        tz: str | dt.tzinfo = "UTC",
        clock: Callable[[], dt.datetime] | Any | None = None,
        max_pin_failures: int = 3,
        pin_lock_seconds: Optional[int] = 30 * 60,
        pin_params: ScryptParams = DEFAULT_PARAMS,
        max_exam_failures: int = 5,
        exam_lock_seconds: Optional[int] = 30 * 60,
    ) -> None:
        if isinstance(tz, str):
            try:
                tz = zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise InvalidInput(f"unknown time zone {tz!r}") from None
        if not isinstance(tz, dt.tzinfo):
            raise InvalidInput("tz must be a zone name or a tzinfo")
        for name, v in (("max_pin_failures", max_pin_failures),
                        ("max_exam_failures", max_exam_failures)):
            if not isinstance(v, int) or v < 1:
                raise InvalidInput(f"{name} must be an integer >= 1")
        for name, v in (("pin_lock_seconds", pin_lock_seconds),
                        ("exam_lock_seconds", exam_lock_seconds)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise InvalidInput(f"{name} must be a positive integer or None (until reset)")
        if clock is None:
            self._clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC)
        elif callable(clock):
            self._clock = clock
        elif callable(getattr(clock, "now", None)):
            self._clock = clock.now
        else:
            raise InvalidInput("clock must be a callable or have a now() method")
        self.tz = tz
        self.max_pin_failures = max_pin_failures
        self.pin_lock_seconds = pin_lock_seconds
        self.pin_params = pin_params
        self.max_exam_failures = max_exam_failures
        self.exam_lock_seconds = exam_lock_seconds
        self._db = Database(url_or_engine)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.engine.url.render_as_string(hide_password=True)}>"

    def check_schema(self) -> str:
        """Raise SchemaMissing unless the database is at the packaged head revision."""
        from .errors import SchemaMissing
        from .migrate import current_revision, head_revision

        cur, head = current_revision(self.engine), head_revision()
        if cur != head:
            raise SchemaMissing(f"database is at revision {cur or 'none'}, code expects {head}: "
                                "run `ivrflow db upgrade`")
        return cur

    # -- time ------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return require_aware(self._clock(), "clock()")

    def _now(self, now: Optional[dt.datetime]) -> dt.datetime:
        return self.now() if now is None else require_aware(now, "now")

    def local_date(self, when: dt.datetime) -> dt.date:
        return require_aware(when, "time").astimezone(self.tz).date()

    def today(self, now: Optional[dt.datetime] = None) -> dt.date:
        return self.local_date(self._now(now))

    # -- helpers -----------------------------------------------------------------------
    def _run(self, fn: Callable[[Connection], Any], *, write: bool = True) -> Any:
        return self._db.run(fn, write=write)

    @staticmethod
    def _code(value: Any, what: str) -> str:
        """Validate a short identifier keyed by a caller (card, doctor, department, ...)."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not _CODE_RE.match(value.strip()):
            raise InvalidInput(f"{what} must be 1-20 letters or digits")
        return value.strip()

    @staticmethod
    def _opt_text(value: Any, what: str, limit: int) -> Optional[str]:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > limit:
            raise InvalidInput(f"{what} must be a string of at most {limit} characters")
        return value

    @staticmethod
    def _cents(value: Any, what: str, *, positive: bool = False) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"{what} must be an integer number of cents")
        if value < 0 or (positive and value == 0):
            raise InvalidInput(f"{what} must be {'positive' if positive else 'non-negative'}")
        return value

    def _patient_id(self, conn: Connection, card_no: str, *, lock: bool = False) -> Optional[int]:
        q = select(m.Patient.id).where(m.Patient.card_no == card_no)
        if lock:
            q = q.with_for_update()
        return conn.execute(q).scalar()

    @staticmethod
    def _new_number(conn: Connection, column: Any, digits: int = 8) -> str:
        """A random unused number of ``digits`` digits (no leading zero) for ``column``."""
        lo = 10 ** (digits - 1)
        for _ in range(50):
            n = str(lo + secrets.randbelow(9 * lo))
            if conn.execute(select(column).where(column == n)).first() is None:
                return n
        raise StoreError(f"could not allocate a free {column.key}")

    @staticmethod
    def _post(
        conn: Connection,
        patient_id: int,
        amount: int,
        kind: str,
        key: str,
        now: dt.datetime,
        *,
        booking_id: Optional[int] = None,
        consultation_id: Optional[int] = None,
        note: str = "",
    ) -> int:
        """Move money: change the balance and write the ledger row in the caller's transaction.

        A debit that would make the balance negative raises InsufficientFunds (nothing written).
        The ledger key is unique, so the same movement can never be applied twice.
        Returns the new balance.
        """
        if amount == 0:
            raise InvalidInput("a ledger movement cannot be zero")
        P = m.Patient
        q = update(P).where(P.id == patient_id)
        if amount < 0:
            q = q.where(P.balance_cents >= -amount)
        new = conn.execute(
            q.values(balance_cents=P.balance_cents + amount).returning(P.balance_cents)
        ).scalar()
        if new is None:
            bal = conn.execute(select(P.balance_cents).where(P.id == patient_id)).scalar()
            raise InsufficientFunds(bal or 0)
        conn.execute(insert(m.LedgerEntry).values(
            patient_id=patient_id, amount_cents=amount, balance_after=new, kind=kind, key=key,
            booking_id=booking_id, consultation_id=consultation_id, note=note, created_at=now,
        ))
        return new


__all__ = ["StoreBase", "InsufficientFunds"]
