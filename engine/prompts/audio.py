"""WAV helpers: read parameters, convert to telephony format (8 kHz mono 16-bit PCM).

Conversion uses sox when it is on PATH (band-limited, high quality), else a pure-Python
windowed-sinc resampler (slower, used only as a fallback).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import wave
from array import array
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TELEPHONY_RATE = 8000


class AudioError(Exception):
    """An audio file that cannot be read or converted."""


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    sample_width: int   # bytes per sample
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0

    @property
    def is_telephony(self) -> bool:
        return (self.rate, self.channels, self.sample_width) == (TELEPHONY_RATE, 1, 2)


def wav_info(path: Path) -> WavInfo:
    try:
        with wave.open(str(path), "rb") as w:
            return WavInfo(w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise AudioError(f"{path}: not a readable PCM WAV file ({e})") from None


def to_telephony(src: Path, dst: Path, *, use_sox: bool | None = None) -> None:
    """Write ``src`` (a PCM WAV) to ``dst`` as 8 kHz mono 16-bit PCM."""
    info = wav_info(src)
    if info.frames == 0:
        raise AudioError(f"{src}: no audio")
    sox = shutil.which("sox") if use_sox in (None, True) else None
    if use_sox and not sox:
        raise AudioError("sox is not installed")
    if sox:
        r = subprocess.run([sox, "-q", str(src), "-r", str(TELEPHONY_RATE), "-c", "1", "-b", "16",
                            "-e", "signed-integer", "-t", "wav", str(dst)],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AudioError(f"sox failed: {r.stderr.decode(errors='replace').strip()}")
        return
    if info.sample_width != 2:
        raise AudioError(f"{src}: {8 * info.sample_width}-bit audio needs sox to convert")
    with wave.open(str(src), "rb") as w:
        samples = array("h", w.readframes(info.frames))
    if info.channels > 1:
        n = info.channels
        samples = array("h", (sum(samples[i:i + n]) // n for i in range(0, len(samples), n)))
    out = resample(samples, info.rate, TELEPHONY_RATE)
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(TELEPHONY_RATE)
        w.writeframes(out.tobytes())


_HALF_TAPS = 16   # filter half-length in input samples at the output rate


@lru_cache(maxsize=8)
def _filter_bank(up: int, down: int) -> tuple[tuple[float, ...], ...]:
    """Polyphase windowed-sinc (Blackman) low-pass taps, one row per output phase."""
    cutoff = 0.45 * min(1.0, up / down)          # cycles per input sample, below Nyquist
    span = int(math.ceil(_HALF_TAPS / min(1.0, up / down)))
    bank = []
    for phase in range(up):
        frac = phase * down % up / up            # fractional input position of this phase
        row = []
        for k in range(-span + 1, span + 1):
            x = k - frac
            sinc = 2 * cutoff if x == 0 else math.sin(2 * math.pi * cutoff * x) / (math.pi * x)
            t = (x + span) / (2 * span)
            win = 0.42 - 0.5 * math.cos(2 * math.pi * t) + 0.08 * math.cos(4 * math.pi * t) if 0 <= t <= 1 else 0.0
            row.append(sinc * win)
        s = sum(row)
        bank.append(tuple(v / s for v in row))
    return tuple(bank)


def resample(samples: array, src_rate: int, dst_rate: int) -> array:
    """Band-limited rational resampling of 16-bit mono samples (pure Python)."""
    if src_rate == dst_rate:
        return array("h", samples)
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    bank = _filter_bank(up, down)
    width = len(bank[0])
    span = width // 2
    n_in = len(samples)
    padded = [0] * span + list(samples) + [0] * (span + 1)
    n_out = n_in * up // down
    out = array("h", bytes(2 * n_out))
    for n in range(n_out):
        pos = n * down
        base = pos // up                         # integer input index
        taps = bank[n % up]
        start = base + 1                         # padded index of input base - span + 1
        acc = sum(a * b for a, b in zip(padded[start:start + width], taps))
        out[n] = -32768 if acc < -32768 else 32767 if acc > 32767 else int(round(acc))
    return out
