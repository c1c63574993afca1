"""SQLAlchemy 2 models: the schema of the ivrflow hospital database.

Money is integer cents.  The migrations in ``migrations/versions`` create exactly this
schema (a test compares them).  ``__repr__`` never shows PIN material.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

from .timeutil import UTCDateTime

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SESSIONS = ("am", "pm")
BOOKING_KINDS = ("appointment", "registration")
BOOKING_STATUSES = ("booked", "checked_in", "cancelled", "refunded", "no_show")
LEDGER_KINDS = ("topup", "registration_fee", "refund", "consultation_fee", "adjustment")
COMPLAINT_STATUSES = ("open", "in_progress", "closed")


def _in(col: str, values: tuple[str, ...]) -> str:
    return f"{col} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    def __repr__(self) -> str:
        shown = getattr(self, "_repr_fields", ("id",))
        inner = ", ".join(f"{k}={self.__dict__.get(k)!r}" for k in shown)
        return f"{type(self).__name__}({inner})"


class Department(Base):
    __tablename__ = "departments"
    _repr_fields = ("id", "code", "name_en")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Doctor(Base):
    """A doctor; ``is_expert`` doctors offer paid phone consultation in a conference room."""

    __tablename__ = "doctors"
    __table_args__ = (CheckConstraint("rate_cents >= 0", name="rate_nonneg"),)
    _repr_fields = ("id", "number", "name_en")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(8), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    title_zh: Mapped[str] = mapped_column(String(100), default="", server_default="")
    title_en: Mapped[str] = mapped_column(String(100), default="", server_default="")
    specialty_zh: Mapped[str] = mapped_column(Text, default="", server_default="")
    specialty_en: Mapped[str] = mapped_column(Text, default="", server_default="")
    is_expert: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    rate_cents: Mapped[int] = mapped_column(Integer, default=200, server_default="200")
    conference_room: Mapped[Optional[str]] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Slot(Base):
    """A clinic session (am/pm) on a day, for one doctor or for a department's general clinic."""

    __tablename__ = "slots"
    __table_args__ = (
        CheckConstraint(_in("session", SESSIONS), name="session"),
        CheckConstraint("capacity >= 0", name="capacity_nonneg"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="not_overbooked"),
        CheckConstraint("fee_cents >= 0", name="fee_nonneg"),
        Index("uq_slots_doctor_day_session", "doctor_id", "day", "session", unique=True,
              sqlite_where=text("doctor_id IS NOT NULL"),
              postgresql_where=text("doctor_id IS NOT NULL")),
        Index("uq_slots_general_day_session", "department_id", "day", "session", unique=True,
              sqlite_where=text("doctor_id IS NULL"),
              postgresql_where=text("doctor_id IS NULL")),
        Index("ix_slots_day", "day"),
    )
    _repr_fields = ("id", "department_id", "doctor_id", "day", "session", "booked", "capacity")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    doctor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("doctors.id"))
    day: Mapped[dt.date] = mapped_column(Date)
    session: Mapped[str] = mapped_column(String(2))
    capacity: Mapped[int] = mapped_column(Integer)
    booked: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fee_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Patient(Base):
    """A card holder.  ``pin_hash`` is deferred (never loaded unless asked) and never shown."""

    __tablename__ = "patients"
    __table_args__ = (
        CheckConstraint("balance_cents >= 0", name="balance_nonneg"),
        CheckConstraint("pin_failures >= 0", name="pin_failures_nonneg"),
    )
    _repr_fields = ("id", "card_no")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    card_no: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[Optional[str]] = mapped_column(String(32))
    birth_date: Mapped[Optional[dt.date]] = mapped_column(Date)
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    pin_hash: Mapped[Optional[str]] = deferred(mapped_column(String(200)))
    pin_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pin_locked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class VipNumber(Base):
    """A telephone number recognised as VIP by caller identification."""

    __tablename__ = "vip_numbers"
    _repr_fields = ("id", "number", "level")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    patient_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patients.id"))
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(20), default="vip", server_default="vip")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))


