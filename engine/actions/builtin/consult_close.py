"""Close a consultation and charge per started minute (exactly once)."""

import datetime as dt
import math

from engine.actions import Action, Result

from ._common import ActionFailure, db, now, store_of


def _period(opened_at, seconds, t):
    """(joined_at, left_at) of the caller's time in the room, ending now.

    ``seconds`` from the conference state are truncated to whole seconds: platform timestamps
    jitter by milliseconds, and a caller cut off at the paid limit must not start a new minute.
    None (the caller hung up before the room reported a time): from the opening to now.
    0: never in the room, nothing to charge."""
    if seconds is None:
        return (min(opened_at, t), t)
    if seconds <= 0:
        return None, None
    return t - dt.timedelta(seconds=math.floor(seconds)), t


async def run(ctx, params):
    store = store_of(ctx, "consult.close")
    try:
        cid = int(params["consultation_id"])
    except (TypeError, ValueError):
        raise ActionFailure(f"consult.close: consultation_id {params['consultation_id']!r} "
                            "is not a number") from None
    seconds = params.get("seconds")
    if seconds is not None and (not math.isfinite(seconds) or seconds < 0):
        raise ActionFailure(f"consult.close: seconds {seconds!r} must be a non-negative number")
    rec = await db(store.consultation, cid)
    if rec is None:
        raise ActionFailure(f"consult.close: no consultation {cid}")
    t = now(ctx)
    joined, left = _period(rec.opened_at, seconds, t)
    r = await db(store.close_consultation, cid, joined, left, now=t)
    if r.outcome not in ("closed", "already_closed"):
        raise ActionFailure(f"consult.close: consultation {cid}: {r.outcome}")
    if rec.free:
        return Result("free", {"minutes": r.minutes})
    return Result("charged", {"minutes": r.minutes, "charge": r.charge_cents, "paid": r.paid_cents,
                              "unpaid": r.unpaid_cents,
                              "balance": r.balance_cents if r.balance_cents is not None else 0})


ACTION = Action(
    name='consult.close',
    summary='Close a consultation and charge per started minute (exactly once; safe to repeat).',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['consultation_id'],
            'properties': {'consultation_id': {'type': ['integer', 'string']},
                           'seconds': {'type': ['number', 'null'], 'minimum': 0,
                                       'description': 'time in the room (the conference state\'s into); '
                                                      'null: from the opening to now'}}},
    outcomes=('charged', 'free'),
    sets={'charged': ('minutes', 'charge', 'paid', 'unpaid', 'balance'), 'free': ('minutes',)},
    run=run,
)
