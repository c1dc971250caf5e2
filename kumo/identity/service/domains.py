"""Domains, plus the field validators projects, users and groups share.

Domains keep Keystone's project-style ``tags`` and ``options`` in ``extra``
(under those two keys), which ``render_domain`` reads back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.common.errors import Forbidden
from kumo.identity import models as m
from kumo.identity.errors import ValidationError, duplicate
from kumo.identity.service.core import (
    DEFAULT_DOMAIN_ID,
    Identity,
    extra_of,
    new_id,
    require_bool,
    require_object,
    utcnow,
)

KNOWN = ("name", "description", "enabled", "tags", "options")
PROJECT_OPTIONS = ("immutable",)
MAX_TAGS = 80
_ID_RE = re.compile(r"^[a-zA-Z0-9-]+$")
_TAG_RE = re.compile(r"^[^,/]*$")


@contextmanager
def reading(ident: Identity) -> Iterator[Session]:
    """A read-only session whose objects stay usable (detached, loaded) after it ends."""
    with ident.db.reader() as s:
        yield s


# -- validators shared by domains, projects, users and groups -------------------------


def check_name(body: dict[str, Any], *, max_len: int = 64, required: bool = True) -> str | None:
    """Keystone's name rule: a string of 1..max_len characters, not all whitespace; stripped."""
    if "name" not in body or (body["name"] is None and not required):
        if required:
            raise ValidationError("'name' is a required property.")
        return None
    value = body["name"]
    if not isinstance(value, str):
        raise ValidationError(f"Invalid input for field 'name': {value!r} is not of type 'string'.")
    if not value.strip():
        raise ValidationError(f"Invalid input for field 'name': {value!r} is too short or only whitespace.")
    if len(value) > max_len:
        raise ValidationError(
            f"Invalid input for field 'name': {value!r} is too long (over {max_len} characters)."
        )
    return value.strip()


def check_description(body: dict[str, Any]) -> str | None:
    """None when absent; "" for an explicit null."""
    if "description" not in body:
        return None
    value = body["description"]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(
            f"Invalid input for field 'description': {value!r} is not of type 'string', 'null'."
        )
    return value


def check_id(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64 or not _ID_RE.match(value):
        raise ValidationError(f"Invalid input for field '{key}': {value!r} is not a valid id.")
    return value


def check_enabled(body: dict[str, Any]) -> bool | None:
    if "enabled" in body and body["enabled"] is None:
        raise ValidationError("Invalid input for field 'enabled': None is not of type 'boolean'.")
    return require_bool(body, "enabled")


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str):
        raise ValidationError(f"Invalid input for field 'tags': {tag!r} is not of type 'string'.")
    if not tag or len(tag) > 255:
        raise ValidationError(f"Invalid input for field 'tags': {tag!r} must be 1 to 255 characters long.")
    if not _TAG_RE.match(tag):
        raise ValidationError(f"Invalid input for field 'tags': {tag!r} must not contain '/' or ','.")
    return tag


def check_tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValidationError(f"Invalid input for field 'tags': {value!r} is not of type 'array'.")
    tags = [check_tag(t) for t in value]
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"Invalid input for field 'tags': more than {MAX_TAGS} tags.")
    if len(set(tags)) != len(tags):
        raise ValidationError("Invalid input for field 'tags': the tags are not unique.")
    return tags


