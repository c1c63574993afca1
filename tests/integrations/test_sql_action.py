"""The sql action against real external databases: a SQLite file and a PostgreSQL schema."""

import asyncio
import datetime as dt
import logging

import pytest
from int_helpers import Ctx, run
from sqlalchemy import create_engine, text

from engine.actions.builtin.sql import ACTION
from engine.integrations import sqldb
from engine.integrations.config import IntegrationError

SCHEMA = [
    "CREATE TABLE students (student_id CHAR(10) PRIMARY KEY, name VARCHAR(50) NOT NULL, birth_date DATE NOT NULL)",
    "CREATE TABLE results (student_id CHAR(10) NOT NULL, term VARCHAR(12) NOT NULL, total INTEGER NOT NULL, "
    "gpa NUMERIC(3, 2), rank_in_class INTEGER, PRIMARY KEY (student_id, term))",
]
ROWS = [
    ("INSERT INTO students VALUES (:a, :b, :c)", {"a": "2024010203", "b": "李明", "c": dt.date(2008, 3, 15)}),
    ("INSERT INTO results VALUES (:a, :b, :c, :d, :e)", {"a": "2024010203", "b": "2023-2024-2", "c": 580, "d": 3.1, "e": 9}),
    ("INSERT INTO results VALUES (:a, :b, :c, :d, :e)", {"a": "2024010203", "b": "2024-2025-1", "c": 612, "d": 3.5, "e": None}),
]
QUERY = ("SELECT s.name, r.total, r.gpa, r.rank_in_class, s.birth_date FROM students s "
         "JOIN results r ON r.student_id = s.student_id "
         "WHERE s.student_id = :sid AND CAST(s.birth_date AS CHAR(10)) = :dob ORDER BY r.term DESC")


def make_school(url):
    eng = create_engine(sqldb.normalize_url(url))
    with eng.begin() as c:
        for s in SCHEMA:
            c.execute(text(s))
        for s, p in ROWS:
            c.execute(text(s), p)
    eng.dispose()
    return url


@pytest.fixture
def school(db_url):
    """The db_url database (SQLite file or PostgreSQL schema) holding a small school."""
    return make_school(db_url)


def db_backend(url):
    return "postgresql" if url.startswith("postgres") else "sqlite"


def ctx_for(url, **sql):
    return Ctx({"sql": {"databases": {"school": url}, **sql}})


def lookup(ctx, query=QUERY, **params):
    return run(ACTION.run(ctx, {"database": "school", "query": query, **params}))


def test_found_maps_the_first_row_with_plain_types(school):
    r = lookup(ctx_for(school), args={"sid": "2024010203", "dob": "2008-03-15"},
               map={"name": "name", "total": "total", "gpa": "gpa", "rank": "rank_in_class", "born": "birth_date"})
    assert r.outcome == "found"
    born = r.variables.pop("born")
    assert r.variables == {"name": "李明", "total": 612, "gpa": 3.5, "rank": None}
    # PostgreSQL has a date type; SQLite keeps dates as ISO text (the date filter speaks both)
    assert born == (dt.date(2008, 3, 15) if db_backend(school) == "postgresql" else "2008-03-15")


def test_not_found_and_impossible_dates(school):
    ctx = ctx_for(school)
    assert lookup(ctx, args={"sid": "2024010203", "dob": "2008-03-16"}).outcome == "not_found"
    # an impossible date compared as text is no row on both backends, not a database error
    assert lookup(ctx, args={"sid": "2024010203", "dob": "2008-02-30"}).outcome == "not_found"


def test_values_are_bound_never_spliced(school):
    ctx = ctx_for(school)
    for evil in ("' OR '1'='1", "2024010203' --", "x'; DROP TABLE students; --"):
        assert lookup(ctx, args={"sid": evil, "dob": "2008-03-15"}).outcome == "not_found"
    assert lookup(ctx, args={"sid": "2024010203", "dob": "2008-03-15"}).outcome == "found"   # table still there


def test_a_missing_column_is_a_failure(school):
    ctx = ctx_for(school)
    r = lookup(ctx, args={"sid": "2024010203", "dob": "2008-03-15"}, map={"x": "no_such_column"})
    assert r.outcome == "failed"
    assert "column 'no_such_column' is not in the result" in ctx.logs[-1][0]


def test_column_names_match_case_insensitively(school):
    r = lookup(ctx_for(school), query="SELECT name AS Name FROM students WHERE student_id = :sid",
               args={"sid": "2024010203"}, map={"n": "Name"})
    assert r.variables == {"n": "李明"}


def test_flow_and_deployment_mistakes_raise(school):
    ctx = ctx_for(school)
    with pytest.raises(IntegrationError, match=r"database 'other' is not configured \(sql.databases has: school\)"):
        run(ACTION.run(ctx, {"database": "other", "query": "SELECT 1"}))
    with pytest.raises(IntegrationError, match="uses :dob but args has no 'dob'"):
        lookup(ctx, args={"sid": "1"})
    with pytest.raises(IntegrationError, match="args 'pin' is not a placeholder"):
        lookup(ctx, args={"sid": "1", "dob": "2", "pin": "3"})
    with pytest.raises(IntegrationError, match="must be a single value"):
        lookup(ctx, args={"sid": ["1"], "dob": "2"})
    with pytest.raises(IntegrationError, match="only one statement"):
        lookup(ctx, query="SELECT 1; DELETE FROM students", args={})


