"""External databases for scenarios (``databases:`` in a case): the systems a flow's ``sql``
states read (a school's student database...), not the IVR's own store.

For each case and each named database: a fresh database (a SQLite file in a private
temporary directory, or with a PostgreSQL server an isolated schema), the ``setup`` SQL
script run on it, then the ``rows`` inserted (tables reflected, values bound; ISO text for
date columns).  The runner puts its URL in ``sql.databases.<name>`` of the call's
configuration and drops it after the case.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from engine.integrations import sqldb

from .db import DataError

__all__ = ["ExternalDatabases", "insert_external_rows"]


class ExternalDatabases:
    """Makes and drops the external databases of each case."""

    def __init__(self, pg_url: str | None = None):
        self.pg_url = sqldb.normalize_url(pg_url) if pg_url else None
        self._dir: str | None = None
        self._n = 0

    def _tmp(self) -> Path:
        if self._dir is None:
            self._dir = tempfile.mkdtemp(prefix="ivrflow-extdb-")
        return Path(self._dir)

    @contextlib.contextmanager
    def databases(self, specs: Mapping[str, Mapping[str, Any]]) -> Iterator[dict[str, str]]:
        """``{name: {setup: Path|None, rows: {table: [row]}, down: bool}}`` -> ``{name: url}``."""
        with contextlib.ExitStack() as stack:
            urls = {}
            for name, spec in specs.items():
                urls[name] = stack.enter_context(self._one(name, spec))
            yield urls

    @contextlib.contextmanager
    def _one(self, name: str, spec: Mapping[str, Any]) -> Iterator[str]:
        if spec.get("down"):
            yield self._unreachable(name)
            return
        script = _read_setup(name, spec.get("setup"))
        if self.pg_url:
            cm = self._postgres(script)
        else:
            cm = self._sqlite(name, script)
        with cm as url:
            try:
                insert_external_rows(url, spec.get("rows") or {}, name)
                yield url
            finally:
                sqldb.dispose(url)

    def _unreachable(self, name: str) -> str:
        """A URL of the same kind that does not answer (``down: true``)."""
        if self.pg_url:
            import socket

            from sqlalchemy.engine import make_url

            with socket.socket() as s:          # a port that was just free: connections are refused
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            return make_url(self.pg_url).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        return f"sqlite:///{self._tmp() / 'missing-directory' / f'{name}.db'}"

    @contextlib.contextmanager
    def _sqlite(self, name: str, script: str | None) -> Iterator[str]:
        self._n += 1
        path = self._tmp() / f"{name}-{self._n}.db"
        conn = sqlite3.connect(path)
        try:
            if script:
                conn.executescript(script)
            conn.commit()
        except sqlite3.Error as e:
            raise DataError(f"database {name}: the setup script failed: {e}") from None
        finally:
            conn.close()
        try:
            yield f"sqlite:///{path}"
        finally:
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _postgres(self, script: str | None) -> Iterator[str]:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        schema = f"ivrext_{uuid.uuid4().hex[:12]}"
        admin = create_engine(self.pg_url)
        try:
            with admin.begin() as c:
                c.execute(text(f'CREATE SCHEMA "{schema}"'))        # name generated here, not input
            url = make_url(self.pg_url).update_query_dict({"options": f"-csearch_path={schema}"})
            url_s = url.render_as_string(hide_password=False)
            try:
                if script:
                    eng = create_engine(url)
                    try:
                        raw = eng.raw_connection()
                        try:
                            cur = raw.cursor()
                            cur.execute(script)          # the scenario's own fixture file, no parameters
                            raw.commit()
                        finally:
                            raw.close()
                    except Exception as e:  # noqa: BLE001
                        raise DataError(f"the setup script failed: {str(e).strip().splitlines()[0]}") from None
                    finally:
                        eng.dispose()
                yield url_s
            finally:
                sqldb.dispose(url_s)
                with admin.begin() as c:
                    c.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            admin.dispose()

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _read_setup(name: str, setup: Any) -> str | None:
    if setup is None:
        return None
    try:
        return Path(setup).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"database {name}: cannot read the setup script {setup}: {e}") from None


def _convert(col: Any, value: Any) -> Any:
    from sqlalchemy import Date, DateTime

    if isinstance(value, str) and isinstance(col.type, DateTime):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            raise DataError(f"column {col.name}: bad date-time {value!r} (use ISO 8601)") from None
    if isinstance(value, str) and isinstance(col.type, Date):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise DataError(f"column {col.name}: bad date {value!r} (use YYYY-MM-DD)") from None
    return value


def insert_external_rows(url: str, rows: Mapping[str, Any], name: str = "") -> int:
    """Insert ``{table: [row, ...]}`` into the (reflected) tables of ``url``."""
    from sqlalchemy import MetaData, Table, create_engine, insert
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    if not rows:
        return 0
    eng = create_engine(sqldb.normalize_url(url))
    n = 0
    try:
        with eng.begin() as conn:
            md = MetaData()
            for table, trows in rows.items():
                try:
                    t = Table(table, md, autoload_with=conn)
                except NoSuchTableError:
                    raise DataError(f"database {name}: no table '{table}' (create it in the setup script)") from None
                for row in trows:
                    values = {}
                    for k, v in row.items():
                        if k not in t.c:
                            from engine.flow.diagnostics import did_you_mean

                            hint = did_you_mean(k, t.c.keys())
                            raise DataError(f"database {name}: table {table} has no column '{k}'"
                                            + (f" ({hint})" if hint else ""))
                        values[k] = _convert(t.c[k], v)
                    conn.execute(insert(t).values(**values))
                    n += 1
    except DataError:
        raise
    except SQLAlchemyError as e:
        msg = str(getattr(e, "orig", e) or e).strip().splitlines()[0]
        raise DataError(f"database {name}: cannot insert rows: {msg}") from None
    finally:
        eng.dispose()
    return n
