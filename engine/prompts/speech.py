"""From rendered prompt text to what is synthesized: script segments, normalization, audio.

A Chinese prompt may hold English words ("普通话请按1，For English, press 2.") and an
English prompt Chinese names ("Your 心内科 appointment").  No single espeak-ng voice reads
both: ``cmn-latn-pinyin`` reads English words as pinyin and ``en-us`` says "Chinese letter"
for each Hanzi.  So text is cut into runs by script, each run is normalized in its own
language (:func:`engine.prompts.normalize.for_tts`) and spoken by that language's voice,
and the pieces are joined into one WAV.  Which runs switch: docs/prompts.md.
"""

from __future__ import annotations

import re
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

from engine.prompts import lang as langs
from engine.prompts.cache import PromptCache
from engine.prompts.normalize import for_tts
from engine.prompts.tts import TTSBackend, TTSError


@dataclass(frozen=True)
class Segment:
    text: str        # normalized, ready for the synthesizer
    lang: str
    voice: str
    rate: int


Speech = tuple[Segment, ...]

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# English inside Chinese: Latin words (with digits/punctuation between them); the run
# counts as English only if one word has a lower-case letter and 2+ letters, so "CT",
# "VIP" or "A区" stay Chinese (spelled as letter names, as Chinese speakers say them).
_EN_RUN = re.compile(r"[A-Za-z][A-Za-z0-9'’\-]*(?:[ \t,.;:!?%&]+[A-Za-z0-9][A-Za-z0-9'’\-]*)*[.!?]?")
_EN_WORD = re.compile(r"[A-Za-z]*[a-z][A-Za-z]*")
# Chinese inside English: runs of Hanzi with the Chinese punctuation and the digits that
# follow them directly ("普通话服务请按1。"); spaces only between Hanzi.
_ZH_RUN = re.compile(rf"[{_HAN}](?:[{_HAN}\u3000-\u303f\uff00-\uffef]|\d+(?:[.:]\d+)*|\s+(?=[{_HAN}]))*")
_SPEAKABLE = re.compile(r"\w")


def _runs(text: str, fam: str) -> list[tuple[str, str]]:
    """[(family, raw text)] in order."""
    out: list[tuple[str, str]] = []
    pos = 0
    if fam == "zh":
        matches = [m for m in _EN_RUN.finditer(text)
                   if any(len(w) >= 2 for w in _EN_WORD.findall(m.group(0)))]
        other = "en"
    else:
        matches = list(_ZH_RUN.finditer(text))
        other = "zh"
    for m in matches:
        if m.start() > pos:
            out.append((fam, text[pos:m.start()]))
        out.append((other, m.group(0)))
        pos = m.end()
    if pos < len(text):
        out.append((fam, text[pos:]))
    return out


def plan(text: str, lang: str, voice: str, rate: int, *, mixed: bool = True) -> Speech:
    """Segments to synthesize for ``text`` in ``lang`` with the catalog's ``voice`` and ``rate``.

    Runs in the other script use :data:`engine.prompts.lang.DEFAULT_VOICES` at the same rate.
    """
    fam = langs.family(lang)
    if fam is None or not mixed:
        spoken = for_tts(text, lang)
        return (Segment(spoken, lang, voice, rate),) if _SPEAKABLE.search(spoken) else ()
    segments: list[Segment] = []
    for seg_fam, raw in _runs(text, fam):
        seg_lang = lang if seg_fam == fam else seg_fam
        spoken = for_tts(raw, seg_lang)
        if not _SPEAKABLE.search(spoken):
            continue
        seg_voice = voice if seg_fam == fam else langs.DEFAULT_VOICES[seg_fam]
        if segments and segments[-1].voice == seg_voice and segments[-1].lang == seg_lang:
            last = segments.pop()
            spoken = f"{last.text} {spoken}"
        segments.append(Segment(spoken, seg_lang, seg_voice, rate))
    return tuple(segments)


def key(speech: Speech, engine: str) -> str:
    """Cache key; a one-segment speech has the same key as ``PromptCache.key`` of its text."""
    if len(speech) == 1:
        s = speech[0]
        return PromptCache.key(text=s.text, voice=s.voice, rate=s.rate, engine=engine)
    joined = "\x1e".join(f"{s.voice}\x1f{s.rate}\x1f{s.text}" for s in speech)
    return PromptCache.key(text=joined, voice="+mixed", rate=0, engine=engine)


def synthesize(backend: TTSBackend, speech: Speech, out_path: Path) -> None:
    """Write ``speech`` to ``out_path`` (8 kHz mono s16), one backend call per segment."""
    if not speech:
        raise TTSError("nothing to synthesize: empty text")
    if len(speech) == 1:
        s = speech[0]
        backend.synthesize(s.text, s.lang, s.voice, s.rate, out_path)
        return
    with tempfile.TemporaryDirectory(prefix="ivrflow-seg-", dir=Path(out_path).parent) as tmp:
        parts = []
        for i, s in enumerate(speech):
            part = Path(tmp) / f"{i}.wav"
            backend.synthesize(s.text, s.lang, s.voice, s.rate, part)
            parts.append(part)
        concat(parts, out_path)


def concat(parts: list[Path], out_path: Path) -> None:
    """Join telephony WAVs (all 8 kHz mono 16-bit) into one."""
    with wave.open(str(out_path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        for p in parts:
            with wave.open(str(p), "rb") as w:
                if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
                    raise TTSError(f"backend wrote {p.name} in the wrong format "
                                   f"({w.getframerate()} Hz, {w.getnchannels()} ch, {8 * w.getsampwidth()}-bit)")
                out.writeframes(w.readframes(w.getnframes()))
