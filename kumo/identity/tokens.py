"""Fernet tokens and their key repository.

A token is a Fernet message (AES-128-CBC + HMAC-SHA256, from ``cryptography``)
whose plaintext is a compact msgpack payload; nothing about a token is stored.
Keys live in ``<data_dir>/fernet-keys`` as Keystone keeps them: file ``0`` is the
*staged* key (next to become primary), the highest number is the *primary*
(encrypts), the others are *secondary* (still decrypt). Rotation promotes the
staged key, stages a new one and drops the oldest beyond ``max_active_keys``.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PAYLOAD_VERSION = 1

# method name <-> bit, so a token carries its methods in one small integer
METHODS = ("password", "token", "application_credential", "totp", "mapped", "oauth1")


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class TokenPayload:
    user_id: str
    methods: tuple[str, ...]
    expires_at: float
    issued_at: float
    audit_ids: tuple[str, ...]
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    app_cred_id: str | None = None
    trust_id: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]

    @property
    def audit_chain_id(self) -> str:
        return self.audit_ids[-1]

    def pack(self) -> bytes:
        bits = 0
        for m in self.methods:
            bits |= 1 << METHODS.index(m)
        return msgpack.packb(
            [
                PAYLOAD_VERSION,
                self.user_id,
                bits,
                round(self.expires_at, 6),
                round(self.issued_at, 6),
                list(self.audit_ids),
                self.project_id,
                self.domain_id,
                self.system,
                self.app_cred_id,
                self.trust_id,
            ]
        )

    @classmethod
    def unpack(cls, data: bytes) -> TokenPayload:
        items = msgpack.unpackb(data)
        if not isinstance(items, list) or not items or items[0] != PAYLOAD_VERSION:
            raise InvalidToken("unknown payload version")
        _, user_id, bits, expires_at, issued_at, audit_ids, project_id, domain_id, system, app_cred, trust = items
        methods = tuple(m for i, m in enumerate(METHODS) if bits & (1 << i))
        return cls(
            user_id=user_id,
            methods=methods,
            expires_at=expires_at,
            issued_at=issued_at,
            audit_ids=tuple(audit_ids),
            project_id=project_id,
            domain_id=domain_id,
            system=bool(system),
            app_cred_id=app_cred,
            trust_id=trust,
        )


class KeyRepository:
    def __init__(self, path: Path, max_active_keys: int = 3) -> None:
        self.path = path
        self.max_active_keys = max_active_keys

    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write(self, index: int, key: bytes) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / str(index))

    def setup(self) -> None:
        """Create the repository with a staged and a primary key, unless it exists."""
        if self._indexes():
            return
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write(0, Fernet.generate_key())
        self._write(1, Fernet.generate_key())

    def rotate(self) -> list[int]:
        """Promote the staged key to primary, stage a new key, prune old secondaries."""
        self.setup()
        indexes = self._indexes()
        new_primary = max(indexes) + 1
        os.replace(self.path / "0", self.path / str(new_primary))
        self._write(0, Fernet.generate_key())
        indexes = self._indexes()
        secondaries = [i for i in indexes if i not in (0, new_primary)]
        excess = len(indexes) - self.max_active_keys
        for index in secondaries[: max(0, excess)]:
            (self.path / str(index)).unlink()
        return self._indexes()

    def load(self) -> MultiFernet:
        indexes = self._indexes()
        if not indexes:
            raise RuntimeError(f"no Fernet keys in {self.path}; run setup first")
        ordered = sorted(indexes, reverse=True)  # primary first, staged (0) last
        return MultiFernet([Fernet((self.path / str(i)).read_bytes().strip()) for i in ordered])

    def signature(self) -> tuple[tuple[int, float], ...]:
        """Changes whenever keys are rotated (so long-running processes reload)."""
        return tuple((i, (self.path / str(i)).stat().st_mtime) for i in self._indexes())


class TokenFormatter:
    """Encrypts payloads to token strings and back, reloading keys after rotation."""

    def __init__(self, keys: KeyRepository, reload_interval: float = 5.0) -> None:
        self.keys = keys
        self.reload_interval = reload_interval
        self._fernet = keys.load()
        self._signature = keys.signature()
        self._checked = time.monotonic()

    def _current(self) -> MultiFernet:
        now = time.monotonic()
        if now - self._checked > self.reload_interval:
            self._checked = now
            sig = self.keys.signature()
            if sig != self._signature:
                self._fernet, self._signature = self.keys.load(), sig
        return self._fernet

    def reload(self) -> None:
        self._fernet, self._signature = self.keys.load(), self.keys.signature()

    def encode(self, payload: TokenPayload) -> str:
        token = self._current().encrypt_at_time(payload.pack(), int(payload.issued_at))
        return token.decode().rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        """The payload of a token this cloud issued; raises InvalidToken otherwise."""
        token = token.strip()
        if not token or len(token) > 1024:
            raise InvalidToken("bad length")
        padded = token + "=" * (-len(token) % 4)
        try:
            data = self._current().decrypt(padded.encode())
        except InvalidToken:
            self.reload()  # a key may have been rotated in by another process just now
            data = self._current().decrypt(padded.encode())
        try:
            return TokenPayload.unpack(data)
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise InvalidToken(str(exc)) from exc
