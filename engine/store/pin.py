"""PIN hashing with scrypt (memory-hard), per-PIN salt, parameters stored with the hash.

Encoded form: ``scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>``.  PIN values are never
logged, stored in clear, or included in error messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass

from .errors import InvalidInput

PIN_MIN, PIN_MAX = 4, 12
_MAX_N = 2**20          # refuse absurd stored parameters (memory bomb)


@dataclass(frozen=True)
class ScryptParams:
    n: int = 2**14
    r: int = 8
    p: int = 1
    dklen: int = 32
    salt_bytes: int = 16

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or self.n > _MAX_N:
            raise InvalidInput(f"scrypt n must be a power of two between 2 and {_MAX_N}")
        if not (1 <= self.r <= 32 and 1 <= self.p <= 16 and 16 <= self.dklen <= 64):
            raise InvalidInput("scrypt r/p/dklen out of range")


DEFAULT_PARAMS = ScryptParams()


def validate_pin(pin: object) -> str:
    """Return the PIN if it is 4-12 ASCII digits, else raise InvalidInput (value not echoed)."""
    if not isinstance(pin, str) or not (PIN_MIN <= len(pin) <= PIN_MAX) or not (
        pin.isascii() and pin.isdigit()
    ):
        raise InvalidInput(f"PIN must be a string of {PIN_MIN} to {PIN_MAX} digits")
    return pin


def _derive(pin: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 256 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)


def hash_pin(pin: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    validate_pin(pin)
    salt = os.urandom(params.salt_bytes)
    dk = _derive(pin, salt, params.n, params.r, params.p, params.dklen)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"scrypt${params.n}${params.r}${params.p}${b64(salt)}${b64(dk)}"


def check_pin(pin: str, encoded: str) -> bool:
    """Constant-time comparison of ``pin`` against an encoded hash. False on any mismatch."""
    try:
        scheme, n, r, p, salt_b64, dk_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        params = ScryptParams(n=int(n), r=int(r), p=int(p), dklen=len(base64.b64decode(dk_b64)))
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(dk_b64)
    except (ValueError, InvalidInput, AttributeError):
        return False
    got = _derive(pin, salt, params.n, params.r, params.p, params.dklen)
    return hmac.compare_digest(got, expected)
