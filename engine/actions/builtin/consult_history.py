"""The caller's recent consultations and charges, as text to read back in the call's language."""

from engine.actions import Action, Result
from engine.prompts.speak import say_date, say_money, say_number

from ._common import db, is_zh, store_of


def _count(n, ctx, lang):
    """A count before a measure word: Chinese says 两次 / 两分钟, not 二."""
    return "两" if n == 2 and is_zh(ctx) else say_number(n, lang)


def _line(ctx, store, c, lang):
    day = say_date(store.local_date(c.opened_at), lang)
    mins = _count(c.minutes, ctx, lang)
    if is_zh(ctx):
        cost = "免费" if c.free else f"费用{say_money(c.charge_cents, lang)}"
        if c.unpaid_cents:
            cost += f"，其中{say_money(c.unpaid_cents, lang)}未付"
        role = "旁听" if c.role == "listener" else "咨询"
        return f"{day}，{role}{c.expert_name_zh}专家{mins}分钟，{cost}"
    cost = "free of charge" if c.free else say_money(c.charge_cents, lang)
    if c.unpaid_cents:
        cost += f", {say_money(c.unpaid_cents, lang)} of it unpaid"
    unit = "minute" if c.minutes == 1 else "minutes"
    role = "listening to" if c.role == "listener" else "with"
    return f"{day}, {mins} {unit} {role} Dr {c.expert_name_en}, {cost}"


async def run(ctx, params):
    store = store_of(ctx, "consult.history")
    card = params.get("card")
    if not card or await db(store.patient, card) is None:
        return Result("none", {})
    n = params.get("limit", 3)
    # a consultation still open (this call's) is not history yet
    recs = [c for c in await db(store.recent_consultations, card, min(100, n + 5)) if c.status == "closed"][:n]
    if not recs:
        return Result("none", {})
    lang = ctx.language or "zh-CN"
    lines = [_line(ctx, store, c, lang) for c in recs]
    if is_zh(ctx):
        text = f"您最近的{_count(len(recs), ctx, lang)}次咨询记录：" + "；".join(lines) + "。"
    else:
        head = "Your last consultation: " if len(recs) == 1 else \
            f"Your last {say_number(len(recs), lang)} consultations: "
        text = head + "; ".join(lines) + "."
    return Result("found", {"history_text": text, "history_count": len(recs)})


ACTION = Action(
    name='consult.history',
    summary="The caller's recent consultations and charges, as text to read back.",
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['card'],
            'properties': {'card': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'},
                           'limit': {'type': 'integer', 'minimum': 1, 'maximum': 10}}},
    outcomes=('found', 'none'),
    sets={'found': ('history_text', 'history_count')},
    run=run,
)
