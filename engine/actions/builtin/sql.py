"""Look a row up in a configured external database with bound parameters only (the SQL text is fixed in the flow)."""

from engine.actions import Action, Result


def _mapped(params):
    names = tuple((params.get("map") or {}).keys())
    return {"found": names}


async def run(ctx, params):
    raise NotImplementedError("sql: implementation pending")


ACTION = Action(
    name='sql',
    summary='Look a row up in a configured external database with bound parameters only (the SQL text is fixed in the flow).',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['database', 'query'],
 'properties': {'database': {'type': 'string',
                             'pattern': '^[a-z][a-z0-9_]*$',
                             'description': 'name of a database in the deployment config'},
                'query': {'type': 'string',
                          'pattern': '^\\s*(?i:select|with)\\b[^{}]*$',
                          'description': 'one SELECT with :name placeholders; no templates'},
                'args': {'type': 'object',
                         'description': 'placeholder -> value (templates allowed: they are bound, '
                                        'never spliced)'},
                'map': {'type': 'object',
                        'description': 'variable -> column',
                        'propertyNames': {'pattern': '^[A-Za-z_][A-Za-z0-9_]*$'},
                        'additionalProperties': {'type': 'string'}}}},
    outcomes=('found', 'not_found', 'failed'),
    sets={},
    dynamic_sets=_mapped,
    run=run,
)
