"""Spoken formatting of numbers, money, digits, dates and times (engine.prompts.speak)."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.prompts.speak import SpeakError, say_date, say_digits, say_money, say_number, say_time
from engine.templating import TemplateError, render

# ---------------------------------------------------------------- independent parsers

_ZH_D = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_ZH_SMALL = {"十": 10, "百": 100, "千": 1000}


def parse_zh(s: str) -> int:
    """Chinese numeral -> int, written independently of the code under test."""
    for unit, value in (("万亿", 10 ** 12), ("亿", 10 ** 8), ("万", 10 ** 4)):
        if unit in s:
            left, right = s.split(unit, 1)
            return parse_zh(left) * value + parse_zh(right)
    total, digit = 0, 0
    for c in s:
        if c in _ZH_D:
            digit = _ZH_D[c]
        elif c in _ZH_SMALL:
            total += (digit or 1) * _ZH_SMALL[c]
            digit = 0
        else:
            raise ValueError(c)
    return total + digit


_EN = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                  "thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_EN.update({w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1})
_EN_SCALE = {"thousand": 10 ** 3, "million": 10 ** 6, "billion": 10 ** 9, "trillion": 10 ** 12}


def parse_en(s: str) -> int:
    total, cur = 0, 0
    for w in s.replace("-", " ").split():
        if w in _EN:
            cur += _EN[w]
        elif w == "hundred":
            cur *= 100
        elif w in _EN_SCALE:
            total += cur * _EN_SCALE[w]
            cur = 0
        else:
            raise ValueError(w)
    return total + cur


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=10 ** 16 - 1))
def test_chinese_integers_round_trip(n):
    assert parse_zh(say_number(n, "zh-CN")) == n


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=10 ** 15 - 1))
def test_english_integers_round_trip(n):
    assert parse_en(say_number(n, "en")) == n


@pytest.mark.parametrize("n, zh, en", [
    (0, "零", "zero"), (7, "七", "seven"), (10, "十", "ten"), (12, "十二", "twelve"),
    (20, "二十", "twenty"), (21, "二十一", "twenty-one"), (100, "一百", "one hundred"),
    (110, "一百一十", "one hundred ten"), (200, "两百", "two hundred"), (1001, "一千零一", "one thousand one"),
    (2000, "两千", "two thousand"), (10012, "一万零一十二", "ten thousand twelve"),
    (20300, "两万零三百", "twenty thousand three hundred"), (120000, "十二万", "one hundred twenty thousand"),
    (100010000, "一亿零一万", "one hundred million ten thousand"),
    (-5, "负五", "minus five"), ("3.14", "三点一四", "three point one four"),
    (Decimal("12.50"), "十二点五零", "twelve point five zero"), (0.5, "零点五", "zero point five"),
])
def test_numbers(n, zh, en):
    assert say_number(n, "zh-CN") == zh
    assert say_number(n, "en") == en


@pytest.mark.parametrize("cents, zh, en", [
    (1250, "十二元五角", "twelve yuan fifty"), (1200, "十二元", "twelve yuan"),
    (1205, "十二元零五分", "twelve yuan five"), (1255, "十二元五角五分", "twelve yuan fifty-five"),
    (50, "五角", "fifty fen"), (5, "五分", "five fen"), (0, "零元", "zero yuan"),
    (200, "两元", "two yuan"), (22, "两角两分", "twenty-two fen"), (200000, "两千元", "two thousand yuan"),
    (-1250, "负十二元五角", "minus twelve yuan fifty"), ("1250", "十二元五角", "twelve yuan fifty"),
])
def test_money(cents, zh, en):
    assert say_money(cents, "zh-CN") == zh
    assert say_money(cents, "en") == en


@pytest.mark.parametrize("bad", [12.5, Decimal("12.50"), "12.50", True, None, [1]])
def test_money_takes_integer_cents_only(bad):
    with pytest.raises(SpeakError):
        say_money(bad, "zh-CN")


def test_digits():
    assert say_digits("2026 118", "zh-CN") == "二零二六，幺幺八"
    assert say_digits(13800138000, "zh-CN") == "幺三八零零幺三八零零零"
    assert say_digits("2026-118", "en") == "two zero two six, one one eight"
    assert say_digits("AB12#", "zh") == "A B 幺二井号"
    assert say_digits("*9", "en") == "star nine"


@pytest.mark.parametrize("bad", ["", " - ", "12€", -3, 1.5, "1" * 65])
def test_digits_rejects(bad):
    with pytest.raises(SpeakError):
        say_digits(bad, "en")


@pytest.mark.parametrize("d, zh, en", [
    ("2026-11-23", "二零二六年十一月二十三日", "November twenty-third, twenty twenty-six"),
    (dt.date(2000, 1, 1), "二零零零年一月一日", "January first, two thousand"),
    (dt.datetime(2005, 3, 2, 14, 0), "二零零五年三月二日", "March second, two thousand five"),
    ("1999-12-31", "一九九九年十二月三十一日", "December thirty-first, nineteen ninety-nine"),
    ("1905-05-20", "一九零五年五月二十日", "May twentieth, nineteen oh five"),
    ("1900-07-12", "一九零零年七月十二日", "July twelfth, nineteen hundred"),
])
def test_dates(d, zh, en):
    assert say_date(d, "zh-CN") == zh
    assert say_date(d, "en") == en


@pytest.mark.parametrize("t, zh, en", [
    ("00:00", "凌晨零点", "twelve midnight"), ("09:05", "上午九点零五分", "nine oh five a.m."),
    ("12:00", "中午十二点", "twelve noon"), ("12:15", "中午十二点十五分", "twelve fifteen p.m."),
    ("14:30", "下午两点三十分", "two thirty p.m."), (dt.time(18, 45), "晚上六点四十五分", "six forty-five p.m."),
    (dt.datetime(2026, 1, 1, 2, 0), "凌晨两点", "two a.m."),
])
def test_times(t, zh, en):
    assert say_time(t, "zh-CN") == zh
    assert say_time(t, "en") == en


@pytest.mark.parametrize("fn, bad", [(say_date, "2026-02-30"), (say_date, "23/11/2026"), (say_date, 20261123),
                                     (say_time, "24:00"), (say_time, "9h30"), (say_number, "12a"),
                                     (say_number, float("nan")), (say_number, 10 ** 16)])
def test_bad_values(fn, bad):
    with pytest.raises(SpeakError):
        fn(bad, "zh-CN")


def test_language_tags():
    assert say_number(12, "zh") == say_number(12, "cmn-Hans-CN") == "十二"
    assert say_number(12, "en-GB") == "twelve"
    with pytest.raises(SpeakError, match="not supported"):
        say_number(12, "fr")
    with pytest.raises(ValueError):
        say_money(100, "not a tag!")


def test_used_as_jinja_filters():
    src = "{{ balance | money }} {{ day | date }} {{ at | time }} {{ code | digits }} {{ n | number }}"
    vars_ = {"balance": 1250, "day": "2026-11-23", "at": "14:30", "code": "918", "n": 3}
    assert render(src, {**vars_, "lang": "zh-CN"}) == "十二元五角 二零二六年十一月二十三日 下午两点三十分 九幺八 三"
    assert render(src, {**vars_, "lang": "en"}) == ("twelve yuan fifty November twenty-third, twenty twenty-six "
                                                    "two thirty p.m. nine one eight three")


def test_filter_error_is_not_swallowed():
    with pytest.raises((SpeakError, TemplateError)):
        render("{{ x | money }}", {"x": 12.5, "lang": "zh-CN"})
