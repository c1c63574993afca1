"""Cancel a booking by its confirmation number."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("booking.cancel: implementation pending (store API)")


ACTION = Action(
    name='booking.cancel',
    summary='Cancel a booking by its confirmation number.',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['confirmation'],
 'properties': {'confirmation': {'type': 'string'}, 'card': {'type': 'string'}}},
    outcomes=('cancelled', 'not_found'),
    sets={'cancelled': ('refund',)},
    run=run,
)
