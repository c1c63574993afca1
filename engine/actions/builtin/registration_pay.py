"""Paid registration: the fee is charged atomically with a ledger row (VIP free by policy)."""

from engine.actions import Action, Result

from ._booking import BOOKED_SETS, SLOT_PARAMS, booked_vars, reserve
from ._common import ActionFailure, policy, store_of, trusted_vip


async def run(ctx, params):
    store = store_of(ctx, "registration.pay")
    # VIP treatment only for a caller whose trusted number is on the VIP list, whatever the flow says
    vip = bool(params.get("vip")) and await trusted_vip(ctx, store) is not None
    r, doctor = await reserve(ctx, store, params, "register", vip=vip, policy=policy(ctx))
    if r is None:
        return Result("not_found", {})
    if r.outcome == "registered":
        v = await booked_vars(ctx, store, r, doctor)
        if r.vip_free:
            return Result("free", v)
        return Result("paid", {**v, "fee": r.fee_cents, "balance": r.balance_cents})
    if r.outcome == "duplicate":
        return Result("duplicate", await booked_vars(ctx, store, r, doctor))
    if r.outcome == "insufficient_funds":
        return Result("insufficient_funds", {"fee": r.fee_cents, "balance": r.balance_cents})
    if r.outcome == "full":
        return Result("full", {})
    if r.outcome == "no_slot":
        return Result("not_found" if r.reason in ("unknown_doctor", "unknown_department") else "no_session", {})
    if r.outcome == "unknown_card":
        raise ActionFailure(f"registration.pay: card {params['card']} is unknown "
                            "(a paid registration needs a card verified with auth.verify first)")
    raise RuntimeError(f"registration.pay: unexpected store outcome {r.outcome!r}")


ACTION = Action(
    name='registration.pay',
    summary='Paid registration: the fee is charged atomically with a ledger row (VIP free by policy).',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['card', 'department', 'days_ahead', 'session'],
            'properties': {**SLOT_PARAMS,
                           'vip': {'type': 'boolean',
                                   'description': 'ask for VIP treatment; granted only to a trusted '
                                                  'caller number on the VIP list'}}},
    outcomes=('paid', 'free', 'insufficient_funds', 'duplicate', 'full', 'no_session', 'not_found'),
    sets={'paid': BOOKED_SETS + ('fee', 'balance'),
          'free': BOOKED_SETS,
          'duplicate': BOOKED_SETS,
          'insufficient_funds': ('fee', 'balance')},
    run=run,
)
