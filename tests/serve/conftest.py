"""Fixtures for the `ivrflow serve` tests (helpers in serve_helpers.py, put on sys.path)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "runtime"))

from serve_helpers import RT_FIX, build_audio  # noqa: E402


@pytest.fixture(scope="session")
def audio(tmp_path_factory):
    """Real espeak-ng audio of the runtime fixture catalogs (demo, bank), built once."""
    cache_dir = tmp_path_factory.mktemp("prompt-cache")
    backend, cache = build_audio(cache_dir, [(RT_FIX / "prompts", "demo"), (RT_FIX / "prompts", "bank")])
    return backend, cache, cache_dir
