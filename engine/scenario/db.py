"""Databases for simulated calls and scenario tests.

``MemoryDatabases`` gives each call a private in-memory SQLite with the schema (and, if asked,
the demo hospital seeded for the simulated day), copied from a template in a few milliseconds.
``fresh_postgres`` gives each call an isolated PostgreSQL schema (dropped afterwards).
``insert_rows`` / ``table_rows`` seed and read rows for scenario ``data:`` and ``rows:``.
No SQL is built from strings: tables come from the store's models.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import uuid
from typing import Any, Iterator, Mapping

__all__ = ["MemoryDatabases", "fresh_postgres", "open_store", "insert_rows", "table_rows", "DataError",
           "is_memory", "TEST_PIN_PARAMS"]


class DataError(ValueError):
    """Seed data or a row expectation that does not fit the schema."""


def is_memory(url: str | None) -> bool:
    return url in (":memory:", "sqlite://", "sqlite:///:memory:")


def _tables():
    from engine.store import models

    return models.Base.metadata.tables


def TEST_PIN_PARAMS():
    from engine.store.pin import ScryptParams

    return ScryptParams(n=2 ** 10)       # fast hashing for seeded test rows (verification reads params)


def open_store(engine_or_url: Any, clock: Any, tz: str):
    from engine.store import Store

    return Store(engine_or_url, tz=tz, clock=clock, pin_params=TEST_PIN_PARAMS())


def _memory_engine(conn: sqlite3.Connection):
    from sqlalchemy.pool import StaticPool

    from engine.store.db import make_engine

    return make_engine("sqlite://", poolclass=StaticPool, creator=lambda: conn)


class MemoryDatabases:
    """Private in-memory SQLite databases, from templates cached per (seed, day)."""

    def __init__(self, tz: str = "Asia/Shanghai"):
        self.tz = tz
        self._templates: dict[tuple, sqlite3.Connection] = {}

    def _template(self, seed: bool, clock: Any) -> sqlite3.Connection:
        day = clock.now().astimezone(_zone(self.tz)).date() if seed else None
        key = (seed, day)
        conn = self._templates.get(key)
        if conn is None:
            from engine.store.migrate import upgrade

            conn = sqlite3.connect(":memory:", check_same_thread=False)
            engine = _memory_engine(conn)
            upgrade(engine)
            if seed:
                from engine.store.seed import seed_demo

                seed_demo(open_store(engine, clock, self.tz))
            self._templates[key] = conn
        return conn

    @contextlib.contextmanager
    def database(self, clock: Any, *, seed: bool = True) -> Iterator[Any]:
        """A fresh engine on a copy of the template; yields a Store."""
        conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._template(seed, clock).backup(conn)
        engine = _memory_engine(conn)
        store = open_store(engine, clock, self.tz)
        try:
            yield store
        finally:
            engine.dispose()
            conn.close()

    def close(self) -> None:
        for c in self._templates.values():
            c.close()
        self._templates.clear()


@contextlib.contextmanager
def fresh_postgres(url: str, clock: Any, *, seed: bool = True, tz: str = "Asia/Shanghai") -> Iterator[Any]:
    """An isolated schema on a PostgreSQL server (created, migrated, seeded; dropped after)."""
    from sqlalchemy import text

    from engine.store.db import make_engine, normalize_url
    from engine.store.migrate import upgrade

    schema = f"ivrsim_{uuid.uuid4().hex[:12]}"
    admin = make_engine(normalize_url(url))
    try:
        with admin.begin() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))   # name generated above, not user input
        engine = make_engine(normalize_url(url), connect_args={"options": f"-csearch_path={schema}"})
        try:
            upgrade(engine)
            store = open_store(engine, clock, tz)
            if seed:
                from engine.store.seed import seed_demo

                seed_demo(store)
            yield store
        finally:
            engine.dispose()
            with admin.begin() as c:
                c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    finally:
        admin.dispose()


def _zone(tz: str):
    import zoneinfo

    return zoneinfo.ZoneInfo(tz)


def _convert(col: Any, value: Any, conn: Any, now: dt.datetime, tz: str) -> Any:
    from sqlalchemy import Date, DateTime, select

    from engine.store.timeutil import UTCDateTime

    if isinstance(value, Mapping) and len(value) == 1:
        (table_name, where), = value.items()
        tables = _tables()
        if table_name in tables and isinstance(where, Mapping):
            t = tables[table_name]
            q = select(t.c.id)
            for k, v in where.items():
                if k not in t.c:
                    raise DataError(f"table {table_name} has no column '{k}'")
                q = q.where(t.c[k] == _convert(t.c[k], v, conn, now, tz))
            ids = conn.execute(q).scalars().all()
            if len(ids) != 1:
                raise DataError(f"{table_name} {dict(where)} matches {len(ids)} rows (need exactly one)")
            return ids[0]
    typ = col.type
    if isinstance(value, str) and isinstance(typ, (UTCDateTime, DateTime)):
        try:
            d = dt.datetime.fromisoformat(value)
        except ValueError:
            raise DataError(f"column {col.name}: bad date-time {value!r} (use ISO 8601)") from None
        return d if d.tzinfo else d.replace(tzinfo=_zone(tz))
    if isinstance(value, str) and isinstance(typ, Date):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise DataError(f"column {col.name}: bad date {value!r} (use YYYY-MM-DD)") from None
    return value


def insert_rows(store: Any, data: Mapping[str, Any], now: dt.datetime, tz: str = "Asia/Shanghai") -> int:
    """Insert ``{table: [row, ...]}``.  A ``pin`` key fills ``pin_hash``; a value
    ``{other_table: {col: val}}`` is the id of the one matching row; missing required
    timestamps are ``now``.  Returns the number of rows inserted."""
    from sqlalchemy import DateTime, insert

    from engine.store.pin import hash_pin
    from engine.store.timeutil import UTCDateTime

    tables = _tables()
    n = 0

    def tx(conn):
        nonlocal n
        for name, rows in data.items():
            if name not in tables:
                from engine.flow.diagnostics import did_you_mean

                hint = did_you_mean(name, tables)
                raise DataError(f"unknown table '{name}'" + (f" ({hint})" if hint else ""))
            t = tables[name]
            if not isinstance(rows, list):
                raise DataError(f"data for table {name} must be a list of rows")
            for row in rows:
                if not isinstance(row, Mapping):
                    raise DataError(f"a row of table {name} must be a mapping of column: value")
                values = {}
                for k, v in row.items():
                    if k == "pin" and "pin_hash" in t.c:
                        values["pin_hash"] = hash_pin(str(v), TEST_PIN_PARAMS())
                        continue
                    if k not in t.c:
                        from engine.flow.diagnostics import did_you_mean

                        hint = did_you_mean(k, t.c.keys())
                        raise DataError(f"table {name} has no column '{k}'" + (f" ({hint})" if hint else ""))
                    values[k] = _convert(t.c[k], v, conn, now, tz)
                for c in t.c:
                    if c.name not in values and isinstance(c.type, (DateTime, UTCDateTime)) and not c.nullable \
                            and c.default is None and c.server_default is None:
                        values[c.name] = now
                conn.execute(insert(t).values(**values))
                n += 1

    try:
        with store.engine.begin() as conn:
            tx(conn)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - constraint violations and the like: the data's fault
        raise DataError(f"cannot insert seed rows: {str(e).splitlines()[0]}") from None
    return n


def table_rows(store: Any, name: str) -> list[dict]:
    """All rows of a table as dicts (PIN hashes left out)."""
    from sqlalchemy import select

    tables = _tables()
    if name not in tables:
        from engine.flow.diagnostics import did_you_mean

        hint = did_you_mean(name, tables)
        raise DataError(f"unknown table '{name}'" + (f" ({hint})" if hint else ""))
    t = tables[name]
    cols = [c for c in t.c if c.name != "pin_hash"]

    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(*t.primary_key.columns))]
