"""Book a free appointment slot (never overbooked)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("booking.book: implementation pending (store API)")


ACTION = Action(
    name='booking.book',
    summary='Book a free appointment slot (never overbooked).',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['card', 'department', 'days_ahead', 'session'],
 'properties': {'card': {'type': 'string'},
                'department': {'type': 'string'},
                'doctor': {'type': 'string'},
                'days_ahead': {'type': 'integer', 'minimum': 0, 'maximum': 30},
                'session': {'enum': ['am', 'pm']}}},
    outcomes=('booked', 'full', 'not_found', 'unknown_card'),
    sets={'booked': ('confirmation_no', 'booking_date', 'booking_session', 'doctor_name', 'department_name')},
    run=run,
)
