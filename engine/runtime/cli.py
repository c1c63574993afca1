"""Click commands ``simulate``, ``test`` and ``explore`` (attached to the ``ivrflow`` group by cli.py).

Exit codes: 0 success; 1 the call or the suite found a problem (error-like disposition,
failed case, coverage under --fail-under, explore problems); 2 bad usage or bad input files.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import click

from .clock import VirtualClock, parse_start
from .record import DISPOSITIONS
from .script import ScriptError, parse_script
from .sim import SimOptions

__all__ = ["simulate", "test", "explore"]

#: dispositions that make ``simulate`` exit with 1
BAD_DISPOSITIONS = frozenset({"error", "step_limit", "time_limit", "dead_end", "aborted"})
DEFAULT_DB = "sqlite:///var/ivrflow.db"


def _quiet_logs(verbose: bool) -> None:
    lg = logging.getLogger("ivrflow.runtime")
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    elif not lg.handlers:
        lg.addHandler(logging.NullHandler())
        lg.propagate = False


def _registry():
    from engine.actions import PluginError, default_registry

    try:
        return default_registry()
    except PluginError as e:
        raise click.ClickException(str(e)) from None


def _compile(path: str, registry) -> Any:
    from engine.flow import compile_file
    from engine.flow.diagnostics import render_all

    flow, diags = compile_file(path, registry=registry)
    if flow is None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            lines = None
        click.echo(render_all(diags, {path: lines} if lines else None), err=True)
        click.echo(f"{path}: the flow has errors; fix them first (ivrflow validate)", err=True)
        sys.exit(2)
    return flow


def _assignments(items: tuple[str, ...], what: str) -> dict:
    from ruamel.yaml import YAML

    out = {}
    y = YAML(typ="safe", pure=True)
    for it in items:
        name, sep, raw = it.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{it!r}: use NAME=VALUE", param_hint=what)
        try:
            val = y.load(raw) if raw.strip() else ""
        except Exception:  # noqa: BLE001 - not YAML: keep the text
            val = raw
        out[name.strip()] = val if isinstance(val, (str, int, float, bool)) or val is None else raw
    return out


def _start(at: str | None, tz: str, default_now: bool) -> dt.datetime:
    import zoneinfo

    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {tz!r}", param_hint="--tz") from None
    if at is None:
        return dt.datetime.now(zone).replace(microsecond=0) if default_now else parse_start(None)
    try:
        return parse_start(at, tz)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--at") from None


@contextlib.contextmanager
def _store(db: str | None, clock: Any, tz: str, seed: bool, notes: list[str]) -> Iterator[Any]:
    """The store for one simulated call (None when there is no database)."""
    from engine.scenario.db import MemoryDatabases, is_memory, open_store

    if db is None:
        if not Path("var/ivrflow.db").exists():
            notes.append("no database at var/ivrflow.db: actions that need one fail "
                         "(use --db :memory: for the demo data, or --db URL)")
            yield None
            return
        db = DEFAULT_DB
    if db.lower() == "none":
        yield None
        return
    if is_memory(db):
        dbs = MemoryDatabases(tz)
        try:
            with dbs.database(clock, seed=seed) as st:
                yield st
        finally:
            dbs.close()
        return
    from engine.store import StoreError

    try:
        st = open_store(db, clock, tz)
        st.check_schema()
    except StoreError as e:
        raise click.ClickException(f"database {db}: {e}") from None
    try:
        yield st
    finally:
        st.close()


def _config(path: str | None) -> dict:
    """The deployment configuration file (--config) for the integration actions, or {}."""
    if path is None:
        return {}
    from engine.integrations.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--config") from None


_CONFIG_HELP = "Deployment configuration (YAML) for the http/sql actions, e.g. ivrflow.example.yaml."


def _environment(config_file: str | None, scenario_file: str | None, case_name: str | None):
    """The systems around explored calls: --config, plus a scenario case's routes and databases."""
    from engine.scenario.environment import environment_for

    try:
        return environment_for(_config(config_file), scenario_file, case_name)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--scenario") from None


