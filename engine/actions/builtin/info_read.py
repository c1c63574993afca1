"""Information text from the database (hospital, departments, schedules, experts, new drugs)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("info.read: implementation pending (store API)")


ACTION = Action(
    name='info.read',
    summary='Information text from the database (hospital, departments, schedules, experts, new drugs).',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['topic'],
 'properties': {'topic': {'type': 'string', 'pattern': '^[a-z_]+$'}, 'key': {'type': 'string'}}},
    outcomes=('found', 'not_found'),
    sets={'found': ('info_text',)},
    run=run,
)
