"""Shared by booking.book and registration.pay: the day, the slot owner, result variables."""

from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

from ._common import ActionFailure, code, db, now, pick, request_id

ANY_DOCTOR = ("", "0")           # keyed "0": no particular doctor, the department's general clinic


async def target(ctx: Any, store: Any, params: Mapping[str, Any]) -> tuple[dict | None, Any]:
    """(keyword arguments naming the slot owner, the Doctor or None); (None, None) when the
    department or doctor does not exist (or the doctor is not in that department)."""
    dep = code(params["department"], "department")
    doc = str(params.get("doctor") or "").strip()
    if doc in ANY_DOCTOR:
        return {"department": dep}, None
    doctor = await db(store.doctor, doc)
    if doctor is None or doctor.department_code != dep:
        return None, None
    return {"doctor": doc}, doctor


def day(ctx: Any, store: Any, days_ahead: int) -> tuple[dt.datetime, dt.date]:
    """(the call's time, the clinic day ``days_ahead`` after today in the store's time zone)."""
    t = now(ctx)
    return t, store.local_date(t) + dt.timedelta(days=days_ahead)


async def names(ctx: Any, store: Any, dep_code: str | None, doctor: Any) -> dict:
    deps = await db(store.departments)
    dep = next((d for d in deps if d.code == dep_code), None)
    return {"department_name": pick(ctx, dep.name_zh, dep.name_en) if dep else (dep_code or ""),
            "doctor_name": pick(ctx, doctor.name_zh, doctor.name_en) if doctor else ""}


async def reserve(ctx: Any, store: Any, params: Mapping[str, Any], method: str, **extra: Any):
    """Call ``store.book`` or ``store.register``; returns (BookingResult or None, Doctor or None)."""
    owner, doctor = await target(ctx, store, params)
    if owner is None:
        return None, None
    t, d = day(ctx, store, params["days_ahead"])
    fn = getattr(store, method)
    r = await db(fn, params["card"], date=d, session=params["session"], request_id=request_id(ctx, params),
                 now=t, **owner, **extra)
    return r, doctor


async def booked_vars(ctx: Any, store: Any, r: Any, doctor: Any) -> dict:
    if r.confirmation_no is None or r.day is None:
        raise ActionFailure(f"the store returned {r.outcome} without a booking")
    return {"confirmation_no": r.confirmation_no, "booking_date": r.day.isoformat(),
            "booking_session": r.session, **(await names(ctx, store, r.department_code, doctor))}


SLOT_PARAMS = {
    'card': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
    'department': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
    'doctor': {'type': 'string', 'pattern': '^[0-9A-Za-z]{0,20}$',
               'description': 'doctor number; "0" or "" for the department general clinic'},
    'days_ahead': {'type': 'integer', 'minimum': 0, 'maximum': 30},
    'session': {'enum': ['am', 'pm']},
}
BOOKED_SETS = ('confirmation_no', 'booking_date', 'booking_session', 'department_name', 'doctor_name')