def _sim_options(conference_seconds, fail_transfer, fail_conference, prompt_seconds) -> SimOptions:
    return SimOptions(conference_seconds=conference_seconds,
                      fail_transfers=True if "*" in fail_transfer else frozenset(fail_transfer),
                      fail_conferences=True if "*" in fail_conference else frozenset(fail_conference),
                      prompt_seconds=prompt_seconds)


def _common(f):
    opts = [
        click.option("--caller", default="13800000001", show_default=True, help="Caller number."),
        click.option("--untrusted", is_flag=True, help="The caller number is not from a trusted source."),
        click.option("--lang", default=None, help="Call language (default: the flow's first)."),
        click.option("--at", "at", default=None, metavar="TIME",
                     help="Simulated start time, ISO 8601 (naive: in --tz)."),
        click.option("--tz", default="Asia/Shanghai", show_default=True, help="Time zone of --at and the store."),
        click.option("--var", "var", multiple=True, metavar="NAME=VALUE", help="Initial flow variable (repeatable)."),
        click.option("--chan", "chan", multiple=True, metavar="NAME=VALUE",
                     help="Channel variable, e.g. a SIP header (repeatable)."),
        click.option("--prompts", "prompts_dir", default=None, type=click.Path(file_okay=False),
                     help="Prompt catalogs root (default: prompts/ next to the flow's directory)."),
        click.option("--conference-seconds", default=60.0, show_default=True, type=float,
                     help="Simulated rooms close after this long."),
        click.option("--fail-transfer", multiple=True, metavar="TARGET",
                     help="Simulate a refused transfer to this queue/extension ('*' = all)."),
        click.option("--fail-conference", multiple=True, metavar="ROOM",
                     help="Simulate a room that refuses the caller ('*' = all)."),
        click.option("--prompt-seconds", default=None, type=float,
                     help="Fixed length of every prompt (default: estimated from the text)."),
        click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False), help=_CONFIG_HELP),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


# ---------------------------------------------------------------------------------------------------
@click.command()
@click.argument("flow_file", metavar="FLOW", type=click.Path(dir_okay=False))
@click.option("--input", "-i", "script", default=None,
              help='Caller script, e.g. "1 12345678# wait:6 2 hangup" (see docs/runtime.md).')
@click.option("--interactive", is_flag=True, help="You are the caller: type keys at the terminal (real clock).")
@click.option("--db", default=None, metavar="URL",
              help="Database: a SQLAlchemy URL, ':memory:' (seeded demo data) or 'none'. "
                   "Default: var/ivrflow.db when it exists.")
