"""Paid registration: the fee is charged atomically with a ledger row (VIP free by policy)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("registration.pay: implementation pending (store API)")


ACTION = Action(
    name='registration.pay',
    summary='Paid registration: the fee is charged atomically with a ledger row (VIP free by policy).',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['card', 'department', 'days_ahead', 'session'],
 'properties': {'card': {'type': 'string'},
                'department': {'type': 'string'},
                'doctor': {'type': 'string'},
                'days_ahead': {'type': 'integer', 'minimum': 0, 'maximum': 30},
                'session': {'enum': ['am', 'pm']},
                'vip': {'type': 'boolean'}}},
    outcomes=('paid', 'free', 'insufficient_funds', 'full', 'not_found'),
    sets={'paid': ('confirmation_no',
          'fee',
          'balance',
          'booking_date',
          'booking_session',
          'department_name'),
 'free': ('confirmation_no', 'booking_date', 'booking_session', 'department_name'),
 'insufficient_funds': ('fee', 'balance')},
    run=run,
)
