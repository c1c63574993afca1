"""Book a free appointment slot (never overbooked)."""

from engine.actions import Action, Result

from ._booking import BOOKED_SETS, SLOT_PARAMS, booked_vars, reserve
from ._common import store_of


async def run(ctx, params):
    store = store_of(ctx, "booking.book")
    r, doctor = await reserve(ctx, store, params, "book")
    if r is None:
        return Result("not_found", {})
    if r.outcome in ("booked", "duplicate"):
        return Result(r.outcome, await booked_vars(ctx, store, r, doctor))
    if r.outcome == "full":
        return Result("full", {})
    if r.outcome == "no_slot":
        return Result("not_found" if r.reason in ("unknown_doctor", "unknown_department") else "no_session", {})
    if r.outcome == "unknown_card":
        return Result("unknown_card", {})
    raise RuntimeError(f"booking.book: unexpected store outcome {r.outcome!r}")


ACTION = Action(
    name='booking.book',
    summary='Book a free appointment slot (never overbooked).',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['card', 'department', 'days_ahead', 'session'],
            'properties': SLOT_PARAMS},
    outcomes=('booked', 'duplicate', 'full', 'no_session', 'not_found', 'unknown_card'),
    sets={'booked': BOOKED_SETS, 'duplicate': BOOKED_SETS},
    run=run,
)
