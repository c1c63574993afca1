"""Rewrite rendered prompt text into what the TTS voice should read.

The transcript keeps the rendered text; only the synthesizer sees this form.  Digits,
dates, times, money and percentages become words through :mod:`engine.prompts.speak`;
in Chinese, runs of capital letters are spaced so they are spelled ("CT" -> "C T", which
``cmn-latn-pinyin`` reads as letter names instead of a pinyin syllable).  Rules:
docs/prompts.md.
"""

from __future__ import annotations

import re

from engine.prompts import speak
from engine.prompts.lang import family

# Full-width digits and Latin letters -> ASCII (０-９, Ａ-Ｚ, ａ-ｚ, ％, ：, ．).
_FULLWIDTH = {c: c - 0xFEE0 for c in (*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B),
                                      *range(0xFF41, 0xFF5B), 0xFF05, 0xFF1A, 0xFF0E)}

_NB = r"(?<![\d.])"   # not preceded by a digit or a decimal point
_NA = r"(?![\d])"     # not followed by a digit

_DATE = re.compile(_NB + r"(\d{4}-\d{1,2}-\d{1,2})" + _NA)
_TIME = re.compile(_NB + r"(\d{1,2}:\d{2})(?::\d{2})?" + _NA)
_MONEY_ZH = re.compile(r"(?:[¥￥]\s*" + _NB + r"(\d+)(?:\.(\d{1,2}))?" + _NA + r"(?:\s*元)?)"
                       r"|(?:" + _NB + r"(\d+)(?:\.(\d{1,2}))?" + _NA + r"\s*元)")
_MONEY_EN = re.compile(r"(?:[¥￥]\s*" + _NB + r"(\d+)(?:\.(\d{1,2}))?" + _NA + r"(?:\s*yuan\b)?)"
                       r"|(?:" + _NB + r"(\d+)(?:\.(\d{1,2}))?" + _NA + r"\s*(?:yuan|RMB|CNY)\b)",
                       re.IGNORECASE)
_PHONE = re.compile(_NB + r"(\d{3,}(?:-\d{3,})+)" + _NA)   # 0755-1234-5678, order numbers
_PERCENT = re.compile(_NB + r"(\d+(?:\.\d+)?)\s*%")
_YEAR_ZH = re.compile(_NB + r"(\d{2,4})(?=\s*年)")
_NUMBER = re.compile(_NB + r"(\d+)(\.\d+)?" + _NA)
_CAPS = re.compile(r"(?<![A-Za-z])([A-Z]{2,})(?![a-z])")
_LATIN_CJK = re.compile(r"(?<=[A-Za-z])(?=[\u3400-\u9fff])|(?<=[\u3400-\u9fff])(?=[A-Za-z])")

#: Whole-number runs at least this long are read digit by digit (phone/order numbers).
DIGITS_FROM = 7

#: Characters espeak-ng 1.51's cmn dictionary misreads, replaced by a homophone for
#: synthesis only: 凌 alone is read "ling chen" (so 凌晨 came out as "ling chen chen").
ZH_TTS_FIXES = {"凌": "零"}


def _digit_words(s: str, lang: str) -> str:
    """Any run of digits (and decimal points) read one by one, however long."""
    zh = family(lang) == "zh"
    words = [("点" if zh else "point") if c == "." else speak.say_digits(c, lang).replace("幺", "一")
             for c in s]
    return ("" if zh else " ").join(words)


def _money(m: re.Match, lang: str) -> str:
    g = m.groups()
    whole, frac = (g[0], g[1]) if g[0] is not None else (g[2], g[3])
    cents = int(whole) * 100 + int((frac or "0").ljust(2, "0"))
    try:
        out = speak.say_money(cents, lang)
    except speak.SpeakError:      # absurdly large: read the digits
        out = _digit_words(whole + ("." + frac if frac else ""), lang) + ("元" if family(lang) == "zh" else " yuan")
    return _spaced(out, family(lang))


def _date(m: re.Match, lang: str) -> str:
    try:
        return speak.say_date(m.group(1), lang)
    except speak.SpeakError:
        return m.group(0)


def _time(m: re.Match, lang: str) -> str:
    try:
        return speak.say_time(m.group(1), lang)
    except speak.SpeakError:
        return m.group(0)


def _spaced(words: str, fam: str | None) -> str:
    return words if fam == "zh" else " " + words + " "


def _phone(s: str, lang: str) -> str:
    try:
        return speak.say_digits(s, lang)
    except speak.SpeakError:
        return _digit_words(s.replace("-", ""), lang)


def _number(m: re.Match, lang: str) -> str:
    whole, frac = m.group(1), m.group(2)
    try:
        if not frac and (len(whole) >= DIGITS_FROM or (len(whole) > 1 and whole.startswith("0"))):
            out = speak.say_digits(whole, lang)
        else:
            out = speak.say_number(whole + (frac or ""), lang)
    except speak.SpeakError:      # too long for words: read the digits
        out = _digit_words(whole + (frac or ""), lang)
    return _spaced(out, family(lang))


def for_tts(text: str, lang: str) -> str:
    """The text the synthesizer reads for ``text`` in ``lang`` (unsupported languages: as is)."""
    fam = family(lang)
    if fam is None:
        return text.strip()
    text = text.translate(_FULLWIDTH)
    text = _DATE.sub(lambda m: _date(m, lang), text)
    text = _TIME.sub(lambda m: _time(m, lang), text)
    text = (_MONEY_ZH if fam == "zh" else _MONEY_EN).sub(lambda m: _money(m, lang), text)
    text = _PHONE.sub(lambda m: _spaced(_phone(m.group(1), lang), fam), text)
    if fam == "zh":
        text = _PERCENT.sub(lambda m: "百分之" + speak.say_number(m.group(1), lang), text)
        text = _YEAR_ZH.sub(lambda m: speak.say_digits(m.group(1), lang).replace("幺", "一"), text)
    else:
        text = _PERCENT.sub(lambda m: " " + speak.say_number(m.group(1), lang) + " percent", text)
    text = _NUMBER.sub(lambda m: _number(m, lang), text)
    if fam == "zh":
        text = _CAPS.sub(lambda m: " ".join(m.group(1)), text)
        text = _LATIN_CJK.sub(" ", text)
        for bad, good in ZH_TTS_FIXES.items():
            text = text.replace(bad, good)
    text = re.sub(r"([ap]\.m\.)\.", r"\1", text)        # "... p.m.." at the end of a sentence
    text = re.sub(r"[ \t\r\n]+", " ", text)
    return re.sub(r" (?=[.,;:!?])", "", text).strip()
