"""Numbers, money, digit strings, dates and times as words, per language.

Used as the jinja filters ``number``, ``money``, ``digits``, ``date``, ``time`` (see
engine/templating.py) and by :mod:`engine.prompts.normalize` before synthesis, so the
TTS voice never has to guess how to read ``12.50`` or ``2026-11-23``.

``lang`` is a language tag; ``zh*``/``cmn*`` speak Mandarin, ``en*`` English.  Any other
tag raises :class:`SpeakError` (a ``ValueError``): speaking English in a French flow would
be worse than a clear error.  Bad values raise :class:`SpeakError` too.  Rules and
examples: docs/prompts.md.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal

from engine.prompts.lang import LanguageError, require_family


class SpeakError(ValueError):
    """A value or language that cannot be spoken."""


def _family(lang: object) -> str:
    try:
        return require_family(lang)
    except LanguageError as e:
        raise SpeakError(str(e)) from None


# --------------------------------------------------------------------------- values

_NUM_STR = re.compile(r"^\s*([+-]?)(\d+)(?:\.(\d+))?\s*$")


def _split_number(value: object) -> tuple[bool, int, str]:
    """-> (negative, integer part, fractional digits as written)."""
    if isinstance(value, bool):
        raise SpeakError(f"cannot speak a boolean ({value}) as a number")
    if isinstance(value, int):
        return value < 0, abs(value), ""
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SpeakError(f"cannot speak {value} as a number")
        value = repr(value)
        if "e" in value or "E" in value:
            value = format(Decimal(value), "f")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise SpeakError(f"cannot speak {value} as a number")
        value = format(value, "f")
    if isinstance(value, str):
        m = _NUM_STR.match(value)
        if not m:
            raise SpeakError(f"'{value}' is not a number")
        sign, whole, frac = m.groups()
        neg = sign == "-" and (int(whole) != 0 or bool(frac and frac.strip("0")))
        return neg, int(whole), frac or ""
    raise SpeakError(f"cannot speak a {type(value).__name__} as a number")


# --------------------------------------------------------------------------- Chinese

_ZH_DIGITS = "零一二三四五六七八九"
_ZH_PHONE_DIGITS = "零幺二三四五六七八九"  # 1 is 幺 when reading phone-style digit strings
_ZH_GROUPS = ["", "万", "亿", "万亿"]
_ZH_MAX = 10 ** 16


def _zh_section(n: int) -> str:
    """0 < n < 10000, without the leading-一十 or 两 adjustments."""
    out, zero = [], False
    for unit_value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // unit_value % 10
        if d == 0:
            zero = bool(out)
        else:
            if zero:
                out.append("零")
                zero = False
            out.append(_ZH_DIGITS[d] + unit)
    return "".join(out)


def _zh_integer(n: int) -> str:
    if n == 0:
        return "零"
    if n >= _ZH_MAX:
        raise SpeakError(f"{n} is too large to speak (limit {_ZH_MAX - 1})")
    groups = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out, pending_zero = [], False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or g < 1000):
            out.append("零")
        pending_zero = False
        out.append(_zh_section(g) + _ZH_GROUPS[i])
    s = "".join(out)
    if s.startswith("一十"):
        s = s[1:]                      # 12 -> 十二, 120000 -> 十二万
    if len(s) > 1 and s[0] == "二" and s[1] in "百千万亿":
        s = "两" + s[1:]               # 2000 -> 两千, 200 -> 两百
    return s


def _zh_number(value: object) -> str:
    neg, whole, frac = _split_number(value)
    s = _zh_integer(whole)
    if frac:
        s += "点" + "".join(_ZH_DIGITS[int(c)] for c in frac)
    return ("负" if neg else "") + s


def _zh_money(cents: int) -> str:
    neg, cents = cents < 0, abs(cents)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out = []
    if yuan:
        out.append(("两" if yuan == 2 else _zh_integer(yuan)) + "元")
    if jiao:
        out.append(("两" if jiao == 2 else _ZH_DIGITS[jiao]) + "角")
    if fen:
        if yuan and not jiao:
            out.append("零")
        out.append(("两" if fen == 2 else _ZH_DIGITS[fen]) + "分")
    if not out:
        return "零元"
    return ("负" if neg else "") + "".join(out)


def _zh_date(d: _dt.date) -> str:
    year = "".join(_ZH_DIGITS[int(c)] for c in str(d.year))
    return f"{year}年{_zh_integer(d.month)}月{_zh_integer(d.day)}日"


def _zh_time(t: _dt.time) -> str:
    h, m = t.hour, t.minute
    if h < 6:
        period = "凌晨"
    elif h < 12:
        period = "上午"
    elif h < 13:
        period = "中午"
    elif h < 18:
        period = "下午"
    else:
        period = "晚上"
    h12 = h if h <= 12 else h - 12
    hour = "两" if h12 == 2 else _zh_integer(h12)
    if m == 0:
        minutes = ""
    elif m < 10:
        minutes = "零" + _ZH_DIGITS[m] + "分"
    else:
        minutes = _zh_integer(m) + "分"
    return f"{period}{hour}点{minutes}"


# --------------------------------------------------------------------------- English

_EN_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
            "seventeen", "eighteen", "nineteen"]
_EN_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_EN_SCALES = [(10 ** 12, "trillion"), (10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
_EN_MAX = 10 ** 15
_EN_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
           "nine": "ninth", "twelve": "twelfth"}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]


def _en_below_1000(n: int) -> str:
    parts = []
    if n >= 100:
        parts.append(_EN_ONES[n // 100] + " hundred")
        n %= 100
    if n >= 20:
        parts.append(_EN_TENS[n // 10] + ("-" + _EN_ONES[n % 10] if n % 10 else ""))
    elif n or not parts:
        parts.append(_EN_ONES[n])
    return " ".join(parts)


def _en_integer(n: int) -> str:
    if n >= _EN_MAX:
        raise SpeakError(f"{n} is too large to speak (limit {_EN_MAX - 1})")
    if n < 1000:
        return _en_below_1000(n)
    parts = []
    for scale, word in _EN_SCALES:
        if n >= scale:
            parts.append(_en_below_1000(n // scale) + " " + word)
            n %= scale
    if n:
        parts.append(_en_below_1000(n))
    return " ".join(parts)


def _en_number(value: object) -> str:
    neg, whole, frac = _split_number(value)
    s = _en_integer(whole)
    if frac:
        s += " point " + " ".join(_EN_ONES[int(c)] for c in frac)
    return ("minus " if neg else "") + s


def _en_money(cents: int) -> str:
    neg, cents = cents < 0, abs(cents)
    yuan, fen = divmod(cents, 100)
    if yuan and fen:
        s = f"{_en_integer(yuan)} yuan {_en_integer(fen)}"
    elif yuan:
        s = f"{_en_integer(yuan)} yuan"
    elif fen:
        s = f"{_en_integer(fen)} fen"
    else:
        return "zero yuan"
    return ("minus " if neg else "") + s


def _en_ordinal(n: int) -> str:
    words = _en_integer(n)
    head, sep, last = words.rpartition("-") if "-" in words else words.rpartition(" ")
    if last in _EN_ORD:
        last = _EN_ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def _en_year(y: int) -> str:
    if 2000 <= y <= 2009:
        return "two thousand" + (f" {_EN_ONES[y - 2000]}" if y > 2000 else "")
    if 1100 <= y <= 2099:
        hi, lo = divmod(y, 100)
        if lo == 0:
            return f"{_en_integer(hi)} hundred"
        if lo < 10:
            return f"{_en_integer(hi)} oh {_EN_ONES[lo]}"
        return f"{_en_integer(hi)} {_en_integer(lo)}"
    return _en_integer(y)


def _en_date(d: _dt.date) -> str:
    return f"{_MONTHS[d.month - 1]} {_en_ordinal(d.day)}, {_en_year(d.year)}"


def _en_time(t: _dt.time) -> str:
    h, m = t.hour, t.minute
    if m == 0 and h == 12:
        return "twelve noon"
    if m == 0 and h == 0:
        return "twelve midnight"
    h12 = h % 12 or 12
    suffix = "a.m." if h < 12 else "p.m."
    if m == 0:
        return f"{_en_integer(h12)} {suffix}"
    minutes = f"oh {_EN_ONES[m]}" if m < 10 else _en_integer(m)
    return f"{_en_integer(h12)} {minutes} {suffix}"


# --------------------------------------------------------------------------- public API

def say_number(value: object, lang: str) -> str:
    """A number (int, float, Decimal or numeric string) in words: 12 -> 十二 / twelve.

    Fractional digits are read one by one as written: ``'3.50'`` -> 三点五零.
    """
    return _zh_number(value) if _family(lang) == "zh" else _en_number(value)


def _cents(value: object) -> int:
    if isinstance(value, bool):
        raise SpeakError("money must be integer cents, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    if isinstance(value, (float, Decimal, str)):
        raise SpeakError(f"money must be integer cents (got {value!r}); e.g. 12.50 yuan is 1250")
    raise SpeakError(f"money must be integer cents, not a {type(value).__name__}")


def say_money(cents: int, lang: str) -> str:
    """An amount of yuan given in integer cents: 1250 -> 十二元五角 / twelve yuan fifty."""
    c = _cents(cents)
    if abs(c) // 100 >= (_ZH_MAX if _family(lang) == "zh" else _EN_MAX):
        raise SpeakError(f"{c} cents is too large to speak")
    return _zh_money(c) if _family(lang) == "zh" else _en_money(c)


_DIGIT_SYMBOLS = {"zh": {"*": "星号", "#": "井号", "+": "加"},
                  "en": {"*": "star", "#": "pound", "+": "plus"}}
_DIGIT_SEPARATORS = " -./_"
MAX_DIGITS = 64


def say_digits(value: object, lang: str) -> str:
    """Read a code digit by digit, e.g. a confirmation or phone number.

    Chinese reads 1 as 幺 (phone style, never confused with 七): ``'2026 118'`` ->
    ``二零二六，幺幺八``; English: ``two zero two six, one one eight``.  Letters are spelled,
    ``* # +`` are named, spaces/hyphens/dots/slashes separate groups (a short pause).
    """
    fam = _family(lang)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpeakError(f"cannot read a {type(value).__name__} digit by digit")
    if isinstance(value, int):
        if value < 0:
            raise SpeakError(f"cannot read a negative number ({value}) digit by digit")
        value = str(value)
    if len(value) > MAX_DIGITS:
        raise SpeakError(f"digit string is {len(value)} characters long; the limit is {MAX_DIGITS}")
    groups: list[list[str]] = [[]]
    for ch in value.strip():
        if ch in _DIGIT_SEPARATORS:
            if groups[-1]:
                groups.append([])
        elif ch.isascii() and ch.isdigit():
            groups[-1].append(_ZH_PHONE_DIGITS[int(ch)] if fam == "zh" else _EN_ONES[int(ch)])
        elif ch.isascii() and ch.isalpha():
            groups[-1].append(f" {ch.upper()} " if fam == "zh" else ch.upper())
        elif ch in _DIGIT_SYMBOLS[fam]:
            groups[-1].append(_DIGIT_SYMBOLS[fam][ch])
        else:
            raise SpeakError(f"cannot read {ch!r} in {value!r} digit by digit")
    groups = [g for g in groups if g]
    if not groups:
        raise SpeakError("nothing to read: empty digit string")
    if fam == "zh":
        return "，".join(re.sub(r" +", " ", "".join(g)).strip() for g in groups)
    return ", ".join(" ".join(g) for g in groups)


def _as_date(value: object) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?\s*", value)
        if m:
            try:
                return _dt.date(*map(int, m.groups()))
            except ValueError as e:
                raise SpeakError(f"'{value.strip()}' is not a valid date: {e}") from None
        raise SpeakError(f"'{value}' is not a date (expected YYYY-MM-DD)")
    raise SpeakError(f"cannot speak a {type(value).__name__} as a date")


def _as_time(value: object) -> _dt.time:
    if isinstance(value, _dt.datetime):
        return value.time()
    if isinstance(value, _dt.time):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*", value)
        if m:
            h, mi = int(m.group(1)), int(m.group(2))
            if h < 24 and mi < 60 and int(m.group(3) or 0) < 60:
                return _dt.time(h, mi)
            raise SpeakError(f"'{value.strip()}' is not a valid time of day")
        raise SpeakError(f"'{value}' is not a time (expected HH:MM)")
    raise SpeakError(f"cannot speak a {type(value).__name__} as a time")


def say_date(value: object, lang: str) -> str:
    """A date (``date``, ``datetime`` or ``'YYYY-MM-DD'``): 二零二六年十一月二十三日 /
    November twenty-third, twenty twenty-six.  A datetime's time is not spoken."""
    d = _as_date(value)
    return _zh_date(d) if _family(lang) == "zh" else _en_date(d)


def say_time(value: object, lang: str) -> str:
    """A time of day (``time``, ``datetime`` or ``'HH:MM'``): 下午两点三十分 / two thirty p.m.
    Seconds are not spoken."""
    t = _as_time(value)
    return _zh_time(t) if _family(lang) == "zh" else _en_time(t)
