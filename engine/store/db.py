"""Engine creation, the transaction runner and database-error translation.

Every store operation is one call of ``Database.run(fn, write=...)``: ``fn`` gets a
Connection inside a transaction; it commits when ``fn`` returns, rolls back when it
raises (``Rollback(result)`` rolls back and returns ``result``).  Transient conflicts
(PostgreSQL serialization failures and deadlocks, clashes of random numbers or
idempotency keys with a concurrent insert) are retried.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    OperationalError,
    SQLAlchemyError,
)

from .errors import (
    IntegrityViolation,
    InvalidInput,
    SchemaMissing,
    StoreConflict,
    StoreError,
    StoreUnavailable,
)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT = 10.0   # seconds a SQLite writer waits for the write lock


class Rollback(Exception):
    """Raise inside a transaction function to roll back and return ``result``."""

    def __init__(self, result: Any) -> None:
        super().__init__("rollback")
        self.result = result


class Retry(Exception):
    """Raise inside a transaction function to roll back and run it again (e.g. number clash)."""


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; other URLs are kept as given."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("database URL must be a non-empty string")
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, *, sqlite_timeout: float = SQLITE_BUSY_TIMEOUT,
                **engine_kw: Any) -> Engine:
    """Create an engine for a SQLite file or PostgreSQL (psycopg 3) URL.  ``engine_kw`` go
    to ``create_engine`` (e.g. ``pool_size``).  Bound parameters (card numbers, hashes)
    are hidden from SQLAlchemy's logs and exception messages."""
    url = normalize_url(url)
    try:
        u = make_url(url)
    except ArgumentError:
        raise InvalidInput("invalid database URL (expected sqlite:///PATH or "
                           "postgresql://USER@HOST:PORT/DB)") from None
    backend = u.get_backend_name()
    if backend == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            parent = Path(u.database).expanduser().parent
            if not parent.is_dir():
                raise StoreUnavailable(f"cannot open SQLite database {u.database}: "
                                       f"directory {parent} does not exist")
        connect_args = {"timeout": sqlite_timeout, **engine_kw.pop("connect_args", {})}
        engine = create_engine(u, connect_args=connect_args, hide_parameters=True, **engine_kw)
        _configure_sqlite(engine)
    elif backend == "postgresql":
        if u.get_driver_name() != "psycopg":
            raise InvalidInput("PostgreSQL URLs must use psycopg 3: postgresql+psycopg://...")
        engine = create_engine(u, pool_pre_ping=True, hide_parameters=True, **engine_kw)
    else:
        raise InvalidInput(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, WAL, and write transactions that take the write lock up front."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # pragma: no cover - trivial
        dbapi_conn.isolation_level = None   # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("ivrflow_write", True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlstate(e: DBAPIError) -> str | None:
    return getattr(e.orig, "sqlstate", None)


#: unique keys where a clash with a concurrent insert means "run again": the retry then
#: finds the other row (idempotent replay) or draws another random number.
RETRY_UNIQUE = (
    ("bookings", "confirmation_no"), ("bookings", "request_id"),
    ("complaints", "ticket_no"), ("complaints", "request_id"),
    ("consultations", "request_id"), ("call_records", "call_id"),
    ("info_texts", "topic"),
)
_RETRY_MARKERS = tuple(f"uq_{t}_{c}" for t, c in RETRY_UNIQUE) + tuple(
    f"{t}.{c}" for t, c in RETRY_UNIQUE) + ("pk_info_texts",)


def is_transient(e: DBAPIError) -> bool:
    state = _sqlstate(e)
    if state in ("40001", "40P01", "55P03"):
        return True
    msg = str(e.orig).lower()
    if isinstance(e, IntegrityError):
        unique = state == "23505" or "unique constraint failed" in msg
        return unique and any(k in msg for k in _RETRY_MARKERS)
    return False


def _detail(e: BaseException) -> str:
    src = getattr(e, "orig", None) or e
    lines = str(src).strip().splitlines()
    return lines[0] if lines else type(src).__name__


def translate(e: SQLAlchemyError) -> StoreError:
    """Map a SQLAlchemy/driver error to a clear StoreError (first line of the driver message)."""
    detail = _detail(e)
    low = detail.lower()
    state = _sqlstate(e) if isinstance(e, DBAPIError) else None
    if isinstance(e, IntegrityError) and not is_transient(e):
        return IntegrityViolation(f"database constraint violated: {detail}")
    if state in ("42P01", "42703") or "no such table" in low or "no such column" in low:
        return SchemaMissing(f"database schema missing or outdated ({detail}); "
                             "run `ivrflow db upgrade`")
    if isinstance(e, DBAPIError) and is_transient(e):
        return StoreConflict(f"database conflict persisted after retries: {detail}")
    if "database is locked" in low:
        return StoreConflict("database busy: another writer held the SQLite lock too long")
    if isinstance(e, OperationalError) and (
        e.connection_invalidated or (state or "").startswith("08")
        or any(w in low for w in ("connect", "unable to open", "server closed", "timeout"))
    ):
        return StoreUnavailable(f"database unavailable: {detail}")
    return StoreError(f"database error: {detail}")


class Database:
    """Owns an engine and runs functions in transactions with retry and error translation."""

    def __init__(self, url_or_engine: str | Engine, *, retries: int = 8) -> None:
        if isinstance(url_or_engine, Engine):
            self.engine, self._owned = url_or_engine, False
        else:
            self.engine, self._owned = make_engine(url_or_engine), True
        self.retries = retries
        self.dialect = self.engine.dialect.name

    def run(self, fn: Callable[[Connection], T], *, write: bool = True) -> T:
        attempt = 0
        while True:
            try:
                with self.engine.connect() as conn:
                    conn.execution_options(ivrflow_write=write)
                    with conn.begin():
                        return fn(conn)
            except Rollback as r:
                return r.result
            except Retry:
                if attempt >= self.retries:
                    raise StoreConflict("could not complete the operation after retries") from None
            except DBAPIError as e:
                if not is_transient(e) or attempt >= self.retries:
                    raise translate(e) from e
            except SQLAlchemyError as e:
                raise translate(e) from e
            attempt += 1
            time.sleep(random.uniform(0, 0.002 * 2**attempt))

    def dispose(self) -> None:
        if self._owned:
            self.engine.dispose()
