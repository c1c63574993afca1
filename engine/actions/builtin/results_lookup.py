"""Exam result by exam code plus a second factor (card PIN or date of birth)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("results.lookup: implementation pending (store API)")


ACTION = Action(
    name='results.lookup',
    summary='Exam result by exam code plus a second factor (card PIN or date of birth).',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['exam_code'],
 'properties': {'exam_code': {'type': 'string'},
                'pin': {'type': 'string'},
                'dob': {'type': 'string', 'pattern': '^[0-9]{8}$'}}},
    outcomes=('found', 'not_ready', 'not_found', 'denied'),
    sets={'found': ('result_summary', 'exam_name', 'exam_date'), 'not_ready': ('exam_name', 'ready_date')},
    run=run,
)
