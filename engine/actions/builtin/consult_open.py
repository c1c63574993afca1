"""Open a paid expert consultation: checks the balance and how long it pays for."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("consult.open: implementation pending (store API)")


ACTION = Action(
    name='consult.open',
    summary='Open a paid expert consultation: checks the balance and how long it pays for.',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['card', 'expert_no'],
 'properties': {'card': {'type': 'string'},
                'expert_no': {'type': 'string'},
                'vip': {'type': 'boolean'},
                'listen_only': {'type': 'boolean'}}},
    outcomes=('ok', 'insufficient_funds'),
    sets={'ok': ('consultation_id', 'max_seconds', 'rate'), 'insufficient_funds': ('balance', 'rate')},
    run=run,
)
