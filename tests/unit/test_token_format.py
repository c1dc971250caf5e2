"""Fernet token payloads: roundtrip, tampering, foreign keys."""

from __future__ import annotations

import time

import pytest
from cryptography.fernet import InvalidToken

from kumo.identity.tokens import METHODS, KeyRepository, TokenFormatter, TokenPayload, new_audit_id


@pytest.fixture
def formatter(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    return TokenFormatter(repo)


def payload(**kw) -> TokenPayload:
    now = time.time()
    base = dict(
        user_id="u" * 32,
        methods=("password",),
        expires_at=now + 3600,
        issued_at=now,
        audit_ids=(new_audit_id(),),
    )
    base.update(kw)
    return TokenPayload(**base)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"project_id": "p" * 32},
        {"domain_id": "default"},
        {"system": True},
        {"project_id": "p" * 32, "app_cred_id": "a" * 32, "methods": ("application_credential",)},
        {"project_id": "p" * 32, "trust_id": "t" * 32, "methods": ("password", "token")},
        {"methods": tuple(METHODS), "audit_ids": (new_audit_id(), new_audit_id())},
    ],
)
def test_roundtrip(formatter, extra):
    p = payload(**extra)
    token = formatter.encode(p)
    assert isinstance(token, str) and "=" not in token  # padding stripped, as Keystone does
    back = formatter.decode(token)
    assert back.user_id == p.user_id
    assert set(back.methods) == set(p.methods)
    assert back.audit_ids == p.audit_ids
    assert back.project_id == p.project_id
    assert back.domain_id == p.domain_id
    assert back.system == p.system
    assert back.app_cred_id == p.app_cred_id
    assert back.trust_id == p.trust_id
    assert back.expires_at == pytest.approx(p.expires_at, abs=1e-5)
    assert back.issued_at == pytest.approx(p.issued_at, abs=1e-5)


def test_audit_ids():
    a, b = new_audit_id(), new_audit_id()
    assert a != b and len(a) == 22  # 16 bytes urlsafe-base64, unpadded (Keystone's form)
    p = payload(audit_ids=(a, b))
    assert p.audit_id == a and p.audit_chain_id == b


def test_token_is_compact(formatter):
    token = formatter.encode(payload(project_id="p" * 32))
    assert len(token) < 255  # fits in headers and Keystone's 255-char token columns


@pytest.mark.parametrize("position", [10, 60, -10])
def test_tampered_token_rejected(formatter, position):
    token = formatter.encode(payload())
    i = position % len(token)
    flipped = "A" if token[i] != "A" else "B"
    tampered = token[:i] + flipped + token[i + 1 :]
    with pytest.raises(InvalidToken):
        formatter.decode(tampered)


@pytest.mark.parametrize("junk", ["", "   ", "not-a-token", "gAAAAA", "x" * 2000, "%%%%"])
def test_garbage_rejected(formatter, junk):
    with pytest.raises(InvalidToken):
        formatter.decode(junk)


def test_truncated_token_rejected(formatter):
    token = formatter.encode(payload())
    with pytest.raises(InvalidToken):
        formatter.decode(token[:-8])


def test_token_from_other_key_repository_rejected(formatter, tmp_path):
    other_repo = KeyRepository(tmp_path / "other")
    other_repo.setup()
    other = TokenFormatter(other_repo)
    token = other.encode(payload())
    assert other.decode(token).user_id == "u" * 32
    with pytest.raises(InvalidToken):
        formatter.decode(token)


def test_foreign_payload_version_rejected(formatter):
    import msgpack

    data = msgpack.packb([99, "u", 1, time.time() + 60, time.time(), ["a"], None, None, False, None, None])
    token = formatter._current().encrypt(data).decode().rstrip("=")
    with pytest.raises(InvalidToken):
        formatter.decode(token)
