"""External databases for the ``sql`` action: statement checks, pooled engines, one read-only
lookup with a statement timeout (blocking: run it in the integration thread pool).

Only one SELECT (or WITH ... SELECT) is accepted: literals, quoted names and comments are
blanked out, then a ``;`` other than a final one, or a word that writes or changes the
session (INSERT, UPDATE, DELETE, INTO, CREATE, ...), is refused.  The query then runs in a
read-only transaction (PostgreSQL ``SET TRANSACTION READ ONLY``; SQLite ``PRAGMA
query_only``) with a statement timeout (PostgreSQL ``statement_timeout``; SQLite a progress
handler), values bound by SQLAlchemy, never spliced.  Use a database role that can only
read what the IVR needs as well.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import threading
import time
from typing import Any, Mapping

from .config import IntegrationError

__all__ = ["check_select", "placeholders", "engine_for", "dispose", "lookup", "normalize_url", "DbFailure",
           "FORBIDDEN"]

#: words refused outside literals: what could make one SELECT write or lock (data-modifying
#: CTEs, SELECT INTO, FOR UPDATE), and statement words, for a clear early refusal
FORBIDDEN = ("insert", "update", "delete", "merge", "upsert", "into", "lock", "create", "drop", "alter",
             "truncate", "grant", "revoke", "copy", "call", "execute", "pragma", "attach", "detach", "vacuum",
             "reindex", "set", "reset", "begin", "commit", "rollback", "savepoint", "prepare", "deallocate",
             "listen", "notify")
_FORBIDDEN_RE = re.compile(r"\b(" + "|".join(FORBIDDEN) + r")\b", re.IGNORECASE)
_PLACEHOLDER_RE = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


class DbFailure(Exception):
    """The database did not answer the lookup (connection, timeout, SQL error); the message
    never holds bound values."""


def _skeleton(sql: str) -> str:
    """The query with literals, quoted identifiers and comments blanked (same length)."""
    out = list(sql)
    i, n = 0, len(sql)

    def blank(a: int, b: int) -> None:
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif c == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise IntegrationError("sql: the query has an unterminated /* comment")
            blank(i, j)
            i = j
        elif c in "'\"`":
            backslash = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            j = i + 1
            while True:
                if j >= n:
                    raise IntegrationError("sql: the query has an unterminated quote")
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            blank(i + 1, j)
            i = j + 1
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                tag = m.group(0)
                j = sql.find(tag, i + len(tag))
                if j < 0:
                    raise IntegrationError("sql: the query has an unterminated $-quoted string")
                blank(i + len(tag), j)
                i = j + len(tag)
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def check_select(sql: str) -> str:
    """The query if it is one read-only SELECT / WITH statement, else IntegrationError.
    A single final ``;`` is dropped."""
    if not isinstance(sql, str) or not sql.strip():
        raise IntegrationError("sql: the query is empty")
    sk = _skeleton(sql).rstrip()
    body = sk[:-1] if sk.endswith(";") else sk
    if ";" in body:
        raise IntegrationError("sql: only one statement is allowed (found ';' between statements)")
    words = body.split()
    if not words or words[0].lower() not in ("select", "with"):
        raise IntegrationError("sql: only a SELECT (or WITH ... SELECT) query is allowed")
    m = _FORBIDDEN_RE.search(body)
    if m:
        raise IntegrationError(f"sql: only read-only lookups are allowed ('{m.group(1).upper()}' is refused)")
    return sql[:len(body)].strip()


def placeholders(sql: str) -> list[str]:
    """The ``:name`` placeholders of a query (outside literals and comments), in order."""
    seen: list[str] = []
    for m in _PLACEHOLDER_RE.finditer(_skeleton(sql)):
        if m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


#: seconds to open a connection (or wait for a pooled one)
CONNECT_TIMEOUT = 5.0

_engines: dict[tuple[str, int], Any] = {}
_lock = threading.Lock()


def engine_for(url: str, pool_size: int = 5) -> Any:
    """The pooled engine for ``url`` (created once per process and pool size)."""
    key = (url, pool_size)
    with _lock:
        eng = _engines.get(key)
        if eng is None:
            eng = _engines[key] = _make_engine(url, pool_size)
        return eng


def _make_engine(url: str, pool_size: int) -> Any:
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        u = make_url(normalize_url(url))
    except ArgumentError:
        raise IntegrationError("sql: the database URL is not valid (sql.databases in the configuration)") from None
    kw: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
    if u.get_backend_name() == "sqlite":
        kw["connect_args"] = {"check_same_thread": False, "timeout": CONNECT_TIMEOUT}
    else:
        kw.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=CONNECT_TIMEOUT)
        if u.get_backend_name() == "postgresql":
            kw["connect_args"] = {"connect_timeout": int(CONNECT_TIMEOUT)}
    try:
        eng = create_engine(u, **kw)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError) as e:
        raise IntegrationError(f"sql: cannot use database URL of type {u.drivername}: {type(e).__name__}") from None
    if u.get_backend_name() == "sqlite":
        @event.listens_for(eng, "connect")
        def _read_only(dbapi_conn, _rec):          # every connection of this engine only reads
            dbapi_conn.execute("PRAGMA query_only = ON")
    return eng


def dispose(url: str | None = None) -> None:
    """Close the pooled engines (of one URL, or all)."""
    with _lock:
        keys = [k for k in _engines if url is None or k[0] == url]
        engines = [_engines.pop(k) for k in keys]
    for e in engines:
        e.dispose()


def _plain(v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        raise DbFailure("a mapped column is binary data")
    if isinstance(v, (dt.datetime, dt.date, dt.time, str, int, float, bool)) or v is None:
        return v
    return str(v)


def _describe(e: BaseException, secrets: list[str]) -> str:
    """An error message without bound values: the driver's first line, quoted parts and
    the values themselves blanked."""
    orig = getattr(e, "orig", None) or e
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    first = (str(orig).strip().splitlines() or [""])[0][:300]
    # quoted parts may be values (invalid input syntax for type date: "..."); keep only names
    first = re.sub(r"\"([^\"]*)\"|'([^']*)'",
                   lambda m: m.group(0) if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", m.group(1) or m.group(2) or "")
                   else "\"…\"", first)
    for s in sorted(secrets, key=len, reverse=True):
        if len(s) >= 2:
            first = first.replace(s, "****")
    return f"{type(orig).__name__}" + (f" [{code}]" if code else "") + (f": {first}" if first else "")


def lookup(url: str, sql: str, args: Mapping[str, Any], timeout: float,
           pool_size: int = 5) -> tuple[list[str], tuple | None]:
    """Run the checked query read-only; (column names, first row or None).  Raises
    DbFailure (database problems) or IntegrationError (bad query / arguments)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    sql = check_select(sql)
    names = placeholders(sql)
    missing = [n for n in names if n not in args]
    if missing:
        raise IntegrationError(f"sql: the query uses :{missing[0]} but args has no '{missing[0]}'")
    extra = [k for k in args if k not in names]
    if extra:
        raise IntegrationError(f"sql: args '{extra[0]}' is not a placeholder of the query "
                               f"(placeholders: {', '.join(':' + n for n in names) or 'none'})")
    for k, v in args.items():
        if not (v is None or isinstance(v, (str, int, float, bool, dt.date, dt.time, decimal.Decimal))):
            raise IntegrationError(f"sql: args '{k}' must be a single value, not {type(v).__name__}")
    eng = engine_for(url, pool_size)
    secrets = [str(v) for v in args.values() if v is not None and not isinstance(v, bool)]
    backend = eng.dialect.name
    stmt = text(sql).bindparams(**dict(args)) if args else text(sql)
    try:
        with eng.connect() as conn:
            try:
                if backend == "postgresql":
                    conn.execute(text("SET TRANSACTION READ ONLY"))
                    conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"),
                                 {"ms": str(max(1, int(timeout * 1000)))})
                    res = conn.execute(stmt)
                    cols = list(res.keys())
                    row = res.first()
                elif backend == "sqlite":
                    raw = conn.connection.driver_connection
                    deadline = time.monotonic() + timeout
                    raw.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 1000)
                    try:
                        res = conn.execute(stmt)
                        cols = list(res.keys())
                        row = res.first()
                    finally:
                        raw.set_progress_handler(None, 0)
                else:
                    res = conn.execute(stmt)
                    cols = list(res.keys())
                    row = res.first()
            finally:
                conn.rollback()
    except SQLAlchemyError as e:
        msg = _describe(e, secrets)
        if "interrupted" in msg or "[57014]" in msg:
            msg = f"the query took longer than {timeout:g} s ({msg})"
        raise DbFailure(msg) from None
    except IntegrationError:
        raise
    except Exception as e:  # noqa: BLE001 - a driver problem outside SQLAlchemy's wrapping
        raise DbFailure(_describe(e, secrets)) from None
    if row is None:
        return cols, None
    return cols, tuple(_plain(v) for v in row)
