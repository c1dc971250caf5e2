"""Password hashing: bcrypt, with no byte of a long password ignored."""

from __future__ import annotations

import pytest

from kumo.identity.service.passwords import Hasher


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher(rounds=4)


def test_hash_and_verify(hasher):
    h = hasher.hash("correct horse")
    assert h.startswith("$2") and "correct" not in h
    assert hasher.verify("correct horse", h)
    assert not hasher.verify("correct horsE", h)
    assert not hasher.verify("", h)


def test_salted(hasher):
    assert hasher.hash("same") != hasher.hash("same")


def test_rounds_are_used():
    assert Hasher(rounds=5).hash("x").startswith("$2b$05$")


@pytest.mark.parametrize("length", [72, 73, 100, 1000])
def test_long_passwords_differ_in_their_tail(hasher, length):
    """bcrypt alone ignores everything after 72 bytes; kumo must not."""
    a = "p" * (length - 1) + "a"
    b = "p" * (length - 1) + "b"
    h = hasher.hash(a)
    assert hasher.verify(a, h)
    assert not hasher.verify(b, h)


def test_long_multibyte_passwords(hasher):
    a = "ü" * 40 + "x"  # 81 bytes in UTF-8
    b = "ü" * 40 + "y"
    h = hasher.hash(a)
    assert hasher.verify(a, h)
    assert not hasher.verify(b, h)


def test_prefix_of_long_password_does_not_verify(hasher):
    long = "z" * 100
    h = hasher.hash(long)
    assert not hasher.verify("z" * 72, h)


@pytest.mark.parametrize("stored", [None, "", "not-a-bcrypt-hash", "$2b$04$short"])
def test_missing_or_corrupt_hash_never_verifies(hasher, stored):
    assert hasher.verify("anything", stored) is False