def check_options(body: dict[str, Any], current: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """Merge ``options`` into ``current``: null removes an option, unknown names are a 400.

    ``known`` maps an option name to a validator returning the stored value.
    """
    value = body.get("options")
    if value is None:
        return dict(current)
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid input for field 'options': {value!r} is not of type 'object'.")
    result = dict(current)
    for key, opt in value.items():
        if key not in known:
            raise ValidationError(
                f"Invalid input for field 'options': Additional properties are not allowed ('{key}' was unexpected)."
            )
        if opt is None:
            result.pop(key, None)
        else:
            result[key] = known[key](key, opt)
    return result


def bool_option(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(
            f"Invalid input for field 'options/{key}': {value!r} is not of type 'boolean', 'null'."
        )
    return value


def check_immutable(options: dict[str, Any], body: dict[str, Any], kind: str, ident: str) -> None:
    """An immutable resource may only have its ``immutable`` option changed."""
    if not options.get("immutable"):
        return
    opts = body.get("options")
    if isinstance(opts, dict) and "immutable" in opts and opts["immutable"] in (False, None):
        return
    raise Forbidden(
        f'Unable to update immutable {kind} resource: `{ident}`. Set resource option "immutable" to false first.'
    )


PROJECT_OPTION_CHECKS = {"immutable": bool_option}

# -- domains ------------------------------------------------------------------------


def get_domain(s: Session, domain_id: Any) -> m.Domain:
    return Identity.get(s, m.Domain, domain_id, "domain")


def _check_unique(s: Session, name: str, exclude: str | None = None) -> None:
    q = select(m.Domain.id).where(m.Domain.name == name)
    if exclude:
        q = q.where(m.Domain.id != exclude)
    if s.scalar(q.limit(1)) is not None:
        raise duplicate("domain", "name", name)


def domain_options(d: m.Domain) -> dict[str, Any]:
    return dict((d.extra or {}).get("options") or {})


def create_domain(
    ident: Identity, body: Any, wrapper: str = "domain", known: tuple[str, ...] = KNOWN
) -> m.Domain:
    ref = require_object(body, wrapper)
    name = check_name(ref)
    description = check_description(ref) or ""
    enabled = check_enabled(ref)
    tags = check_tags(ref["tags"]) if ref.get("tags") is not None else []
    options = check_options(ref, {}, PROJECT_OPTION_CHECKS)
    domain_id = new_id()
    if wrapper == "domain" and ref.get("explicit_domain_id") is not None:
        domain_id = check_id(ref, "explicit_domain_id") or domain_id
    extra = extra_of(ref, (*known, "explicit_domain_id"))
    extra.update(tags=tags, options=options)
    with ident.db.session() as s:
        _check_unique(s, name)
        if s.get(m.Domain, domain_id) is not None:
            raise duplicate("domain", "id", domain_id)
        domain = m.Domain(
            id=domain_id,
            name=name,
            description=description,
            enabled=True if enabled is None else enabled,
            extra=extra,
            created_at=utcnow(),
        )
        s.add(domain)
    return domain


def list_domains(ident: Identity, name: str | None = None, enabled: bool | None = None) -> list[m.Domain]:
    with reading(ident) as s:
        q = select(m.Domain)
        if name is not None:
            q = q.where(m.Domain.name == name)
        if enabled is not None:
            q = q.where(m.Domain.enabled == enabled)
        return list(s.scalars(q.order_by(m.Domain.name)))


def find_domain(ident: Identity, domain_id: str) -> m.Domain | None:
    with reading(ident) as s:
        return s.get(m.Domain, domain_id)


def show_domain(ident: Identity, domain_id: str) -> m.Domain:
    with reading(ident) as s:
        return get_domain(s, domain_id)


def update_domain(
    ident: Identity,
    tokens: Any,
    domain_id: str,
    body: Any,
    wrapper: str = "domain",
    known: tuple[str, ...] = KNOWN,
) -> m.Domain:
    ref = require_object(body, wrapper)
    if ref.get("id") is not None and ref["id"] != domain_id:
        raise ValidationError("Cannot change the domain ID.")
    name = check_name(ref, required=False)
    description = check_description(ref)
    enabled = check_enabled(ref)
    tags = check_tags(ref["tags"]) if ref.get("tags") is not None else None
    with ident.db.session() as s:
        domain = get_domain(s, domain_id)
        check_immutable(domain_options(domain), ref, "domain", domain_id)
        options = check_options(ref, domain_options(domain), PROJECT_OPTION_CHECKS)
        if name is not None and name != domain.name:
            _check_unique(s, name, exclude=domain.id)
            domain.name = name
        if description is not None:
            domain.description = description
        extra = {**(domain.extra or {}), **extra_of(ref, known)}
        extra["options"] = options
        extra["tags"] = tags if tags is not None else list((domain.extra or {}).get("tags") or [])
        domain.extra = extra
        if enabled is not None:
            if domain.enabled and not enabled:
                tokens.revoke(s, domain_id=domain.id)
            domain.enabled = enabled
    return domain


def delete_domain(ident: Identity, tokens: Any, domain_id: str) -> None:
    from kumo.identity.service import groups, projects, users

    with ident.db.session() as s:
        domain = get_domain(s, domain_id)
        if domain_options(domain).get("immutable"):
            raise Forbidden(f"Unable to delete immutable domain resource: `{domain_id}`.")
        if domain.enabled:
            raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
        if domain.id == DEFAULT_DOMAIN_ID:
            raise Forbidden("The default domain cannot be deleted.")
        # Children before parents, so no project is removed before its subtree.
        rows = list(s.scalars(select(m.Project).where(m.Project.domain_id == domain.id)))
        depth = {p.id: len(projects.ancestors(s, p)) for p in rows}
        for p in sorted(rows, key=lambda p: -depth[p.id]):
            projects.remove_project(s, tokens, p)
        for u in list(s.scalars(select(m.User).where(m.User.domain_id == domain.id))):
            users.remove_user(s, tokens, u)
        for g in list(s.scalars(select(m.Group).where(m.Group.domain_id == domain.id))):
            groups.remove_group(s, tokens, g)
        role_ids = list(s.scalars(select(m.Role.id).where(m.Role.domain_id == domain.id)))
        if role_ids:
            IR = m.ImpliedRole
            s.execute(delete(m.Assignment).where(m.Assignment.role_id.in_(role_ids)))
            s.execute(delete(IR).where(IR.prior_role_id.in_(role_ids) | IR.implied_role_id.in_(role_ids)))
            s.execute(delete(m.Role).where(m.Role.id.in_(role_ids)))
        s.execute(delete(m.Assignment).where(m.Assignment.target_id == domain.id))
        tokens.revoke(s, domain_id=domain.id)
        s.flush()
        s.delete(domain)
