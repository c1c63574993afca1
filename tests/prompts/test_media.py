"""Runtime resolution: recording > cache > synthesis off the event loop, with timeouts."""

import asyncio
import shutil
import threading
from pathlib import Path

import pytest

from engine.prompts.audio import wav_info
from engine.prompts.cache import PromptCache
from engine.prompts.catalog import load_catalog
from engine.prompts.media import Media, PromptError, Prompts, SynthesisError
from engine.prompts.tts import EspeakCliBackend, Pyttsx3Backend, TTSError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prompts"
CAT = load_catalog(FIXTURES, "clinic")
VARS = {"balance": 1250, "day": "2026-11-23", "at": "14:30", "department": "心内科", "confirmation": "A1029"}


class GatedBackend:
    """The real espeak-ng CLI backend, held at a gate until the test opens it (a 'slow' TTS)."""

    name, engine = "gated", "espeak-ng"

    def __init__(self):
        self.gate, self.started, self.calls = threading.Event(), threading.Event(), []
        self.real = EspeakCliBackend()

    def synthesize(self, text, lang, voice, rate, out_path):
        self.calls.append(text)
        self.started.set()
        self.gate.wait(10)
        self.real.synthesize(text, lang, voice, rate, out_path)


def run(coro):
    return asyncio.run(coro)


def test_recording_template_cache_and_synthesis(tmp_path):
    p = Prompts(CAT, Pyttsx3Backend(), PromptCache(tmp_path))

    async def go():
        rec = await p.resolve("zh-CN", "welcome")
        first = await p.resolve("zh-CN", "balance_is", {"balance": 1250})
        again = await p.resolve("zh-CN", "balance_is", {"balance": 1250})
        other = await p.resolve("en", "balance_is", {"balance": 99})
        return rec, first, again, other

    rec, first, again, other = run(go())
    p.close()
    assert rec == Media("welcome", "zh-CN", "欢迎致电示范医院。", CAT.get("zh-CN", "welcome").recording, "recording")
    assert first.text == "您的余额是十二元五角。" and first.source == "synth"
    assert again.source == "cache" and again.path == first.path
    info = wav_info(first.path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2) and 1.0 < info.duration < 5.0
    assert other.text == "Your balance is ninety-nine fen." and other.path != first.path
    # call-time text is kept apart from built prompts, so it can be expired
    assert first.path.parent.parent.name == "dynamic" and PromptCache(tmp_path).entries(dynamic=True) == 2


def test_resolve_text_for_say_states(tmp_path):
    p = Prompts(CAT, EspeakCliBackend(), PromptCache(tmp_path))
    m = run(p.resolve_text("en", "Your exam number is {{ n | digits }}.", {"n": "42"}))
    p.close()
    assert m.prompt_id is None and m.text == "Your exam number is four two." and m.source == "synth"
    assert wav_info(m.path).rate == 8000


def test_simulation_mode_synthesizes_nothing(tmp_path):
    fast = Prompts(CAT, backend=None)
    m = run(fast.resolve("en", "appointment_confirmed", VARS))
    assert m.path is None and m.source == "none"
    assert m.text == ("Your 心内科 appointment on November twenty-third, twenty twenty-six at two thirty p.m. "
                      "is booked. Your confirmation number is A one zero two nine.")
    assert run(fast.resolve("zh-CN", "welcome")).source == "recording"
    off = Prompts(CAT, EspeakCliBackend(), PromptCache(tmp_path), synthesize=False)
    assert run(off.resolve("en", "goodbye")).source == "none" and PromptCache(tmp_path).entries() == 0


def test_errors_are_prompt_errors(tmp_path):
    p = Prompts(CAT, backend=None)
    with pytest.raises(PromptError, match="'welcom' is not in catalog"):
        run(p.resolve("en", "welcom"))
    with pytest.raises(PromptError, match="no language 'fr'"):
        run(p.resolve("fr", "welcome"))
    with pytest.raises(PromptError, match="balance"):
        run(p.resolve("en", "balance_is", {}))
    with pytest.raises(PromptError, match="integer cents"):
        run(p.resolve("en", "balance_is", {"balance": 12.5}))
    with pytest.raises(PromptError, match="empty"):
        run(p.resolve_text("en", "  "))


def test_slow_tts_times_out_without_stalling_other_calls(tmp_path):
    slow = GatedBackend()
    p = Prompts(CAT, slow, PromptCache(tmp_path), timeout=0.2)

    async def go():
        stuck = asyncio.create_task(p.resolve("en", "balance_is", {"balance": 700}))
        await asyncio.to_thread(slow.started.wait, 10)            # synthesis is running in a worker
        other = await p.resolve("zh-CN", "welcome")                # another call is served meanwhile
        assert not stuck.done()
        with pytest.raises(SynthesisError) as ei:
            await stuck
        return other, ei.value

    other, err = run(go())
    assert other.source == "recording"
    assert err.reason == "timeout" and err.media.text == "Your balance is seven yuan." and err.media.path is None
    # the synthesis finishes in the background and lands in the cache for the next caller
    slow.gate.set()
    p.close(wait=True)
    m = run(p.resolve("en", "balance_is", {"balance": 700}))
    p.close()
    assert m.source == "cache" and slow.calls == ["Your balance is seven yuan."]


def test_concurrent_requests_for_the_same_text_share_one_synthesis(tmp_path):
    slow = GatedBackend()
    p = Prompts(CAT, slow, PromptCache(tmp_path), timeout=10)

    async def go():
        tasks = [asyncio.create_task(p.resolve("en", "balance_is", {"balance": 300})) for _ in range(5)]
        await asyncio.to_thread(slow.started.wait, 10)
        slow.gate.set()
        return await asyncio.gather(*tasks)

    results = run(go())
    p.close()
    assert len(slow.calls) == 1 and len({m.path for m in results}) == 1
    assert {m.source for m in results} == {"synth"}


def test_failing_tts_and_backpressure(tmp_path):
    class Broken:
        name, engine = "broken", "broken"

        def synthesize(self, *a):
            raise TTSError("engine crashed")

    p = Prompts(CAT, Broken(), PromptCache(tmp_path))
    with pytest.raises(SynthesisError, match="engine crashed") as ei:
        run(p.resolve("en", "goodbye"))
    assert ei.value.reason == "failed" and ei.value.media.text == "Thank you for calling. Goodbye."
    p.close()

    slow = GatedBackend()
    busy = Prompts(CAT, slow, PromptCache(tmp_path), timeout=0.05, max_pending=1)
    with pytest.raises(SynthesisError):
        run(busy.resolve("en", "balance_is", {"balance": 1}))
    with pytest.raises(SynthesisError) as ei:
        run(busy.resolve("en", "balance_is", {"balance": 2}))
    assert ei.value.reason == "busy"
    slow.gate.set()
    busy.close()
