"""The packaged Alembic migrations build exactly the models' schema, on both backends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from engine.store import SchemaMissing, Store
from engine.store.db import make_engine
from engine.store.migrate import MIGRATIONS, current_revision, downgrade, head_revision, upgrade
from engine.store.models import Base

ROOT = Path(__file__).resolve().parents[2]


def _diffs(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={
                "compare_type": True,
                # SQLite reflects '' server defaults as text; PostgreSQL compares exactly
                "compare_server_default": engine.dialect.name == "postgresql",
            })
            return compare_metadata(ctx, Base.metadata)
    finally:
        engine.dispose()


def test_upgrade_creates_the_models_schema(db_url):
    assert current_revision(db_url) is None
    assert upgrade(db_url) == head_revision()
    assert _diffs(db_url) == []
    assert upgrade(db_url) == head_revision()          # idempotent


def test_downgrade_to_base_and_back(db_url):
    upgrade(db_url)
    assert downgrade(db_url, "base") is None
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    assert upgrade(db_url) == head_revision()


def test_store_on_empty_database_says_run_upgrade(db_url):
    with Store(db_url) as s:
        with pytest.raises(SchemaMissing, match="ivrflow db upgrade"):
            s.balance("10000001")
        with pytest.raises(SchemaMissing, match="ivrflow db upgrade"):
            s.check_schema()
    upgrade(db_url)
    with Store(db_url) as s:
        assert s.check_schema() == head_revision()


def test_migrations_live_inside_the_package():
    assert MIGRATIONS.parent == ROOT / "engine" / "store"
    assert (MIGRATIONS / "env.py").is_file()


def test_upgrade_works_from_any_working_directory(tmp_path):
    """Run as an installed package would be: other cwd, only the package on sys.path."""
    db = tmp_path / "elsewhere.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    code = ("from engine.store.cli import db; "
            f"db(['--db', 'sqlite:///{db}', 'upgrade'], standalone_mode=True)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"revision {head_revision()}" in out.stdout
    assert current_revision(f"sqlite:///{db}") == head_revision()
