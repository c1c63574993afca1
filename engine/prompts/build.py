"""Synthesize every static prompt of some catalogs into the cache (``ivrflow prompts build``).

Static = no template variables (``{{ 5 | money }}`` counts as static).  Prompts with a
recording are skipped, as are templates with variables (synthesized at call time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from engine.prompts import lang as langs
from engine.prompts.cache import PromptCache
from engine.prompts.catalog import Catalog
from engine.prompts import speech as sp
from engine.prompts.tts import TTSBackend
from engine.templating import render


@dataclass(frozen=True)
class BuildItem:
    catalog: str
    lang: str
    prompt_id: str
    speech: sp.Speech    # normalized segments given to the synthesizer
    voice: str
    rate: int
    key: str

    @property
    def spoken(self) -> str:
        return " | ".join(s.text for s in self.speech)


@dataclass
class BuildReport:
    synthesized: int = 0
    cached: int = 0
    recordings: int = 0
    dynamic: int = 0
    failed: list[tuple[BuildItem, str]] = field(default_factory=list)
    seconds: float = 0.0
    files: dict[tuple[str, str, str], Path] = field(default_factory=dict)   # (catalog, lang, id) -> wav

    @property
    def total(self) -> int:
        return self.synthesized + self.cached + self.recordings + self.dynamic + len(self.failed)

    def summary(self) -> str:
        s = (f"{self.total} prompts: {self.synthesized} synthesized, {self.cached} cached, "
             f"{self.recordings} recorded, {self.dynamic} dynamic (synthesized at call time)")
        if self.failed:
            s += f", {len(self.failed)} FAILED"
        return s + f" in {self.seconds:.2f} s"


def plan(catalogs: Iterable[Catalog], cache: PromptCache, engine: str,
         languages: Iterable[str] | None = None) -> tuple[list[BuildItem], BuildReport]:
    """What a build would synthesize; the report already counts recordings and dynamic prompts."""
    report = BuildReport()
    items: list[BuildItem] = []
    wanted = {langs.canonical_tag(x) for x in languages} if languages else None
    for cat in catalogs:
        for lang in cat.languages:
            if wanted is not None and lang not in wanted:
                continue
            voice, rate = cat.voice(lang), cat.rate(lang)
            for pid in sorted(cat.ids(lang)):
                p = cat.get(lang, pid)
                if p.recording is not None:
                    report.recordings += 1
                    report.files[(cat.name, lang, pid)] = p.recording
                    continue
                if p.variables - {"lang"}:
                    report.dynamic += 1
                    continue
                try:
                    text = render(p.text, {"lang": lang}) if p.is_template else p.text
                    speech = sp.plan(text, lang, voice, rate)
                    if not speech:
                        raise ValueError("nothing to say (no words in the prompt text)")
                except Exception as e:  # noqa: BLE001 - reported per prompt
                    report.failed.append((BuildItem(cat.name, lang, pid, (), voice, rate, ""), str(e)))
                    continue
                items.append(BuildItem(cat.name, lang, pid, speech, voice, rate, sp.key(speech, engine)))
    return items, report


def build(catalogs: Iterable[Catalog], backend: TTSBackend, cache: PromptCache,
          languages: Iterable[str] | None = None,
          progress: Callable[[BuildItem], None] | None = None,
          items_hook: Callable[[list[BuildItem]], None] | None = None) -> BuildReport:
    """Synthesize what is not cached yet.  ``progress`` is called after each item."""
    t0 = time.perf_counter()
    items, report = plan(catalogs, cache, backend.engine, languages)
    if items_hook:
        items_hook(items)
    done: dict[str, Path] = {}
    for it in items:
        try:
            path = done.get(it.key) or cache.lookup(it.key)
            if path is not None:
                report.cached += 1
            else:
                path = cache.store(it.key, lambda tmp, it=it: sp.synthesize(backend, it.speech, tmp))
                report.synthesized += 1
            done[it.key] = path
            report.files[(it.catalog, it.lang, it.prompt_id)] = path
        except Exception as e:  # noqa: BLE001 - one bad prompt must not stop the build
            report.failed.append((it, str(e) or type(e).__name__))
        if progress:
            progress(it)
    report.seconds = time.perf_counter() - t0
    return report
