"""Cancel a booking by its confirmation number (a paid registration's fee is refunded)."""

from engine.actions import Action, Result

from ._common import db, now, store_of


async def run(ctx, params):
    store = store_of(ctx, "booking.cancel")
    conf = params["confirmation"]
    card = params.get("card")
    if not card:                      # by confirmation number alone: the booking's own card
        info = await db(store.booking, conf)
        if info is None:
            return Result("not_found", {})
        card = info.card_no
    r = await db(store.cancel, conf, card, now=now(ctx))
    if r.outcome == "cancelled":
        return Result("cancelled", {"refund": r.refund_cents,
                                    "balance": r.balance_cents if r.balance_cents is not None else 0})
    return Result(r.outcome, {})      # already_cancelled | not_cancellable | not_found


ACTION = Action(
    name='booking.cancel',
    summary='Cancel a booking by its confirmation number (a paid registration is refunded).',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['confirmation'],
            'properties': {'confirmation': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
                           'card': {'type': 'string', 'pattern': '^([0-9A-Za-z]{1,20})?$',
                                    'description': 'the card the booking must belong to (recommended)'}}},
    outcomes=('cancelled', 'already_cancelled', 'not_cancellable', 'not_found'),
    sets={'cancelled': ('refund', 'balance')},
    run=run,
)
