"""Content-addressed cache of synthesized prompts.

A file's name is the SHA-256 of (format, engine, voice, rate, text): the same words in
the same voice are synthesized once, whichever catalog, language file or call asked.
Directory: the argument, else ``$IVRFLOW_PROMPT_CACHE``, else ``./var/prompt-cache``.
Files are written to a temporary name and renamed, so readers never see half a file.

Audio of text rendered at call time (balances, results: a new file per distinct value)
goes under ``dynamic/`` so :meth:`PromptCache.prune_dynamic` can expire it without
touching the built static prompts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Callable

#: Bump when the audio produced for the same key changes (format, resampler).
FORMAT = "wav-8000-mono-s16/2"
ENV_VAR = "IVRFLOW_PROMPT_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else Path.cwd() / "var" / "prompt-cache"


class PromptCache:
    def __init__(self, root: Path | str | None = None):
        self.root = (Path(root) if root is not None else default_cache_dir()).absolute()

    @staticmethod
    def key(*, text: str, voice: str, rate: int, engine: str) -> str:
        blob = json.dumps([FORMAT, engine, voice, int(rate), text], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path_for(self, key: str, *, dynamic: bool = False) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return (self.root / "dynamic" if dynamic else self.root) / key[:2] / f"{key}.wav"

    def lookup(self, key: str) -> Path | None:
        """The cached file for ``key`` (static or dynamic), or None."""
        for dynamic in (False, True):
            p = self.path_for(key, dynamic=dynamic)
            try:
                if p.stat().st_size > 44:                    # more than a bare WAV header
                    return p
            except OSError:
                pass
        return None

    def store(self, key: str, produce: Callable[[Path], None], *, dynamic: bool = False) -> Path:
        """Run ``produce(tmp_path)`` and move its file into place atomically."""
        final = self.path_for(key, dynamic=dynamic)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{key}.{uuid.uuid4().hex[:8]}.tmp.wav")
        try:
            produce(tmp)
            if not tmp.exists() or tmp.stat().st_size <= 44:
                raise OSError(f"synthesis wrote no audio for cache entry {key[:12]}")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def entries(self, *, dynamic: bool = False) -> int:
        base = self.root / "dynamic" if dynamic else self.root
        return sum(1 for _ in base.glob("??/*.wav")) if base.is_dir() else 0

    def prune_dynamic(self, older_than: float, *, now: float | None = None) -> int:
        """Delete dynamic entries not written for ``older_than`` seconds; returns how many."""
        base = self.root / "dynamic"
        if not base.is_dir():
            return 0
        cutoff = (time.time() if now is None else now) - older_than
        removed = 0
        for p in base.glob("??/*.wav"):
            try:
                if p.stat().st_mtime < cutoff:
                    p.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
