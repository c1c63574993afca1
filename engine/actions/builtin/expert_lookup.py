"""Find an expert by number: name, speciality, rate and conference room."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("expert.lookup: implementation pending (store API)")


ACTION = Action(
    name='expert.lookup',
    summary='Find an expert by number: name, speciality, rate and conference room.',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['expert_no'],
 'properties': {'expert_no': {'type': 'string'}}},
    outcomes=('found', 'not_found'),
    sets={'found': ('expert_name', 'expert_speciality', 'rate', 'room')},
    run=run,
)
