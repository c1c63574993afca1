"""Prompt resolution behind a small interface: prompt id / free text -> ``PlayItem``.

``CatalogResolver`` uses ``engine.prompts.media.Prompts`` (catalog text, recordings, TTS cache);
``IdResolver`` needs nothing and shows prompt ids.  ``make_resolver`` picks the catalog one
when the flow's catalog can be loaded, else the id one (and says why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol

from .channel import PlayItem

__all__ = ["Resolver", "ResolveError", "IdResolver", "CatalogResolver", "make_resolver", "find_prompts_root"]


class ResolveError(Exception):
    """A prompt that cannot be played (unknown id or language, bad variables)."""


class Resolver(Protocol):
    async def prompt(self, lang: str, prompt_id: str, variables: Mapping[str, Any]) -> PlayItem: ...

    async def text(self, lang: str, text: str) -> PlayItem: ...


class IdResolver:
    """No catalog: a prompt is shown by its id, free text as itself."""

    async def prompt(self, lang: str, prompt_id: str, variables: Mapping[str, Any]) -> PlayItem:
        return PlayItem(None, None, None, prompt_id, lang, "id")

    async def text(self, lang: str, text: str) -> PlayItem:
        return PlayItem(text, None, None, None, lang, "none")


class CatalogResolver:
    """Wraps an ``engine.prompts.media.Prompts``."""

    def __init__(self, prompts: Any):
        from engine.prompts.media import PromptError, SynthesisError

        self.prompts = prompts
        self._PromptError, self._SynthesisError = PromptError, SynthesisError
        #: (lang, prompt id) -> item, for prompts whose text has no variables and whose audio is settled
        self._static: dict[tuple[str, str], PlayItem] = {}

    @staticmethod
    def _item(m: Any) -> PlayItem:
        return PlayItem(m.text, str(m.path) if m.path is not None else None, None, m.prompt_id, m.lang, m.source)

    async def prompt(self, lang: str, prompt_id: str, variables: Mapping[str, Any]) -> PlayItem:
        hit = self._static.get((lang, prompt_id))
        if hit is not None:
            return hit
        try:
            m = await self.prompts.resolve(lang, prompt_id, variables)
        except self._SynthesisError as e:     # no audio: the channel speaks the text instead
            m = e.media
        except self._PromptError as e:
            raise ResolveError(str(e)) from None
        item = self._item(m)
        catalog = getattr(self.prompts, "catalog", None)
        settled = m.path is not None or not getattr(self.prompts, "synthesize", False)
        if catalog is not None and settled:
            p = catalog.get(lang, prompt_id)
            if p is not None and not p.is_template:
                self._static[(lang, prompt_id)] = item
        return item

    async def text(self, lang: str, text: str) -> PlayItem:
        try:
            m = await self.prompts.resolve_text(lang, text)
        except self._SynthesisError as e:
            m = e.media
        except self._PromptError as e:
            raise ResolveError(str(e)) from None
        return self._item(m)


def find_prompts_root(flow_file: str | None, explicit: str | Path | None = None) -> Path | None:
    """``explicit``, else ``prompts/`` beside the flow's directory, else ./prompts."""
    if explicit is not None:
        return Path(explicit)
    cands = []
    if flow_file:
        d = Path(flow_file).resolve().parent
        cands += [d.parent / "prompts", d / "prompts"]
    cands.append(Path.cwd() / "prompts")
    for c in cands:
        if c.is_dir():
            return c
    return None


def make_resolver(flow: Any, prompts_root: str | Path | None = None, *, synthesize: bool = False,
                  backend: Any = None) -> tuple[Resolver, str | None]:
    """A resolver for ``flow`` and a note (None, or why prompt ids are shown instead of text)."""
    if not getattr(flow, "prompts", None):
        return IdResolver(), None
    try:
        from engine.prompts.catalog import CatalogError, load_catalog
        from engine.prompts.media import Prompts
    except ImportError as e:  # pragma: no cover - the prompts package is part of the engine
        return IdResolver(), f"prompt catalogs unavailable ({e}); showing prompt ids"
    root = find_prompts_root(getattr(flow, "file", None), prompts_root)
    if root is None:
        return IdResolver(), f"no prompts directory found for catalog '{flow.prompts}'; showing prompt ids"
    try:
        catalog = load_catalog(root, flow.prompts)
    except CatalogError as e:
        return IdResolver(), f"prompt catalog '{flow.prompts}' not usable ({e}); showing prompt ids"
    except OSError as e:
        return IdResolver(), f"prompt catalog '{flow.prompts}' not readable ({e}); showing prompt ids"
    return CatalogResolver(Prompts(catalog, backend, synthesize=synthesize and backend is not None)), None
