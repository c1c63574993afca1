"""Loading prompt catalogs and reporting broken ones with positions (P0xx)."""

import shutil
import textwrap
from pathlib import Path

import pytest

from engine.prompts.catalog import CatalogError, list_catalogs, load_catalog

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prompts"


def test_fixture_catalog():
    cat = load_catalog(FIXTURES, "clinic")
    assert cat.name == "clinic" and cat.path == FIXTURES / "clinic"
    assert cat.languages == ("en", "zh-CN")
    assert cat.ids("zh-CN") == cat.ids("en")
    assert "welcome" in cat.ids("zh-cn")                      # tags match case-insensitively
    assert cat.voice("zh-CN") == "cmn-latn-pinyin" and cat.rate("zh-CN") == 150
    assert cat.voice("en") == "en-us" and cat.rate("en") == 160   # defaults
    p = cat.get("zh-CN", "balance_is")
    assert p.is_template and p.variables == {"balance"} and p.recording is None
    assert (p.position.line, p.position.col) == (11, 3) and p.position.file.endswith("clinic/zh-CN.yaml")
    assert cat.get("zh-CN", "appointment_confirmed").variables == {"day", "at", "department", "confirmation"}
    fee = cat.get("en", "fee_notice")
    assert fee.is_template and fee.variables == frozenset()
    assert cat.get("zh-CN", "goodbye").text == "感谢您的来电，再见。"     # mapping form
    rec = cat.get("zh-CN", "welcome").recording
    assert rec is not None and rec.is_absolute() and rec.name == "welcome.wav"
    assert cat.get("en", "welcome").recording is None
    assert cat.get("fr", "welcome") is None and cat.ids("fr") == frozenset()
    with pytest.raises(KeyError):
        cat.voice("fr")
    assert cat.diagnostics == ()
    assert list_catalogs(FIXTURES) == ["clinic"]


def make(tmp_path, files: dict[str, str | bytes], name="cat"):
    d = tmp_path / name
    d.mkdir(parents=True, exist_ok=True)
    for fname, content in files.items():
        p = d / fname
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return d


def errors(tmp_path, files, name="cat"):
    make(tmp_path, files, name)
    with pytest.raises(CatalogError) as ei:
        load_catalog(tmp_path, name, display_root=tmp_path)
    return [(d.code, d.position.file, d.position.line, d.position.col, d.message, d.hint)
            for d in ei.value.diagnostics if d.severity == "error"]


def test_yaml_syntax_error(tmp_path):
    (code, file, line, col, msg, _), = errors(tmp_path, {"en.yaml": """
        prompts:
          welcome: [Hello
          bye: Bye
    """})
    assert code == "P001" and file == "cat/en.yaml" and line == 3


def test_duplicate_prompt(tmp_path):
    (code, _, line, col, msg, _), = errors(tmp_path, {"en.yaml": """
        prompts:
          welcome: Hello
          welcome: Hello again
    """})
    assert code == "P004" and line == 3 and "welcome" in msg


def test_shapes(tmp_path):
    errs = errors(tmp_path, {"en.yaml": """
        language: en
        rate: fast
        promts: {}
    """, "zh-CN.yaml": """
        prompts:
          a: 12
          b: ""
          c:
            txt: hi
          d: [x]
    """})
    got = {(e[0], e[1], e[2]) for e in errs}
    assert ("P002", "cat/en.yaml", 2) in got                       # rate
    assert ("P002", "cat/en.yaml", 3) in got                       # unknown key promts
    assert any(e[4] == "unknown key 'promts'" and e[5] == "did you mean 'prompts'?" for e in errs)
    assert ("P002", "cat/en.yaml", 1) in got                       # missing prompts:
    assert {("P002", "cat/zh-CN.yaml", n) for n in (2, 3, 5, 4, 6)} <= got
    assert any("quote it" == e[5] for e in errs)


def test_template_errors_point_into_the_template(tmp_path):
    errs = errors(tmp_path, {"en.yaml": """
        prompts:
          ok: "Fine {{ x }}"
          bad: "Your balance is {{ balance | mony }}."
          multi: |
            Line one {{ a }}
            Line two {% if %}
    """})
    by_msg = {e[4].split(":")[0]: e for e in errs}
    bad = by_msg["prompt 'bad'"]
    assert bad[0] == "P003" and bad[2] == 3 and "unknown filter 'mony'" in bad[4] and "money" in bad[4]
    multi = by_msg["prompt 'multi'"]
    assert multi[0] == "P003" and multi[2] == 6


