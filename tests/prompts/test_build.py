"""`prompts build`: real synthesis into the content-addressed cache, skipping what is unchanged."""

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.prompts.audio import wav_info
from engine.prompts.build import build
from engine.prompts.cache import ENV_VAR, PromptCache, default_cache_dir
from engine.prompts.catalog import load_catalog
from engine.prompts.cli import prompts
from engine.prompts.tts import Pyttsx3Backend

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prompts"


def test_build_then_rebuild(tmp_path):
    cat = load_catalog(FIXTURES, "clinic")
    cache = PromptCache(tmp_path / "cache")
    backend = Pyttsx3Backend()
    seen = []
    first = build([cat], backend, cache, progress=seen.append)
    # zh-CN: 5 static (+1 recorded, 2 templates with variables); en: 6 static, 2 with variables
    assert (first.synthesized, first.cached, first.recordings, first.dynamic, first.failed) == (11, 0, 1, 4, [])
    assert len(seen) == 11 and cache.entries() == 11
    for (catalog, lang, pid), path in first.files.items():
        info = wav_info(path)
        if pid == "welcome" and lang == "zh-CN":
            assert path == cat.get("zh-CN", "welcome").recording
            continue
        assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
        text = cat.get(lang, pid).text
        han = len(re.findall(r"[\u4e00-\u9fff]", text))
        other = len(text) - han
        lo, hi = 0.12 * han + 0.03 * other, 0.5 * han + 0.15 * other      # seconds per character
        assert lo < info.duration < hi, (pid, lang, info.duration)
    stamps = {p: p.stat().st_mtime_ns for p in first.files.values()}

    second = build([cat], backend, cache)
    assert (second.synthesized, second.cached, second.recordings, second.dynamic) == (0, 11, 1, 4)
    assert second.files == first.files
    assert {p: p.stat().st_mtime_ns for p in second.files.values()} == stamps

    # a changed rate (or text, or voice) is a new cache entry; the other language is untouched
    copy = tmp_path / "prompts"
    shutil.copytree(FIXTURES, copy)
    en = copy / "clinic" / "en.yaml"
    en.write_text(en.read_text(encoding="utf-8").replace("language: en\n", "language: en\nrate: 180\n"),
                  encoding="utf-8")
    third = build([load_catalog(copy, "clinic")], backend, cache)
    assert (third.synthesized, third.cached) == (6, 5)
    assert cache.entries() == 17


def test_build_only_some_languages(tmp_path):
    cat = load_catalog(FIXTURES, "clinic")
    r = build([cat], Pyttsx3Backend(), PromptCache(tmp_path), languages=["zh-cn"])
    assert (r.synthesized, r.recordings, r.dynamic) == (5, 1, 2)
    assert {lang for (_, lang, _) in r.files} == {"zh-CN"}


def test_same_text_is_synthesized_once(tmp_path):
    d = tmp_path / "p" / "c"
    d.mkdir(parents=True)
    (d / "en.yaml").write_text("prompts:\n  a: Hello there.\n  b: Hello there.\n", encoding="utf-8")
    r = build([load_catalog(tmp_path / "p", "c")], Pyttsx3Backend(), PromptCache(tmp_path / "cache"))
    assert (r.synthesized, r.cached) == (1, 1) and r.files[("c", "en", "a")] == r.files[("c", "en", "b")]


def test_failures_are_reported_per_prompt(tmp_path):
    d = tmp_path / "p" / "c"
    d.mkdir(parents=True)
    (d / "en.yaml").write_text('voice: xx-nope\nprompts:\n  a: Hello.\n  b: "{{ 1 / 0 }}"\n', encoding="utf-8")
    r = build([load_catalog(tmp_path / "p", "c")], Pyttsx3Backend(), PromptCache(tmp_path / "cache"))
    assert r.synthesized == 0 and sorted(it.prompt_id for it, _ in r.failed) == ["a", "b"]
    msgs = dict((it.prompt_id, m) for it, m in r.failed)
    assert "no voice named 'xx-nope'" in msgs["a"] and "division by zero" in msgs["b"]


def test_cache_location(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache" and PromptCache().root == tmp_path / "env-cache"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.chdir(tmp_path)
    assert PromptCache().root == tmp_path / "var" / "prompt-cache"
    k1 = PromptCache.key(text="你好", voice="cmn-latn-pinyin", rate=150, engine="espeak-ng")
    assert k1 != PromptCache.key(text="你好", voice="cmn-latn-pinyin", rate=151, engine="espeak-ng")
    assert k1 != PromptCache.key(text="你好", voice="cmn", rate=150, engine="espeak-ng")
    with pytest.raises(ValueError):
        PromptCache().path_for("../../etc/passwd")


def test_prune_keeps_static_prompts(tmp_path):
    import os

    cache = PromptCache(tmp_path)
    backend = Pyttsx3Backend()
    build([load_catalog(FIXTURES, "clinic")], backend, cache, languages=["en"])
    k_old, k_new = (PromptCache.key(text=t, voice="en-us", rate=160, engine="espeak-ng") for t in ("Old.", "New."))
    old = cache.store(k_old, lambda p: backend.synthesize("Old.", "en", "en-us", 160, p), dynamic=True)
    cache.store(k_new, lambda p: backend.synthesize("New.", "en", "en-us", 160, p), dynamic=True)
    os.utime(old, (1_000_000, 1_000_000))
    assert cache.prune_dynamic(86400) == 1
    assert cache.lookup(k_old) is None and cache.lookup(k_new) is not None
    assert cache.entries() == 6 and cache.entries(dynamic=True) == 1
    r = CliRunner().invoke(prompts, ["prune", "--cache", str(tmp_path), "--older-than", "0"])
    assert r.exit_code == 0 and "removed 1 dynamic entries" in r.output and cache.entries() == 6


def test_cli_build(tmp_path):
    runner = CliRunner()
    args = ["build", "--prompts", str(FIXTURES), "--cache", str(tmp_path), "--lang", "en",
            "--backend", "espeak-cli"]
    r = runner.invoke(prompts, args)
    assert r.exit_code == 0, r.output
    assert "8 prompts: 6 synthesized, 0 cached, 0 recorded, 2 dynamic" in r.output
    r = runner.invoke(prompts, args)
    assert r.exit_code == 0 and "0 synthesized, 6 cached" in r.output


def test_cli_build_errors(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "p" / "c"
    bad.mkdir(parents=True)
    (bad / "en.yaml").write_text("prompts:\n  a: [oops\n", encoding="utf-8")
    r = runner.invoke(prompts, ["build", "--prompts", str(tmp_path / "p"), "--cache", str(tmp_path / "x")])
    assert r.exit_code == 1 and "error[P001]" in r.output and "Traceback" not in r.output
    r = runner.invoke(prompts, ["build", "--prompts", str(tmp_path / "nowhere")])
    assert r.exit_code == 1 and "does not exist" in r.output
    r = runner.invoke(prompts, ["build", "--prompts", str(FIXTURES), "--catalog", "clinc"])
    assert r.exit_code == 1 and "did you mean 'clinic'?" in r.output
    r = runner.invoke(prompts, ["build", "--prompts", str(FIXTURES), "--lang", "!!"])
    assert r.exit_code == 2 and "not a language tag" in r.output
    r = runner.invoke(prompts, ["build", "--prompts", str(FIXTURES), "--lang", "fr"])
    assert r.exit_code == 1 and "no catalog has language 'fr'" in r.output
