"""``ivrflow db ...`` (schema, demo seed, information texts, ledger check) and
``ivrflow jobs ...`` (the no-show refund job, also reachable as ``db refund-no-shows``).

``--db URL`` (or env IVRFLOW_DB) may be given on the group or on any subcommand; default
sqlite:///var/ivrflow.db.
"""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path

import click

from . import DEFAULT_URL
from .errors import StoreError
from .timeutil import parse_date

_db_option = click.option("--db", "db_url", envvar="IVRFLOW_DB", default=None,
                          help=f"Database URL (env IVRFLOW_DB; default {DEFAULT_URL}).")
_tz_option = click.option("--tz", default="UTC", show_default=True, envvar="IVRFLOW_TZ",
                          help="Hospital time zone (env IVRFLOW_TZ), e.g. Asia/Shanghai.")


_META_KEY = "ivrflow.store.db_url"


def _url(ctx: click.Context, given: str | None) -> str:
    url = given or ctx.meta.get(_META_KEY) or DEFAULT_URL
    if url == DEFAULT_URL:
        Path("var").mkdir(exist_ok=True)      # the default lives in ./var/
    return url


def _errors(fn):
    """Turn store errors into a clean message and exit status 1 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*a, **kw):
        try:
            return fn(*a, **kw)
        except StoreError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def _date(_ctx, _param, value):
    if value is None:
        return None
    try:
        return parse_date(value, "date")
    except StoreError as e:
        raise click.BadParameter(str(e)) from None


def _store(url: str, tz: str):
    from .store import Store

    return Store(url, tz=tz)


@click.group("db")
@_db_option
@click.pass_context
def db(ctx: click.Context, db_url: str | None) -> None:
    """Manage the hospital database (SQLite file or PostgreSQL)."""
    if db_url:
        ctx.meta[_META_KEY] = db_url


@db.command()
@_db_option
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
@_errors
def upgrade(ctx: click.Context, db_url: str | None, revision: str) -> None:
    """Create or upgrade the schema (runs the packaged Alembic migrations)."""
    from .migrate import upgrade as do_upgrade

    url = _url(ctx, db_url)
    rev = do_upgrade(url, revision)
    click.echo(f"database at revision {rev}")


@db.command()
@_db_option
@click.pass_context
@_errors
def current(ctx: click.Context, db_url: str | None) -> None:
    """Show the schema revision of the database and of this code."""
    from .migrate import current_revision, head_revision

    cur = current_revision(_url(ctx, db_url))
    click.echo(f"database: {cur or 'empty'}  code: {head_revision()}")


@db.command()
@_db_option
@_tz_option
@click.option("--demo", is_flag=True, help="Seed the demo hospital (required).")
@click.option("--today", callback=_date, help="Day the demo starts (YYYY-MM-DD); default today.")
@click.pass_context
@_errors
def seed(ctx: click.Context, db_url: str | None, tz: str, demo: bool, today: dt.date | None
         ) -> None:
    """Add demo data (idempotent: only missing rows are added)."""
    from .seed import seed_demo

    if not demo:
        raise click.UsageError("nothing to seed: use --demo")
    with _store(_url(ctx, db_url), tz) as store:
        store.check_schema()
        made = seed_demo(store, today)
    click.echo("seeded: " + ", ".join(f"{k} +{v}" for k, v in made.items()))


@db.command("load-info")
@_db_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--only-missing", is_flag=True, help="Keep texts that already exist.")
@click.pass_context
@_errors
def load_info(ctx: click.Context, db_url: str | None, file: str, only_missing: bool) -> None:
    """Load information texts from a YAML file (topic -> {lang: text}), all or nothing."""
    from .infofile import read_info_file

    texts = read_info_file(file)
    with _store(_url(ctx, db_url), "UTC") as store:
        store.check_schema()
        n = store.load_info(texts, only_missing=only_missing)
    click.echo(f"loaded {n} information text(s) from {file}")


@db.command("info")
@_db_option
@click.argument("topic", required=False)
@click.option("--lang", default="zh", show_default=True)
@click.pass_context
@_errors
def show_info(ctx: click.Context, db_url: str | None, topic: str | None, lang: str) -> None:
    """Print one information text, or list the topics."""
    with _store(_url(ctx, db_url), "UTC") as store:
        if topic is None:
            for t, langs in store.info_topics().items():
                click.echo(f"{t}: {', '.join(langs)}")
            return
        body = store.info(topic, lang)
    if body is None:
        raise click.ClickException(f"no information text for topic {topic!r} in {lang!r}")
    click.echo(body)


@click.group("jobs")
@_db_option
@click.pass_context
def jobs(ctx: click.Context, db_url: str | None) -> None:
    """Periodic jobs (run them from cron or a systemd timer)."""
    if db_url:
        ctx.meta[_META_KEY] = db_url


@jobs.command("refund-no-shows")
@_db_option
@_tz_option
@click.option("--today", callback=_date, help="Refund registrations of days before this one "
              "(YYYY-MM-DD); default today in --tz.")
@click.pass_context
@_errors
def refund_no_shows(ctx: click.Context, db_url: str | None, tz: str, today: dt.date | None
                    ) -> None:
    """Refund paid registrations not checked in by the end of their day (safe to re-run)."""
    with _store(_url(ctx, db_url), tz) as store:
        rep = store.refund_no_shows(today)
    click.echo(f"refunded {len(rep.refunded)} registration(s), {rep.refunded_cents} cents; "
               f"{rep.no_shows} unpaid booking(s) marked no-show")
    if rep.failed:
        raise click.ClickException(f"{len(rep.failed)} refund(s) failed and will be retried "
                                   f"by the next run: {', '.join(rep.failed)}")


db.add_command(refund_no_shows)


@db.command()
@_db_option
@click.pass_context
@_errors
def check(ctx: click.Context, db_url: str | None) -> None:
    """Verify every balance equals the sum of its ledger rows."""
    with _store(_url(ctx, db_url), "UTC") as store:
        store.check_schema()
        bad = store.check_ledger()
    if bad:
        for b in bad:
            click.echo(f"card {b.card_no}: balance {b.balance_cents} != ledger "
                       f"{b.ledger_sum_cents}", err=True)
        raise click.ClickException(f"{len(bad)} card(s) out of balance")
    click.echo("ledger consistent")
