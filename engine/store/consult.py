"""Paid expert consultation by conference (专家咨询): open, close with per-started-minute
charging (exactly once), affordability, and the call-detail records."""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from . import models as m
from . import results as r
from .base import StoreBase
from .db import Rollback
from .errors import InvalidInput, NotFound
from .timeutil import require_aware

C, Doc, P = m.Consultation, m.Doctor, m.Patient

_MINUTE_US = 60_000_000


def started_minutes(joined_at: Optional[dt.datetime], left_at: Optional[dt.datetime]
                    ) -> tuple[int, int]:
    """(whole seconds, started minutes) between join and leave; (0, 0) if never joined."""
    if joined_at is None or left_at is None:
        return 0, 0
    j, lft = require_aware(joined_at, "joined_at"), require_aware(left_at, "left_at")
    if lft < j:
        raise InvalidInput("left_at is before joined_at")
    us = (lft - j) // dt.timedelta(microseconds=1)
    return us // 1_000_000, -(-us // _MINUTE_US)


class ConsultMixin(StoreBase):
    def _rate(self, expert_rate: int, role: str, free: bool, policy: r.Policy) -> int:
        if free:
            return 0
        if role == "listener" and policy.listener_rate_cents is not None:
            return policy.listener_rate_cents
        return expert_rate

    def affordable_minutes(self, card_no: str, *, expert_no: Optional[str] = None,
                           rate_cents: Optional[int] = None) -> Optional[int]:
        """Whole minutes the card's balance pays for at the expert's (or the given) rate;
        None when the rate is 0 (unlimited)."""
        card = self._code(card_no, "card number")
        if (expert_no is None) == (rate_cents is None):
            raise InvalidInput("give exactly one of expert_no or rate_cents")
        if rate_cents is not None:
            self._cents(rate_cents, "rate")
        num = self._code(expert_no, "expert number") if expert_no is not None else None

        def tx(conn: Connection):
            bal = conn.execute(select(P.balance_cents).where(P.card_no == card)).scalar()
            if bal is None:
                raise NotFound(f"no patient with card {card}")
            rate = rate_cents
            if num is not None:
                rate = conn.execute(select(Doc.rate_cents).where(
                    Doc.number == num, Doc.is_expert.is_(True))).scalar()
                if rate is None:
                    raise NotFound(f"no expert with number {num}")
            return None if rate == 0 else bal // rate

        return self._run(tx, write=False)

    def open_consultation(
        self,
        expert_no: str,
        *,
        card_no: Optional[str] = None,
        vip: bool = False,
        role: str = "participant",
        caller: Optional[str] = None,
        call_id: Optional[str] = None,
        policy: Optional[r.Policy] = None,
        request_id: Optional[str] = None,
        now: Optional[dt.datetime] = None,
    ) -> r.ConsultationOpen:
        """Start a consultation record before the caller joins the expert's conference.

        outcome opened | unknown_expert | unknown_card | insufficient_funds.  A paid
        consultation needs a card (PIN verified by the flow) able to pay
        ``policy.min_consult_minutes``; ``max_minutes`` tells the runtime when to cut off.
        VIPs (trusted caller id) are free when ``policy.vip_free_consultation``.
        """
        num = self._code(expert_no, "expert number")
        card = self._code(card_no, "card number") if card_no is not None else None
        if role not in ("participant", "listener"):
            raise InvalidInput("role must be 'participant' or 'listener'")
        if not isinstance(vip, bool):
            raise InvalidInput("vip must be true or false")
        policy = r.Policy.coerce(policy)
        caller = self._opt_text(caller, "caller", 64)
        call_id = self._opt_text(call_id, "call_id", 100)
        req = self._opt_text(request_id, "request_id", 100)
        t = self._now(now)
        free = vip and policy.vip_free_consultation

        def tx(conn: Connection) -> r.ConsultationOpen:
            if req is not None:
                prev = conn.execute(select(C.id).where(C.request_id == req)).scalar()
                if prev is not None:
                    return self._open_result(conn, prev, replayed=True)
            ex = conn.execute(select(Doc.id, Doc.rate_cents, Doc.conference_room).where(
                Doc.number == num, Doc.is_expert.is_(True), Doc.active.is_(True))).first()
            if ex is None:
                raise Rollback(r.ConsultationOpen("unknown_expert"))
            rate = self._rate(ex.rate_cents, role, free, policy)
            pid = bal = None
            if card is not None:
                row = conn.execute(select(P.id, P.balance_cents).where(P.card_no == card)).first()
                if row is None:
                    raise Rollback(r.ConsultationOpen("unknown_card"))
                pid, bal = row
            if rate > 0:
                if pid is None:
                    raise Rollback(r.ConsultationOpen("unknown_card", rate_cents=rate))
                if bal // rate < policy.min_consult_minutes:
                    raise Rollback(r.ConsultationOpen("insufficient_funds", rate_cents=rate,
                                                      balance_cents=bal, max_minutes=bal // rate))
            cid = conn.execute(insert(C).values(
                patient_id=pid, expert_id=ex.id, caller=caller, call_id=call_id,
                request_id=req, role=role, vip=vip, rate_cents=rate,
                conference_room=ex.conference_room or f"expert-{num}", status="open",
                opened_at=t).returning(C.id)).scalar_one()
            return self._open_result(conn, cid, replayed=False)

        return self._run(tx)

    def _open_result(self, conn: Connection, cid: int, *, replayed: bool) -> r.ConsultationOpen:
        row = conn.execute(select(C.id, C.conference_room, C.role, C.rate_cents, C.vip,
                                  P.balance_cents)
                           .outerjoin(P, P.id == C.patient_id).where(C.id == cid)).one()
        maxm = None if row.rate_cents == 0 else (row.balance_cents or 0) // row.rate_cents
        return r.ConsultationOpen("opened", row.id, row.conference_room, row.role,
                                  row.rate_cents, row.rate_cents == 0, maxm, row.balance_cents,
                                  replayed)

    def close_consultation(self, consultation_id: int, joined_at: Optional[dt.datetime],
                           left_at: Optional[dt.datetime], *, now: Optional[dt.datetime] = None
                           ) -> r.ConsultationClose:
        """Charge per started minute from join to leave, exactly once.

        Idempotent: the first close claims the record (``UPDATE ... WHERE status='open'``)
        and writes the charge with ledger key ``consult:<id>``; any later or concurrent
        close returns already_closed with the stored figures.  If the balance cannot cover
        the charge, what it can is taken and the rest is recorded as ``unpaid_cents``.
        ``joined_at`` None (never joined) charges nothing.
        """
        if not isinstance(consultation_id, int) or isinstance(consultation_id, bool):
            raise InvalidInput("consultation_id must be an integer")
        seconds, minutes = started_minutes(joined_at, left_at)
        t = self._now(now)

        def tx(conn: Connection) -> r.ConsultationClose:
            row = conn.execute(select(C.status, C.rate_cents, C.patient_id)
                               .where(C.id == consultation_id)).first()
            if row is None:
                return r.ConsultationClose("not_found", consultation_id)
            charge = minutes * row.rate_cents
            claimed = conn.execute(update(C).where(C.id == consultation_id, C.status == "open")
                                   .values(status="closed", closed_at=t, joined_at=joined_at,
                                           left_at=left_at, seconds=seconds, minutes=minutes,
                                           charge_cents=charge)).rowcount
            if claimed != 1:
                return self._close_result(conn, consultation_id, "already_closed")
            paid = 0
            if charge > 0 and row.patient_id is not None:
                bal = conn.execute(select(P.balance_cents).where(P.id == row.patient_id)
                                   .with_for_update()).scalar_one()
                paid = min(charge, bal)
                if paid > 0:
                    self._post(conn, row.patient_id, -paid, "consultation_fee",
                               f"consult:{consultation_id}", t,
                               consultation_id=consultation_id,
                               note=f"{minutes} min x {row.rate_cents}")
            conn.execute(update(C).where(C.id == consultation_id).values(
                paid_cents=paid, unpaid_cents=charge - paid))
            return self._close_result(conn, consultation_id, "closed")

        return self._run(tx)

    def _close_result(self, conn: Connection, cid: int, outcome: str) -> r.ConsultationClose:
        row = conn.execute(select(C.seconds, C.minutes, C.charge_cents, C.paid_cents,
                                  C.unpaid_cents, P.balance_cents)
                           .outerjoin(P, P.id == C.patient_id).where(C.id == cid)).one()
        return r.ConsultationClose(outcome, cid, *row)

    def consultation(self, consultation_id: int) -> Optional[r.ConsultationRecord]:
        return self._run(lambda conn: next(iter(self._records(conn, C.id == consultation_id, 1)),
                                           None), write=False)

    def recent_consultations(self, card_no: str, n: int = 5) -> list[r.ConsultationRecord]:
        """The card's consultations, newest first (the call-detail list read to the caller)."""
        card = self._code(card_no, "card number")
        if not isinstance(n, int) or not 1 <= n <= 100:
            raise InvalidInput("n must be between 1 and 100")
        return self._run(lambda conn: self._records(conn, P.card_no == card, n), write=False)

    @staticmethod
    def _records(conn: Connection, where: Any, limit: int) -> list[r.ConsultationRecord]:
        rows = conn.execute(
            select(C.id, Doc.number, Doc.name_zh, Doc.name_en, C.role, C.status,
                   C.rate_cents == 0, C.rate_cents, C.opened_at, C.joined_at, C.left_at,
                   C.seconds, C.minutes, C.charge_cents, C.paid_cents, C.unpaid_cents, C.call_id)
            .join(Doc, Doc.id == C.expert_id).outerjoin(P, P.id == C.patient_id)
            .where(where).order_by(C.opened_at.desc(), C.id.desc()).limit(limit))
        return [r.ConsultationRecord(*[bool(v) if i == 6 else v for i, v in enumerate(row)])
                for row in rows]
