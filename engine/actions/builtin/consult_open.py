"""Open an expert consultation: checks the balance and how long it pays for."""

from engine.actions import Action, Result

from ._common import ActionFailure, consult_cap, db, now, policy, request_id, store_of, trusted_vip


async def run(ctx, params):
    store = store_of(ctx, "consult.open")
    card = params.get("card") or None
    vip = bool(params.get("vip")) and await trusted_vip(ctx, store) is not None
    r = await db(store.open_consultation, params["expert_no"], card_no=card, vip=vip,
                 role="listener" if params.get("listen_only") else "participant",
                 caller=ctx.caller_raw, call_id=ctx.call_id, policy=policy(ctx),
                 request_id=request_id(ctx, params), now=now(ctx))
    if r.outcome == "opened":
        cap = consult_cap(ctx)
        paid = r.max_minutes is not None and r.max_minutes * 60 < cap
        return Result("ok", {"consultation_id": r.consultation_id,
                             "max_seconds": r.max_minutes * 60 if paid else cap,
                             "credit_limited": paid,
                             "rate": r.rate_cents,
                             "room": r.conference_room})
    if r.outcome == "insufficient_funds":
        return Result("insufficient_funds", {"balance": r.balance_cents or 0, "rate": r.rate_cents})
    if r.outcome == "unknown_card" and card is None:
        # a caller without a card (a card-less VIP when the policy makes them pay) cannot pay
        return Result("insufficient_funds", {"balance": 0, "rate": r.rate_cents})
    if r.outcome == "unknown_card":
        raise ActionFailure(f"consult.open: card {card} is unknown (verify it with auth.verify first)")
    raise ActionFailure(f"consult.open: no expert with number {params['expert_no']} "
                        "(look it up with expert.lookup first)")


ACTION = Action(
    name='consult.open',
    summary='Open an expert consultation: checks the balance and how long it pays for.',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['expert_no'],
            'properties': {'card': {'type': ['string', 'null'], 'pattern': '^([0-9A-Za-z]{1,20})?$',
                                    'description': 'the paying card (verified); none for a card-less VIP'},
                           'expert_no': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
                           'vip': {'type': 'boolean',
                                   'description': 'ask for VIP treatment; granted only to a trusted '
                                                  'caller number on the VIP list'},
                           'listen_only': {'type': 'boolean'}}},
    outcomes=('ok', 'insufficient_funds'),
    sets={'ok': ('consultation_id', 'max_seconds', 'credit_limited', 'rate', 'room'),
          'insufficient_funds': ('balance', 'rate')},
    run=run,
)
