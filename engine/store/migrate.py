"""Run the packaged Alembic migrations programmatically (works from an installed package)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .db import make_engine, translate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _with_engine(url_or_engine: str | Engine, fn):
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        return fn(engine)
    except SQLAlchemyError as e:
        raise translate(e) from e
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def upgrade(url_or_engine: str | Engine, revision: str = "head") -> str | None:
    """Upgrade the database to ``revision``; return the revision it ends at."""

    def go(engine: Engine):
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
        return _current(engine)

    return _with_engine(url_or_engine, go)


def downgrade(url_or_engine: str | Engine, revision: str = "base") -> str | None:
    def go(engine: Engine):
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
        return _current(engine)

    return _with_engine(url_or_engine, go)


def _current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def current_revision(url_or_engine: str | Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    return _with_engine(url_or_engine, _current)
