"""Fixtures for the hospital actions: a demo-seeded store on each database (``db_url``: a
SQLite file and, when reachable, an isolated PostgreSQL schema), a settable clock and an
action context like the runtime's.  Helpers live in act_helpers.py (put on sys.path here).

Speed: the migrations and the demo seed run once per session into a template; each test gets
a copy (a file copy on SQLite; on PostgreSQL the migrations' SQL, rendered once by Alembic's
offline mode, run in the test's schema, then the template's rows copied in)."""

import io
import shutil
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from act_helpers import FAST_PIN, TODAY, TZ, Clock, Ctx, at  # noqa: E402

from engine.store import Store  # noqa: E402
from engine.store.migrate import upgrade  # noqa: E402
from engine.store.seed import seed_demo  # noqa: E402


@pytest.fixture
def clock():
    return Clock(at())


def _build(url: str) -> None:
    upgrade(url)
    with Store(url, tz=TZ, clock=Clock(at()), pin_params=FAST_PIN) as s:
        seed_demo(s, TODAY)


def _pg_ddl() -> str:
    from alembic import command

    from engine.store.migrate import alembic_config

    cfg = alembic_config()
    cfg.output_buffer = buf = io.StringIO()
    cfg.set_main_option("sqlalchemy.url", "postgresql+psycopg://render@localhost/render")
    command.upgrade(cfg, "head", sql=True)
    return buf.getvalue().replace("BEGIN;", "").replace("COMMIT;", "")


class _Templates:
    def __init__(self, tmp_dir, pg_tools):
        self.tmp_dir, self.pg = tmp_dir, pg_tools
        self.sqlite = None
        self.ddl = None
        self.pg_schema = None

    def sqlite_copy(self, url: str) -> None:
        if self.sqlite is None:
            self.sqlite = self.tmp_dir / "demo.db"
            _build(f"sqlite:///{self.sqlite}")
            with sqlite3.connect(self.sqlite) as conn:       # fold the WAL into the file
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(self.sqlite, url.removeprefix("sqlite:///"))

    def _schema(self, name: str) -> None:
        import psycopg

        self.ddl = self.ddl or _pg_ddl()
        with psycopg.connect(self.pg.conninfo, autocommit=True) as conn, conn.transaction():
            conn.execute(f'SET LOCAL search_path = "{name}"')      # generated names, not input
            conn.execute(self.ddl)

    def pg_copy(self, url: str) -> None:
        import psycopg
        from sqlalchemy.engine import make_url

        from engine.store.models import Base

        if self.pg_schema is None:
            name = f"ivrt_acttpl_{uuid.uuid4().hex[:10]}"
            self.pg.admin(f'CREATE SCHEMA "{name}"')
            self._schema(name)
            _build(self.pg.schema_url(name))
            self.pg_schema = name
        name = make_url(url).query["application_name"]               # the pg_url fixture's schema
        self._schema(name)
        with psycopg.connect(self.pg.conninfo, autocommit=True) as conn, conn.transaction():
            for t in Base.metadata.sorted_tables:
                conn.execute(f'INSERT INTO "{name}".{t.name} SELECT * FROM "{self.pg_schema}".{t.name}')
                if "id" in t.c:
                    conn.execute(f"SELECT setval(pg_get_serial_sequence('\"{name}\".{t.name}', 'id'), "
                                 f'coalesce(max(id), 0) + 1, false) FROM "{name}".{t.name}')

    def close(self) -> None:
        if self.pg_schema is not None:
            self.pg.admin(f'DROP SCHEMA IF EXISTS "{self.pg_schema}" CASCADE')


@pytest.fixture(scope="session")
def _templates(tmp_path_factory, pg_tools):
    t = _Templates(tmp_path_factory.mktemp("actions-templates"), pg_tools)
    yield t
    t.close()


@pytest.fixture
def store(db_url, clock, _templates):
    """The demo hospital seeded for TODAY, on this test's own database."""
    if db_url.startswith("sqlite:///"):
        _templates.sqlite_copy(db_url)
    else:
        _templates.pg_copy(db_url)
    s = Store(db_url, tz=TZ, clock=clock, pin_params=FAST_PIN)
    yield s
    s.close()


@pytest.fixture
def ctx(store, clock):
    return Ctx(store, clock)

