"""Fixtures for the integration actions: a real local HTTP server (port 0), an action context,
external databases (``db_url``: a SQLite file and a PostgreSQL schema)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from int_helpers import Ctx  # noqa: E402

from engine.scenario.fakehttp import FakeHttpServer  # noqa: E402


@pytest.fixture(scope="module")
def server():
    srv = FakeHttpServer()
    yield srv
    srv.close()


@pytest.fixture
def routes(server):
    """Set the server's routes: ``routes({"GET /x": {...}})``."""
    from engine.scenario.fakehttp import parse_routes

    def set_(spec):
        server.set_routes(parse_routes(spec))
        return server

    yield set_
    server.set_routes([])


@pytest.fixture
def ctx(server):
    return Ctx({"http": {"allow_hosts": ["dispatch.example"], "resolve": {"*": server.address},
                         "max_timeout": 0.25}})


@pytest.fixture(autouse=True)
def _dispose_engines():
    yield
    from engine.integrations import sqldb

    sqldb.dispose()