@click.option("--no-seed", is_flag=True, help="With --db :memory:, start from an empty database.")
@click.option("--json", "as_json", is_flag=True, help="Print the call record as JSON.")
@click.option("--no-positions", is_flag=True, help="Leave source positions out of the transcript.")
@click.option("--show-vars", is_flag=True, help="Print the variables at the end (PINs masked).")
@click.option("--max-steps", type=int, default=None, help="Override the flow's limits.max_steps.")
@click.option("-v", "--verbose", is_flag=True, help="Log runtime messages to stderr.")
@_common
def simulate(flow_file, script, interactive, db, no_seed, as_json, no_positions, show_vars, max_steps, verbose,
             caller, untrusted, lang, at, tz, var, chan, prompts_dir, conference_seconds, fail_transfer,
             fail_conference, prompt_seconds, config_file):
    """Simulate one call of FLOW: scripted (--input) or interactive.

    \b
    Script tokens: 123#  keys (pressed when the IVR waits for input)
                   !123  keys pressed at once, barging into a prompt
                   wait:6  silence (6, 6s, 500ms, 2m)     timeout  let one input time out
                   speak:5  talk 5 s (for record states)  hangup  hang up at once
    """
    from .interpreter import Interpreter
    from .resolver import make_resolver
    from .sim import SimChannel
    from .transcript import render_transcript

    _quiet_logs(verbose)
    if script is not None and interactive:
        raise click.UsageError("--input and --interactive exclude each other")
    if script is None and not interactive:
        if sys.stdin.isatty():
            interactive = True
        else:
            script = sys.stdin.read()
    if script is not None:
        try:
            parse_script(script)
        except ScriptError as e:
            raise click.BadParameter(str(e), param_hint="--input") from None
    registry = _registry()
    config = _config(config_file)
    flow = _compile(flow_file, registry)
    if lang is not None and lang not in flow.languages:
        raise click.BadParameter(f"the flow speaks {', '.join(flow.languages)}, not {lang!r}", param_hint="--lang")
    variables = _assignments(var, "--var")
    channel_vars = _assignments(chan, "--chan")
    start = _start(at, tz, default_now=True)
    resolver, note = make_resolver(flow, prompts_dir)
    notes = [note] if note else []
    options = _sim_options(conference_seconds, fail_transfer, fail_conference, prompt_seconds)
    if interactive:
        from .clock import RealClock
        from .terminal import TerminalChannel, cbreak

        clock: Any = RealClock(tz)
        if at is not None:
            notes.append("--at is ignored in interactive mode (real clock)")
    else:
        clock = VirtualClock(start)
    for n in notes:
        click.echo(f"note: {n}", err=True)
    store_notes: list[str] = []
    with _store(db, clock, tz, not no_seed, store_notes) as store:
        for n in store_notes:
            click.echo(f"note: {n}", err=True)
        interp = Interpreter(flow, registry=registry, resolver=resolver, store=store, max_steps=max_steps,
                             config=config)
        # unique: several simulated calls may share a start time and one database
        call_id = f"sim-{start:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"
        if interactive:
            ch = TerminalChannel(call_id, caller, "10000", caller_trusted=not untrusted, variables=channel_vars,
                                 out=click.echo)
            with cbreak(ch.fd):
                res = asyncio.run(interp.run(ch, clock, lang=lang, variables=variables or None))
        else:
            ch = SimChannel(script, clock, call_id=call_id, caller=caller, caller_trusted=not untrusted,
                            variables=channel_vars, options=options)
            res = asyncio.run(interp.run(ch, clock, lang=lang, variables=variables or None))
    rec = res.record
    if as_json:
        click.echo(json.dumps(rec.to_dict(), ensure_ascii=False, indent=2))
    elif interactive:
        click.echo(f"end: {rec.disposition} after {rec.duration:.1f} s, {rec.steps} steps "
                   f"-- {DISPOSITIONS.get(rec.disposition, '')}")
        if rec.error:
            click.echo(f"error: {rec.error.get('message')} ({rec.error.get('pos')})")
    else:
        click.echo(render_transcript(rec, positions=not no_positions, variables=show_vars))
    sys.exit(1 if rec.disposition in BAD_DISPOSITIONS else 0)


# ---------------------------------------------------------------------------------------------------
@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--db", default=None, metavar="URL",
              help="Run each case on a fresh schema of this PostgreSQL server (default: in-memory SQLite).")
@click.option("--no-db", is_flag=True, help="Run without any database (cases with data: fail).")
@click.option("-k", "only", default=None, metavar="TEXT", help="Only cases whose name contains TEXT.")
@click.option("--coverage/--no-coverage", default=True, show_default=True, help="Print the coverage table.")
@click.option("--coverage-json", type=click.Path(dir_okay=False), default=None, help="Write coverage as JSON.")
@click.option("--fail-under", type=click.FloatRange(0, 100), default=None, metavar="PCT",
              help="Fail when total coverage (states + transitions) is below PCT.")
