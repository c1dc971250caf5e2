"""Identity API: ``GET /v3/role_assignments``."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity.api.common import enforce, ident
from kumo.identity.errors import ValidationError
from kumo.identity.service import assignments as svc

api = API()


def _flag(call: Call, name: str) -> bool:
    """Keystone's key-only flags: present and not ``0`` means true (``?effective`` included)."""
    return name in call.query and call.query.get(name) != "0"


def _filters(call: Call) -> svc.Filters:
    q = call.query
    if q.get("scope.domain.id") and q.get("scope.project.id"):
        raise ValidationError("Specify a domain or project, not both")
    if q.get("scope.domain.id") and q.get("scope.system"):
        raise ValidationError("Specify system or domain, not both")
    if q.get("scope.project.id") and q.get("scope.system"):
        raise ValidationError("Specify system or project, not both")
    if q.get("user.id") and q.get("group.id"):
        raise ValidationError("Specify a user or group, not both")
    inherited = None
    if "scope.OS-INHERIT:inherited_to" in q:
        inherited = q.get("scope.OS-INHERIT:inherited_to") == "projects"
    effective = _flag(call, "effective")
    if effective and q.get("group.id"):
        raise ValidationError("Combining effective and group filter will always result in an empty list.")
    if effective and inherited and q.get("scope.domain.id"):
        raise ValidationError(
            "Combining effective, domain and inherited filters will always result in an empty list."
        )
    return svc.Filters(
        role_id=q.get("role.id") or None,
        user_id=q.get("user.id") or None,
        group_id=q.get("group.id") or None,
        system=q.get("scope.system") == "all",
        domain_id=q.get("scope.domain.id") or None,
        project_id=q.get("scope.project.id") or None,
        include_subtree=_flag(call, "include_subtree"),
        inherited=inherited,
        effective=effective,
        include_names=_flag(call, "include_names"),
    )


def _named(ref: dict[str, Any], kind: str) -> dict[str, Any]:
    if f"{kind}_name" not in ref:
        return {"id": ref[f"{kind}_id"]}
    return {
        "id": ref[f"{kind}_id"],
        "name": ref[f"{kind}_name"],
        "domain": {"id": ref[f"{kind}_domain_id"], "name": ref[f"{kind}_domain_name"]},
    }


def render_assignment(call: Call, ref: dict[str, Any]) -> dict[str, Any]:
    """Keystone's formatting of one assignment, ``links.assignment`` pointing at its grant URL."""
    out: dict[str, Any] = {"links": {}}
    indirect = ref.get("indirect", {})
    inherited = bool(ref.get("inherited_to_projects"))
    link = ""
    if "project_id" in ref:
        out["scope"] = {"project": _named(ref, "project")}
        if "domain_id" in indirect:
            inherited, link = True, f"/domains/{indirect['domain_id']}"
        elif "project_id" in indirect:
            inherited, link = True, f"/projects/{indirect['project_id']}"
        else:
            link = f"/projects/{ref['project_id']}"
    elif "domain_id" in ref:
        domain = {"id": ref["domain_id"]}
        if "domain_name" in ref:
            domain["name"] = ref["domain_name"]
        out["scope"] = {"domain": domain}
        link = f"/domains/{ref['domain_id']}"
    else:
        out["scope"] = {"system": ref["system"]}
        link = "/system"
    if "user_id" in ref:
        out["user"] = _named(ref, "user")
        if "group_id" in indirect:
            out["links"]["membership"] = call.url(f"/v3/groups/{indirect['group_id']}/users/{ref['user_id']}")
            link += f"/groups/{indirect['group_id']}"
        else:
            link += f"/users/{ref['user_id']}"
    else:
        out["group"] = _named(ref, "group")
        link += f"/groups/{ref['group_id']}"
    role: dict[str, Any] = {"id": ref["role_id"]}
    if "role_name" in ref:
        role["name"] = ref["role_name"]
        if "role_domain_id" in ref:
            role["domain"] = {"id": ref["role_domain_id"], "name": ref["role_domain_name"]}
    out["role"] = role
    prior = ""
    if "role_id" in indirect:
        link += f"/roles/{indirect['role_id']}"
        prior = f"/prior_role/{ref['role_id']}/implies/{indirect['role_id']}"  # sic, as Keystone
    else:
        link += f"/roles/{ref['role_id']}"
    if inherited:
        out["scope"]["OS-INHERIT:inherited_to"] = "projects"
        link = f"/OS-INHERIT{link}/inherited_to_projects"
    out["links"]["assignment"] = call.url(f"/v3{link}")
    if prior:
        out["links"]["prior_role"] = call.url(f"/v3{prior}")
    return out


@api.route("/v3/role_assignments", "GET")
def list_role_assignments(call: Call):
    only_domain = None
    if _flag(call, "include_subtree"):
        project_id = call.query.get("scope.project.id")
        target = {"domain_id": svc.project_domain(ident(call), project_id)} if project_id else {}
        enforce(call, "list_role_assignments_for_tree", target)
        if not project_id:
            raise ValidationError("scope.project.id must be specified if include_subtree is also specified")
    else:
        domain_id = call.ctx.domain_id if call.ctx.scope == "domain" else None
        enforce(call, "list_role_assignments", {"domain_id": domain_id} if domain_id else {})
        only_domain = domain_id
    refs = svc.list_assignments(ident(call), _filters(call), only_domain=only_domain)
    return {
        "role_assignments": [render_assignment(call, r) for r in refs],
        "links": {"self": str(call.request.url), "previous": None, "next": None},
    }
