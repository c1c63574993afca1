"""Text-to-speech backends behind one small interface.

``TTSBackend.synthesize(text, lang, voice, rate, out_path)`` writes a telephony WAV
(8 kHz mono 16-bit PCM) or raises :class:`TTSError`.  Implementations:

* :class:`Pyttsx3Backend` - espeak-ng through pyttsx3 2.99 (libespeak-ng in process).
* :class:`EspeakCliBackend` - the ``espeak-ng`` command, one process per prompt.

Another engine (cloud TTS, FreeSWITCH ``speak``) plugs in by implementing the protocol.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.prompts.audio import AudioError, to_telephony, wav_info

log = logging.getLogger(__name__)


class TTSError(Exception):
    """Synthesis failed; the message says why."""


@runtime_checkable
class TTSBackend(Protocol):
    #: Shown in reports.
    name: str
    #: Engines producing the same audio for the same (text, voice, rate) share cache
    #: entries through this tag (both espeak-ng backends use "espeak-ng").
    engine: str

    def synthesize(self, text: str, lang: str, voice: str, rate: int, out_path: Path) -> None:
        """Write ``text`` spoken by ``voice`` at ``rate`` wpm to ``out_path`` (8 kHz mono s16 WAV)."""
        ...


def _check_text(text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise TTSError("nothing to synthesize: empty text")


def _raw_path(out_path: Path) -> Path:
    return out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex[:8]}.raw.wav")


def _finish(raw: Path, out_path: Path) -> None:
    """Validate espeak's 22 kHz output and convert it to telephony format."""
    try:
        info = wav_info(raw)
        if info.frames == 0:
            raise TTSError("the synthesizer produced no audio")
        to_telephony(raw, out_path)
    except AudioError as e:
        raise TTSError(str(e)) from None
    finally:
        raw.unlink(missing_ok=True)


class Pyttsx3Backend:
    """espeak-ng through pyttsx3's ``espeak`` driver.

    pyttsx3 2.99 quirks handled here (see docs/prompts.md):

    * the driver ``print``s "Audio saved to ..." after every save: silenced by giving the
      driver module its own ``print`` that logs at DEBUG;
    * two ``save_to_file`` calls before one ``runAndWait`` keep only the last: one file per
      ``runAndWait``, under a process-wide lock (libespeak-ng is one instance per process);
    * empty text fails an ``assert``: rejected up front with :class:`TTSError`;
    * an unknown voice is reported only through the 'error' callback and the previous voice
      is silently kept: the callback is watched and such output discarded;
    * libespeak-ng runs in its own thread and stays busy briefly after the end-of-message
      callback; a ``runAndWait`` started then cancels its own utterance and saves an empty
      file (about 1 in 300 with alternating voices): we wait for ``IsPlaying() == 0`` first;
    * after a voice change, a rate set once may be ignored (the previous rate stays): the
      rate is set twice, to a neighbouring value and then to the wanted one;
    * the driver writes espeak's native 22050 Hz: converted to 8 kHz afterwards.
    """

    name = "pyttsx3"
    engine = "espeak-ng"
    _lock = threading.Lock()
    _engine = None
    _errors: list[BaseException] = []

    @classmethod
    def _get_engine(cls):
        if cls._engine is None:
            try:
                import pyttsx3
                import pyttsx3.drivers.espeak as driver_mod
            except Exception as e:  # noqa: BLE001 - missing libespeak-ng raises various errors
                raise TTSError(f"pyttsx3's espeak driver is unavailable: {e}") from None
            driver_mod.print = _driver_print          # the driver's "Audio saved to ..." chatter
            try:
                eng = pyttsx3.init("espeak")
            except Exception as e:  # noqa: BLE001
                raise TTSError(f"pyttsx3 could not start espeak-ng: {e}") from None
            eng.connect("error", cls._on_error)
            cls._engine = eng
        return cls._engine

    @classmethod
    def _on_error(cls, name=None, exception=None, **_kw) -> None:
        cls._errors.append(exception if exception is not None else RuntimeError("unknown pyttsx3 error"))

    @classmethod
    def _repair(cls, eng) -> None:
        """Put a pyttsx3 engine left mid-loop by an exception back to idle (best effort)."""
        eng._inLoop = False
        proxy = getattr(eng, "proxy", None)
        driver = getattr(proxy, "_driver", None)
        if proxy is not None:
            proxy._queue = []
            proxy._busy = False
        if driver is not None:
            driver._looping = driver._speaking = driver._stopping = False
            driver._text_to_say = driver._save_file = None

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        with Pyttsx3Backend._lock:
            self._get_engine()

    def synthesize(self, text: str, lang: str, voice: str, rate: int, out_path: Path) -> None:
        _check_text(text)
        out_path = Path(out_path)
        raw = _raw_path(out_path)
        with Pyttsx3Backend._lock:
            eng = self._get_engine()
            Pyttsx3Backend._errors.clear()
            # If espeak never reports the end of the utterance, pyttsx3's loop would spin forever.
            watchdog = threading.Timer(self.timeout, eng.proxy._driver.endLoop)
            watchdog.daemon = True
            try:
                _wait_espeak_idle()
                rate = int(rate)
                eng.setProperty("voice", voice)
                # After a voice change espeak-ng may keep the previous rate when the new value is
                # set once; setting a different value first makes it take (verified in tests).
                eng.setProperty("rate", rate + 1 if rate < 450 else rate - 1)
                eng.setProperty("rate", rate)
                eng.save_to_file(text, str(raw))
                watchdog.start()
                eng.runAndWait()
                _wait_espeak_idle()
            except Exception as e:  # noqa: BLE001 - leave the engine usable for the next call
                Pyttsx3Backend._repair(eng)
                raw.unlink(missing_ok=True)
                raise TTSError(f"pyttsx3 failed: {e}") from None
            finally:
                watchdog.cancel()
            errors = list(Pyttsx3Backend._errors)
        if errors:
            raw.unlink(missing_ok=True)
            msg = str(errors[0])
            if "SetVoiceByName" in msg:
                msg = f"espeak-ng has no voice named '{voice}'"
            raise TTSError(msg)
        if not raw.exists():
            raise TTSError(f"pyttsx3 wrote no audio file (no end of utterance within {self.timeout} s?)")
        _finish(raw, out_path)


