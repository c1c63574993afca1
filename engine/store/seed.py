"""Idempotent demo seeding: a hospital with departments, doctors/experts, 14 days of clinic
slots from ``today``, patients with cards/balances/PINs, VIP numbers, exam results and
information texts.  Existing rows are never changed, so re-running (even with a later
``today``) only adds what is missing."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from . import demo_data as demo
from . import models as m
from .pin import hash_pin
from .services import validate_info
from .store import Store
from .timeutil import parse_date

SLOT_DAYS = 14


def _sessions(spec: list[str]) -> set[tuple[int, str]]:
    return {(demo.WEEKDAYS.index(s.split("-")[0]), s.split("-")[1]) for s in spec}


def seed_demo(store: Store, today: Optional[dt.date] = None,
              now: Optional[dt.datetime] = None) -> dict[str, int]:
    """Seed the demo hospital; returns how many rows of each kind were created."""
    t = store._now(now)
    today = parse_date(today, "today") if today is not None else store.local_date(t)
    existing = store._run(lambda conn: set(conn.execute(select(m.Patient.card_no)).scalars()),
                          write=False)
    hashes = {card: hash_pin(pin, store.pin_params)
              for card, _n, _p, _b, pin, _bal in demo.PATIENTS if card not in existing}
    info_items = validate_info(demo.INFO)

    def tx(conn: Connection) -> dict[str, int]:
        made = dict.fromkeys(("departments", "doctors", "slots", "patients", "vips", "exams",
                              "info_texts"), 0)
        dep_ids = {}
        for code, zh, en, _fee, _cap in demo.DEPARTMENTS:
            did = conn.execute(select(m.Department.id).where(m.Department.code == code)).scalar()
            if did is None:
                did = conn.execute(insert(m.Department).values(code=code, name_zh=zh, name_en=en)
                                   .returning(m.Department.id)).scalar_one()
                made["departments"] += 1
            dep_ids[code] = did
        doc_ids = {}
        for (num, dep, zh, en, tzh, ten, szh, sen, expert, rate, _fee, _cap, _s) in demo.DOCTORS:
            did = conn.execute(select(m.Doctor.id).where(m.Doctor.number == num)).scalar()
            if did is None:
                did = conn.execute(insert(m.Doctor).values(
                    number=num, department_id=dep_ids[dep], name_zh=zh, name_en=en,
                    title_zh=tzh, title_en=ten, specialty_zh=szh, specialty_en=sen,
                    is_expert=expert, rate_cents=rate,
                    conference_room=f"expert-{num}" if expert else None,
                ).returning(m.Doctor.id)).scalar_one()
                made["doctors"] += 1
            doc_ids[num] = did

        last = today + dt.timedelta(days=SLOT_DAYS - 1)
        have = set(conn.execute(select(m.Slot.department_id, m.Slot.doctor_id, m.Slot.day,
                                       m.Slot.session)
                                .where(m.Slot.day >= today, m.Slot.day <= last)).all())
        wanted = []
        general = _sessions(demo.GENERAL_SESSIONS)
        for i in range(SLOT_DAYS):
            day = today + dt.timedelta(days=i)
            for code, _zh, _en, fee, cap in demo.DEPARTMENTS:
                for sess in ("am", "pm"):
                    if (day.weekday(), sess) in general:
                        wanted.append((dep_ids[code], None, day, sess, cap, fee))
            for (num, dep, *_rest, fee, cap, spec) in demo.DOCTORS:
                for sess in ("am", "pm"):
                    if (day.weekday(), sess) in _sessions(spec):
                        wanted.append((dep_ids[dep], doc_ids[num], day, sess, cap, fee))
        rows = [dict(department_id=d, doctor_id=doc, day=day, session=s, capacity=cap,
                     booked=0, fee_cents=fee)
                for d, doc, day, s, cap, fee in wanted if (d, doc, day, s) not in have]
        if rows:
            conn.execute(insert(m.Slot), rows)
        made["slots"] = len(rows)

        for card, name, phone, birth, _pin, bal in demo.PATIENTS:
            if conn.execute(select(m.Patient.id).where(m.Patient.card_no == card)).first():
                continue
            pid = conn.execute(insert(m.Patient).values(
                card_no=card, name=name, phone=phone, birth_date=parse_date(birth),
                pin_hash=hashes.get(card) or hash_pin(_pin, store.pin_params), created_at=t,
            ).returning(m.Patient.id)).scalar_one()
            if bal:
                store._post(conn, pid, bal, "topup", f"open:{card}", t, note="opening balance")
            made["patients"] += 1

        for number, name, card, level, note in demo.VIPS:
            if conn.execute(select(m.VipNumber.id).where(m.VipNumber.number == number)).first():
                continue
            pid = (conn.execute(select(m.Patient.id).where(m.Patient.card_no == card)).scalar()
                   if card else None)
            conn.execute(insert(m.VipNumber).values(number=number, name=name, patient_id=pid,
                                                    level=level, note=note))
            made["vips"] += 1

        for code, card, nzh, nen, ago, ready, szh, sen in demo.EXAMS:
            if conn.execute(select(m.ExamResult.id).where(m.ExamResult.exam_code == code)).first():
                continue
            pid = conn.execute(select(m.Patient.id).where(m.Patient.card_no == card)).scalar_one()
            conn.execute(insert(m.ExamResult).values(
                exam_code=code, patient_id=pid, exam_name_zh=nzh, exam_name_en=nen,
                exam_date=today - dt.timedelta(days=ago), status="ready" if ready else "pending",
                summary_zh=szh, summary_en=sen, ready_at=t if ready else None))
            made["exams"] += 1

        for topic, lang, body in info_items:
            if conn.execute(select(m.InfoText.topic).where(
                    m.InfoText.topic == topic, m.InfoText.lang == lang)).first():
                continue
            conn.execute(insert(m.InfoText).values(topic=topic, lang=lang, body=body,
                                                   updated_at=t))
            made["info_texts"] += 1
        return made

    return store._run(tx)
