"""Information text from the database, in the call's language (hospital, departments, schedules,
experts, new drugs, ...).  Editing the text needs no flow change."""

import re

from engine.actions import Action, Result

from ._common import db, store_of

_LANG = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


def languages(ctx):
    """The call's language, its base language, then the flow's first language (and its base)."""
    out = []
    flow_langs = tuple(getattr(ctx, "languages", ()) or ())
    for tag in (ctx.language, *flow_langs[:1]):
        if not isinstance(tag, str):
            continue
        for t in (tag, tag.split("-")[0].lower()):
            if _LANG.match(t) and t not in out:
                out.append(t)
    return out


async def run(ctx, params):
    store = store_of(ctx, "info.read")
    topic = params["topic"]
    key = str(params.get("key") or "").strip().lower()
    topics = ([f"{topic}.{key}"] if key else []) + [topic]
    for t in topics:
        for lang in languages(ctx):
            body = await db(store.info, t, lang)
            if body:
                return Result("found", {"info_text": body})
    return Result("not_found", {})


ACTION = Action(
    name='info.read',
    summary='Information text from the database in the call\'s language (fallback: the flow\'s first language).',
    params={'type': 'object',
            'additionalProperties': False,
            'required': ['topic'],
            'properties': {'topic': {'type': 'string', 'pattern': '^[a-z0-9][a-z0-9_-]{0,40}$'},
                           'key': {'type': 'string', 'pattern': '^[0-9A-Za-z_-]{0,20}$',
                                   'description': 'a more specific text: topic.key is read when it '
                                                  'exists, else topic'}}},
    outcomes=('found', 'not_found'),
    sets={'found': ('info_text',)},
    run=run,
)
