"""Look a row up in a configured external database with bound parameters only (the SQL text is fixed in the flow).

Outcomes: ``found`` (the first row's columns go into the ``map`` variables), ``not_found``
(no row), ``failed`` (the database did not answer: connection, timeout, SQL error, a mapped
column missing).  A mistake of the flow or the deployment (unknown database name, a
placeholder without its argument, a query that is not one SELECT) raises: the call takes
the state's ``error`` transition or ``on.error``.  See docs/integrations.md.
"""

from __future__ import annotations

import logging

from engine.actions import Action, Result
from engine.integrations.blocking import run_blocking
from engine.integrations.config import IntegrationError, sql_settings
from engine.integrations.sqldb import DbFailure, lookup

log = logging.getLogger("ivrflow.runtime.integrations")


def _mapped(params):
    names = tuple((params.get("map") or {}).keys())
    return {"found": names}


def _column(cols: list[str], name: str) -> int | None:
    if name in cols:
        return cols.index(name)
    low = [c.lower() for c in cols]        # PostgreSQL folds unquoted names to lower case
    return low.index(name.lower()) if name.lower() in low else None


async def run(ctx, params):
    settings = sql_settings(ctx.config)
    name = params["database"]
    url = settings.databases.get(name)
    if url is None:
        known = ", ".join(sorted(settings.databases)) or "none"
        raise IntegrationError(f"sql: database '{name}' is not configured (sql.databases has: {known})")
    timeout = min(float(params.get("timeout", settings.timeout)), settings.max_timeout)
    args = dict(params.get("args") or {})
    try:
        cols, row = await run_blocking(lookup, url, params["query"], args, timeout, settings.pool_size)
    except DbFailure as e:
        log.warning("sql %s in state %s: %s", name, getattr(ctx, "state", "?"), e)
        ctx.log(f"sql {name}: failed: {e}", database=name)
        return Result("failed")
    if row is None:
        ctx.log(f"sql {name}: no row", database=name)
        return Result("not_found")
    out = {}
    for var, col in (params.get("map") or {}).items():
        i = _column(cols, col)
        if i is None:
            msg = f"column '{col}' is not in the result (columns: {', '.join(cols)})"
            log.warning("sql %s in state %s: %s", name, getattr(ctx, "state", "?"), msg)
            ctx.log(f"sql {name}: failed: {msg}", database=name)
            return Result("failed")
        out[var] = row[i]
    ctx.log(f"sql {name}: found", database=name, columns=len(cols))
    return Result("found", out)


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
                          'pattern': '^\\s*(?i:select|with)\\b[^{};]*;?\\s*$',
                          'description': 'one SELECT with :name placeholders; no templates, no ;'},
                'args': {'type': 'object',
                         'description': 'placeholder -> value (templates allowed: they are bound, '
                                        'never spliced)'},
                'map': {'type': 'object',
                        'description': 'variable -> column',
                        'propertyNames': {'pattern': '^[A-Za-z_][A-Za-z0-9_]*$'},
                        'additionalProperties': {'type': 'string'}},
                'timeout': {'type': 'number', 'exclusiveMinimum': 0, 'maximum': 60,
                            'description': 'statement timeout in seconds (default: sql.timeout of the config)'}}},
    outcomes=('found', 'not_found', 'failed'),
    sets={},
    dynamic_sets=_mapped,
    run=run,
)
