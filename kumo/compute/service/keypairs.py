"""Keypairs: generate (RSA, x509) or import, per user."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound, OverLimit
from kumo.compute.models import Keypair
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService, now

_NAME = re.compile(r"^(?! )[a-zA-Z0-9 _-]+(?<! )$")  # "." and "@" only from 2.92
_NAME_292 = re.compile(r"^(?! )[a-zA-Z0-9. _@-]+(?<! )$")


def ssh_fingerprint(public_key: str) -> str:
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint")
    try:
        key = serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
        blob = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).split()[1]
        digest = hashlib.md5(base64.b64decode(blob), usedforsecurity=False).hexdigest()
    except Exception:
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint") from None
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


def x509_fingerprint(pem: str) -> str:
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except Exception:
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint") from None
    digest = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303 - Nova's x509 fingerprint is SHA-1
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _generate_ssh() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public + " Generated-by-Nova"


def _generate_x509(user_id: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user_id or "kumo")])
    start = now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return private, cert.public_bytes(serialization.Encoding.PEM).decode()


def _target_user(svc: ComputeService, ctx: RequestContext, user_id: str | None) -> str:
    if user_id and user_id != ctx.user_id:
        svc.enforce(ctx, "keypair:any_user")
        return user_id
    return ctx.user_id or ""


def create_keypair(
    svc: ComputeService, ctx: RequestContext, body: Any, mv: Any
) -> tuple[Keypair, str | None]:
    data = v.body_key(body, "keypair")
    allowed = {"name", "public_key"}
    if mv.matches("2.2"):
        allowed.add("type")
    if mv.matches("2.10"):
        allowed.add("user_id")
    v.only_keys(data, allowed)
    if "name" not in data:
        raise BadRequest("Invalid input for field/attribute keypair. 'name' is a required property")
    name = data["name"]
    pattern = _NAME_292 if mv.matches("2.92") else _NAME
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or not pattern.match(name):
        raise BadRequest(
            f"Invalid input for field/attribute name. Value: {name!r}. Keypair name contains unsafe characters"
        )
    ktype = data.get("type", "ssh")
    if ktype not in ("ssh", "x509"):
        raise BadRequest(
            f"Invalid input for field/attribute type. Value: {ktype}. '{ktype}' is not one of ['ssh', 'x509']"
        )
    user_id = _target_user(svc, ctx, data.get("user_id"))
    public = data.get("public_key")
    private = None
    if public is None:
        if mv.matches("2.92"):
            raise BadRequest("Invalid input for field/attribute keypair. 'public_key' is a required property")
        private, public = _generate_x509(user_id) if ktype == "x509" else _generate_ssh()
    elif not isinstance(public, str):
        raise BadRequest("Keypair data is invalid: failed to generate fingerprint")
    fingerprint = x509_fingerprint(public) if ktype == "x509" else ssh_fingerprint(public)
    limit = svc.extras.get("quota_limit", lambda *_: -1)(ctx.project_id, "key_pairs")
    with svc.db.session() as s:
        if s.execute(select(Keypair).where(Keypair.user_id == user_id, Keypair.name == name)).first():
            raise Conflict(f"Key pair '{name}' already exists.")
        count = s.execute(
            select(func.count()).select_from(Keypair).where(Keypair.user_id == user_id)
        ).scalar_one()
        if limit >= 0 and count + 1 > limit:
            raise OverLimit("Quota exceeded, too many key pairs.")
        kp = Keypair(
            user_id=user_id,
            name=name,
            type=ktype,
            public_key=public,
            fingerprint=fingerprint,
            created_at=now(),
        )
        s.add(kp)
    return kp, private


def list_keypairs(svc: ComputeService, ctx: RequestContext, user_id: str | None) -> list[Keypair]:
    uid = _target_user(svc, ctx, user_id)
    with svc.db.reader() as s:
        return list(s.execute(select(Keypair).where(Keypair.user_id == uid).order_by(Keypair.name)).scalars())


def get_keypair(svc: ComputeService, ctx: RequestContext, name: str, user_id: str | None = None) -> Keypair:
    uid = _target_user(svc, ctx, user_id)
    with svc.db.reader() as s:
        kp = s.execute(
            select(Keypair).where(Keypair.user_id == uid, Keypair.name == name)
        ).scalar_one_or_none()
    if kp is None:
        raise NotFound(f"Keypair {name} not found for user {uid}")
    return kp


def delete_keypair(svc: ComputeService, ctx: RequestContext, name: str, user_id: str | None = None) -> None:
    uid = _target_user(svc, ctx, user_id)
    with svc.db.session() as s:
        kp = s.execute(
            select(Keypair).where(Keypair.user_id == uid, Keypair.name == name)
        ).scalar_one_or_none()
        if kp is None:
            raise NotFound(f"Keypair {name} not found for user {uid}")
        s.delete(kp)