def test_database_errors_are_failed_and_logged_without_values(school, caplog):
    ctx = ctx_for(school)
    caplog.set_level(logging.WARNING, logger="ivrflow.runtime.integrations")
    r = lookup(ctx, query="SELECT * FROM missing_table WHERE code = :c", args={"c": "SECRET-20080315"})
    assert r.outcome == "failed"
    if db_backend(school) == "postgresql":       # PostgreSQL quotes the bad value in its message
        q = "SELECT CAST(:d AS DATE) AS x FROM students"
        assert lookup(ctx, query=q, args={"d": "SECRET-20080315"}).outcome == "failed"
        assert "invalid input syntax for type date" in ctx.logs[-1][0]
    logged = "\n".join(m for m, _ in ctx.logs) + caplog.text
    assert "failed" in logged and "missing_table" in logged
    assert "SECRET" not in logged and "20080315" not in logged


def test_statement_timeout(school):
    ctx = ctx_for(school, timeout=0.2)
    endless = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
               "SELECT count(*) AS c FROM n")
    r = lookup(ctx, query=endless, args={})
    assert r.outcome == "failed"
    assert "took longer than 0.2 s" in ctx.logs[-1][0]
    # the connection is usable again afterwards
    assert lookup(ctx, query="SELECT name FROM students", args={}, map={"n": "name"}).variables == {"n": "李明"}


def test_the_connection_is_read_only(school):
    eng = sqldb.engine_for(school)
    assert sqldb.engine_for(school) is eng                      # pooled per URL
    with eng.connect() as c:
        if eng.dialect.name == "postgresql":
            c.execute(text("SET TRANSACTION READ ONLY"))
        with pytest.raises(Exception, match="(?i)read.?only"):
            c.execute(text("INSERT INTO students VALUES ('x', 'y', '2000-01-01')"))
        c.rollback()


def test_postgresql_functions_that_write_are_refused_by_the_transaction(pg_url):
    school = make_school(pg_url)
    eng = sqldb.engine_for(school)
    with eng.begin() as c:
        c.execute(text("CREATE SEQUENCE IF NOT EXISTS s1"))
    sqldb.dispose(school)
    ctx = ctx_for(school)
    assert lookup(ctx, query="SELECT nextval('s1') AS n", args={}).outcome == "failed"
    assert "read-only transaction" in ctx.logs[-1][0]


def test_unreachable_database_is_failed(tmp_path):
    ctx = ctx_for(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert lookup(ctx, query="SELECT 1 AS x", args={}).outcome == "failed"


def test_queries_run_off_the_event_loop(school):
    ctx = ctx_for(school, timeout=1.0)              # ample margin for the fast one
    endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) AS c FROM n"

    async def main():
        slow = asyncio.create_task(ACTION.run(ctx, {"database": "school", "query": endless}))
        await asyncio.sleep(0)
        fast = await ACTION.run(ctx, {"database": "school", "query": "SELECT name FROM students",
                                      "map": {"n": "name"}})
        assert not slow.done()
        return fast, await slow

    fast, slow = run(main())
    assert fast.outcome == "found" and slow.outcome == "failed"


@pytest.mark.parametrize("query", [
    "SELECT 1; DROP TABLE students",
    "select 1 ; select 2",
    "DELETE FROM students",
    "WITH gone AS (DELETE FROM students RETURNING *) SELECT * FROM gone",
    "SELECT * INTO copy_of FROM students",
    "SELECT * FROM students FOR UPDATE",
    "SELECT 1 /* unterminated",
    "SELECT 'unterminated",
    "   ",
    "PRAGMA query_only = OFF",
])
def test_only_one_read_only_select_is_accepted(query):
    with pytest.raises(IntegrationError):
        sqldb.check_select(query)


@pytest.mark.parametrize("query,placeholders", [
    ("SELECT ';' AS semi, 'DELETE' AS word FROM t WHERE a = :a;", ["a"]),
    ("SELECT a -- delete this; comment\nFROM t WHERE b = :b", ["b"]),
    ("SELECT /* update; /* nested */ */ a FROM t WHERE x = :x AND y = :y AND x2 = :x", ["x", "y"]),
    ("SELECT $q$;drop$q$ AS s, x::text FROM t WHERE t.at > '10:30' AND c = :c", ["c"]),
    ('SELECT "update" FROM t WHERE e = E\'it\\\'s; ok\' AND d = :d', ["d"]),
    ("WITH r AS (SELECT * FROM t) SELECT * FROM r WHERE updated_at > :since", ["since"]),
])
def test_literals_and_comments_do_not_count(query, placeholders):
    assert sqldb.check_select(query).startswith(query.strip()[:6])
    assert not sqldb.check_select(query).endswith(";")
    assert sqldb.placeholders(query) == placeholders


def test_the_flow_schema_refuses_templates_and_semicolons():
    import jsonschema

    v = jsonschema.Draft202012Validator(dict(ACTION.params))
    assert v.is_valid({"database": "school", "query": "SELECT a FROM t WHERE b = :b"})
    for bad in ("SELECT a FROM t WHERE b = '{{ x }}'", "SELECT 1; SELECT 2", "DELETE FROM t"):
        assert not v.is_valid({"database": "school", "query": bad})
