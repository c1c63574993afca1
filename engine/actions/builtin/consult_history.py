"""The caller's recent consultations and charges, as text to read back."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("consult.history: implementation pending (store API)")


ACTION = Action(
    name='consult.history',
    summary="The caller's recent consultations and charges, as text to read back.",
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['card'],
 'properties': {'card': {'type': 'string'},
                'limit': {'type': 'integer', 'minimum': 1, 'maximum': 10}}},
    outcomes=('found', 'none'),
    sets={'found': ('history_text', 'history_count')},
    run=run,
)
