"""Information texts: per topic and language, editable, loadable from YAML all-or-nothing."""

from __future__ import annotations

import pytest

from engine.store import InvalidInput
from engine.store.infofile import read_info_file


def test_info_per_language_with_fallback(demo):
    assert demo.info("hospital_intro", "zh").startswith("仁和医院")
    assert demo.info("hospital_intro", "en").startswith("Renhe Hospital")
    assert demo.info("hospital_intro", "fr") is None
    assert demo.info("hospital_intro", "fr", fallback_lang="en").startswith("Renhe")
    assert demo.info("no_such_topic", "zh") is None
    topics = demo.info_topics()
    assert {"hospital_intro", "departments", "doctor_schedules", "famous_experts",
            "new_drugs"} <= set(topics)
    assert all(langs == ["en", "zh"] for langs in topics.values())


def test_edit_and_delete(demo):
    demo.set_info("new_drugs", "zh", "  本月无新药。  ")
    assert demo.info("new_drugs", "zh") == "本月无新药。"
    demo.set_info("parking", "en", "Parking is behind building B.")
    assert demo.info("parking", "en") == "Parking is behind building B."
    assert demo.delete_info("parking") == 1
    assert demo.info("parking", "en") is None


@pytest.mark.parametrize("texts", [
    {"Bad Topic": {"zh": "x"}},
    {"ok": {"chinese": "x"}},
    {"ok": {"zh": ""}},
    {"ok": {"zh": 5}},
    {"ok": "text"},
    {},
    ["x"],
])
def test_invalid_texts_rejected(demo, texts):
    with pytest.raises(InvalidInput):
        demo.load_info(texts)


def test_load_is_all_or_nothing(demo):
    with pytest.raises(InvalidInput):
        demo.load_info({"hospital_intro": {"zh": "新介绍"}, "bad": {"zh": ""}})
    assert demo.info("hospital_intro", "zh").startswith("仁和医院")


def test_load_only_missing(demo):
    n = demo.load_info({"hospital_intro": {"zh": "改"}, "visiting": {"zh": "探视时间"}},
                       only_missing=True)
    assert n == 1 and demo.info("hospital_intro", "zh").startswith("仁和医院")


def test_read_yaml_file(tmp_path):
    p = tmp_path / "info.yaml"
    p.write_text("hospital_intro:\n  zh: 新的医院介绍\n  en: New intro\nparking:\n  en: Lot B\n",
                 encoding="utf-8")
    assert read_info_file(p) == {"hospital_intro": {"zh": "新的医院介绍", "en": "New intro"},
                                 "parking": {"en": "Lot B"}}


@pytest.mark.parametrize("content,match", [
    ("a: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "non-empty mapping"),
    ("topic:\n  zh: [1, 2]\n", "non-empty string"),
    ("Topic With Space:\n  zh: x\n", "topic"),
    ("", "non-empty mapping"),
    (b"\xff\xfe", "UTF-8"),
])
def test_bad_yaml_files(tmp_path, content, match):
    p = tmp_path / "bad.yaml"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InvalidInput, match=match) as e:
        read_info_file(p)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="cannot read"):
        read_info_file(tmp_path / "nope.yaml")
