"""Runtime prompt resolution: prompt id + variables -> a WAV file to play.

Order: a recording (static prompts only), then the cache, then synthesis on a worker
thread with a timeout.  The event loop never waits on the TTS engine: a slow or broken
engine makes *that* prompt fail with :class:`SynthesisError` after ``timeout`` seconds
(its ``.media`` carries the text, so the caller can fall back, e.g. to FreeSWITCH
``speak``), while other calls go on.  With ``synthesize=False`` (fast simulation)
nothing is synthesized and ``Media.path`` is None unless a recording exists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from engine.prompts import lang as langs
from engine.prompts.cache import PromptCache
from engine.prompts.catalog import Catalog
from engine.prompts import speech as sp
from engine.prompts.speak import SpeakError
from engine.prompts.tts import TTSBackend
from engine.templating import TemplateError, TemplateLimitError, is_template, render

Source = Literal["recording", "cache", "synth", "none"]


@dataclass(frozen=True)
class Media:
    prompt_id: str | None      # None for free text (flow ``say:`` states)
    lang: str
    text: str                  # rendered text, as shown in transcripts
    path: Path | None          # WAV to play; None when not synthesized
    source: Source


class PromptError(Exception):
    """A prompt that cannot be resolved (unknown id or language, bad variables)."""


class SynthesisError(PromptError):
    """Synthesis failed or timed out.  ``.media`` (path None) lets the caller fall back."""

    def __init__(self, message: str, media: Media, reason: str):
        super().__init__(message)
        self.media, self.reason = media, reason   # reason: 'timeout' | 'busy' | 'failed'


class Prompts:
    """Resolves prompts for calls.  One per process; share it across calls."""

    def __init__(self, catalog: Catalog | None, backend: TTSBackend | None = None,
                 cache: PromptCache | None = None, *, synthesize: bool = True,
                 timeout: float = 3.0, workers: int = 2, max_pending: int = 32):
        self.catalog, self.backend = catalog, backend
        self.cache = cache if cache is not None else (PromptCache() if backend is not None else None)
        self.synthesize = synthesize and backend is not None
        self.timeout, self.max_pending = timeout, max_pending
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._workers = workers
        self._inflight: dict[str, concurrent.futures.Future] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public API

    async def resolve(self, lang: str, prompt_id: str, variables: Mapping[str, Any] | None = None) -> Media:
        if self.catalog is None:
            raise PromptError("no prompt catalog loaded")
        if not self.catalog.has_language(lang):
            raise PromptError(f"catalog '{self.catalog.name}' has no language '{lang}'")
        p = self.catalog.get(lang, prompt_id)
        if p is None:
            raise PromptError(f"prompt '{prompt_id}' is not in catalog '{self.catalog.name}' ({lang})")
        text = self._render(p.text, lang, variables, prompt_id) if p.is_template else p.text
        if p.recording is not None:
            return Media(prompt_id, lang, text, p.recording, "recording")
        return await self._audio(prompt_id, lang, text, dynamic=bool(p.variables - {"lang"}))

    async def resolve_text(self, lang: str, text: str, variables: Mapping[str, Any] | None = None) -> Media:
        """Free text (a flow's ``say:``), rendered first when it is a template."""
        if not isinstance(text, str) or not text.strip():
            raise PromptError("nothing to say: empty text")
        dynamic = is_template(text)
        if dynamic:
            text = self._render(text, lang, variables, None)
        return await self._audio(None, lang, text, dynamic=dynamic)

    def close(self, wait: bool = False) -> None:
        """Stop the worker threads; ``wait=True`` lets running and queued syntheses finish."""
        if self._executor is not None:
            self._executor.shutdown(wait=wait, cancel_futures=not wait)
            self._executor = None

    # ------------------------------------------------------------------ internals

    def _render(self, src: str, lang: str, variables: Mapping[str, Any] | None, pid: str | None) -> str:
        what = f"prompt '{pid}'" if pid else "text"
        try:
            return render(src, {**(variables or {}), "lang": lang})
        except (TemplateError, TemplateLimitError, SpeakError) as e:
            raise PromptError(f"{what} ({lang}): {e}") from None
        except Exception as e:  # noqa: BLE001 - any jinja runtime error is the template's fault
            raise PromptError(f"{what} ({lang}): {type(e).__name__}: {e}") from None

    def _voice_rate(self, lang: str) -> tuple[str | None, int]:
        if self.catalog is not None and self.catalog.has_language(lang):
            return self.catalog.voice(lang), self.catalog.rate(lang)
        return langs.default_voice(lang), langs.default_rate(lang)

    async def _audio(self, pid: str | None, lang: str, text: str, *, dynamic: bool) -> Media:
        none = Media(pid, lang, text, None, "none")
        if self.backend is None or self.cache is None:
            return none
        voice, rate = self._voice_rate(lang)
        if voice is None:
            return none
        try:
            speech = sp.plan(text, lang, voice, rate)
        except SpeakError as e:
            raise PromptError(f"{pid or 'text'} ({lang}): {e}") from None
        if not speech:
            return none
        key = sp.key(speech, self.backend.engine)
        hit = self.cache.lookup(key)
        if hit is not None:
            return Media(pid, lang, text, hit, "cache")
        if not self.synthesize:
            return none
        fut = self._submit(key, speech, none, dynamic)
        try:
            path = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), self.timeout)
        except asyncio.TimeoutError:
            raise SynthesisError(f"synthesis of {pid or 'text'} ({lang}) took longer than {self.timeout} s",
                                 none, "timeout") from None
        except Exception as e:  # noqa: BLE001 - backend errors are reported, never raised raw
            raise SynthesisError(f"synthesis of {pid or 'text'} ({lang}) failed: {e}", none, "failed") from None
        return Media(pid, lang, text, path, "synth")

    def _submit(self, key: str, speech: sp.Speech, none: Media, dynamic: bool):
        with self._lock:
            fut = self._inflight.get(key)
            if fut is not None:
                return fut                               # same text already being synthesized
            if len(self._inflight) >= self.max_pending:
                raise SynthesisError(f"{len(self._inflight)} syntheses already pending", none, "busy")
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(self._workers, "ivrflow-tts")
            backend, cache = self.backend, self.cache
            fut = self._executor.submit(cache.store, key, lambda tmp: sp.synthesize(backend, speech, tmp),
                                        dynamic=dynamic)
            self._inflight[key] = fut
        fut.add_done_callback(lambda _f, k=key: self._done(k))
        return fut

    def _done(self, key: str) -> None:
        with self._lock:
            self._inflight.pop(key, None)
