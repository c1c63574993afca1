"""Recognise a VIP caller by caller ID (trusted sources only)."""

from engine.actions import Action, Result


async def run(ctx, params):
    raise NotImplementedError("vip.check: implementation pending (store API)")


ACTION = Action(
    name='vip.check',
    summary='Recognise a VIP caller by caller ID (trusted sources only).',
    params={'type': 'object', 'additionalProperties': False, 'properties': {}},
    outcomes=('vip', 'regular'),
    sets={'vip': ('vip', 'vip_name', 'card_no'), 'regular': ('vip',)},
    run=run,
)
