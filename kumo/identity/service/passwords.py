"""Password and secret hashing (bcrypt), with constant-time checks."""

from __future__ import annotations

import base64
import hashlib

import bcrypt

# Verified against when a user does not exist, so a miss costs the same time as a hit.
_DUMMY = bcrypt.hashpw(b"kumo-dummy-password", bcrypt.gensalt(4))


def _secret(password: str) -> bytes:
    raw = password.encode("utf-8")
    # bcrypt reads at most 72 bytes; longer secrets are pre-hashed so no byte is ignored.
    if len(raw) > 72:
        raw = base64.b64encode(hashlib.sha256(raw).digest())
    return raw


class Hasher:
    def __init__(self, rounds: int = 12) -> None:
        self.rounds = rounds

    def hash(self, password: str) -> str:
        return bcrypt.hashpw(_secret(password), bcrypt.gensalt(self.rounds)).decode()

    def verify(self, password: str, hashed: str | None) -> bool:
        if not hashed:
            bcrypt.checkpw(b"x", _DUMMY)
            return False
        try:
            return bcrypt.checkpw(_secret(password), hashed.encode())
        except ValueError:
            return False
