"""Exam result by exam code plus a second factor (date of birth, or card and PIN)."""

from engine.actions import Action, Result

from ._common import ActionFailure, db, now, store_lang, store_of


def _owner(store, exam_code):
    """(card number, birth date) of the exam's patient, or None.  Read-only, bound parameters."""
    from sqlalchemy import select

    from engine.store import models as m

    with store.engine.connect() as conn:
        row = conn.execute(select(m.Patient.card_no, m.Patient.birth_date)
                           .join(m.ExamResult, m.ExamResult.patient_id == m.Patient.id)
                           .where(m.ExamResult.exam_code == exam_code)).first()
    return None if row is None else (row.card_no, row.birth_date)


async def run(ctx, params):
    store = store_of(ctx, "results.lookup")
    code = params["exam_code"]
    t = now(ctx)
    if "dob" in params:
        d = params["dob"]
        birth = f"{d[:4]}-{d[4:6]}-{d[6:]}"          # an impossible date counts as a mismatch
    else:
        auth = await db(store.verify_pin, params["card"], params["pin"], now=t)
        if auth.status != "ok":
            return Result("denied", {"denied_reason": "locked" if auth.status == "locked" else "mismatch"})
        owner = await db(_owner, store, code)
        if owner is None:
            return Result("not_found", {})
        if owner[0] != params["card"] or owner[1] is None:
            return Result("denied", {"denied_reason": "mismatch"})
        birth = owner[1]
    r = await db(store.exam_result, code, birth, lang=store_lang(ctx), now=t)
    if r.outcome == "found":
        if not (r.summary or "").strip():
            raise ActionFailure(f"exam {code} is marked ready but has no {store_lang(ctx)} summary: "
                                "fix the exam record")
        return Result("found", {"result_summary": r.summary.strip(), "exam_name": r.exam_name or "",
                                "exam_date": r.exam_date.isoformat()})
    if r.outcome == "not_ready":
        return Result("not_ready", {"exam_name": r.exam_name or "", "exam_date": r.exam_date.isoformat()})
    if r.outcome == "denied":
        return Result("denied", {"denied_reason": r.reason or "mismatch"})
    return Result("not_found", {})


ACTION = Action(
    name='results.lookup',
    summary='Exam result by exam code plus a second factor (date of birth, or card and PIN).',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['exam_code'],
            'properties': {'exam_code': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
                           'dob': {'type': 'string', 'pattern': '^[0-9]{8}$',
                                   'description': 'date of birth as keyed: YYYYMMDD'},
                           'card': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
                           'pin': {'type': 'string', 'pattern': '^[0-9]{4,12}$'}},
            'oneOf': [{'required': ['dob'], 'not': {'anyOf': [{'required': ['card']}, {'required': ['pin']}]}},
                      {'required': ['card', 'pin'], 'not': {'required': ['dob']}}]},
    outcomes=('found', 'not_ready', 'not_found', 'denied'),
    sets={'found': ('result_summary', 'exam_name', 'exam_date'),
          'not_ready': ('exam_name', 'exam_date'),
          'denied': ('denied_reason',)},
    run=run,
)
