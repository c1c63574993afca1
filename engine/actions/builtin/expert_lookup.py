"""Find an expert by number: name, title, speciality, rate and conference room."""

from engine.actions import Action, Result

from ._common import db, pick, store_of


async def run(ctx, params):
    store = store_of(ctx, "expert.lookup")
    e = await db(store.expert, params["expert_no"])
    if e is None:
        return Result("not_found", {})
    return Result("found", {"expert_name": pick(ctx, e.name_zh, e.name_en),
                            "expert_title": pick(ctx, e.title_zh, e.title_en),
                            "expert_speciality": pick(ctx, e.specialty_zh, e.specialty_en),
                            "rate": e.rate_cents,
                            "room": e.conference_room or f"expert-{e.number}"})


ACTION = Action(
    name='expert.lookup',
    summary='Find an expert by number: name, title, speciality, rate (cents a minute) and conference room.',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['expert_no'],
            'properties': {'expert_no': {'type': 'string', 'pattern': '^[0-9A-Za-z]{1,20}$'}}},
    outcomes=('found', 'not_found'),
    sets={'found': ('expert_name', 'expert_title', 'expert_speciality', 'rate', 'room')},
    run=run,
)