def _wait_espeak_idle(limit: float = 5.0) -> None:
    """Wait until libespeak-ng's own thread has finished its last command.

    It is still busy for a moment after delivering the end-of-message event; a
    ``runAndWait`` started then sees ``IsPlaying()``, cancels (pyttsx3's ``stop()``) and
    writes an empty file.
    """
    from pyttsx3.drivers import _espeak

    deadline = time.monotonic() + limit
    while _espeak.IsPlaying():
        if time.monotonic() > deadline:
            raise TTSError(f"espeak-ng stayed busy for more than {limit} s")
        time.sleep(0.0005)


def _driver_print(*args, **_kw) -> None:
    log.debug("pyttsx3: %s", " ".join(str(a) for a in args))


class EspeakCliBackend:
    """The ``espeak-ng`` command line; each prompt is a process, killed after ``timeout``."""

    name = "espeak-cli"
    engine = "espeak-ng"

    def __init__(self, executable: str | None = None, timeout: float = 30.0):
        exe = shutil.which(executable or "espeak-ng")
        if not exe:
            raise TTSError(f"{executable or 'espeak-ng'} is not installed (apt-get install espeak-ng)")
        self.executable, self.timeout = exe, timeout

    def synthesize(self, text: str, lang: str, voice: str, rate: int, out_path: Path) -> None:
        _check_text(text)
        out_path = Path(out_path)
        raw = _raw_path(out_path)
        try:
            r = subprocess.run([self.executable, "-b", "1", "-v", voice, "-s", str(int(rate)),
                                "-w", str(raw), "--stdin"],
                               input=text.encode("utf-8"), capture_output=True, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raw.unlink(missing_ok=True)
            raise TTSError(f"espeak-ng took longer than {self.timeout} s") from None
        except OSError as e:
            raise TTSError(f"cannot run {self.executable}: {e}") from None
        err = r.stderr.decode("utf-8", "replace").strip()
        if r.returncode != 0 or "does not exist" in err or not raw.exists():
            raw.unlink(missing_ok=True)
            if "does not exist" in err:
                raise TTSError(f"espeak-ng has no voice named '{voice}'")
            raise TTSError(f"espeak-ng failed (exit {r.returncode}): {err or 'no output'}")
        _finish(raw, out_path)


def phonemes(text: str, voice: str, executable: str | None = None) -> str:
    """espeak-ng's phoneme mnemonics for ``text`` (``espeak-ng -q -x -v VOICE``)."""
    exe = executable or shutil.which("espeak-ng")
    if not exe:
        raise TTSError("espeak-ng is not installed")
    r = subprocess.run([exe, "-q", "-x", "-b", "1", "-v", voice, "--stdin"], input=text.encode("utf-8"),
                       capture_output=True, timeout=30)
    if r.returncode != 0:
        raise TTSError(r.stderr.decode("utf-8", "replace").strip())
    return r.stdout.decode("utf-8", "replace").strip()


BACKENDS = {"pyttsx3": Pyttsx3Backend, "espeak-cli": EspeakCliBackend}


def get_backend(name: str | None = None) -> TTSBackend:
    """A backend by name (``pyttsx3`` default, or ``IVRFLOW_TTS_BACKEND``)."""
    name = name or os.environ.get("IVRFLOW_TTS_BACKEND") or "pyttsx3"
    try:
        cls = BACKENDS[name]
    except KeyError:
        raise TTSError(f"unknown TTS backend '{name}' (known: {', '.join(BACKENDS)})") from None
    return cls()