def test_ids_and_languages(tmp_path):
    errs = errors(tmp_path, {"en.yaml": """
        language: zh-CN
        prompts:
          "bad/id": x
          3: y
    """, "readme.yaml": "prompts: {}\n", "fr.yaml": "prompts:\n  hello: Bonjour\n"})
    codes = sorted((e[0], e[1], e[2]) for e in errs)
    assert codes == [("P005", "cat/en.yaml", 3), ("P005", "cat/en.yaml", 4), ("P006", "cat/en.yaml", 1),
                     ("P006", "cat/readme.yaml", 1), ("P007", "cat/fr.yaml", 1)]


def test_unsupported_language_with_voice_and_speech_filter(tmp_path):
    errs = errors(tmp_path, {"fr.yaml": """
        voice: fr-fr
        prompts:
          hello: Bonjour
          fee: "Les frais sont {{ fee | money }}."
    """})
    assert [(e[0], e[2]) for e in errs] == [("P008", 4)]


def test_missing_catalog_and_empty_dir(tmp_path):
    make(tmp_path, {"en.yaml": "prompts: {}\n"}, "hospital")
    with pytest.raises(CatalogError) as ei:
        load_catalog(tmp_path, "hospitl")
    d, = ei.value.diagnostics
    assert d.code == "P010" and d.hint == "did you mean 'hospital'?"
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="no language files"):
        load_catalog(tmp_path, "empty")
    with pytest.raises(CatalogError, match="invalid catalog name"):
        load_catalog(tmp_path, "../etc")


def test_file_problems(tmp_path):
    errs = errors(tmp_path, {"en.yaml": b"prompts:\n  a: \xff\xfe\n", "zh-CN.yaml": "", "en-GB.yaml": "- a\n"})
    assert sorted((e[0], e[1]) for e in errs) == [("P002", "cat/en-GB.yaml"), ("P002", "cat/zh-CN.yaml"),
                                                  ("P011", "cat/en.yaml")]


def test_recordings(tmp_path):
    d = make(tmp_path, {"zh-CN.yaml": """
        recordings: rec
        prompts:
          welcome: 欢迎
          bye: 再见
          balance: "余额{{ b | money }}"
          menu:
            text: 请按1
            recording: menu-v2.wav
    """})
    (d / "rec").mkdir()
    good = FIXTURES / "clinic" / "recordings" / "zh-CN" / "welcome.wav"
    shutil.copy(good, d / "rec" / "welcome.wav")
    shutil.copy(good, d / "rec" / "menu-v2.wav")
    shutil.copy(good, d / "rec" / "balance.wav")                  # template prompt: ignored, warned
    shutil.copy(good, d / "rec" / "welcom.wav")                   # matches nothing: warned
    cat = load_catalog(tmp_path, "cat", display_root=tmp_path)
    assert cat.get("zh-CN", "welcome").recording == (d / "rec" / "welcome.wav").absolute()
    assert cat.get("zh-CN", "menu").recording.name == "menu-v2.wav"
    assert cat.get("zh-CN", "bye").recording is None and cat.get("zh-CN", "balance").recording is None
    warns = {(w.code, w.severity, w.message.split(":")[0]) for w in cat.diagnostics}
    assert ("P009", "warning", "recording balance.wav ignored") in warns
    assert any("welcom.wav matches no prompt" in w.message and w.hint == "did you mean 'welcome'?"
               for w in cat.diagnostics)
    # a broken recording is an error; a non-telephony one a warning
    (d / "rec" / "bye.wav").write_bytes(b"RIFF....not a wav")
    errs = errors(tmp_path, {})
    assert [(e[0], e[2]) for e in errs] == [("P009", 4)]


def test_recordings_dir_missing_is_a_warning(tmp_path):
    make(tmp_path, {"en.yaml": "recordings: nowhere\nprompts:\n  hi: Hello\n"})
    cat = load_catalog(tmp_path, "cat", display_root=tmp_path)
    (w,) = cat.diagnostics
    assert w.code == "P009" and w.severity == "warning" and w.position.line == 1
