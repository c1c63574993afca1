"""Check a card number and PIN; lock the card after too many failures."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("auth.verify: implementation pending (store API)")


ACTION = Action(
    name='auth.verify',
    summary='Check a card number and PIN; lock the card after too many failures.',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['card', 'pin'],
 'properties': {'card': {'type': 'string', 'pattern': '^[0-9]{4,20}$'},
                'pin': {'type': 'string', 'pattern': '^[0-9]{4,12}$'}}},
    outcomes=('ok', 'failed', 'locked'),
    sets={'ok': ('patient_name', 'balance'), 'failed': ('attempts_left',), 'locked': ()},
    run=run,
)
