"""results.lookup, info.read and complaint.file on both databases."""

import pytest
from act_helpers import act, rows

from engine.actions.builtin._common import ActionFailure


# -- exam results ------------------------------------------------------------------------------------------

def test_found_with_the_birth_date(ctx):
    r = act("results.lookup", ctx, exam_code="800001", dob="19800512")
    assert r.outcome == "found"
    assert r.variables == {"exam_name": "年度体检", "exam_date": "2025-02-28",
                           "result_summary": "各项指标正常，血脂略偏高，建议低脂饮食并于六个月后复查。"}


def test_found_in_english(ctx):
    ctx.language = "en"
    r = act("results.lookup", ctx, exam_code="800003", dob="19921103")
    assert r.variables["exam_name"] == "full blood count"
    assert r.variables["result_summary"].startswith("Your full blood count")


def test_not_ready(ctx):
    r = act("results.lookup", ctx, exam_code="800002", dob="19800512")
    assert r.outcome == "not_ready" and r.variables == {"exam_name": "腹部彩超", "exam_date": "2025-03-02"}


def test_not_found(ctx):
    assert act("results.lookup", ctx, exam_code="123456", dob="19800512").outcome == "not_found"


@pytest.mark.parametrize("dob", ["19800513", "19800231"])      # wrong, and not a date at all
def test_denied_on_a_wrong_birth_date(ctx, dob):
    r = act("results.lookup", ctx, exam_code="800001", dob=dob)
    assert r.outcome == "denied" and r.variables == {"denied_reason": "mismatch"}


def test_denied_locked_after_five_wrong_dates(ctx):
    for _ in range(4):
        assert act("results.lookup", ctx, exam_code="800001", dob="20000101").variables["denied_reason"] == "mismatch"
    assert act("results.lookup", ctx, exam_code="800001", dob="20000101").variables["denied_reason"] == "locked"
    # the right date does not open a locked code
    r = act("results.lookup", ctx, exam_code="800001", dob="19800512")
    assert r.outcome == "denied" and r.variables["denied_reason"] == "locked"


def test_card_and_pin_as_the_second_factor(ctx):
    assert act("results.lookup", ctx, exam_code="800001", card="10000001", pin="123456").outcome == "found"
    assert act("results.lookup", ctx, exam_code="800002", card="10000001", pin="123456").outcome == "not_ready"
    # someone else's exam with one's own valid card and PIN
    r = act("results.lookup", ctx, exam_code="800003", card="10000001", pin="123456")
    assert r.outcome == "denied" and r.variables["denied_reason"] == "mismatch"
    r = act("results.lookup", ctx, exam_code="800001", card="10000001", pin="000000")
    assert r.outcome == "denied"
    assert act("results.lookup", ctx, exam_code="777777", card="10000001", pin="123456").outcome == "not_found"


def test_the_second_factor_is_required_and_single(ctx):
    import jsonschema

    for params in ({"exam_code": "800001"}, {"exam_code": "800001", "dob": "19800512", "pin": "123456"},
                   {"exam_code": "800001", "pin": "123456"}):
        with pytest.raises(jsonschema.ValidationError):
            act("results.lookup", ctx, **params)


def test_a_ready_result_without_summary_is_an_error(ctx, store):
    store.add_exam_result("800009", "10000001", exam_name_zh="心电图", exam_name_en="ECG",
                          exam_date="2025-03-01", ready=True, summary_zh="", summary_en="Normal.")
    with pytest.raises(ActionFailure, match="no zh summary"):
        act("results.lookup", ctx, exam_code="800009", dob="19800512")
    ctx.language = "en"
    assert act("results.lookup", ctx, exam_code="800009", dob="19800512").variables["result_summary"] == "Normal."


# -- information --------------------------------------------------------------------------------------------

def test_info_in_the_call_language_via_its_base_language(ctx):
    r = act("info.read", ctx, topic="new_drugs")                  # zh-CN call, texts stored as zh
    assert r.outcome == "found" and r.variables["info_text"].startswith("本月重点推荐新药")
    ctx.language = "en"
    assert act("info.read", ctx, topic="new_drugs").variables["info_text"].startswith("New this month")


def test_info_falls_back_to_the_flows_first_language(ctx, store):
    store.set_info("parking", "zh", "停车场在门诊楼地下。")
    ctx.language = "en"
    assert act("info.read", ctx, topic="parking").variables["info_text"] == "停车场在门诊楼地下。"
    ctx.languages = ("en",)                                     # an English-only flow: nothing to read
    assert act("info.read", ctx, topic="parking").outcome == "not_found"


def test_info_with_a_key_prefers_the_specific_text(ctx, store):
    store.set_info("doctor_schedules.01", "zh", "内科专家门诊：张伟主任周一、周三上午。")
    assert act("info.read", ctx, topic="doctor_schedules", key="01").variables["info_text"].startswith("内科专家门诊")
    general = act("info.read", ctx, topic="doctor_schedules", key="05").variables["info_text"]
    assert general.startswith("普通门诊周一至周五")


def test_info_change_needs_no_flow_change(ctx, store):
    store.set_info("new_drugs", "zh", "本月没有新药。")
    assert act("info.read", ctx, topic="new_drugs").variables["info_text"] == "本月没有新药。"


def test_info_not_found(ctx, store):
    assert act("info.read", ctx, topic="visiting_hours").outcome == "not_found"
    store.delete_info("new_drugs")
    assert act("info.read", ctx, topic="new_drugs", key="x").outcome == "not_found"


# -- complaints --------------------------------------------------------------------------------------------

def test_complaint_by_keypad(ctx, store):
    r = act("complaint.file", ctx, department="02", staff="1234", card="10000001")
    assert r.outcome == "filed" and len(r.variables["ticket_no"]) == 8
    c = store.complaint(r.variables["ticket_no"])
    assert (c.department_code, c.staff_code, c.recording_path, c.caller, c.card_no, c.call_id, c.status) == \
        ("02", "1234", None, "13800000001", "10000001", "call-1", "open")


def test_complaint_by_voice(ctx, store):
    ctx.caller = None                                            # untrusted number: still kept for a call back
    r = act("complaint.file", ctx, department="", staff=None, recording="recordings/call-1-rec-1.wav", card=None)
    c = store.complaint(r.variables["ticket_no"])
    assert (c.department_code, c.staff_code, c.recording_path, c.caller) == \
        (None, None, "recordings/call-1-rec-1.wav", "13800000001")


def test_complaint_about_an_unknown_department(ctx, store):
    assert act("complaint.file", ctx, department="88", staff="1234").outcome == "unknown_department"
    assert rows(store, "complaints") == []


def test_complaint_same_step_files_once(ctx, store):
    a = act("complaint.file", ctx, department="02", staff="1234")
    b = act("complaint.file", ctx, department="02", staff="1234")
    assert a.variables == b.variables and len(rows(store, "complaints")) == 1


def test_a_complaint_needs_a_staff_code_or_a_recording(ctx):
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        act("complaint.file", ctx, department="02")
    with pytest.raises(jsonschema.ValidationError):
        act("complaint.file", ctx, department="02", staff=None, recording=None)
