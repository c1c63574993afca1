"""PIN hashing: scrypt with per-PIN salt and stored parameters; nothing leaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.store import InvalidInput, ScryptParams
from engine.store.pin import DEFAULT_PARAMS, check_pin, hash_pin, validate_pin

TINY = ScryptParams(n=16, r=1, p=1)


def test_hash_format_stores_parameters_and_salt():
    h = hash_pin("4321", ScryptParams(n=2**10, r=8, p=1))
    scheme, n, r, p, salt, dk = h.split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    assert "4321" not in h
    assert check_pin("4321", h)
    assert not check_pin("4322", h)


def test_same_pin_gets_different_salts():
    a, b = hash_pin("123456", TINY), hash_pin("123456", TINY)
    assert a != b and a.split("$")[4] != b.split("$")[4]
    assert check_pin("123456", a) and check_pin("123456", b)


def test_default_parameters_are_memory_hard():
    assert DEFAULT_PARAMS.n >= 2**14 and DEFAULT_PARAMS.r >= 8
    h = hash_pin("2468", DEFAULT_PARAMS)
    assert h.split("$")[1] == str(DEFAULT_PARAMS.n)
    assert check_pin("2468", h)


def test_check_uses_the_stored_parameters():
    h = hash_pin("5555", ScryptParams(n=2**8, r=4, p=2))
    assert check_pin("5555", h)          # verified with n=256,r=4,p=2 read from the hash


@pytest.mark.parametrize("bad", ["", "abc", "$$$", "scrypt$x$8$1$AA$AA", "bcrypt$1$2$3$4$5",
                                 "scrypt$3$8$1$AAAA$AAAA", "scrypt$4194304$8$1$AAAA$" + "A" * 44])
def test_malformed_or_hostile_hashes_never_verify(bad):
    assert check_pin("1234", bad) is False


@pytest.mark.parametrize("bad", ["123", "1234567890123", "12a4", "１２３４", " 1234", None, 1234])
def test_validate_pin_rejects_without_echoing(bad):
    with pytest.raises(InvalidInput) as e:
        validate_pin(bad)
    if isinstance(bad, str) and bad.strip():
        assert bad.strip() not in str(e.value)


def test_bad_parameters_rejected():
    for kw in ({"n": 1000}, {"n": 2**21}, {"r": 0}, {"p": 99}, {"dklen": 8}):
        with pytest.raises(InvalidInput):
            ScryptParams(**kw)


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="0123456789", min_size=4, max_size=12),
       st.text(alphabet="0123456789", min_size=4, max_size=12))
def test_roundtrip_property(pin, other):
    h = hash_pin(pin, TINY)
    assert check_pin(pin, h)
    assert check_pin(other, h) == (other == pin)
