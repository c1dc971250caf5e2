"""Entity -> JSON, the Keystone v3 way (``links.self`` and ``extra`` merged in)."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import Call
from kumo.identity import models as m
from kumo.identity.service.core import iso


def _with_extra(obj: Any, body: dict[str, Any]) -> dict[str, Any]:
    extra = getattr(obj, "extra", None) or {}
    return {**extra, **body}


def render_domain(call: Call, d: m.Domain) -> dict[str, Any]:
    return _with_extra(
        d,
        {
            "id": d.id,
            "name": d.name,
            "description": d.description,
            "enabled": d.enabled,
            "tags": list((d.extra or {}).get("tags") or []),
            "options": dict((d.extra or {}).get("options") or {}),
            "links": {"self": call.url(f"/v3/domains/{d.id}")},
        },
    )


def render_project(call: Call, p: m.Project) -> dict[str, Any]:
    return _with_extra(
        p,
        {
            "id": p.id,
            "name": p.name,
            "domain_id": p.domain_id,
            "parent_id": p.parent_id or p.domain_id,
            "description": p.description,
            "enabled": p.enabled,
            "is_domain": False,
            "tags": list(p.tags or []),
            "options": dict(p.options or {}),
            "links": {"self": call.url(f"/v3/projects/{p.id}")},
        },
    )


def render_user(call: Call, u: m.User) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": iso(u.password_expires_at),
        "options": dict(u.options or {}),
        "links": {"self": call.url(f"/v3/users/{u.id}")},
    }
    if u.default_project_id:
        body["default_project_id"] = u.default_project_id
    if u.description:
        body["description"] = u.description
    if u.email:
        body["email"] = u.email
    return _with_extra(u, body)


def render_group(call: Call, g: m.Group) -> dict[str, Any]:
    return _with_extra(
        g,
        {
            "id": g.id,
            "name": g.name,
            "domain_id": g.domain_id,
            "description": g.description,
            "links": {"self": call.url(f"/v3/groups/{g.id}")},
        },
    )


def render_role(call: Call, r: m.Role) -> dict[str, Any]:
    return _with_extra(
        r,
        {
            "id": r.id,
            "name": r.name,
            "domain_id": r.domain_id,
            "description": r.description,
            "options": dict(r.options or {}),
            "links": {"self": call.url(f"/v3/roles/{r.id}")},
        },
    )
