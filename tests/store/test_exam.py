"""Exam results by code with the birth date as second factor and lockout."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.store import InvalidInput

from .conftest import TODAY

DOB1 = "19800512"          # demo patient 10000001


def test_found_in_both_languages(demo):
    zh = demo.exam_result("800001", DOB1)
    assert (zh.outcome, zh.exam_name, zh.exam_date) == ("found", "年度体检",
                                                        TODAY - dt.timedelta(days=3))
    assert "血脂" in zh.summary
    en = demo.exam_result("800001", dt.date(1980, 5, 12), lang="en")
    assert en.exam_name == "annual check-up" and "cholesterol" in en.summary


def test_not_ready_only_after_second_factor(demo):
    assert demo.exam_result("800002", DOB1).outcome == "not_ready"
    denied = demo.exam_result("800002", "19800513")
    assert (denied.outcome, denied.reason, denied.summary) == ("denied", "mismatch", None)


def test_not_found(demo):
    assert demo.exam_result("123456", DOB1).outcome == "not_found"
    assert demo.exam_result("12-34", DOB1).outcome == "not_found"     # keyed junk


def test_lockout_after_repeated_wrong_birth_dates(make_store, clock):
    from engine.store.seed import seed_demo
    from .conftest import TODAY as T

    s = make_store(max_exam_failures=3, exam_lock_seconds=600)
    seed_demo(s, T)
    assert s.exam_result("800003", "19921104").reason == "mismatch"
    assert s.exam_result("800003", "not a date").reason == "mismatch"
    assert s.exam_result("800003", "19921105").reason == "locked"
    right = "19921103"
    assert (s.exam_result("800003", right).outcome, s.exam_result("800003", right).reason) == (
        "denied", "locked")
    clock.advance(seconds=600)
    assert s.exam_result("800003", right).outcome == "found"
    assert s.exam_result("800003", "19921104").reason == "mismatch"    # counting afresh


def test_success_resets_failure_count(demo):
    for _ in range(4):
        demo.exam_result("800001", "19990101")
    assert demo.exam_result("800001", DOB1).outcome == "found"
    for _ in range(4):
        assert demo.exam_result("800001", "19990101").reason == "mismatch"


def test_set_ready_later(demo):
    demo.set_exam_ready("800002", summary_zh="未见异常。", summary_en="No abnormality.")
    r = demo.exam_result("800002", DOB1, lang="en")
    assert (r.outcome, r.summary) == ("found", "No abnormality.")


def test_bad_arguments(demo):
    for bad in (None, 1.5, True):
        with pytest.raises(InvalidInput):
            demo.exam_result(bad, DOB1)
    with pytest.raises(InvalidInput):
        demo.exam_result("800001", 19800512)
    with pytest.raises(InvalidInput):
        demo.exam_result("800001", DOB1, lang="Chinese")
