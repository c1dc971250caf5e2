"""Identity API: role grants on projects, domains and the system, and OS-INHERIT grants.

``/v3/{projects|domains}/{id}/{users|groups}/{id}/roles[/{role_id}]``,
``/v3/OS-INHERIT/{domains|projects}/{id}/{users|groups}/{id}/roles/{role_id}/inherited_to_projects``,
``/v3/OS-INHERIT/domains/{id}/{users|groups}/{id}/roles/inherited_to_projects`` and
``/v3/system/{users|groups}/{id}/roles[/{role_id}]``. GET and HEAD share a route.
"""

from __future__ import annotations

from kumo.common.asgi import API, Call
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.api.render import render_role
from kumo.identity.service import assignments as svc
from kumo.identity.service.assignments import Authorize, Grant

api = API()


def _authorizer(call: Call, rule: str) -> Authorize:
    def check(g: Grant | None) -> None:
        if g is None:  # something named in the URL does not exist: admins then get the 404
            enforce(call, rule, {})
            return
        enforce(
            call, rule, {"domain_id": g.target_domain, "user_id": g.actor_id if g.actor == "user" else None}
        )
        if g.actor_domain and g.target_domain and g.actor_domain != g.target_domain:
            enforce(call, rule, {"domain_id": g.actor_domain})

    return check


def _grant(call: Call, actor: str, target: str, inherited: bool) -> Grant:
    p = call.params
    return Grant(
        actor=actor,
        actor_id=p["actor_id"],
        target=target,
        target_id=p.get("target_id", "system"),
        role_id=p.get("role_id"),
        inherited=inherited,
    )


def _register(prefix: str, actor: str, target: str, inherited: bool, *, listing: bool, member: bool) -> None:
    """Routes for one (target, actor) pair: the role list and PUT/GET/HEAD/DELETE of one role."""
    system = target == "system"
    read_rule = "list_system_grants" if system else "check_grant"
    list_rule = "list_system_grants" if system else "list_grants"
    write_rule = "system_grants" if system else "create_grant"
    delete_rule = "system_grants" if system else "revoke_grant"
    suffix = "/inherited_to_projects" if inherited else ""

    if listing:

        def list_roles(call: Call):
            g = _grant(call, actor, target, inherited)
            roles = svc.list_grants(ident(call), g, _authorizer(call, list_rule))
            return collection(call, "roles", roles, lambda r: render_role(call, r))

        api.route(f"{prefix}/roles{suffix}", "GET")(list_roles)

    if not member:
        return
    one = f"{prefix}/roles/{{role_id}}{suffix}"

    def check(call: Call):
        svc.check_grant(ident(call), _grant(call, actor, target, inherited), _authorizer(call, read_rule))
        return None

    def grant(call: Call):
        svc.create_grant(ident(call), _grant(call, actor, target, inherited), _authorizer(call, write_rule))
        return None

    def revoke(call: Call):
        g = _grant(call, actor, target, inherited)
        svc.revoke_grant(ident(call), call.request.app.state.tokens, g, _authorizer(call, delete_rule))
        return None

    api.route(one, "GET")(check)
    api.route(one, "PUT")(grant)
    api.route(one, "DELETE")(revoke)


for _actor in ("user", "group"):
    for _target in ("project", "domain"):
        _register(
            f"/v3/{_target}s/{{target_id}}/{_actor}s/{{actor_id}}",
            _actor,
            _target,
            False,
            listing=True,
            member=True,
        )
        _register(
            f"/v3/OS-INHERIT/{_target}s/{{target_id}}/{_actor}s/{{actor_id}}",
            _actor,
            _target,
            True,
            listing=_target == "domain",
            member=True,
        )
    _register(f"/v3/system/{_actor}s/{{actor_id}}", _actor, "system", False, listing=True, member=True)
