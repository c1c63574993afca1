"""Time `prompts build` cold and warm, and on-demand synthesis of dynamic prompts.

Usage: python bench/prompts_build.py [CATALOG_DIR]   (default: prompts/)
Each backend builds into a fresh temporary cache, so "cold" really synthesizes everything.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.prompts.audio import wav_info  # noqa: E402
from engine.prompts.build import build  # noqa: E402
from engine.prompts.cache import PromptCache  # noqa: E402
from engine.prompts.catalog import CatalogError, list_catalogs, load_catalog  # noqa: E402
from engine.prompts.media import Prompts  # noqa: E402
from engine.prompts.tts import BACKENDS  # noqa: E402

DYNAMIC = 24   # distinct dynamic texts per backend


def bench_build(catalogs, backend_name: str) -> None:
    backend = BACKENDS[backend_name]()
    with tempfile.TemporaryDirectory() as tmp:
        cache = PromptCache(tmp)
        cold = build(catalogs, backend, cache)
        warm = build(catalogs, backend, cache)
        audio = sum(wav_info(p).duration for p in {*cold.files.values()})
    n = cold.synthesized
    print(f"  {backend_name:<11} cold: {cold.seconds:6.2f} s for {n} synthesized "
          f"({1000 * cold.seconds / max(n, 1):5.1f} ms/prompt, {audio:6.1f} s of audio, "
          f"{audio / max(cold.seconds, 1e-9):5.1f}x real time); "
          f"warm: {1000 * warm.seconds:6.1f} ms ({warm.cached} cached, {warm.synthesized} synthesized)"
          + (f"; {len(cold.failed)} FAILED" if cold.failed else ""))


def bench_dynamic(backend_name: str, lang: str, workers: int) -> None:
    backend = BACKENDS[backend_name]()
    template = "您的余额是{{ b | money }}。" if lang.startswith("zh") else "Your balance is {{ b | money }}."
    with tempfile.TemporaryDirectory() as tmp:
        p = Prompts(None, backend, PromptCache(tmp), timeout=60, workers=workers, max_pending=DYNAMIC)

        async def go():
            t0 = time.perf_counter()
            await asyncio.gather(*(p.resolve_text(lang, template, {"b": 1000 + 37 * i}) for i in range(DYNAMIC)))
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            await asyncio.gather(*(p.resolve_text(lang, template, {"b": 1000 + 37 * i}) for i in range(DYNAMIC)))
            return cold, time.perf_counter() - t0

        cold, warm = asyncio.run(go())
        p.close()
    print(f"  {backend_name:<11} {lang:<5} {workers} worker(s): {DYNAMIC} distinct texts concurrently in "
          f"{cold:5.2f} s ({1000 * cold / DYNAMIC:5.1f} ms each); again from cache {1000 * warm:5.1f} ms")


def bench_pyttsx3_reliability(n: int = 300) -> None:
    """Alternating voices back to back: the pattern that made pyttsx3 save empty files."""
    backend = BACKENDS["pyttsx3"]()
    empty = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            text, lang, voice = ((f"您的余额是{i}元。", "zh-CN", "cmn-latn-pinyin") if i % 2
                                 else (f"Your balance is {i} yuan.", "en", "en-us"))
            out = Path(tmp) / "x.wav"
            try:
                backend.synthesize(text, lang, voice, 150, out)
                empty += wav_info(out).frames == 0
            except Exception:  # noqa: BLE001 - counted, not raised
                empty += 1
    print(f"  pyttsx3 reliability: {n} alternating zh/en syntheses in {time.perf_counter() - t0:5.2f} s, "
          f"{empty} empty or failed")


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path("prompts")
    names = list_catalogs(root)
    if not names:
        print(f"no prompt catalogs under {root}/ (try: python bench/prompts_build.py tests/fixtures/prompts)")
        return 1
    catalogs = []
    for name in names:
        try:
            catalogs.append(load_catalog(root, name))
        except CatalogError as e:
            print(f"skipping catalog {name}: {e}")
    total = sum(len(c.ids(lang)) for c in catalogs for lang in c.languages)
    print(f"catalogs under {root}/: {', '.join(c.name for c in catalogs)} "
          f"({total} prompts in {sum(len(c.languages) for c in catalogs)} language files)")
    print("build (static prompts):")
    for name in BACKENDS:
        bench_build(catalogs, name)
    print("dynamic prompts at call time (Prompts.resolve_text, synthesis off the event loop):")
    for name, workers in (("pyttsx3", 1), ("espeak-cli", 1), ("espeak-cli", 4)):
        for lang in ("zh-CN", "en"):
            bench_dynamic(name, lang, workers)
    bench_pyttsx3_reliability()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
