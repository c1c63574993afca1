"""The systems around a simulated call: its deployment configuration, the local HTTP server
for declared routes and the external databases (see fakehttp.py, extdb.py).

``Environment.call(config=, routes=, databases=)`` yields the configuration for one call:
the base configuration (``--config``) with the case's ``config`` merged over it, every HTTP
host resolved to the local server when routes are declared (nothing leaves the machine),
and ``sql.databases.<name>`` pointing at fresh databases.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

from .extdb import ExternalDatabases
from .fakehttp import FakeHttpServer, Route
from .spec import deep_merge

__all__ = ["Environment", "CallEnv"]


class CallEnv:
    def __init__(self, config: dict, server: FakeHttpServer | None):
        self.config = config
        self.server = server

    @property
    def requests(self) -> list[dict] | None:
        """Requests the local server received during the call (None: no routes declared)."""
        return self.server.requests if self.server is not None else None


class Environment:
    def __init__(self, config: Mapping[str, Any] | None = None, pg_url: str | None = None):
        self.base = dict(config or {})
        self.external = ExternalDatabases(pg_url)
        self._server: FakeHttpServer | None = None

    def server(self) -> FakeHttpServer:
        if self._server is None:
            self._server = FakeHttpServer()
        return self._server

    @contextlib.contextmanager
    def call(self, *, config: Mapping[str, Any] | None = None, routes: list[Route] | None = None,
             databases: Mapping[str, Any] | None = None) -> Iterator[CallEnv]:
        cfg = deep_merge(self.base, dict(config or {}))
        server = None
        if routes:
            server = self.server()
            server.set_routes(routes)
            http = dict(cfg.get("http") or {})
            http["resolve"] = {"*": server.address}
            cfg["http"] = http
        try:
            with self.external.databases(databases or {}) as urls:
                if urls:
                    sql = dict(cfg.get("sql") or {})
                    sql["databases"] = {**dict(sql.get("databases") or {}), **urls}
                    cfg["sql"] = sql
                yield CallEnv(cfg, server)
        finally:
            if server is not None:
                server.set_routes([])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self.external.close()


def environment_for(config: Mapping[str, Any] | None, scenario_file: str | None = None,
                    case_name: str | None = None):
    """A context manager yielding the ``CallEnv`` of one scenario case (default: the first),
    or of ``config`` alone.  ValueError when the scenario file or the case is unusable."""
    routes, dbs, case_cfg = None, None, None
    if scenario_file is not None:
        from .spec import load_suite

        suite = load_suite(scenario_file)
        if not suite.ok:
            raise ValueError("; ".join(d.headline() for d in suite.diagnostics if d.severity == "error"))
        cases = [c for c in suite.cases if case_name is None or c.name == case_name]
        if not cases:
            raise ValueError(f"{scenario_file} has no case named {case_name!r}")
        routes, dbs, case_cfg = cases[0].http, cases[0].databases, cases[0].config

    @contextlib.contextmanager
    def cm() -> Iterator[CallEnv]:
        env = Environment(config)
        try:
            with env.call(config=case_cfg, routes=routes, databases=dbs) as ce:
                yield ce
        finally:
            env.close()

    return cm()
