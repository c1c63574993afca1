"""Hospital directory, clinic slots, free appointments, paid registrations, cancellation,
check-in and the no-show refund job.

Overbooking is impossible: a place is taken with ``UPDATE slots SET booked = booked + 1
WHERE id = :id AND booked < capacity`` (row-locked on PostgreSQL, write-locked on SQLite)
and the schema also checks ``booked <= capacity``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Optional

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from . import models as m
from . import results as r
from .base import InsufficientFunds, StoreBase
from .db import Retry, Rollback
from .errors import InvalidInput, NotFound, StoreError
from .timeutil import parse_date

log = logging.getLogger(__name__)

D, Doc, S, B, P = m.Department, m.Doctor, m.Slot, m.Booking, m.Patient


def _session(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in m.SESSIONS:
        return value.strip().lower()
    raise InvalidInput("session must be 'am' or 'pm'")


def _slot_columns():
    return (S.id, S.day, S.session, S.capacity, S.booked, S.fee_cents,
            D.code.label("department_code"), Doc.number.label("doctor_number"))


def _slot_query():
    return select(*_slot_columns()).join(D, D.id == S.department_id).outerjoin(
        Doc, Doc.id == S.doctor_id)


class BookingMixin(StoreBase):
    # -- directory -----------------------------------------------------------------------
    def add_department(self, code: str, name_zh: str, name_en: str) -> r.Department:
        c = self._code(code, "department code")
        self._run(lambda conn: conn.execute(insert(D).values(code=c, name_zh=name_zh,
                                                             name_en=name_en)))
        return r.Department(c, name_zh, name_en)

    def add_doctor(self, number: str, department: str, name_zh: str, name_en: str, *,
                   title_zh: str = "", title_en: str = "", specialty_zh: str = "",
                   specialty_en: str = "", is_expert: bool = False, rate_cents: int = 200,
                   conference_room: Optional[str] = None) -> r.Doctor:
        num, dep = self._code(number, "doctor number"), self._code(department, "department code")
        self._cents(rate_cents, "rate")
        if is_expert and not conference_room:
            conference_room = f"expert-{num}"

        def tx(conn: Connection):
            did = conn.execute(select(D.id).where(D.code == dep)).scalar()
            if did is None:
                raise NotFound(f"no department with code {dep}")
            conn.execute(insert(Doc).values(
                number=num, department_id=did, name_zh=name_zh, name_en=name_en,
                title_zh=title_zh, title_en=title_en, specialty_zh=specialty_zh,
                specialty_en=specialty_en, is_expert=is_expert, rate_cents=rate_cents,
                conference_room=conference_room))
            return self._doctor(conn, num, experts_only=False)

        return self._run(tx)

    def departments(self) -> list[r.Department]:
        return self._run(lambda conn: [r.Department(*row) for row in conn.execute(
            select(D.code, D.name_zh, D.name_en).where(D.active.is_(True)).order_by(D.code))],
            write=False)

    @staticmethod
    def _doctor_query():
        return select(Doc.number, Doc.name_zh, Doc.name_en, Doc.title_zh, Doc.title_en,
                      Doc.specialty_zh, Doc.specialty_en, D.code, Doc.is_expert,
                      Doc.rate_cents, Doc.conference_room).join(D, D.id == Doc.department_id
                                                                ).where(Doc.active.is_(True))

    def _doctor(self, conn: Connection, number: str, *, experts_only: bool) -> Optional[r.Doctor]:
        q = self._doctor_query().where(Doc.number == number)
        if experts_only:
            q = q.where(Doc.is_expert.is_(True))
        row = conn.execute(q).first()
        return None if row is None else r.Doctor(*row)

    def doctors(self, *, department: Optional[str] = None, experts_only: bool = False
                ) -> list[r.Doctor]:
        q = self._doctor_query().order_by(Doc.number)
        if department is not None:
            q = q.where(D.code == self._code(department, "department code"))
        if experts_only:
            q = q.where(Doc.is_expert.is_(True))
        return self._run(lambda conn: [r.Doctor(*row) for row in conn.execute(q)], write=False)

    def doctor(self, number: str) -> Optional[r.Doctor]:
        num = self._code(number, "doctor number")
        return self._run(lambda conn: self._doctor(conn, num, experts_only=False), write=False)

    def expert(self, number: str) -> Optional[r.Doctor]:
        """An active expert by the public expert number, or None."""
        num = self._code(number, "expert number")
        return self._run(lambda conn: self._doctor(conn, num, experts_only=True), write=False)

    def experts(self) -> list[r.Doctor]:
        return self.doctors(experts_only=True)

    # -- slots ---------------------------------------------------------------------------
    def add_slot(self, day: Any, session: str, capacity: int, *, doctor: Optional[str] = None,
                 department: Optional[str] = None, fee_cents: int = 0) -> r.SlotInfo:
        """Open a clinic session for a doctor, or (department only) a general clinic."""
        d, sess = parse_date(day, "day"), _session(session)
        self._cents(capacity, "capacity")
        self._cents(fee_cents, "fee")
        doc = self._code(doctor, "doctor number") if doctor is not None else None
        dep = self._code(department, "department code") if department is not None else None
        if (doc is None) == (dep is None):
            raise InvalidInput("give exactly one of doctor or department")

        def tx(conn: Connection):
            if doc is not None:
                row = conn.execute(select(Doc.id, Doc.department_id).where(Doc.number == doc)).first()
                if row is None:
                    raise NotFound(f"no doctor with number {doc}")
                doc_id, dep_id = row
            else:
                doc_id = None
                dep_id = conn.execute(select(D.id).where(D.code == dep)).scalar()
                if dep_id is None:
                    raise NotFound(f"no department with code {dep}")
            sid = conn.execute(insert(S).values(
                department_id=dep_id, doctor_id=doc_id, day=d, session=sess,
                capacity=capacity, booked=0, fee_cents=fee_cents).returning(S.id)).scalar_one()
            return _slot_info(conn.execute(_slot_query().where(S.id == sid)).one())

        return self._run(tx)

    def available_slots(self, *, doctor: Optional[str] = None, department: Optional[str] = None,
                        date_from: Any = None, days: int = 14, only_free: bool = True,
                        now: Optional[dt.datetime] = None) -> list[r.SlotInfo]:
        """Sessions from ``date_from`` (default today) for ``days`` days.  With a department,
        lists its general clinic and all its doctors' sessions."""
        start = parse_date(date_from, "date_from") if date_from is not None else self.today(now)
        if not isinstance(days, int) or not 1 <= days <= 366:
            raise InvalidInput("days must be between 1 and 366")
        q = _slot_query().where(S.day >= start, S.day < start + dt.timedelta(days=days))
        if doctor is not None:
            q = q.where(Doc.number == self._code(doctor, "doctor number"))
        if department is not None:
            q = q.where(D.code == self._code(department, "department code"))
        if only_free:
            q = q.where(S.booked < S.capacity)
        q = q.order_by(S.day, S.session, D.code, Doc.number)
        return self._run(lambda conn: [_slot_info(row) for row in conn.execute(q)], write=False)

    # -- booking -------------------------------------------------------------------------
    def book(self, card_no: str, *, date: Any, session: str, doctor: Optional[str] = None,
             department: Optional[str] = None, request_id: Optional[str] = None,
             now: Optional[dt.datetime] = None) -> r.BookingResult:
        """Free appointment (预约挂号) with a card: outcome booked | full | no_slot |
        duplicate | unknown_card.  ``request_id`` makes a retry return the same booking."""
        return self._reserve("appointment", card_no, date, session, doctor, department,
                             request_id, now, vip=False, policy=None)

    def register(self, card_no: str, *, date: Any, session: str, doctor: Optional[str] = None,
                 department: Optional[str] = None, vip: bool = False,
                 policy: Optional[r.Policy] = None, request_id: Optional[str] = None,
                 now: Optional[dt.datetime] = None) -> r.BookingResult:
        """Paid registration (正式挂号): the slot's fee is debited with a ledger row in the
        same transaction.  Outcome registered | full | no_slot | duplicate | unknown_card |
        insufficient_funds.  The caller must have verified the PIN first.  ``vip`` (from a
        trusted caller-id lookup) makes it free when ``policy.vip_free_registration``."""
        return self._reserve("registration", card_no, date, session, doctor, department,
                             request_id, now, vip=vip, policy=r.Policy.coerce(policy))

    def _reserve(self, kind, card_no, date, session, doctor, department, request_id, now, *,
                 vip: bool, policy: Optional[r.Policy]) -> r.BookingResult:
        card = self._code(card_no, "card number")
        day, sess = parse_date(date, "date"), _session(session)
        doc = self._code(doctor, "doctor number") if doctor is not None else None
        dep = self._code(department, "department code") if department is not None else None
        if (doc is None) == (dep is None):
            raise InvalidInput("give exactly one of doctor or department")
        if not isinstance(vip, bool):
            raise InvalidInput("vip must be true or false")
        req = self._opt_text(request_id, "request_id", 100)
        t = self._now(now)
        today = self.local_date(t)
        ok_outcome = "booked" if kind == "appointment" else "registered"

        def tx(conn: Connection) -> r.BookingResult:
            pid = self._patient_id(conn, card)
            if pid is None:
                raise Rollback(r.BookingResult("unknown_card"))
            if req is not None:
                prev = conn.execute(select(B.patient_id, B.kind, B.confirmation_no)
                                    .where(B.request_id == req)).first()
                if prev is not None:
                    if (prev.patient_id, prev.kind) != (pid, kind):
                        raise InvalidInput("request_id was already used for another booking")
                    info = self._booking_info(conn, prev.confirmation_no)
                    bal = conn.execute(select(P.balance_cents).where(P.id == pid)).scalar()
                    return _result(ok_outcome, info, bal, replayed=True)
            if doc is not None:
                if conn.execute(select(Doc.id).where(Doc.number == doc, Doc.active.is_(True))
                                ).first() is None:
                    raise Rollback(r.BookingResult("no_slot", reason="unknown_doctor"))
                where = and_(Doc.number == doc)
            else:
                if conn.execute(select(D.id).where(D.code == dep, D.active.is_(True))
                                ).first() is None:
                    raise Rollback(r.BookingResult("no_slot", reason="unknown_department"))
                where = and_(D.code == dep, S.doctor_id.is_(None))
            if day < today:
                raise Rollback(r.BookingResult("no_slot", day=day, session=sess, reason="past"))
            slot = conn.execute(_slot_query().where(where, S.day == day, S.session == sess)
                                ).first()
            if slot is None:
                raise Rollback(r.BookingResult("no_slot", day=day, session=sess,
                                               reason="no_session"))
            base = dict(day=day, session=sess, department_code=slot.department_code,
                        doctor_number=slot.doctor_number, kind=kind)
            dup_q = select(B.confirmation_no).where(
                B.patient_id == pid, B.slot_id == slot.id, B.status.in_(("booked", "checked_in")))
            # take a place: atomic, can never exceed capacity
            if conn.execute(update(S).where(S.id == slot.id, S.booked < S.capacity)
                            .values(booked=S.booked + 1)).rowcount != 1:
                dup = conn.execute(dup_q).scalar()
                if dup is not None:
                    raise Rollback(r.BookingResult("duplicate", confirmation_no=dup, **base))
                raise Rollback(r.BookingResult("full", **base))
            # checked after taking the slot's row lock, so concurrent twins are seen
            dup = conn.execute(dup_q).scalar()
            if dup is not None:
                raise Rollback(r.BookingResult("duplicate", confirmation_no=dup, **base))
            free = kind == "appointment" or (vip and policy is not None
                                             and policy.vip_free_registration)
            fee = 0 if free else slot.fee_cents
            conf = self._new_number(conn, B.confirmation_no)
            bid = conn.execute(insert(B).values(
                confirmation_no=conf, kind=kind, patient_id=pid, slot_id=slot.id,
                status="booked", fee_cents=fee, vip_free=kind == "registration" and free,
                request_id=req, created_at=t).returning(B.id)).scalar_one()
            if fee > 0:
                try:
                    bal = self._post(conn, pid, -fee, "registration_fee", f"fee:{bid}", t,
                                     booking_id=bid, note=f"registration {conf}")
                except InsufficientFunds as e:
                    raise Rollback(r.BookingResult("insufficient_funds", fee_cents=fee,
                                                   balance_cents=e.balance, **base)) from None
            else:
                bal = conn.execute(select(P.balance_cents).where(P.id == pid)).scalar()
            return r.BookingResult(ok_outcome, confirmation_no=conf, fee_cents=fee,
                                   balance_cents=bal, vip_free=kind == "registration" and free,
                                   **base)

        return self._run(tx)

    def _booking_info(self, conn: Connection, conf: str) -> Optional[r.BookingInfo]:
        row = conn.execute(
            select(B.confirmation_no, B.kind, B.status, P.card_no, S.day, S.session,
                   D.code, Doc.number, B.fee_cents, B.vip_free, B.created_at)
            .join(P, P.id == B.patient_id).join(S, S.id == B.slot_id)
            .join(D, D.id == S.department_id).outerjoin(Doc, Doc.id == S.doctor_id)
            .where(B.confirmation_no == conf)).first()
        return None if row is None else r.BookingInfo(*row)

    def booking(self, confirmation_no: str) -> Optional[r.BookingInfo]:
        conf = self._code(confirmation_no, "confirmation number")
        return self._run(lambda conn: self._booking_info(conn, conf), write=False)

    def bookings(self, card_no: str, *, upcoming_only: bool = True,
                 now: Optional[dt.datetime] = None) -> list[r.BookingInfo]:
        """A card's bookings (active ones from today on, by default), soonest first."""
        card = self._code(card_no, "card number")
        today = self.today(now)

        def tx(conn: Connection):
            q = (select(B.confirmation_no).join(P, P.id == B.patient_id)
                 .join(S, S.id == B.slot_id).where(P.card_no == card)
                 .order_by(S.day, S.session, B.id))
            if upcoming_only:
                q = q.where(S.day >= today, B.status == "booked")
            return [self._booking_info(conn, c) for c in conn.execute(q).scalars()]

        return self._run(tx, write=False)

    def cancel(self, confirmation_no: str, card_no: str, *, now: Optional[dt.datetime] = None
               ) -> r.CancelResult:
        """Cancel a booking (the card must match).  A paid registration's fee is refunded
        with a ledger row.  cancelled | already_cancelled | not_found | not_cancellable."""
        conf = self._code(confirmation_no, "confirmation number")
        card = self._code(card_no, "card number")
        t = self._now(now)
        today = self.local_date(t)

        def tx(conn: Connection) -> r.CancelResult:
            row = conn.execute(
                select(B.id, B.status, B.fee_cents, B.slot_id, B.patient_id, S.day)
                .join(P, P.id == B.patient_id).join(S, S.id == B.slot_id)
                .where(B.confirmation_no == conf, P.card_no == card)).first()
            if row is None:
                return r.CancelResult("not_found")
            if row.status == "cancelled":
                return r.CancelResult("already_cancelled")
            if row.status != "booked" or row.day < today:
                return r.CancelResult("not_cancellable")
            if conn.execute(update(B).where(B.id == row.id, B.status == "booked")
                            .values(status="cancelled", cancelled_at=t)).rowcount != 1:
                raise Retry()   # changed concurrently: evaluate again
            conn.execute(update(S).where(S.id == row.slot_id, S.booked > 0)
                         .values(booked=S.booked - 1))
            bal = None
            if row.fee_cents > 0:
                bal = self._post(conn, row.patient_id, row.fee_cents, "refund",
                                 f"refund:{row.id}", t, booking_id=row.id,
                                 note=f"cancelled {conf}")
            else:
                bal = conn.execute(select(P.balance_cents).where(P.id == row.patient_id)).scalar()
            return r.CancelResult("cancelled", refund_cents=row.fee_cents, balance_cents=bal)

        return self._run(tx)

    def check_in(self, confirmation_no: str, *, now: Optional[dt.datetime] = None
                 ) -> r.CheckInResult:
        """Mark a booking as used on its day: checked_in | already_checked_in | not_found |
        wrong_day | not_active."""
        conf = self._code(confirmation_no, "confirmation number")
        t = self._now(now)
        today = self.local_date(t)

        def tx(conn: Connection) -> r.CheckInResult:
            row = conn.execute(select(B.id, B.status, S.day, P.card_no)
                               .join(S, S.id == B.slot_id).join(P, P.id == B.patient_id)
                               .where(B.confirmation_no == conf)).first()
            if row is None:
                return r.CheckInResult("not_found")
            if row.status == "checked_in":
                return r.CheckInResult("already_checked_in", row.card_no)
            if row.status != "booked":
                return r.CheckInResult("not_active", row.card_no)
            if row.day != today:
                return r.CheckInResult("wrong_day", row.card_no)
            n = conn.execute(update(B).where(B.id == row.id, B.status == "booked")
                             .values(status="checked_in", checked_in_at=t)).rowcount
            return r.CheckInResult("checked_in" if n == 1 else "not_active", row.card_no)

        return self._run(tx)

    def refund_no_shows(self, as_of: Any = None) -> r.RefundReport:
        """Refund paid registrations not checked in by the end of their day (退号).

        ``as_of``: a date (days before it are over) or an aware datetime (its local date),
        default now.  Each registration is claimed with a conditional UPDATE in its own
        transaction and its refund ledger key is unique, so running the job twice or
        concurrently refunds each registration exactly once.  Unpaid bookings (appointments,
        VIP-free registrations) left unused are marked no_show.  A registration whose
        refund fails is left untouched, listed in ``failed`` and retried by the next run.
        """
        if as_of is None:
            cutoff = self.today()
        elif isinstance(as_of, dt.datetime):
            cutoff = self.local_date(as_of)
        else:
            cutoff = parse_date(as_of, "as_of")
        t = self.now()
        over = select(S.id).where(S.day < cutoff).scalar_subquery()

        candidates = self._run(lambda conn: conn.execute(
            select(B.id, B.confirmation_no).join(S, S.id == B.slot_id)
            .where(B.status == "booked", B.fee_cents > 0, S.day < cutoff).order_by(B.id)
        ).all(), write=False)

        refunded: list[str] = []
        failed: list[str] = []
        total = 0
        for bid, conf in candidates:
            def tx(conn: Connection, bid=bid, conf=conf) -> int:
                row = conn.execute(update(B).where(B.id == bid, B.status == "booked")
                                   .values(status="refunded", refunded_at=t)
                                   .returning(B.patient_id, B.fee_cents)).first()
                if row is None:
                    return 0        # someone else (another run, check-in, cancel) got it
                self._post(conn, row.patient_id, row.fee_cents, "refund", f"refund:{bid}", t,
                           booking_id=bid, note=f"no-show {conf}")
                return row.fee_cents

            try:
                amount = self._run(tx)
            except StoreError as e:          # one bad row must not stop the whole job
                failed.append(conf)
                log.error("no-show refund of %s failed: %s", conf, e)
                continue
            if amount:
                refunded.append(conf)
                total += amount

        no_shows = self._run(lambda conn: conn.execute(
            update(B).where(B.status == "booked", B.fee_cents == 0, B.slot_id.in_(over))
            .values(status="no_show")).rowcount)
        return r.RefundReport(tuple(refunded), total, no_shows, tuple(failed))


def _slot_info(row) -> r.SlotInfo:
    return r.SlotInfo(row.day, row.session, row.department_code, row.doctor_number,
                      row.capacity, row.booked, row.capacity - row.booked, row.fee_cents)


def _result(outcome: str, info: r.BookingInfo, balance: Optional[int], *, replayed: bool
            ) -> r.BookingResult:
    return r.BookingResult(outcome, confirmation_no=info.confirmation_no, kind=info.kind,
                           day=info.day, session=info.session,
                           department_code=info.department_code,
                           doctor_number=info.doctor_number, fee_cents=info.fee_cents,
                           balance_cents=balance, vip_free=info.vip_free, replayed=replayed)
