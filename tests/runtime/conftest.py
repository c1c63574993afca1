"""Runtime test fixtures.  Helpers live in rt_helpers.py (this directory is put on sys.path)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from rt_helpers import CALLS, FIX, load_flow  # noqa: E402

from engine.runtime.resolver import make_resolver  # noqa: E402


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()
    yield


@pytest.fixture
def demo():
    return load_flow()


@pytest.fixture
def text_resolver(demo):
    resolver, note = make_resolver(demo, FIX / "prompts")
    assert note is None, note
    return resolver
