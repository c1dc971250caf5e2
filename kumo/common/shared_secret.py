"""Secrets shared between the control plane and agents (agent APIs, the metadata proxy).

Each lives in a 0600 file in the data dir, created exactly once by whichever process needs it
first (O_EXCL, so concurrent starters agree on one value), unless the settings give one.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from kumo.common.errors import Unauthorized


def ensure(path: Path) -> Path:
    """``path``, holding a fresh random secret if it did not exist yet."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32) + "\n")
    return path


def load(path: Path, configured: str = "") -> str:
    """The configured secret, else the one in ``path`` (created on first use)."""
    return configured or ensure(path).read_text().strip()


def require(given: str, expected: str) -> None:
    """401 unless ``given`` is the secret (compared in constant time)."""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("The agent secret is missing or wrong.")
