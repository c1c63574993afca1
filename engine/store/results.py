"""Plain, immutable values returned by the Store (no ORM objects, never PIN material).

Operations that an IVR flow branches on return a record with an ``outcome`` string;
``as_dict()`` gives JSON-safe flow variables (dates as ISO strings, money as int cents).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from .errors import InvalidInput


class _Record:
    def as_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, (dt.date, dt.datetime)):
                v = v.isoformat()
            elif isinstance(v, tuple):
                v = [x.as_dict() if isinstance(x, _Record) else x for x in v]
            out[f.name] = v
        return out


@dataclass(frozen=True)
class Policy(_Record):
    """Hospital policy passed by the caller of money operations (e.g. from deployment config)."""

    vip_free_registration: bool = True
    vip_free_consultation: bool = True
    #: per-minute rate for listen-only conference members; None = the expert's rate
    listener_rate_cents: Optional[int] = 0
    #: minutes a caller must be able to afford to open a paid consultation
    min_consult_minutes: int = 1

    def __post_init__(self) -> None:
        for name in ("vip_free_registration", "vip_free_consultation"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInput(f"policy {name} must be true or false")
        lr = self.listener_rate_cents
        if lr is not None and (not isinstance(lr, int) or isinstance(lr, bool) or lr < 0):
            raise InvalidInput("policy listener_rate_cents must be a non-negative integer or null")
        m = self.min_consult_minutes
        if not isinstance(m, int) or isinstance(m, bool) or m < 1:
            raise InvalidInput("policy min_consult_minutes must be an integer >= 1")

    @classmethod
    def coerce(cls, value: "Policy | Mapping[str, Any] | None") -> "Policy":
        """A Policy from a Policy, a mapping (deployment config) or None (defaults)."""
        return value if isinstance(value, cls) else cls.from_mapping(value)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "Policy":
        if m is None:
            return cls()
        if not isinstance(m, Mapping):
            raise InvalidInput("policy must be a mapping")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(m) - known)
        if unknown:
            raise InvalidInput(f"unknown policy key(s): {', '.join(map(str, unknown))}; "
                               f"known: {', '.join(sorted(known))}")
        return cls(**dict(m))


@dataclass(frozen=True)
class Vip(_Record):
    number: str
    name: str
    level: str
    card_no: Optional[str]
    note: str


@dataclass(frozen=True)
class PatientInfo(_Record):
    card_no: str
    name: str
    phone: Optional[str]
    birth_date: Optional[dt.date]
    balance_cents: int
    has_pin: bool
    pin_failures: int


@dataclass(frozen=True)
class AuthResult(_Record):
    """``status`` is ok | failed | locked.  ``reason`` for failed: wrong_pin | unknown_card | no_pin."""

    status: str
    reason: Optional[str] = None
    attempts_left: Optional[int] = None
    locked_until: Optional[dt.datetime] = None   # None while locked = until reset

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class LedgerRow(_Record):
    amount_cents: int
    balance_after: int
    kind: str
    key: str
    created_at: dt.datetime
    note: str


@dataclass(frozen=True)
class Department(_Record):
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Doctor(_Record):
    number: str
    name_zh: str
    name_en: str
    title_zh: str
    title_en: str
    specialty_zh: str
    specialty_en: str
    department_code: str
    is_expert: bool
    rate_cents: int
    conference_room: Optional[str]


@dataclass(frozen=True)
class SlotInfo(_Record):
    day: dt.date
    session: str
    department_code: str
    doctor_number: Optional[str]
    capacity: int
    booked: int
    remaining: int
    fee_cents: int


@dataclass(frozen=True)
class BookingResult(_Record):
    """book(): booked | full | no_slot | duplicate | unknown_card.
    register(): registered | full | no_slot | duplicate | unknown_card | insufficient_funds."""

    outcome: str
    confirmation_no: Optional[str] = None
    kind: Optional[str] = None
    day: Optional[dt.date] = None
    session: Optional[str] = None
    department_code: Optional[str] = None
    doctor_number: Optional[str] = None
    fee_cents: int = 0
    balance_cents: Optional[int] = None
    vip_free: bool = False
    replayed: bool = False           # True when request_id matched an earlier booking
    reason: Optional[str] = None     # no_slot: unknown_doctor | unknown_department | past | no_session


@dataclass(frozen=True)
class BookingInfo(_Record):
    confirmation_no: str
    kind: str
    status: str
    card_no: str
    day: dt.date
    session: str
    department_code: str
    doctor_number: Optional[str]
    fee_cents: int
    vip_free: bool
    created_at: dt.datetime


@dataclass(frozen=True)
class CancelResult(_Record):
    """cancelled | already_cancelled | not_found | not_cancellable."""

    outcome: str
    refund_cents: int = 0
    balance_cents: Optional[int] = None


@dataclass(frozen=True)
class CheckInResult(_Record):
    """checked_in | already_checked_in | not_found | wrong_day | not_active."""

    outcome: str
    card_no: Optional[str] = None


@dataclass(frozen=True)
class RefundReport(_Record):
    refunded: tuple[str, ...] = ()       # confirmation numbers refunded by this run
    refunded_cents: int = 0
    no_shows: int = 0                    # unpaid bookings (appointments, VIP-free) marked no_show
    failed: tuple[str, ...] = ()         # refunds that failed (left untouched for the next run)


@dataclass(frozen=True)
class ExamLookup(_Record):
    """found | not_ready | not_found | denied (reason: mismatch | locked)."""

    outcome: str
    exam_code: Optional[str] = None
    exam_name: Optional[str] = None
    exam_date: Optional[dt.date] = None
    summary: Optional[str] = None
    ready_at: Optional[dt.datetime] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class ConsultationOpen(_Record):
    """opened | unknown_expert | unknown_card | insufficient_funds."""

    outcome: str
    consultation_id: Optional[int] = None
    conference_room: Optional[str] = None
    role: Optional[str] = None
    rate_cents: int = 0
    free: bool = False
    max_minutes: Optional[int] = None    # None = unlimited (free)
    balance_cents: Optional[int] = None
    replayed: bool = False


@dataclass(frozen=True)
class ConsultationClose(_Record):
    """closed | already_closed | not_found.  Charged per started minute from join to leave."""

    outcome: str
    consultation_id: Optional[int] = None
    seconds: int = 0
    minutes: int = 0
    charge_cents: int = 0
    paid_cents: int = 0
    unpaid_cents: int = 0
    balance_cents: Optional[int] = None


@dataclass(frozen=True)
class ConsultationRecord(_Record):
    """Call-detail record of one consultation."""

    consultation_id: int
    expert_number: str
    expert_name_zh: str
    expert_name_en: str
    role: str
    status: str
    free: bool
    rate_cents: int
    opened_at: dt.datetime
    joined_at: Optional[dt.datetime]
    left_at: Optional[dt.datetime]
    seconds: int
    minutes: int
    charge_cents: int
    paid_cents: int
    unpaid_cents: int
    call_id: Optional[str]


@dataclass(frozen=True)
class ComplaintResult(_Record):
    """filed | unknown_department."""

    outcome: str
    ticket_no: Optional[str] = None
    replayed: bool = False


@dataclass(frozen=True)
class ComplaintInfo(_Record):
    ticket_no: str
    status: str
    department_code: Optional[str]
    staff_code: Optional[str]
    recording_path: Optional[str]
    caller: Optional[str]
    card_no: Optional[str]
    call_id: Optional[str]
    note: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class CallRecordInfo(_Record):
    call_id: str
    flow: str
    caller: Optional[str]
    destination: Optional[str]
    started_at: dt.datetime
    ended_at: Optional[dt.datetime]
    disposition: Optional[str]
    trace: Any = field(default=None)


@dataclass(frozen=True)
class LedgerMismatch(_Record):
    card_no: str
    balance_cents: int
    ledger_sum_cents: int