class Booking(Base):
    """A free appointment or a paid registration holding one place in a slot."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint(_in("kind", BOOKING_KINDS), name="kind"),
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        CheckConstraint("fee_cents >= 0", name="fee_nonneg"),
        Index("uq_bookings_patient_slot_active", "patient_id", "slot_id", unique=True,
              sqlite_where=text("status IN ('booked', 'checked_in')"),
              postgresql_where=text("status IN ('booked', 'checked_in')")),
        Index("ix_bookings_status_kind", "status", "kind"),
    )
    _repr_fields = ("id", "confirmation_no", "kind", "status")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    confirmation_no: Mapped[str] = mapped_column(String(12), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slots.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="booked", server_default="booked")
    fee_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    vip_free: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    request_id: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    refunded_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class Consultation(Base):
    """A paid expert consultation by conference; also its call-detail record."""

    __tablename__ = "consultations"
    __table_args__ = (
        CheckConstraint(_in("role", ("participant", "listener")), name="role"),
        CheckConstraint(_in("status", ("open", "closed")), name="status"),
        CheckConstraint("rate_cents >= 0", name="rate_nonneg"),
        CheckConstraint("charge_cents >= 0 AND paid_cents >= 0 AND unpaid_cents >= 0",
                        name="money_nonneg"),
    )
    _repr_fields = ("id", "expert_id", "status", "minutes", "charge_cents")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[Optional[int]] = mapped_column(ForeignKey("patients.id"), index=True)
    expert_id: Mapped[int] = mapped_column(ForeignKey("doctors.id"))
    caller: Mapped[Optional[str]] = mapped_column(String(64))
    call_id: Mapped[Optional[str]] = mapped_column(String(100))
    request_id: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(12), default="participant")
    vip: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    rate_cents: Mapped[int] = mapped_column(Integer)
    conference_room: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(8), default="open", server_default="open")
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    joined_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    left_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    charge_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    paid_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unpaid_cents: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class LedgerEntry(Base):
    """One money movement.  ``key`` is unique: the same debit/refund can never be written twice."""

    __tablename__ = "ledger"
    __table_args__ = (
        CheckConstraint("amount_cents <> 0", name="amount_nonzero"),
        CheckConstraint("balance_after >= 0", name="balance_after_nonneg"),
        CheckConstraint(_in("kind", LEDGER_KINDS), name="kind"),
    )
    _repr_fields = ("id", "patient_id", "kind", "amount_cents", "key")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    key: Mapped[str] = mapped_column(String(120), unique=True)
    booking_id: Mapped[Optional[int]] = mapped_column(ForeignKey("bookings.id"))
    consultation_id: Mapped[Optional[int]] = mapped_column(ForeignKey("consultations.id"))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class ExamResult(Base):
    __tablename__ = "exam_results"
    __table_args__ = (CheckConstraint(_in("status", ("pending", "ready")), name="status"),)
    _repr_fields = ("id", "exam_code", "status")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exam_code: Mapped[str] = mapped_column(String(20), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    exam_name_zh: Mapped[str] = mapped_column(String(100))
    exam_name_en: Mapped[str] = mapped_column(String(100))
    exam_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default="pending", server_default="pending")
    summary_zh: Mapped[str] = mapped_column(Text, default="", server_default="")
    summary_en: Mapped[str] = mapped_column(Text, default="", server_default="")
    ready_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    failed_checks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)


class Complaint(Base):
    __tablename__ = "complaints"
    __table_args__ = (
        CheckConstraint(_in("status", COMPLAINT_STATUSES), name="status"),
        CheckConstraint("staff_code IS NOT NULL OR recording_path IS NOT NULL",
                        name="has_subject"),
    )
    _repr_fields = ("id", "ticket_no", "status")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_no: Mapped[str] = mapped_column(String(12), unique=True)
    department_code: Mapped[Optional[str]] = mapped_column(String(8))
    department_id: Mapped[Optional[int]] = mapped_column(ForeignKey("departments.id"))
    staff_code: Mapped[Optional[str]] = mapped_column(String(16))
    recording_path: Mapped[Optional[str]] = mapped_column(String(500))
    caller: Mapped[Optional[str]] = mapped_column(String(64))
    card_no: Mapped[Optional[str]] = mapped_column(String(20))
    call_id: Mapped[Optional[str]] = mapped_column(String(100))
    request_id: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="open", server_default="open")
    note: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class InfoText(Base):
    """Editable information text for one topic in one language."""

    __tablename__ = "info_texts"
    _repr_fields = ("topic", "lang")

    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    lang: Mapped[str] = mapped_column(String(10), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class CallRecord(Base):
    """Call-detail record for every call, with the flow trace as JSON."""

    __tablename__ = "call_records"
    _repr_fields = ("id", "call_id", "flow", "disposition")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(100), unique=True)
    flow: Mapped[str] = mapped_column(String(200))
    caller: Mapped[Optional[str]] = mapped_column(String(64))
    destination: Mapped[Optional[str]] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    ended_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime)
    disposition: Mapped[Optional[str]] = mapped_column(String(32))
    trace: Mapped[Optional[Any]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
