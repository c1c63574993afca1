"""Shared fixtures.

``db_url``: parametrized over a SQLite file (in tmp_path) and PostgreSQL.  ``pg_url``: a
fresh, isolated PostgreSQL schema per test (search_path set in the URL; dropped after).
``pg_required`` skips a test the same way for fixtures that make their own databases.
When PostgreSQL is not reachable at 127.0.0.1:5432 the PostgreSQL tests are SKIPPED
LOUDLY: the reason is in the skip message, in the report header and in a red line of the
terminal summary.  Override the server with IVRFLOW_TEST_PG (a postgresql:// URL).
"""

from __future__ import annotations

import functools
import os
import uuid
import warnings
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

PG_BASE = os.environ.get("IVRFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_PG_WHERE = urlsplit(PG_BASE).netloc.split("@")[-1] or "127.0.0.1:5432"
_pg_skipped: list[str] = []


def _conninfo() -> str:
    return PG_BASE.replace("postgresql+psycopg://", "postgresql://", 1)


@functools.lru_cache(maxsize=1)
def pg_unreachable_reason() -> str | None:
    """None when PostgreSQL answers, else why not (cached for the session)."""
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - psycopg is a test dependency
        return f"psycopg not installed ({e})"
    try:
        with psycopg.connect(_conninfo(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else e}"
    return None


def pytest_report_header(config):
    reason = pg_unreachable_reason()
    if reason is None:
        return f"PostgreSQL: reachable at {_PG_WHERE} (PostgreSQL tests will run)"
    return (f"PostgreSQL: NOT reachable at {_PG_WHERE}: {reason} -- "
            "PostgreSQL tests will be SKIPPED")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _pg_skipped:
        terminalreporter.write_sep(
            "!", f"{len(_pg_skipped)} PostgreSQL test(s) SKIPPED: PostgreSQL not reachable at "
                 f"{_PG_WHERE} ({pg_unreachable_reason()})", red=True, bold=True)


def pg_admin(sql: str) -> None:
    """Run one statement on the test server's database, outside any transaction."""
    import psycopg

    with psycopg.connect(_conninfo(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def pg_database_url(dbname: str, **query: str) -> str:
    """PG_BASE pointed at another database, with extra URL query parameters."""
    from sqlalchemy.engine import make_url

    url = make_url(PG_BASE).set(database=dbname)
    if query:
        url = url.update_query_dict(query)
    return url.render_as_string(hide_password=False)


def pg_schema_url(schema: str) -> str:
    """URL whose connections use ``schema`` (search_path) and are tagged with its name."""
    return pg_database_url(_pg_dbname(), options=f"-csearch_path={schema}",
                           application_name=schema)


def _pg_dbname() -> str:
    from sqlalchemy.engine import make_url

    return make_url(PG_BASE).database or "test"


@pytest.fixture(scope="session")
def pg_tools():
    """Helpers for fixtures that build their own PostgreSQL databases (admin SQL, URLs)."""
    return SimpleNamespace(admin=pg_admin, database_url=pg_database_url, conninfo=_conninfo(),
                           schema_url=pg_schema_url)


@pytest.fixture
def pg_required(request):
    """Skip LOUDLY (message, warning, red summary line) when PostgreSQL is unreachable."""
    reason = pg_unreachable_reason()
    if reason is not None:
        _pg_skipped.append(request.node.nodeid)
        if len(_pg_skipped) == 1:
            warnings.warn(pytest.PytestWarning(
                f"PostgreSQL not reachable at {_PG_WHERE}: {reason}; PostgreSQL tests skipped"))
        pytest.skip(f"PostgreSQL not reachable at {_PG_WHERE}: {reason}")


@pytest.fixture
def pg_url(pg_required):
    """URL of a fresh empty schema on the test PostgreSQL, dropped after the test."""
    schema = f"ivrt_{uuid.uuid4().hex[:16]}"
    pg_admin(f'CREATE SCHEMA "{schema}"')
    url = pg_schema_url(schema)
    try:
        yield url
    finally:
        # end any connection a test left open on this schema, then drop it
        pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 f"WHERE application_name = '{schema}' AND pid <> pg_backend_pid()")
        pg_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'ivrflow.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using it runs twice: on a SQLite file and on an isolated PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ivrflow.db'}"
    return request.getfixturevalue("pg_url")
