"""The `ivrflow` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine import __version__


class UsageExit(click.UsageError):
    exit_code = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ivrflow")
def main() -> None:
    """ivrflow: IVR call flows written in YAML, checked, simulated and served on FreeSWITCH."""


def _expand(paths: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        pp = Path(p)
        if pp.is_dir():
            out.extend(sorted(x for x in pp.glob("*.yaml") if not x.name.endswith(".test.yaml")))
        else:
            out.append(pp)
    return out


def catalog_provider_for(prompts_root: Path | None):
    """A function checking a compiled flow's prompt references against its catalog (or None):
    the catalog under `prompts_root`, else `prompts/` beside the flow's directory."""
    try:
        from engine.prompts.check import catalog_check
    except ImportError:
        return None
    root = prompts_root
    return catalog_check(lambda flow: root if root is not None
                         else Path(flow.file).resolve().parent.parent / "prompts")


def validate_paths(paths: list[Path], prompts_root: Path | None = None, check_prompts: bool = True):
    from engine.flow import compile_file

    provider = catalog_provider_for(prompts_root) if check_prompts else None
    results = []
    for p in paths:
        flow, diags = compile_file(p, catalog_provider=provider)
        results.append((p, flow, diags))
    return results


@main.command()
@click.argument("flows", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--prompts", "prompts_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Prompt catalogs directory (default: prompts/ beside the flows' directory).")
@click.option("--no-prompts", is_flag=True, help="Do not check prompt ids against the catalogs.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(flows, fmt, prompts_root, no_prompts, strict):
    """Check flows: every problem of every file, with file:line:col.

    Exit status: 0 valid, 1 invalid, 2 usage error."""
    from engine.flow import diagnostics as dg

    paths = _expand(flows)
    if not paths:
        raise UsageExit("no flow files found")
    results = validate_paths(paths, prompts_root, not no_prompts)
    all_diags = [d for _, _, ds in results for d in ds]
    errors = [d for d in all_diags if d.severity == "error" or (strict and d.severity == "warning")]
    if fmt == "json":
        click.echo(json.dumps({
            "valid": not errors,
            "files": [{"file": str(p), "valid": not any(d.severity == "error" or (strict and d.severity == "warning") for d in ds),
                       "flow": f.name if f else None} for p, f, ds in results],
            "diagnostics": [d.to_json() for d in dg.sort(all_diags)],
        }, ensure_ascii=False, indent=2))
    else:
        sources = {}
        for d in all_diags:
            if d.position.file not in sources:
                try:
                    sources[d.position.file] = Path(d.position.file).read_text(encoding="utf-8", errors="replace").splitlines()
                except OSError:
                    sources[d.position.file] = []
        errs = [d for d in dg.sort(all_diags) if d.severity == "error"]
        warns = [d for d in dg.sort(all_diags) if d.severity != "error"]
        if errs:
            click.echo(dg.render_all(errs, sources), err=False)
        if warns:
            if errs:
                click.echo("")
            click.echo(dg.render_all(warns, sources))
        n_err, n_warn = len(errs), len(warns)
        ok_files = sum(1 for _, f, _ in results if f is not None)
        summary = f"{len(results)} flow{'s' if len(results) != 1 else ''} checked: {ok_files} valid, " \
                  f"{n_err} error{'s' if n_err != 1 else ''}, {n_warn} warning{'s' if n_warn != 1 else ''}"
        click.echo(summary if (n_err or n_warn) else summary.replace(", 0 errors, 0 warnings", "") + " — OK")
    sys.exit(1 if errors else 0)


@main.command()
@click.argument("flow", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg", "png"]), default="mermaid", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write here instead of standard output.")
def graph(flow, fmt, output):
    """Draw a flow's state machine (outcomes on the edges)."""
    from engine.flow import compile_file
    from engine.flow import diagnostics as dg
    from engine.flow import graph as g

    compiled, diags = compile_file(flow, catalog_provider=None)
    if compiled is None:
        click.echo(dg.render_all([d for d in diags if d.severity == "error"]), err=True)
        click.echo(f"{flow}: not drawn, the flow has errors (see `ivrflow validate`)", err=True)
        sys.exit(1)
    if fmt == "mermaid":
        data = g.to_mermaid(compiled).encode()
    elif fmt == "dot":
        data = g.to_dot(compiled).encode()
    else:
        try:
            data = g.render(compiled, fmt)
        except g.GraphvizMissing as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
    if fmt in ("svg", "png") and output is None and sys.stdout.isatty():
        raise UsageExit(f"--format {fmt} writes binary data: give -o FILE")
    if output:
        Path(output).write_bytes(data)
        click.echo(f"wrote {output}", err=True)
    else:
        sys.stdout.buffer.write(data)


@main.command("actions")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def actions_cmd(fmt):
    """List the actions loaded (built-in and plugins), with parameters and outcomes."""
    from engine.actions import PluginError, default_registry

    try:
        reg = default_registry()
    except PluginError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    if fmt == "json":
        click.echo(json.dumps([{
            "name": a.name, "origin": reg.origins.get(a.name), "summary": a.summary, "params": a.params,
            "outcomes": list(a.outcomes), "sets": a.sets if isinstance(a.sets, tuple) else {k: list(v) for k, v in a.sets.items()},
        } for a in (reg[n] for n in reg)], ensure_ascii=False, indent=2, default=list))
        return
    for name in reg:
        a = reg[name]
        click.echo(f"{a.name}  ({reg.origins.get(a.name, '?')})")
        click.echo(f"    {a.summary}")
        props = (a.params or {}).get("properties", {})
        req = set((a.params or {}).get("required", []))
        if props:
            click.echo("    params:   " + ", ".join(f"{k}{'' if k in req else '?'}" for k in props))
        click.echo("    outcomes: " + ", ".join(a.outcomes))
        sets = a.sets if isinstance(a.sets, tuple) else sorted({v for vs in a.sets.values() for v in vs})
        if sets:
            click.echo("    sets:     " + ", ".join(sets))


def _attach_optional() -> None:
    """Subsystem command groups live beside their code; attach those present."""
    import importlib

    for module, names in (("engine.runtime.cli", ("simulate", "test", "explore")),
                          ("engine.prompts.cli", ("prompts",)),
                          ("engine.store.cli", ("db", "jobs")),
                          ("engine.serve.cli", ("serve",))):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and (e.name == module or module.startswith(e.name + ".")):
                continue
            raise
        for n in names:
            cmd = getattr(mod, n, None)
            if isinstance(cmd, click.Command):
                main.add_command(cmd, n)


_attach_optional()

if __name__ == "__main__":
    main()
