"""Complaint tickets."""

from __future__ import annotations

import re

import pytest

from engine.store import InvalidInput, NotFound


def test_file_with_department_and_staff(demo):
    res = demo.file_complaint(department_code="02", staff_code="3071", caller="13800000002",
                              call_id="c-1")
    assert res.outcome == "filed" and re.fullmatch(r"[1-9]\d{7}", res.ticket_no)
    t = demo.complaint(res.ticket_no)
    assert (t.status, t.department_code, t.staff_code, t.recording_path, t.caller) == (
        "open", "02", "3071", None, "13800000002")


def test_voice_message_only(demo):
    res = demo.file_complaint(recording_path="/var/lib/ivrflow/rec/c-2.wav", card_no="10000001")
    assert res.outcome == "filed"
    assert demo.complaint(res.ticket_no).recording_path.endswith("c-2.wav")


def test_unknown_department_files_nothing(demo):
    assert demo.file_complaint(department_code="77", staff_code="1").outcome == \
        "unknown_department"


def test_needs_a_subject(demo):
    with pytest.raises(InvalidInput):
        demo.file_complaint(department_code="02")
    with pytest.raises(InvalidInput):
        demo.file_complaint(staff_code="12 34")


def test_request_id_replay_and_status(demo):
    a = demo.file_complaint(staff_code="55", request_id="call-9:complaint")
    b = demo.file_complaint(staff_code="55", request_id="call-9:complaint")
    assert b.replayed and a.ticket_no == b.ticket_no
    demo.set_complaint_status(a.ticket_no, "in_progress", note="called back")
    t = demo.complaint(a.ticket_no)
    assert (t.status, t.note) == ("in_progress", "called back")
    with pytest.raises(InvalidInput):
        demo.set_complaint_status(a.ticket_no, "lost")
    with pytest.raises(NotFound):
        demo.set_complaint_status("11111111", "closed")
    assert demo.complaint("11111111") is None