@click.option("--json", "as_json", is_flag=True, help="Print results and coverage as JSON.")
@click.option("--prompts", "prompts_dir", default=None, type=click.Path(file_okay=False), help="Prompt catalogs root.")
@click.option("--tz", default="Asia/Shanghai", show_default=True, help="The store's time zone.")
@click.option("-v", "--verbose", is_flag=True, help="List every case; full transcripts of failures.")
@click.option("--config", "config_file", default=None, type=click.Path(dir_okay=False),
              help=_CONFIG_HELP + " Cases' config: is merged over it.")
def test(paths, db, no_db, only, coverage, coverage_json, fail_under, as_json, prompts_dir, tz, verbose, config_file):
    """Run scenario files (default: flows/): *.test.yaml files and YAML files under tests/."""
    from engine.flow.diagnostics import render_all
    from engine.scenario.coverage import merge_table, total_percent
    from engine.scenario.runner import Runner, failure_report
    from engine.scenario.spec import discover

    _quiet_logs(False)
    files, problems = discover(paths or ["flows"])
    for p in problems:
        click.echo(f"error: {p}", err=True)
    if not files:
        raise click.UsageError("no scenario files found")
    runner = Runner(registry=_registry(), db_url=db, prompts_root=prompts_dir, tz=tz, use_store=not no_db,
                    config=_config(config_file))
    bad_input = bool(problems)
    failed = 0
    out_json = {"suites": []}
    try:
        for f in files:
            sr = runner.run_file(f, only=only)
            if not sr.suite.ok:
                bad_input = True
                click.echo(render_all(sr.suite.diagnostics, _sources(sr.suite.file)), err=True)
                continue
            if sr.flow is None:
                bad_input = True
                click.echo(render_all(sr.flow_diagnostics, _sources(str(sr.suite.flow_path))), err=True)
                click.echo(f"{f}: flow {sr.suite.flow_path} does not compile", err=True)
                continue
            counts = sr.counts()
            failed += counts["fail"] + counts["error"]
            if as_json:
                out_json["suites"].append(_suite_json(sr))
                continue
            words = {"pass": "passed", "fail": "failed", "error": "errors", "skip": "skipped"}
            summary = ", ".join(f"{v} {words[k]}" for k, v in counts.items() if v)
            click.echo(f"{f}: {len(sr.cases)} case{'s' if len(sr.cases) != 1 else ''} ({summary})"
                       f"  flow {sr.suite.flow_path}")
            if sr.note:
                click.echo(f"  note: {sr.note}")
            for cr in sr.cases:
                if cr.status in ("fail", "error"):
                    click.echo(failure_report(cr, verbose=verbose))
                elif verbose:
                    click.echo(f"{cr.status.upper():5} {cr.case.name}  ({cr.seconds * 1000:.0f} ms)")
        covs = list(runner.coverage.values())
        total = total_percent(covs) if covs else 100.0
        if coverage_json and covs:
            Path(coverage_json).write_text(json.dumps({"total": round(total, 1), "flows": [c.to_json() for c in covs]},
                                                      ensure_ascii=False, indent=2), encoding="utf-8")
        if as_json:
            out_json["coverage"] = {"total": round(total, 1), "flows": [c.to_json() for c in covs]}
            out_json["failed"] = failed
            click.echo(json.dumps(out_json, ensure_ascii=False, indent=2, default=str))
        elif coverage and covs:
            click.echo("")
            click.echo(merge_table(covs))
        under = fail_under is not None and covs and total < fail_under
        if under and not as_json:
            click.echo(f"coverage {total:.1f}% is under --fail-under {fail_under:g}%", err=True)
    finally:
        runner.close()
    if not as_json:
        click.echo(f"{'FAILED' if failed else 'ok'}: {failed} failing case{'s' if failed != 1 else ''}")
    sys.exit(2 if bad_input and not failed else 1 if failed or under else 0)


def _sources(path: str) -> dict | None:
    try:
        return {path: Path(path).read_text(encoding="utf-8").splitlines()}
    except (OSError, UnicodeDecodeError):
        return None


