"""Cross-check flows against their prompt catalog (pure functions, no I/O).

* E501 (error)   a referenced prompt is missing in a declared language (at the reference);
* E502 (error)   a prompt's template reads a variable the flow never sets (at the reference);
* E504 (error)   a declared language is missing from the catalog entirely;
* W503 (warning) a catalog prompt no flow references (at the prompt, per language file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from engine.flow.diagnostics import Diagnostic, Position, did_you_mean
from engine.prompts.catalog import Catalog

#: Variables every template may read without the flow setting them.
BUILTIN_VARIABLES = frozenset({"lang"})

PromptRef = tuple[str, Position]


def check_prompts(refs: Sequence[PromptRef], assigned_vars: Iterable[str], catalog: Catalog,
                  languages: Sequence[str], *, ref_vars: Sequence[Iterable[str]] | None = None,
                  languages_position: Position | None = None,
                  report_unused: bool = True) -> list[Diagnostic]:
    """Diagnostics for one flow using ``catalog``.

    ``ref_vars``, parallel to ``refs``, names variables a reference passes to its prompt
    itself (a flow's ``vars:``); they count as set for that reference only.

    ``report_unused`` reports catalog prompts this flow never references; turn it off when
    other flows share the catalog and use :func:`check_flows` (or :func:`unused_prompts`
    with every flow's references) instead.
    """
    assigned = frozenset(assigned_vars) | BUILTIN_VARIABLES
    diags: list[Diagnostic] = []
    present = []
    for lang in languages:
        if catalog.has_language(lang):
            present.append(lang)
            continue
        pos = languages_position or Position(str(catalog.path), 1, 1)
        diags.append(Diagnostic(
            "E504", f"prompt catalog '{catalog.name}' has no language '{lang}' "
                    f"(it has: {', '.join(catalog.languages) or 'none'})",
            pos, hint=did_you_mean(lang, catalog.languages) or f"add {catalog.path.name}/{lang}.yaml"))
    if ref_vars is not None and len(ref_vars) != len(refs):
        raise ValueError("ref_vars must be parallel to refs")
    for i, (pid, pos) in enumerate(refs):
        seen = assigned | frozenset(ref_vars[i]) if ref_vars is not None else assigned
        missing = [lang for lang in present if catalog.get(lang, pid) is None]
        for lang in missing:
            diags.append(Diagnostic(
                "E501", f"prompt '{pid}' is not defined in {catalog.name}/{catalog.file(lang).name}",
                pos, hint=did_you_mean(pid, catalog.ids(lang))))
        unset: dict[str, list[str]] = {}
        for lang in present:
            p = catalog.get(lang, pid)
            if p is not None:
                for var in sorted(p.variables - seen):
                    unset.setdefault(var, []).append(lang)
        for var, in_langs in unset.items():
            diags.append(Diagnostic(
                "E502", f"prompt '{pid}' ({', '.join(in_langs)}) reads variable '{var}', "
                        "which this flow never sets",
                pos, hint=did_you_mean(var, seen - BUILTIN_VARIABLES)))
    if report_unused:
        diags.extend(unused_prompts(catalog, (pid for pid, _ in refs)))
    return diags


def unused_prompts(catalog: Catalog, referenced_ids: Iterable[str]) -> list[Diagnostic]:
    """W503 for each catalog prompt (in each language file) that no reference names."""
    used = set(referenced_ids)
    out = []
    for lang in catalog.languages:
        for pid in sorted(catalog.ids(lang) - used):
            p = catalog.get(lang, pid)
            out.append(Diagnostic("W503", f"prompt '{pid}' is not used by any flow", p.position, "warning"))
    return out


@dataclass(frozen=True)
class FlowUse:
    """What one flow needs from a catalog (built from the compiled flow)."""
    refs: Sequence[PromptRef]
    assigned_vars: frozenset[str]
    languages: Sequence[str]
    languages_position: Position | None = None
    name: str = field(default="")
    ref_vars: Sequence[frozenset[str]] | None = None   # parallel to refs: variables passed in `vars:`


def check_flows(catalog: Catalog, flows: Iterable[FlowUse]) -> list[Diagnostic]:
    """:func:`check_prompts` for every flow sharing ``catalog``; unused prompts judged over all."""
    flows = list(flows)
    diags: list[Diagnostic] = []
    for f in flows:
        diags.extend(check_prompts(f.refs, f.assigned_vars, catalog, f.languages, ref_vars=f.ref_vars,
                                   languages_position=f.languages_position, report_unused=False))
    diags.extend(unused_prompts(catalog, (pid for f in flows for pid, _ in f.refs)))
    return diags


def catalog_check(base_of: Callable[[Any], Path | None]) -> Callable[[Any], list[Diagnostic]]:
    """The prompt-catalog check of a compiled flow (E500-E504): its references against the
    catalog `flow.prompts` under `base_of(flow)` (None: no prompts directory found)."""
    from engine.prompts.catalog import CatalogError, load_catalog

    def provider(flow: Any) -> list[Diagnostic]:
        base = base_of(flow)
        if base is None or not (base / flow.prompts).is_dir():
            where = (base / flow.prompts) if base is not None else flow.prompts
            return [Diagnostic("E500", f"prompt catalog '{flow.prompts}' not found (looked in {where})",
                               Position(flow.file, 1, 1))]
        try:
            cat = load_catalog(base, flow.prompts)
        except CatalogError as e:
            return list(e.diagnostics)
        # a prompt's template sees the flow's variables plus what the reference passes in `vars`
        return check_prompts(list(flow.prompt_refs), set(flow.assigned_variables), cat,
                             list(flow.languages), ref_vars=list(flow.prompt_ref_vars),
                             report_unused=False)

    return provider
