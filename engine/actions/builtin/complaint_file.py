"""File a complaint ticket (keypad codes or a recorded message)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("complaint.file: implementation pending (store API)")


ACTION = Action(
    name='complaint.file',
    summary='File a complaint ticket (keypad codes or a recorded message).',
    params={'type': 'object',
 'additionalProperties': False,
 'properties': {'department': {'type': 'string'},
                'staff': {'type': 'string'},
                'recording': {'type': 'string'}}},
    outcomes=('filed',),
    sets={'filed': ('ticket_no',)},
    run=run,
)
