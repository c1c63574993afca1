"""``ivrflow prompts build`` and ``ivrflow prompts check`` (a click group to mount in cli.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.flow import diagnostics as dg
from engine.prompts import lang as langs
from engine.prompts.build import build
from engine.prompts.cache import PromptCache
from engine.prompts.catalog import CatalogError, list_catalogs, load_catalog
from engine.prompts.check import FlowUse, check_flows
from engine.prompts.tts import BACKENDS, TTSError, get_backend


def _sources(diags) -> dict[str, list[str]]:
    out = {}
    for d in diags:
        f = d.position.file
        if f not in out:
            try:
                out[f] = Path(f).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                out[f] = None
    return out


def _print_diags(diags, fmt: str = "text") -> None:
    diags = list(diags)
    if fmt == "json":
        click.echo(dg.to_json(diags))
    elif diags:
        click.echo(dg.render_all(diags, _sources(diags)))


def _load(prompts_dir: Path, names):
    catalogs, diags = [], []
    for name in names:
        try:
            cat = load_catalog(prompts_dir, name)
        except CatalogError as e:
            diags.extend(e.diagnostics)
            continue
        catalogs.append(cat)
        diags.extend(cat.diagnostics)
    return catalogs, diags


@click.group("prompts")
def prompts() -> None:
    """Prompt catalogs: synthesize them, check them against flows."""


@prompts.command("build")
@click.option("--prompts", "prompts_dir", default="prompts", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Directory holding the catalogs.")
@click.option("--catalog", "names", multiple=True, help="Catalog to build (repeatable; default: all).")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache directory (default: $IVRFLOW_PROMPT_CACHE or ./var/prompt-cache).")
@click.option("--lang", "languages", multiple=True, help="Only this language (repeatable).")
@click.option("--backend", default="pyttsx3", show_default=True, type=click.Choice(sorted(BACKENDS)),
              help="TTS backend.")
def build_cmd(prompts_dir: Path, names, cache_dir, languages, backend) -> None:
    """Synthesize every static prompt to 8 kHz mono WAV in the cache (skipping cached ones)."""
    for tag in languages:
        if not langs.is_valid_tag(tag):
            raise click.BadParameter(f"'{tag}' is not a language tag (e.g. zh-CN, en)", param_hint="--lang")
    if not prompts_dir.is_dir():
        raise click.ClickException(f"prompt directory '{prompts_dir}' does not exist")
    names = list(dict.fromkeys(names)) or list_catalogs(prompts_dir)
    if not names:
        raise click.ClickException(f"no prompt catalogs under '{prompts_dir}' (expected <catalog>/<lang>.yaml)")
    catalogs, diags = _load(prompts_dir, names)
    _print_diags(diags)
    if any(d.severity == "error" for d in diags):
        raise SystemExit(1)
    have = {lang for c in catalogs for lang in c.languages}
    for tag in languages:
        if langs.canonical_tag(tag) not in have:
            raise click.ClickException(f"no catalog has language '{tag}' (they have: {', '.join(sorted(have))})")
    try:
        tts = get_backend(backend)
    except TTSError as e:
        raise click.ClickException(str(e)) from None
    cache = PromptCache(cache_dir)
    bar = None

    def start(items) -> None:
        nonlocal bar
        bar = click.progressbar(length=len(items), label="synthesizing", file=sys.stderr,
                                item_show_func=lambda it: f"{it.catalog}/{it.lang}/{it.prompt_id}" if it else "")
        bar.__enter__()

    def step(item) -> None:
        bar.update(1, item)

    try:
        report = build(catalogs, tts, cache, languages or None, progress=step, items_hook=start)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    for item, err in report.failed:
        click.echo(f"FAILED {item.catalog}/{item.lang}/{item.prompt_id}: {err}", err=True)
    click.echo(f"{report.summary()}; cache {cache.root}")
    if report.failed:
        raise SystemExit(1)


@prompts.command("check")
@click.argument("flows", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--prompts", "prompts_dir", default="prompts", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Directory holding the catalogs.")
@click.option("--format", "fmt", default="text", show_default=True, type=click.Choice(["text", "json"]))
def check_cmd(flows, prompts_dir: Path, fmt: str) -> None:
    """Prompts missing per language, unused prompts, template variables flows never set.

    FLOWS default to flows/*.yaml.  Unused prompts are judged over all the flows given.
    """
    try:
        from engine.flow import compile_file
    except ImportError:
        raise click.ClickException("the flow compiler (engine.flow.compile_file) is not available yet") from None
    paths = list(flows) or sorted([*Path("flows").glob("*.yaml"), *Path("flows").glob("*.yml")])
    if not paths:
        raise click.ClickException("no flows given and none found in flows/")
    diags: list = []
    uses: dict[str, list[FlowUse]] = {}
    for path in paths:
        if not path.is_file():
            raise click.ClickException(f"flow file '{path}' does not exist")
        flow, flow_diags = compile_file(path)
        if flow is None:
            diags.extend(flow_diags)
            continue
        if not getattr(flow, "prompts", None):
            continue
        ref_vars = getattr(flow, "prompt_ref_vars", None)
        uses.setdefault(flow.prompts, []).append(FlowUse(
            list(flow.prompt_refs), frozenset(flow.assigned_variables), tuple(flow.languages),
            getattr(flow, "languages_position", None), str(path),
            [frozenset(v) for v in ref_vars] if ref_vars is not None else None))
    for name, flow_uses in sorted(uses.items()):
        catalogs, cat_diags = _load(prompts_dir, [name])
        diags.extend(cat_diags)
        if catalogs:
            diags.extend(check_flows(catalogs[0], flow_uses))
    diags = dg.sort(diags)
    _print_diags(diags, fmt)
    errors = sum(d.severity == "error" for d in diags)
    if fmt == "text":
        click.echo(f"{errors} error(s), {len(diags) - errors} warning(s)", err=True)
    if errors:
        raise SystemExit(1)


@prompts.command("prune")
@click.option("--cache", "cache_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Cache directory (default: $IVRFLOW_PROMPT_CACHE or ./var/prompt-cache).")
@click.option("--older-than", "days", type=click.FloatRange(min=0), default=7.0, show_default=True,
              help="Age in days.")
def prune_cmd(cache_dir, days: float) -> None:
    """Delete audio of call-time text (balances, results) older than --older-than days.

    Built static prompts are kept."""
    cache = PromptCache(cache_dir)
    n = cache.prune_dynamic(days * 86400)
    click.echo(f"removed {n} dynamic entries older than {days:g} day(s) from {cache.root}")
