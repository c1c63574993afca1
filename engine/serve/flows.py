"""The flows `ivrflow serve` runs: loaded from a directory, validated like `ivrflow validate`
(schema, states, actions and their parameters, prompt catalog), and reloaded when a file
changes.  A changed flow that fails validation is not loaded: the previous version keeps
serving and the diagnostics are logged.  A call keeps the `LoadedFlow` it started with (the
compiled IR is immutable), so calls in progress finish on their version.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from engine import templating
from engine.flow import compile_file, ir
from engine.flow.diagnostics import Diagnostic, Position, render_all, sort
from engine.runtime.channel import PlayItem
from engine.runtime.interpreter import Interpreter
from engine.runtime.resolver import CatalogResolver, IdResolver, find_prompts_root

__all__ = ["FlowSet", "LoadedFlow", "catalog_check"]

log = logging.getLogger("ivrflow.serve")


@dataclass
class LoadedFlow:
    name: str
    path: Path
    flow: ir.Flow
    interp: Interpreter
    resolver: Any
    prompts: Any                      # engine.prompts.media.Prompts or None
    signature: tuple
    version: str                      # first 12 hex digits of the source's SHA-256
    openings: dict[str, str | None] = field(default_factory=dict)   # lang -> first prompt file


def catalog_check(prompts_root: Path | None) -> Callable[[ir.Flow], list[Diagnostic]]:
    """The prompt-catalog check of `ivrflow validate` (E500-E504), the catalog found as the
    runtime finds it (find_prompts_root)."""
    from engine.prompts.check import catalog_check as check

    return check(lambda flow: find_prompts_root(flow.file, prompts_root))


def _signature(path: Path, prompts_root: Path | None) -> tuple:
    """What a change is detected on: the flow file and the files of the prompts directory."""
    items = []
    for p in [path] + (sorted(prompts_root.rglob("*.yaml")) if prompts_root and prompts_root.is_dir() else []):
        try:
            st = p.stat()
        except OSError:
            continue
        items.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(items)


class FlowSet:
    """Flows by name (`flow:` field).  `reload()` is cheap when nothing changed (stat only)."""

    def __init__(self, directory: Path, *, registry: Mapping[str, Any], prompts_root: Path | None = None,
                 store: Any = None, action_config: Mapping[str, Any] | None = None,
                 recordings_dir: str = "recordings", backend: Any = None, cache: Any = None,
                 synth_timeout: float = 3.0, synthesize: bool = True,
                 on_reload: Callable[[str, bool], None] | None = None) -> None:
        self.directory = Path(directory)
        self.registry = registry
        self.prompts_root = prompts_root
        self.store = store
        self.action_config = dict(action_config or {})
        self.recordings_dir = recordings_dir
        self.backend = backend
        self.cache = cache
        self.synth_timeout = synth_timeout
        self.synthesize = synthesize
        self.on_reload = on_reload
        self.by_name: dict[str, LoadedFlow] = {}
        self._by_path: dict[Path, LoadedFlow] = {}
        self._seen: dict[Path, tuple] = {}          # signatures tried (also the rejected ones)
        self._prompts: dict[tuple, Any] = {}
        self.problems: dict[Path, list[Diagnostic]] = {}

    # ------------------------------------------------------------------ loading

    def files(self) -> list[Path]:
        if self.directory.is_file():
            return [self.directory]
        return sorted(p for p in self.directory.glob("*.yaml") if not p.name.endswith(".test.yaml"))

    def _root_for(self, path: Path) -> Path | None:
        return find_prompts_root(str(path), self.prompts_root)

    def reload(self) -> tuple[list[str], list[str]]:
        """Load new and changed files; returns (loaded flow names, rejected file names)."""
        loaded: list[str] = []
        rejected: list[str] = []
        current = set(self.files())
        for path in sorted(current):
            sig = _signature(path, self._root_for(path))
            if self._seen.get(path) == sig:
                continue
            self._seen[path] = sig
            lf = self._load(path, sig)
            if lf is None:
                rejected.append(str(path))
                if self.on_reload:
                    self.on_reload(str(path), False)
                continue
            old = self._by_path.get(path)
            if old is not None and old.name != lf.name and self.by_name.get(old.name) is old:
                del self.by_name[old.name]
            self._by_path[path] = lf
            self.by_name[lf.name] = lf
            loaded.append(lf.name)
            log.info("flow %s loaded from %s (version %s)%s", lf.name, path, lf.version,
                     " - replaces the previous version; calls in progress keep theirs" if old else "",
                     extra={"flow": lf.name, "version": lf.version})
            if self.on_reload:
                self.on_reload(str(path), True)
        for path in list(self._by_path):
            if path not in current:
                lf = self._by_path.pop(path)
                self._seen.pop(path, None)
                if self.by_name.get(lf.name) is lf:
                    del self.by_name[lf.name]
                log.warning("flow %s: %s was removed; no new call goes to it", lf.name, path,
                            extra={"flow": lf.name})
        return loaded, rejected

    def _load(self, path: Path, sig: tuple) -> LoadedFlow | None:
        root = self._root_for(path)
        flow, diags = compile_file(path, registry=self.registry, catalog_provider=catalog_check(root))
        errors = [d for d in diags if d.severity == "error"]
        if flow is None or errors:
            self._reject(path, errors or diags)
            return None
        other = self.by_name.get(flow.name)
        if other is not None and other.path != path:
            self._reject(path, [Diagnostic("E000", f"flow name '{flow.name}' is already served from "
                                                   f"{other.path}", Position(str(path), 1, 1))])
            return None
        self.problems.pop(path, None)
        resolver, prompts = self._resolver(flow, root)
        interp = Interpreter(flow, registry=self.registry, resolver=resolver, store=self.store,
                             config=self.action_config, recordings_dir=self.recordings_dir)
        interp.write_cdr = False       # the server stores the record (retries, then the spool)
        return LoadedFlow(flow.name, path, flow, interp, resolver, prompts, sig,
                          (flow.source_sha256 or hashlib.sha256(path.read_bytes()).hexdigest())[:12])

    def _reject(self, path: Path, diags: list[Diagnostic]) -> None:
        self.problems[path] = diags
        try:
            lines = {str(path): path.read_text(encoding="utf-8", errors="replace").splitlines()}
        except OSError:
            lines = None
        old = self._by_path.get(path)
        keep = f"; still serving the previous version {old.version}" if old else "; not loaded"
        log.error("flow file %s rejected (%d problem%s)%s:\n%s", path, len(diags),
                  "" if len(diags) == 1 else "s", keep, render_all(sort(diags), lines),
                  extra={"file": str(path)})

    def _resolver(self, flow: ir.Flow, root: Path | None) -> tuple[Any, Any]:
        if not flow.prompts or root is None:
            return IdResolver(), None
        from engine.prompts.catalog import load_catalog
        from engine.prompts.media import Prompts

        catalog = load_catalog(root, flow.prompts)        # checked by the compile above
        key = (str(root), flow.prompts, _signature(root / flow.prompts, root))
        prompts = self._prompts.get(key)
        if prompts is None:
            prompts = Prompts(catalog, self.backend, self.cache,
                              synthesize=self.backend is not None and self.synthesize,
                              timeout=self.synth_timeout)
            self._prompts[key] = prompts
        return CatalogResolver(prompts), prompts

    def get(self, name: str | None) -> LoadedFlow | None:
        return self.by_name.get(name) if name else None

    def close(self) -> None:
        for prompts in self._prompts.values():
            try:
                prompts.close()
            except Exception:  # noqa: BLE001
                pass


async def opening_of(lf: LoadedFlow, lang: str) -> str | None:
    """The file the call will play first, when that is known before the call arrives: the
    start state is a `play` whose first item is a prompt without variables, a file named
    without a template, or a tone."""
    if lang in lf.openings:
        return lf.openings[lang]
    result = None
    state = lf.flow.states.get(lf.flow.start)
    if state is not None and state.kind == "play" and state.spec.prompts:
        pi = state.spec.prompts[0]
        try:
            if pi.kind == "file" and not templating.is_template(pi.value):
                result = pi.value
            elif pi.kind == "tone":
                from engine.channel.freeswitch import media_arg
                result = media_arg(PlayItem(None, None, pi.value, None, lang, "tone"))
            elif pi.kind == "prompt" and not pi.vars:
                cat = getattr(lf.prompts, "catalog", None)
                p = cat.get(lang, pi.value) if cat is not None else None
                if p is not None and not p.is_template:
                    item = await lf.resolver.prompt(lang, pi.value, {})
                    result = item.path
        except Exception:  # noqa: BLE001 - no pipelining then, the call itself will report it
            result = None
    lf.openings[lang] = result
    return result
