"""Recognise a VIP caller by caller ID (trusted sources only)."""

from engine.actions import Action, Result

from ._common import db, store_of


async def run(ctx, params):
    store = store_of(ctx, "vip.check")
    if not ctx.caller:              # no number, or one from an untrusted source: never VIP
        return Result("regular", {"vip": False})
    vip = await db(store.vip_lookup, ctx.caller)
    if vip is None:
        return Result("regular", {"vip": False})
    return Result("vip", {"vip": True, "vip_name": vip.name, "vip_level": vip.level, "vip_card": vip.card_no})


ACTION = Action(
    name='vip.check',
    summary='Recognise a VIP caller by caller ID (trusted sources only).',
    params={'type': 'object', 'additionalProperties': False, 'properties': {}},
    outcomes=('vip', 'regular'),
    sets={'vip': ('vip', 'vip_name', 'vip_level', 'vip_card'), 'regular': ('vip',)},
    run=run,
)
