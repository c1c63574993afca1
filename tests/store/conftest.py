"""Store fixtures: a migrated (or demo-seeded) Store on each backend, with a settable clock.

Every test gets its own isolated database: a SQLite file in tmp_path, or a fresh
PostgreSQL schema dropped afterwards.  Speed: the migrations and the demo seed run once
per session into a template; each test then gets a copy -- a file copy on SQLite; on
PostgreSQL the migrations' own SQL (rendered once by Alembic's offline mode) is executed
in the new schema and the demo rows are copied from the template schema.  The online
migrations themselves are tested from scratch in test_migrations.py.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import sqlite3
import uuid
import zoneinfo

import pytest

from engine.store import ScryptParams, Store
from engine.store.migrate import alembic_config, upgrade
from engine.store.models import Base
from engine.store.seed import seed_demo

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2030, 3, 4)                      # a Monday
FAST_PIN = ScryptParams(n=2**10)                 # real scrypt, cheaper cost for tests


class Clock:
    """Settable clock (no sleeping in tests)."""

    def __init__(self, now: dt.datetime) -> None:
        self.t = now

    def now(self) -> dt.datetime:
        return self.t

    def advance(self, **kw) -> dt.datetime:
        self.t += dt.timedelta(**kw)
        return self.t


def at(day: dt.date, hour: int = 9, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=TZ)


def _build(url: str, kind: str) -> None:
    upgrade(url)
    if kind == "demo":
        with Store(url, tz=TZ, clock=Clock(at(TODAY)), pin_params=FAST_PIN) as s:
            seed_demo(s, TODAY)


def _pg_migration_sql() -> str:
    """The migrations to head as PostgreSQL SQL (Alembic offline mode)."""
    from alembic import command

    cfg = alembic_config()
    buf = io.StringIO()
    cfg.output_buffer = buf
    cfg.set_main_option("sqlalchemy.url", "postgresql+psycopg://render@localhost/render")
    command.upgrade(cfg, "head", sql=True)
    return buf.getvalue().replace("BEGIN;", "").replace("COMMIT;", "")


class _Templates:
    def __init__(self, tmp_dir, pg_tools) -> None:
        self.tmp_dir, self.pg = tmp_dir, pg_tools
        self.files: dict[str, object] = {}
        self.pg_ddl: str | None = None
        self.pg_demo: str | None = None         # template schema holding the demo rows

    def sqlite_copy(self, kind: str, dest) -> str:
        if kind not in self.files:
            path = self.tmp_dir / f"template-{kind}.db"
            _build(f"sqlite:///{path}", kind)
            with sqlite3.connect(path) as conn:           # fold the WAL into the file
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.files[kind] = path
        shutil.copyfile(self.files[kind], dest)
        return f"sqlite:///{dest}"

    def _pg_schema(self, name: str) -> str:
        import psycopg

        if self.pg_ddl is None:
            self.pg_ddl = _pg_migration_sql()
        with psycopg.connect(self.pg.conninfo, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
            with conn.transaction():
                conn.execute(f'SET LOCAL search_path = "{name}"')
                conn.execute(self.pg_ddl)
        return self.pg.schema_url(name)

    def pg_copy(self, kind: str) -> tuple[str, str]:
        import psycopg

        if kind == "demo" and self.pg_demo is None:
            name = f"ivrt_tpl_{uuid.uuid4().hex[:12]}"
            _build(self._pg_schema(name), "demo")
            self.pg_demo = name
        name = f"ivrt_{uuid.uuid4().hex[:16]}"
        url = self._pg_schema(name)
        if kind == "demo":
            with psycopg.connect(self.pg.conninfo, autocommit=True) as conn, conn.transaction():
                for t in Base.metadata.sorted_tables:
                    conn.execute(f'INSERT INTO "{name}".{t.name} '
                                 f'SELECT * FROM "{self.pg_demo}".{t.name}')
                    if "id" in t.c:
                        conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{name}\".{t.name}',"
                                     f" 'id'), coalesce(max(id), 0) + 1, false) "
                                     f'FROM "{name}".{t.name}')
        return url, name

    def drop(self, name: str) -> None:
        self.pg.admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      f"WHERE application_name = '{name}' AND pid <> pg_backend_pid()")
        self.pg.admin(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')

    def close(self) -> None:
        if self.pg_demo is not None:
            self.drop(self.pg_demo)


@pytest.fixture(scope="session")
def _templates(tmp_path_factory, pg_tools):
    t = _Templates(tmp_path_factory.mktemp("store-templates"), pg_tools)
    yield t
    t.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request):
    if request.param == "postgresql":
        request.getfixturevalue("pg_required")       # skips loudly when unreachable
    return request.param


@pytest.fixture
def _copies(backend, _templates, tmp_path):
    """kind ("empty" | "demo") -> URL of this test's own copy (made once per test)."""
    urls: dict[str, str] = {}
    dbs: list[str] = []

    def copy(kind: str) -> str:
        if kind not in urls:
            if backend == "sqlite":
                urls[kind] = _templates.sqlite_copy(kind, tmp_path / f"{kind}.db")
            else:
                urls[kind], name = _templates.pg_copy(kind)
                dbs.append(name)
        return urls[kind]

    yield copy
    for name in dbs:
        _templates.drop(name)


@pytest.fixture
def migrated_url(_copies):
    """An isolated database at the head revision, empty."""
    return _copies("empty")


@pytest.fixture
def demo_url(_copies):
    """An isolated database seeded with the demo hospital for TODAY."""
    return _copies("demo")


@pytest.fixture
def clock():
    return Clock(at(TODAY))


@pytest.fixture
def make_store(request, clock, _copies):
    """Store factory.  Default database: the test's demo copy if it uses ``demo``, else
    its empty migrated copy, so several stores in one test share one database."""
    stores = []

    def make(url=None, **kw):
        if url is None:
            url = _copies("demo" if "demo" in request.fixturenames else "empty")
        kw.setdefault("tz", TZ)
        kw.setdefault("clock", clock)
        kw.setdefault("pin_params", FAST_PIN)
        s = Store(url, **kw)
        stores.append(s)
        return s

    yield make
    for s in stores:
        s.close()


@pytest.fixture
def store(make_store):
    return make_store()


@pytest.fixture
def demo(make_store):
    """A Store on a database seeded with the demo hospital for TODAY."""
    return make_store()
