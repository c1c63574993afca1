"""Check a card number and PIN; lock the card after too many failures."""

from engine.actions import Action, Result

from ._common import db, now, store_of


async def run(ctx, params):
    store = store_of(ctx, "auth.verify")
    card = params["card"]
    r = await db(store.verify_pin, card, params["pin"], now=now(ctx))
    if r.status == "ok":
        patient = await db(store.patient, card)
        return Result("ok", {"patient_name": patient.name if patient else "",
                             "balance": patient.balance_cents if patient else 0})
    if r.status == "locked":
        return Result("locked", {})
    # unknown card / no PIN set: nothing to retry with the same card
    left = r.attempts_left if r.reason == "wrong_pin" and r.attempts_left is not None else 0
    return Result("failed", {"attempts_left": left, "auth_reason": r.reason or "wrong_pin"})


ACTION = Action(
    name='auth.verify',
    summary='Check a card number and PIN; lock the card after too many failures.',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['card', 'pin'],
            'properties': {'card': {'type': 'string', 'pattern': '^[0-9]{4,20}$'},
                           'pin': {'type': 'string', 'pattern': '^[0-9]{4,12}$'}}},
    outcomes=('ok', 'failed', 'locked'),
    sets={'ok': ('patient_name', 'balance'), 'failed': ('attempts_left', 'auth_reason'), 'locked': ()},
    run=run,
)
