"""Exam results (with birth-date second factor), complaints, information texts, call records."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Mapping, Optional

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from . import models as m
from . import results as r
from .base import StoreBase
from .db import Rollback
from .errors import InvalidInput, NotFound
from .timeutil import parse_date, require_aware

E, Cp, I, CR, P, D = (m.ExamResult, m.Complaint, m.InfoText, m.CallRecord, m.Patient,
                      m.Department)

TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")
LANG_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")
MAX_INFO = 20_000           # characters in one information text
MAX_TRACE = 5_000_000       # bytes of JSON trace per call


def check_topic(topic: Any) -> str:
    if not isinstance(topic, str) or not TOPIC_RE.match(topic):
        raise InvalidInput(f"info topic {topic!r} must be lower-case letters, digits, '_', '.', "
                           "'-' (max 64)")
    return topic


def check_lang(lang: Any) -> str:
    if not isinstance(lang, str) or not LANG_RE.match(lang):
        raise InvalidInput(f"language {lang!r} must look like 'zh', 'en' or 'zh-CN'")
    return lang


def check_body(body: Any, where: str) -> str:
    if not isinstance(body, str) or not body.strip():
        raise InvalidInput(f"{where}: text must be a non-empty string")
    if len(body) > MAX_INFO:
        raise InvalidInput(f"{where}: text longer than {MAX_INFO} characters")
    return body.strip()


class ServicesMixin(StoreBase):
    # -- exam results --------------------------------------------------------------------
    def add_exam_result(self, exam_code: str, card_no: str, *, exam_name_zh: str,
                        exam_name_en: str, exam_date: Any, ready: bool = False,
                        summary_zh: str = "", summary_en: str = "",
                        now: Optional[dt.datetime] = None) -> None:
        code, card = self._code(exam_code, "exam code"), self._code(card_no, "card number")
        d = parse_date(exam_date, "exam date")
        t = self._now(now)

        def tx(conn: Connection):
            pid = self._patient_id(conn, card)
            if pid is None:
                raise NotFound(f"no patient with card {card}")
            conn.execute(insert(E).values(
                exam_code=code, patient_id=pid, exam_name_zh=exam_name_zh,
                exam_name_en=exam_name_en, exam_date=d, status="ready" if ready else "pending",
                summary_zh=summary_zh, summary_en=summary_en, ready_at=t if ready else None))

        self._run(tx)

    def set_exam_ready(self, exam_code: str, *, summary_zh: str, summary_en: str,
                       now: Optional[dt.datetime] = None) -> None:
        code = self._code(exam_code, "exam code")
        t = self._now(now)

        def tx(conn: Connection):
            if conn.execute(update(E).where(E.exam_code == code).values(
                    status="ready", summary_zh=summary_zh, summary_en=summary_en,
                    ready_at=t)).rowcount != 1:
                raise NotFound(f"no exam with code {code}")

        self._run(tx)

    def exam_result(self, exam_code: str, birth_date: Any, *, lang: str = "zh",
                    now: Optional[dt.datetime] = None) -> r.ExamLookup:
        """Look up an exam (体检结果) by code with the patient's birth date as second factor.

        found | not_ready | not_found | denied (reason mismatch | locked).  Readiness is
        only revealed after the birth date matches.  After ``max_exam_failures`` wrong
        birth dates the code is locked (``exam_lock_seconds``, or until a correct reset).
        A keyed birth date that is not a valid date counts as a mismatch.
        """
        code = str(exam_code).strip() if isinstance(exam_code, (str, int)) else None
        if code is None or isinstance(exam_code, bool):
            raise InvalidInput("exam code must be a string of letters or digits")
        if not re.match(r"^[0-9A-Za-z]{1,20}$", code):
            return r.ExamLookup("not_found")
        if isinstance(birth_date, str):
            try:
                bd: Optional[dt.date] = parse_date(birth_date, "birth date")
            except InvalidInput:
                bd = None
        else:
            bd = parse_date(birth_date, "birth date")
        lang = check_lang(lang)
        t = self._now(now)
        N, lock = self.max_exam_failures, self.exam_lock_seconds

        def tx(conn: Connection) -> r.ExamLookup:
            row = conn.execute(
                select(E.id, E.status, E.exam_name_zh, E.exam_name_en, E.exam_date,
                       E.summary_zh, E.summary_en, E.ready_at, E.failed_checks, E.locked_at,
                       P.birth_date).join(P, P.id == E.patient_id).where(E.exam_code == code)
                .with_for_update(of=E)).first()
            if row is None:
                return r.ExamLookup("not_found")
            failures = row.failed_checks
            if failures >= N:
                expired = (lock is not None and row.locked_at is not None
                           and t >= row.locked_at + dt.timedelta(seconds=lock))
                if not expired:
                    return r.ExamLookup("denied", exam_code=code, reason="locked")
                failures = 0
            if bd is None or row.birth_date is None or bd != row.birth_date:
                failures += 1
                conn.execute(update(E).where(E.id == row.id).values(
                    failed_checks=failures, locked_at=t if failures >= N else None))
                return r.ExamLookup("denied", exam_code=code,
                                    reason="locked" if failures >= N else "mismatch")
            if row.failed_checks:
                conn.execute(update(E).where(E.id == row.id).values(failed_checks=0,
                                                                    locked_at=None))
            zh = lang.startswith("zh")
            name = row.exam_name_zh if zh else row.exam_name_en
            if row.status != "ready":
                return r.ExamLookup("not_ready", code, name, row.exam_date)
            return r.ExamLookup("found", code, name, row.exam_date,
                                row.summary_zh if zh else row.summary_en, row.ready_at)

        return self._run(tx)

    # -- complaints ----------------------------------------------------------------------
    def file_complaint(
        self,
        *,
        department_code: Optional[str] = None,
        staff_code: Optional[str] = None,
        recording_path: Optional[str] = None,
        caller: Optional[str] = None,
        card_no: Optional[str] = None,
        call_id: Optional[str] = None,
        note: str = "",
        request_id: Optional[str] = None,
        now: Optional[dt.datetime] = None,
    ) -> r.ComplaintResult:
        """Open a complaint ticket (投诉) about a department and a staff code, or with a voice
        message.  filed (ticket_no) | unknown_department."""
        dep = self._code(department_code, "department code") if department_code else None
        staff = self._code(staff_code, "staff code") if staff_code else None
        rec = self._opt_text(recording_path, "recording path", 500) or None
        if staff is None and rec is None:
            raise InvalidInput("a complaint needs a staff code or a recording")
        caller = self._opt_text(caller, "caller", 64)
        card = self._code(card_no, "card number") if card_no else None
        call_id = self._opt_text(call_id, "call_id", 100)
        note = self._opt_text(note, "note", 2000) or ""
        req = self._opt_text(request_id, "request_id", 100)
        t = self._now(now)

        def tx(conn: Connection) -> r.ComplaintResult:
            if req is not None:
                prev = conn.execute(select(Cp.ticket_no).where(Cp.request_id == req)).scalar()
                if prev is not None:
                    return r.ComplaintResult("filed", prev, replayed=True)
            dep_id = None
            if dep is not None:
                dep_id = conn.execute(select(D.id).where(D.code == dep)).scalar()
                if dep_id is None:
                    raise Rollback(r.ComplaintResult("unknown_department"))
            ticket = self._new_number(conn, Cp.ticket_no)
            conn.execute(insert(Cp).values(
                ticket_no=ticket, department_code=dep, department_id=dep_id, staff_code=staff,
                recording_path=rec, caller=caller, card_no=card, call_id=call_id,
                request_id=req, status="open", note=note, created_at=t, updated_at=t))
            return r.ComplaintResult("filed", ticket)

        return self._run(tx)

    def complaint(self, ticket_no: str) -> Optional[r.ComplaintInfo]:
        tk = self._code(ticket_no, "ticket number")

        def tx(conn: Connection):
            row = conn.execute(select(
                Cp.ticket_no, Cp.status, Cp.department_code, Cp.staff_code, Cp.recording_path,
                Cp.caller, Cp.card_no, Cp.call_id, Cp.note, Cp.created_at, Cp.updated_at,
            ).where(Cp.ticket_no == tk)).first()
            return None if row is None else r.ComplaintInfo(*row)

        return self._run(tx, write=False)

    def set_complaint_status(self, ticket_no: str, status: str, *, note: Optional[str] = None,
                             now: Optional[dt.datetime] = None) -> None:
        tk = self._code(ticket_no, "ticket number")
        if status not in m.COMPLAINT_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(m.COMPLAINT_STATUSES)}")
        values: dict[str, Any] = {"status": status, "updated_at": self._now(now)}
        if note is not None:
            values["note"] = self._opt_text(note, "note", 2000)

        def tx(conn: Connection):
            if conn.execute(update(Cp).where(Cp.ticket_no == tk).values(**values)).rowcount != 1:
                raise NotFound(f"no complaint with ticket {tk}")

        self._run(tx)

    # -- information texts ---------------------------------------------------------------
    def info(self, topic: str, lang: str, *, fallback_lang: Optional[str] = None
             ) -> Optional[str]:
        """The information text (信息咨询) for a topic in a language (or the fallback), or None."""
        topic, lang = check_topic(topic), check_lang(lang)
        langs = [lang] + ([check_lang(fallback_lang)] if fallback_lang else [])

        def tx(conn: Connection):
            for lg in langs:
                body = conn.execute(select(I.body).where(I.topic == topic, I.lang == lg)).scalar()
                if body is not None:
                    return body
            return None

        return self._run(tx, write=False)

    def info_topics(self) -> dict[str, list[str]]:
        """topic -> languages available."""
        def tx(conn: Connection):
            out: dict[str, list[str]] = {}
            for topic, lang in conn.execute(select(I.topic, I.lang).order_by(I.topic, I.lang)):
                out.setdefault(topic, []).append(lang)
            return out

        return self._run(tx, write=False)

    def set_info(self, topic: str, lang: str, body: str, *, now: Optional[dt.datetime] = None
                 ) -> None:
        """Create or replace one information text."""
        self.load_info({topic: {lang: body}}, now=now)

    def delete_info(self, topic: str, lang: Optional[str] = None) -> int:
        topic = check_topic(topic)
        q = delete(I).where(I.topic == topic)
        if lang is not None:
            q = q.where(I.lang == check_lang(lang))
        return self._run(lambda conn: conn.execute(q).rowcount)

    def load_info(self, texts: Mapping[str, Mapping[str, str]], *,
                  only_missing: bool = False, now: Optional[dt.datetime] = None) -> int:
        """Upsert ``{topic: {lang: text}}`` in one transaction (all or nothing).  With
        ``only_missing`` existing texts are kept.  Returns the number of texts written."""
        items = validate_info(texts)
        t = self._now(now)

        def tx(conn: Connection) -> int:
            n = 0
            for topic, lang, body in items:
                exists = conn.execute(select(I.topic).where(I.topic == topic, I.lang == lang)
                                      ).first() is not None
                if exists and only_missing:
                    continue
                if exists:
                    conn.execute(update(I).where(I.topic == topic, I.lang == lang)
                                 .values(body=body, updated_at=t))
                else:
                    conn.execute(insert(I).values(topic=topic, lang=lang, body=body,
                                                  updated_at=t))
                n += 1
            return n

        return self._run(tx)

    # -- call records --------------------------------------------------------------------
    def record_call(
        self,
        call_id: str,
        *,
        flow: str,
        started_at: dt.datetime,
        caller: Optional[str] = None,
        destination: Optional[str] = None,
        ended_at: Optional[dt.datetime] = None,
        disposition: Optional[str] = None,
        trace: Any = None,
        now: Optional[dt.datetime] = None,
    ) -> None:
        """Write the call-detail record of a call.  Idempotent per ``call_id``: a second call
        updates the record (e.g. the hangup path adding ``ended_at`` and the final trace)."""
        cid = self._opt_text(call_id, "call_id", 100)
        if not cid:
            raise InvalidInput("call_id must be a non-empty string")
        flow = self._opt_text(flow, "flow", 200)
        if not flow:
            raise InvalidInput("flow must be a non-empty string")
        require_aware(started_at, "started_at")
        if ended_at is not None and require_aware(ended_at, "ended_at") < started_at:
            raise InvalidInput("ended_at is before started_at")
        values = dict(
            flow=flow, caller=self._opt_text(caller, "caller", 64),
            destination=self._opt_text(destination, "destination", 64),
            started_at=started_at, ended_at=ended_at,
            disposition=self._opt_text(disposition, "disposition", 32),
            trace=_json_safe(trace), updated_at=self._now(now))

        def tx(conn: Connection):
            if conn.execute(select(CR.id).where(CR.call_id == cid)).first() is None:
                conn.execute(insert(CR).values(call_id=cid, **values))
            else:
                conn.execute(update(CR).where(CR.call_id == cid).values(**values))

        self._run(tx)

    def call_record(self, call_id: str) -> Optional[r.CallRecordInfo]:
        def tx(conn: Connection):
            row = conn.execute(select(CR.call_id, CR.flow, CR.caller, CR.destination,
                                      CR.started_at, CR.ended_at, CR.disposition, CR.trace)
                               .where(CR.call_id == call_id)).first()
            return None if row is None else r.CallRecordInfo(*row)

        return self._run(tx, write=False)

    def recent_calls(self, *, caller: Optional[str] = None, limit: int = 20
                     ) -> list[r.CallRecordInfo]:
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000")
        q = (select(CR.call_id, CR.flow, CR.caller, CR.destination, CR.started_at, CR.ended_at,
                    CR.disposition, CR.trace).order_by(CR.started_at.desc(), CR.id.desc())
             .limit(limit))
        if caller is not None:
            q = q.where(CR.caller == caller)
        return self._run(lambda conn: [r.CallRecordInfo(*row) for row in conn.execute(q)],
                         write=False)


def validate_info(texts: Any) -> list[tuple[str, str, str]]:
    """Check ``{topic: {lang: text}}``; return (topic, lang, text) triples."""
    if not isinstance(texts, Mapping) or not texts:
        raise InvalidInput("information texts must be a non-empty mapping of topic -> "
                           "{language: text}")
    out = []
    for topic, per_lang in texts.items():
        check_topic(topic)
        if not isinstance(per_lang, Mapping) or not per_lang:
            raise InvalidInput(f"topic {topic!r}: expected a mapping of language -> text")
        for lang, body in per_lang.items():
            check_lang(lang)
            out.append((topic, lang, check_body(body, f"topic {topic!r}, language {lang!r}")))
    return out


def _json_safe(trace: Any) -> Any:
    if trace is None:
        return None
    try:
        text = json.dumps(trace, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"trace is not JSON-serialisable: {e}") from None
    if len(text.encode()) > MAX_TRACE:
        raise InvalidInput(f"trace larger than {MAX_TRACE} bytes")
    return json.loads(text)
