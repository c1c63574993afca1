"""Call a hospital (or any) system over HTTP: templated request, timeout, retries, JSON mapped into variables."""

from engine.actions import Action, Result


def _mapped(params):
    names = tuple((params.get("map") or {}).keys())
    return {"ok": names}


async def run(ctx, params):
    raise NotImplementedError("http: implementation pending")


ACTION = Action(
    name='http',
    summary='Call a hospital (or any) system over HTTP: templated request, timeout, retries, JSON mapped into variables.',
    params={'type': 'object',
 'additionalProperties': False,
 'required': ['url'],
 'properties': {'url': {'type': 'string', 'pattern': '^(https?://|\\{\\{)'},
                'method': {'enum': ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']},
                'headers': {'type': 'object', 'additionalProperties': {'type': 'string'}},
                'query': {'type': 'object'},
                'json': {},
                'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 60},
                'retries': {'type': 'integer', 'minimum': 0, 'maximum': 5},
                'map': {'type': 'object',
                        'description': 'variable -> dotted path in the JSON response (e.g. '
                                       'data.status)',
                        'propertyNames': {'pattern': '^[A-Za-z_][A-Za-z0-9_]*$'},
                        'additionalProperties': {'type': 'string'}},
                'not_found_status': {'type': 'array', 'items': {'type': 'integer'}}}},
    outcomes=('ok', 'not_found', 'http_error', 'timeout', 'bad_response'),
    sets={'ok': ('http_status',), 'not_found': ('http_status',), 'http_error': ('http_status',)},
    dynamic_sets=_mapped,
    run=run,
)
