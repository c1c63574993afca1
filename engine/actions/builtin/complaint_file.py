"""File a complaint ticket (keypad codes or a recorded message)."""

from engine.actions import Action, Result

from ._common import db, now, request_id, store_of


async def run(ctx, params):
    store = store_of(ctx, "complaint.file")
    r = await db(store.file_complaint, department_code=params.get("department") or None,
                 staff_code=params.get("staff") or None, recording_path=params.get("recording") or None,
                 caller=ctx.caller_raw, card_no=params.get("card") or None, call_id=ctx.call_id,
                 request_id=request_id(ctx, params), now=now(ctx))
    if r.outcome == "filed":
        return Result("filed", {"ticket_no": r.ticket_no})
    return Result("unknown_department", {})


ACTION = Action(
    name='complaint.file',
    summary='File a complaint ticket (keypad codes or a recorded message).',
    params={'type': 'object',
            'additionalProperties': False,
            'properties': {'department': {'type': ['string', 'null'], 'pattern': '^([0-9A-Za-z]{1,20})?$'},
                           'staff': {'type': ['string', 'null'], 'pattern': '^[0-9A-Za-z]{1,20}$'},
                           'recording': {'type': ['string', 'null'], 'minLength': 1, 'maxLength': 500},
                           'card': {'type': ['string', 'null'], 'pattern': '^([0-9A-Za-z]{1,20})?$'}},
            # a staff code or a recording (the other may be null)
            'anyOf': [{'required': ['staff'], 'properties': {'staff': {'type': 'string'}}},
                      {'required': ['recording'], 'properties': {'recording': {'type': 'string'}}}]},
    outcomes=('filed', 'unknown_department'),
    sets={'filed': ('ticket_no',)},
    run=run,
)
