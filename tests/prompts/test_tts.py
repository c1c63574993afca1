"""Real synthesis through both backends, the pyttsx3 quirks, and the resampler."""

import math
import shutil
import wave
from array import array

import pytest

from engine.prompts.audio import resample, to_telephony, wav_info
from engine.prompts.tts import EspeakCliBackend, Pyttsx3Backend, TTSBackend, TTSError, get_backend

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

ZH = "欢迎致电示范医院。"          # 8 syllables: about 1.5-3 s at 150 wpm
EN = "Thank you for calling. Goodbye."


def assert_telephony(path, lo, hi):
    with open(path, "rb") as f:
        head = f.read(44)
    assert head[:4] == b"RIFF" and head[8:16] == b"WAVEfmt "
    assert int.from_bytes(head[20:22], "little") == 1            # PCM
    info = wav_info(path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert lo < info.duration < hi, info.duration
    with wave.open(str(path)) as w:
        pcm = array("h", w.readframes(w.getnframes()))
    assert max(abs(s) for s in pcm) > 1000                        # not silence
    return info


@pytest.fixture(scope="module")
def pyttsx3_backend():
    return Pyttsx3Backend()


@pytest.mark.parametrize("make", [Pyttsx3Backend, EspeakCliBackend])
def test_backends_write_telephony_wav(make, tmp_path):
    b = make()
    assert isinstance(b, TTSBackend) and b.engine == "espeak-ng"
    b.synthesize(ZH, "zh-CN", "cmn-latn-pinyin", 150, tmp_path / "zh.wav")
    b.synthesize(EN, "en", "en-us", 160, tmp_path / "en.wav")
    assert_telephony(tmp_path / "zh.wav", 1.2, 4.0)
    assert_telephony(tmp_path / "en.wav", 1.0, 4.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["en.wav", "zh.wav"]   # no temporary files left


def test_pyttsx3_uses_the_requested_voice(pyttsx3_backend, tmp_path):
    # The pinyin voice reads 8 Mandarin syllables; "cmn" says "huan five ying two ..." (much longer).
    pyttsx3_backend.synthesize(ZH, "zh-CN", "cmn-latn-pinyin", 150, tmp_path / "a.wav")
    EspeakCliBackend().synthesize(ZH, "zh-CN", "cmn-latn-pinyin", 150, tmp_path / "b.wav")
    pyttsx3_backend.synthesize(ZH, "zh-CN", "cmn", 150, tmp_path / "c.wav")
    a, b, c = (wav_info(tmp_path / n).duration for n in ("a.wav", "b.wav", "c.wav"))
    assert abs(a - b) / b < 0.03
    assert c > 1.2 * a


def test_pyttsx3_rate_survives_voice_changes(pyttsx3_backend, tmp_path):
    cli = EspeakCliBackend()
    for i, (text, voice, rate) in enumerate([(ZH, "cmn-latn-pinyin", 150), (EN, "en-us", 160),
                                             (ZH, "cmn-latn-pinyin", 150), (EN, "en-us", 200),
                                             (ZH, "cmn-latn-pinyin", 120)]):
        pyttsx3_backend.synthesize(text, "", voice, rate, tmp_path / f"p{i}.wav")
        cli.synthesize(text, "", voice, rate, tmp_path / f"c{i}.wav")
        p, c = wav_info(tmp_path / f"p{i}.wav").duration, wav_info(tmp_path / f"c{i}.wav").duration
        assert abs(p - c) < 0.03 * c, (voice, rate, p, c)


def test_pyttsx3_rate_is_applied(pyttsx3_backend, tmp_path):
    pyttsx3_backend.synthesize(EN, "en", "en-us", 100, tmp_path / "slow.wav")
    pyttsx3_backend.synthesize(EN, "en", "en-us", 300, tmp_path / "fast.wav")
    assert wav_info(tmp_path / "slow.wav").duration > 2 * wav_info(tmp_path / "fast.wav").duration


def test_pyttsx3_quirks_are_contained(pyttsx3_backend, tmp_path, capfd):
    # "Audio saved to ..." is not printed; consecutive files each get their own audio.
    for i, text in enumerate(["One.", "Two, three, four, five, six, seven."]):
        pyttsx3_backend.synthesize(text, "en", "en-us", 160, tmp_path / f"{i}.wav")
    out, err = capfd.readouterr()
    assert out == "" and "Audio saved" not in err
    assert wav_info(tmp_path / "1.wav").duration > 2 * wav_info(tmp_path / "0.wav").duration
    # Empty text would fail an assert inside pyttsx3: a clear TTSError instead.
    for empty in ("", "   "):
        with pytest.raises(TTSError, match="empty"):
            pyttsx3_backend.synthesize(empty, "en", "en-us", 160, tmp_path / "e.wav")
    # An unknown voice is only reported to pyttsx3's error callback (the old voice stays): raised here.
    with pytest.raises(TTSError, match="no voice named 'xx-nope'"):
        pyttsx3_backend.synthesize("Hello.", "en", "xx-nope", 160, tmp_path / "v.wav")
    assert not (tmp_path / "v.wav").exists()
    pyttsx3_backend.synthesize("Still working.", "en", "en-us", 160, tmp_path / "after.wav")
    assert_telephony(tmp_path / "after.wav", 0.3, 3.0)


def test_cli_backend_errors(tmp_path):
    b = EspeakCliBackend()
    with pytest.raises(TTSError, match="no voice named"):
        b.synthesize("Hello.", "en", "xx-nope", 160, tmp_path / "v.wav")
    with pytest.raises(TTSError, match="empty"):
        b.synthesize("", "en", "en-us", 160, tmp_path / "v.wav")
    with pytest.raises(TTSError, match="not installed"):
        EspeakCliBackend(executable="/nonexistent/espeak-ng")
    with pytest.raises(TTSError, match="unknown TTS backend"):
        get_backend("festival")


# ------------------------------------------------------------------ resampling

def tone(freq, rate, seconds=0.5, amp=10000):
    return array("h", (int(amp * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * seconds))))


def rms(a):
    body = a[len(a) // 4: -len(a) // 4]
    return math.sqrt(sum(x * x for x in body) / len(body))


def test_python_resampler_keeps_speech_band_and_removes_aliases():
    low = resample(tone(1000, 22050), 22050, 8000)
    high = resample(tone(6000, 22050), 22050, 8000)          # above the new 4 kHz Nyquist
    assert len(low) == 4000
    assert 0.9 < rms(low) / rms(tone(1000, 22050)) < 1.1
    assert rms(high) / rms(tone(6000, 22050)) < 0.03          # at least 30 dB down, no alias at 2 kHz


def test_python_and_sox_conversion_agree(tmp_path):
    src = tmp_path / "src.wav"
    with wave.open(str(src), "wb") as w:                                         # 22 kHz stereo
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(22050)
        mono = tone(440, 22050, 1.0)
        w.writeframes(array("h", (s for x in mono for s in (x, x))).tobytes())
    to_telephony(src, tmp_path / "py.wav", use_sox=False)
    if shutil.which("sox"):
        to_telephony(src, tmp_path / "sox.wav", use_sox=True)
        assert abs(wav_info(tmp_path / "sox.wav").duration - wav_info(tmp_path / "py.wav").duration) < 0.01
    assert_telephony(tmp_path / "py.wav", 0.95, 1.05)


def test_mixed_script_speech_is_joined_into_one_wav(pyttsx3_backend, tmp_path):
    from engine.prompts.speech import plan, synthesize

    speech = plan("普通话服务请按1，For English, press 2.", "zh-CN", "cmn-latn-pinyin", 150)
    synthesize(pyttsx3_backend, speech, tmp_path / "mixed.wav")
    parts = []
    for i, s in enumerate(speech):
        pyttsx3_backend.synthesize(s.text, s.lang, s.voice, s.rate, tmp_path / f"{i}.wav")
        parts.append(wav_info(tmp_path / f"{i}.wav").duration)
    info = assert_telephony(tmp_path / "mixed.wav", 2.0, 8.0)
    assert len(parts) == 2 and abs(info.duration - sum(parts)) < 0.01
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.wav", "1.wav", "mixed.wav"]
    with pytest.raises(TTSError, match="empty"):
        synthesize(pyttsx3_backend, (), tmp_path / "none.wav")


def test_pyttsx3_recovers_from_an_engine_left_mid_loop(pyttsx3_backend, tmp_path):
    # What an exception inside runAndWait leaves behind: pyttsx3 then refuses every call.
    Pyttsx3Backend._engine._inLoop = True
    with pytest.raises(TTSError, match="run loop already started"):
        pyttsx3_backend.synthesize("Hello.", "en", "en-us", 160, tmp_path / "a.wav")
    pyttsx3_backend.synthesize("Hello again.", "en", "en-us", 160, tmp_path / "b.wav")
    assert_telephony(tmp_path / "b.wav", 0.4, 3.0)
