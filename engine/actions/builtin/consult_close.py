"""Close a consultation and charge per started minute (exactly once)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("consult.close: implementation pending (store API)")


ACTION = Action(
    name='consult.close',
    summary='Close a consultation and charge per started minute (exactly once).',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['consultation_id'],
 'properties': {'consultation_id': {'type': ['integer', 'string']},
                'seconds': {'type': ['number', 'null']}}},
    outcomes=('charged', 'free'),
    sets={'charged': ('charge', 'balance', 'minutes'), 'free': ('minutes',)},
    run=run,
)
