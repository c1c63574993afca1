"""Language tags: canonical form, speech family, default voice and rate.

A tag is BCP-47-like (``zh-CN``, ``en``, ``en-US``).  Two speech families are supported
by the formatting layer: ``zh`` (Mandarin: primary subtag ``zh`` or ``cmn``) and ``en``.
"""

from __future__ import annotations

import re

_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")

#: espeak-ng voice names (as ``espeak_SetVoiceByName`` accepts them) per speech family.
#: ``cmn``/``zh`` read each Hanzi as pinyin + an English tone number ("huan five");
#: ``cmn-latn-pinyin`` reads Hanzi as Mandarin.  See docs/prompts.md.
DEFAULT_VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}
#: words per minute; espeak-ng's own default (175) is fast for telephone prompts.
DEFAULT_RATES = {"zh": 150, "en": 160}
MIN_RATE, MAX_RATE = 80, 450


class LanguageError(ValueError):
    """A language tag that is malformed or not supported for speech."""


def is_valid_tag(tag: object) -> bool:
    return isinstance(tag, str) and bool(_TAG.match(tag))


def canonical_tag(tag: str) -> str:
    """``zh-cn`` -> ``zh-CN``, ``ZH-hans-cn`` -> ``zh-Hans-CN``, ``EN`` -> ``en``."""
    if not is_valid_tag(tag):
        raise LanguageError(f"'{tag}' is not a language tag (expected e.g. 'zh-CN' or 'en')")
    parts = tag.split("-")
    out = [parts[0].lower()]
    for p in parts[1:]:
        if len(p) == 4 and p.isalpha():
            out.append(p.title())
        elif (len(p) == 2 and p.isalpha()) or (len(p) == 3 and p.isdigit()):
            out.append(p.upper())
        else:
            out.append(p.lower())
    return "-".join(out)


def family(tag: str) -> str | None:
    """Speech family ``'zh'`` or ``'en'`` of a tag, or None when unsupported."""
    if not is_valid_tag(tag):
        return None
    primary = tag.split("-", 1)[0].lower()
    if primary in ("zh", "cmn"):
        return "zh"
    if primary == "en":
        return "en"
    return None


def require_family(tag: object) -> str:
    """Like :func:`family` but raises :class:`LanguageError` for unsupported tags."""
    fam = family(tag) if isinstance(tag, str) else None
    if fam is None:
        raise LanguageError(f"language '{tag}' is not supported for speech formatting "
                            f"(supported: zh, zh-CN, cmn, en, en-US, ...)")
    return fam


def default_voice(tag: str) -> str | None:
    fam = family(tag)
    return DEFAULT_VOICES.get(fam) if fam else None


def default_rate(tag: str) -> int:
    fam = family(tag)
    return DEFAULT_RATES.get(fam, 160) if fam else 160