def _suite_json(sr) -> dict:
    return {
        "file": sr.suite.file, "flow": str(sr.suite.flow_path), "counts": sr.counts(),
        "cases": [{"name": c.case.name, "pos": str(c.case.position), "status": c.status, "failures": c.failures,
                   "ms": round(c.seconds * 1000, 1),
                   "disposition": c.record.disposition if c.record else None} for c in sr.cases],
    }


# ---------------------------------------------------------------------------------------------------
@click.command()
@click.argument("flow_file", metavar="FLOW", type=click.Path(dir_okay=False))
@click.option("--depth", type=click.IntRange(1, 50), default=6, show_default=True,
              help="Caller decisions (inputs) per path.")
@click.option("--db", default=":memory:", show_default=True, metavar="URL",
              help="':memory:' (a fresh seeded in-memory database per path) or 'none'.")
@click.option("--no-seed", is_flag=True, help="Start each path from an empty database.")
@click.option("--value", "values", multiple=True, metavar="NAME=DIGITS[,DIGITS]",
              help="Entries to try for the collect storing into NAME (e.g. card_no=10000001).")
@click.option("--hangups", type=click.Choice(["none", "input", "all"]), default="input", show_default=True,
              help="Where the caller hangs up: after each input, or also during every prompt.")
@click.option("--max-runs", type=click.IntRange(1), default=20000, show_default=True, help="Stop after this many calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--scenario", "scenario_file", default=None, type=click.Path(dir_okay=False),
              help="Explore against the systems a scenario case declares (its config, HTTP routes, databases).")
@click.option("--case", "case_name", default=None, metavar="NAME",
              help="With --scenario: the case whose systems to use (default: the first case).")
@_common
def explore(flow_file, depth, db, no_seed, values, hangups, max_runs, as_json, scenario_file, case_name, caller,
            untrusted, lang, at, tz, var, chan, prompts_dir, conference_seconds, fail_transfer, fail_conference,
            prompt_seconds, config_file):
    """Walk FLOW with every key, timeouts and hangups up to --depth inputs; report paths that crash,
    hit the step limit or end without a disposition, each with the shortest input that reaches it."""
    from engine.scenario.db import MemoryDatabases, is_memory
    from engine.scenario.explore import Explorer, render_report

    from .resolver import make_resolver

    _quiet_logs(False)
    registry = _registry()
    flow = _compile(flow_file, registry)
    vals: dict[str, list[str]] = {}
    for v in values:
        name, sep, raw = v.partition("=")
        if not sep or not name.strip() or not raw.strip():
            raise click.BadParameter(f"{v!r}: use NAME=DIGITS[,DIGITS...]", param_hint="--value")
        vals.setdefault(name.strip(), []).extend(x.strip() for x in raw.split(",") if x.strip())
    if db.lower() == "none":
        dbs = None
    elif is_memory(db):
        dbs = MemoryDatabases(tz)
    else:
        raise click.BadParameter("explore replays every path from the start, so it needs a database it can "
                                 "copy: ':memory:' or 'none'", param_hint="--db")
    resolver, _ = make_resolver(flow, prompts_dir)
    with _environment(config_file, scenario_file, case_name) as env:
        ex = Explorer(flow, registry=registry, resolver=resolver, depth=depth, databases=dbs, seed=not no_seed,
                      caller=caller, trusted=not untrusted, lang=lang, start=_start(at, tz, default_now=False),
                      options=_sim_options(conference_seconds, fail_transfer, fail_conference, prompt_seconds),
                      values=vals, hangups=hangups, max_runs=max_runs, variables=_assignments(var, "--var"),
                      channel_vars=_assignments(chan, "--chan"), config=env.config)
        try:
            rep = ex.run()
        finally:
            if dbs is not None:
                dbs.close()
    if as_json:
        click.echo(json.dumps(rep.to_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_report(rep, flow_file))
    sys.exit(1 if rep.problems else 0)
