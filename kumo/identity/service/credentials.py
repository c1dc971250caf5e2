"""Credentials (``/v3/credentials``) and the OS-EC2 view of the ``ec2`` ones."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.common.errors import Conflict, Forbidden
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, not_found
from kumo.identity.service.core import Identity, extra_of, new_id, require_str

C = m.Credential
_KNOWN = ("user_id", "project_id", "type", "blob")


def hash_access(access: str) -> str:
    return hashlib.sha256(access.encode("utf-8")).hexdigest()


def check_primary_auth(ctx: RequestContext) -> None:
    """Delegated tokens (trusts, application credentials) may not touch credentials."""
    if ctx.trust_id or ctx.application_credential_id:
        raise Forbidden(
            "You are not authorized to perform the requested action: "
            "Delegated tokens cannot access credentials directly."
        )


def _ec2_blob(blob: str) -> dict[str, Any]:
    try:
        data = json.loads(blob)
    except ValueError:
        raise ValidationError("Invalid blob in credential") from None
    if not data or not isinstance(data, dict):
        raise ValidationError("Expecting to find blob in credential.")
    if not isinstance(data.get("access"), str) or not data["access"]:
        raise ValidationError("Expecting to find access in credential.")
    return data


def _fields(body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, max_len in (("user_id", 64), ("type", 255), ("blob", 65535)):
        if create or key in body:
            fields[key] = require_str(body, key, max_len=max_len)
    if "project_id" in body:
        fields["project_id"] = require_str(body, "project_id", max_len=64, required=False)
    return fields


def create(ident: Identity, body: dict[str, Any]) -> m.Credential:
    fields = _fields(body, create=True)
    if fields["type"].lower() == "ec2":
        if not fields.get("project_id"):
            raise ValidationError("'project_id' is a required property for ec2 credentials.")
        cred_id = hash_access(_ec2_blob(fields["blob"])["access"])
    else:
        cred_id = new_id()
    with ident.db.session() as s:
        if s.get(C, cred_id) is not None:
            raise Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, {cred_id}.")
        fields.setdefault("project_id", None)
        cred = C(id=cred_id, extra=extra_of(body, _KNOWN), **fields)
        s.add(cred)
        s.flush()
    return cred


def list_all(ident: Identity, user_id: str | None = None, type: str | None = None) -> list[m.Credential]:
    with ident.db.reader() as s:
        q = select(C).order_by(C.id)
        if user_id is not None:
            q = q.where(C.user_id == user_id)
        if type is not None:
            q = q.where(C.type == type)
        items = list(s.scalars(q))
        return items


def get(ident: Identity, cred_id: str) -> m.Credential:
    with ident.db.reader() as s:
        cred = ident.get(s, C, cred_id, "credential")
        return cred


def update(ident: Identity, cred_id: str, body: dict[str, Any]) -> m.Credential:
    if "id" in body and body["id"] != cred_id:
        raise ValidationError("Cannot change ID.")
    fields = _fields(body, create=False)
    with ident.db.session() as s:
        cred = ident.get(s, C, cred_id, "credential")
        new_type = fields.get("type", cred.type)
        if new_type.lower() == "ec2":
            if not fields.get("project_id", cred.project_id):
                raise ValidationError("'project_id' is a required property for ec2 credentials.")
            new_blob = _ec2_blob(fields.get("blob", cred.blob))
            if cred.type.lower() == "ec2":
                try:
                    old_blob = json.loads(cred.blob)
                except ValueError:
                    old_blob = {}
                for key in ("trust_id", "app_cred_id", "access_token_id", "access_id"):
                    if old_blob.get(key) != new_blob.get(key):
                        raise ValidationError(f"{key} can not be updated for credential")
        for key, value in fields.items():
            setattr(cred, key, value)
        extra = extra_of(body, _KNOWN)
        if extra:
            cred.extra = {**(cred.extra or {}), **extra}
        s.flush()
    return cred


def delete(ident: Identity, cred_id: str) -> None:
    with ident.db.session() as s:
        s.delete(ident.get(s, C, cred_id, "credential"))


# -- OS-EC2 ----------------------------------------------------------------------
def ec2_create(ident: Identity, user_id: str, project_id: Any, trust_id: str | None) -> m.Credential:
    with ident.db.session() as s:
        ident.get(s, m.User, user_id, "user")
        ident.get(s, m.Project, project_id, "project")
        blob = {"access": uuid.uuid4().hex, "secret": uuid.uuid4().hex, "trust_id": trust_id}
        cred = C(
            id=hash_access(blob["access"]),
            user_id=user_id,
            project_id=project_id,
            type="ec2",
            blob=json.dumps(blob),
            extra={},
        )
        s.add(cred)
        s.flush()
    return cred


def ec2_list(ident: Identity, user_id: str) -> list[m.Credential]:
    with ident.db.reader() as s:
        ident.get(s, m.User, user_id, "user")
        items = list(s.scalars(select(C).where(C.user_id == user_id, C.type == "ec2").order_by(C.id)))
        return items


def ec2_get(ident: Identity, user_id: str, access: str) -> m.Credential:
    with ident.db.reader() as s:
        ident.get(s, m.User, user_id, "user")
        cred = s.get(C, hash_access(access))
        if cred is None or cred.type != "ec2" or cred.user_id != user_id:
            raise not_found("credential", access)
        return cred


def ec2_delete(ident: Identity, user_id: str, access: str) -> None:
    cred = ec2_get(ident, user_id, access)
    with ident.db.session() as s:
        obj = s.get(C, cred.id)
        if obj is not None:
            s.delete(obj)


def ec2_view(cred: m.Credential) -> dict[str, Any]:
    try:
        blob = json.loads(cred.blob)
    except ValueError:
        blob = {}
    if not isinstance(blob, dict):
        blob = {}
    return {
        "user_id": cred.user_id,
        "tenant_id": cred.project_id,
        "access": blob.get("access"),
        "secret": blob.get("secret"),
        "trust_id": blob.get("trust_id"),
    }
