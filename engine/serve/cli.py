"""`ivrflow serve`: the click command (attached to the `ivrflow` group by cli.py).

Exit status: 0 after a graceful stop (or `--check` finding everything valid); 1 when flows
are invalid under `--check`; 2 for a bad configuration, an unusable database or address.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import click

__all__ = ["serve"]


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Configuration file (YAML; see docs/freeswitch.md).")
@click.option("--listen", default=None, metavar="HOST:PORT",
              help="Where FreeSWITCH's `socket` application connects [config listen, 127.0.0.1:8084].")
@click.option("--flows", "flows_dir", type=click.Path(), default=None,
              help="Directory of flows (or one flow file) [config flows, ./flows].")
@click.option("--db", default=None, metavar="URL",
              help="Database for actions and call records: a SQLAlchemy URL, or 'none' [config db, $IVRFLOW_DB].")
@click.option("--prompts", "prompts_dir", type=click.Path(file_okay=False), default=None,
              help="Prompt catalogs root [config prompts.dir, prompts/ beside the flows].")
@click.option("--metrics", default=None, metavar="HOST:PORT|off",
              help="Health/metrics HTTP endpoint [config metrics, 127.0.0.1:9184].")
@click.option("--log-format", type=click.Choice(["json", "kv"]), default=None,
              help="Log lines as JSON objects or key=value [config logging.format, json].")
@click.option("--check", is_flag=True, help="Check the configuration, the database and the flows, then exit.")
def serve(config_file, listen, flows_dir, db, prompts_dir, metrics, log_format, check):
    """Answer calls from FreeSWITCH (outbound Event Socket) with the flows of FLOWS."""
    import os

    from .config import ServeConfigError, load_serve_config, parse_address
    from .logs import setup_logging

    try:
        cfg = load_serve_config(config_file)
        over = {}
        if listen is not None:
            over["listen"] = parse_address(listen, "--listen")
        if flows_dir is not None:
            over["flows"] = Path(flows_dir)
        if prompts_dir is not None:
            over["prompts_dir"] = Path(prompts_dir)
        if metrics is not None:
            over["metrics"] = None if metrics == "off" else parse_address(metrics, "--metrics")
        if log_format is not None:
            over["log_format"] = log_format
        from dataclasses import replace
        cfg = replace(cfg, **over)
    except ServeConfigError as e:
        _fail(str(e))
    if not cfg.flows.exists():
        _fail(f"flows: {cfg.flows} does not exist")
    db = db if db is not None else (cfg.db or os.environ.get("IVRFLOW_DB"))
    setup_logging(cfg.log_format, cfg.log_level)
    log = logging.getLogger("ivrflow.serve")

    try:
        from engine.actions import PluginError, default_registry
        registry = default_registry()
    except PluginError as e:
        _fail(str(e))

    store = None
    if db and db.lower() != "none":
        from engine.store import Store, StoreError
        try:
            store = Store(db, tz=cfg.timezone)
            store.check_schema()
        except StoreError as e:
            _fail(f"database {_safe_url(db)}: {e}")
        except Exception as e:  # noqa: BLE001 - bad URLs, missing drivers
            _fail(f"database {_safe_url(db)}: {type(e).__name__}: {e}")
    else:
        log.warning("no database: actions needing one fail; call records go to %s", cfg.cdr_spool)

    if check:
        from .flows import FlowSet
        fs = FlowSet(cfg.flows, registry=registry, prompts_root=cfg.prompts_dir)
        loaded, rejected = fs.reload()
        click.echo(f"{len(loaded)} flow{'s' if len(loaded) != 1 else ''} valid"
                   + (f", {len(rejected)} rejected (see the log above)" if rejected else "")
                   + (f": {', '.join(sorted(loaded))}" if loaded else ""))
        missing = sorted({r.flow for r in cfg.routes} - set(fs.by_name))
        for name in missing:
            click.echo(f"warning: a route names flow '{name}', which is not loaded", err=True)
        if store is not None:
            store.close()
        sys.exit(1 if rejected or not loaded else 0)

    from .server import Server

    async def main() -> None:
        server = Server(cfg, registry=registry, store=store)
        try:
            await server.start()
        except OSError as e:
            _fail(f"cannot listen on {cfg.listen[0]}:{cfg.listen[1]}: {e.strerror or e}")
        quiet_gc()
        await server.run_forever()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        if store is not None:
            store.close()


def quiet_gc() -> None:
    """Keep the cycle collector out of the calls' way.  What is loaded at start is frozen
    (never scanned again); young objects are collected as usual (pauses of 1-4 ms with 2,000
    calls), but the older generations - every object of every call in progress - only after
    1,000 young collections: a collection of those takes 20-250 ms with 2,000 calls, a pause
    for all of them (bench/serve_load.py).  Garbage without cycles is freed at once as always."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 1000, 1000)


def _safe_url(url: str) -> str:
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "(the given URL)"
