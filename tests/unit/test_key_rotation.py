"""The Fernet key repository: setup, rotation, pruning, and tokens across rotations."""

from __future__ import annotations

import stat
import time

import pytest
from cryptography.fernet import InvalidToken

from kumo.identity.tokens import KeyRepository, TokenFormatter, TokenPayload, new_audit_id


def payload() -> TokenPayload:
    now = time.time()
    return TokenPayload(
        user_id="u1", methods=("password",), expires_at=now + 600, issued_at=now, audit_ids=(new_audit_id(),)
    )


def indexes(repo: KeyRepository) -> list[int]:
    return sorted(int(p.name) for p in repo.path.iterdir() if p.name.isdigit())


def test_setup_creates_staged_and_primary(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    assert indexes(repo) == [0, 1]
    for i in (0, 1):
        f = repo.path / str(i)
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert len(f.read_bytes().strip()) == 44  # a urlsafe-base64 32-byte Fernet key
    assert (repo.path / "0").read_bytes() != (repo.path / "1").read_bytes()


def test_setup_is_idempotent(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    before = {i: (repo.path / str(i)).read_bytes() for i in (0, 1)}
    repo.setup()
    assert {i: (repo.path / str(i)).read_bytes() for i in (0, 1)} == before


def test_load_without_keys_fails(tmp_path):
    with pytest.raises(RuntimeError):
        KeyRepository(tmp_path / "none").load()


def test_rotate_promotes_staged_key(tmp_path):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    staged = (repo.path / "0").read_bytes()
    assert repo.rotate() == [0, 1, 2]
    assert (repo.path / "2").read_bytes() == staged  # the staged key is the new primary
    assert (repo.path / "0").read_bytes() != staged  # and a new key is staged


@pytest.mark.parametrize("max_keys", [2, 3, 5])
def test_rotate_keeps_max_active_keys(tmp_path, max_keys):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=max_keys)
    repo.setup()
    for n in range(1, 8):
        keys = repo.rotate()
        assert len(keys) == min(2 + n, max_keys)
        assert keys[0] == 0  # a staged key is always there
        assert max(keys) == 1 + n  # the primary is the newest
        assert keys == indexes(repo)


def test_primary_encrypts(tmp_path):
    """A token is encrypted with the highest-numbered key alone."""
    from cryptography.fernet import Fernet

    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    repo.rotate()
    token = TokenFormatter(repo).encode(payload())
    padded = token + "=" * (-len(token) % 4)
    Fernet((repo.path / "2").read_bytes().strip()).decrypt(padded.encode())
    with pytest.raises(InvalidToken):
        Fernet((repo.path / "1").read_bytes().strip()).decrypt(padded.encode())


def test_token_survives_one_rotation(tmp_path):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    token = TokenFormatter(repo).encode(payload())
    repo.rotate()
    assert TokenFormatter(repo).decode(token).user_id == "u1"


def test_token_encrypted_with_staged_key_is_accepted(tmp_path):
    """Another node may already have promoted the staged key: its tokens must decode here."""
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    here = TokenFormatter(repo)
    other = KeyRepository(tmp_path / "other")
    other.path.mkdir()
    (other.path / "1").write_bytes((repo.path / "0").read_bytes())  # their primary = our staged
    token = TokenFormatter(other).encode(payload())
    assert here.decode(token).user_id == "u1"


def test_old_token_rejected_after_enough_rotations(tmp_path):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    token = TokenFormatter(repo).encode(payload())  # encrypted with key 1
    repo.rotate()  # keys 0,1,2: key 1 is now a secondary
    assert TokenFormatter(repo).decode(token).user_id == "u1"
    repo.rotate()  # keys 0,2,3: key 1 is gone
    with pytest.raises(InvalidToken):
        TokenFormatter(repo).decode(token)


def test_running_formatter_picks_up_rotation(tmp_path):
    """A long-running process notices keys rotated by ``kumo identity rotate-keys``."""
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    running = TokenFormatter(repo, reload_interval=0)
    old = running.encode(payload())
    repo.rotate()
    repo.rotate()  # the key of ``old`` is pruned
    new = TokenFormatter(repo).encode(payload())
    assert running.decode(new).user_id == "u1"  # a token from the new primary
    with pytest.raises(InvalidToken):
        running.decode(old)


def test_signature_changes_on_rotation(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    sig = repo.signature()
    repo.rotate()
    assert repo.signature() != sig
