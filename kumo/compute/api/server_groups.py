"""``/os-server-groups``: affinity, anti-affinity and the soft variants (rules at 2.64)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest, NotFound, OverLimit
from kumo.compute.models import ServerGroup
from kumo.compute.service import quotas
from kumo.compute.service import validate as v
from kumo.compute.service.core import new_uuid, now

api = API()
POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def render(call: Call, g: ServerGroup) -> dict[str, Any]:
    body: dict[str, Any] = {"id": g.id, "name": g.name, "members": list(g.members or [])}
    if mv(call).matches("2.64"):
        body.update({"policy": g.policy, "rules": dict(g.rules or {})})
    else:
        body.update({"policies": [g.policy], "metadata": {}})
    if mv(call).matches("2.13"):
        body.update({"project_id": g.project_id, "user_id": g.user_id})
    return body


@api.route("/v2.1/os-server-groups", "POST")
def create_group(call: Call):
    data = v.body_key(call.body, "server_group")
    if mv(call).matches("2.64"):
        v.only_keys(data, {"name", "policy", "rules"})
        policy = data.get("policy")
        rules = data.get("rules") or {}
        if not isinstance(rules, dict):
            raise BadRequest("Invalid input for field/attribute rules.")
        if rules:
            if policy != "anti-affinity" or set(rules) - {"max_server_per_host"}:
                raise BadRequest("Only anti-affinity policy supports the max_server_per_host rule.")
            rules = {"max_server_per_host": v.integer(rules["max_server_per_host"], "max_server_per_host", 1)}
    else:
        v.only_keys(data, {"name", "policies"})
        pols = data.get("policies")
        if not isinstance(pols, list) or len(pols) != 1:
            raise BadRequest("Invalid input for field/attribute policies.")
        policy, rules = pols[0], {}
        if policy in ("soft-affinity", "soft-anti-affinity") and not mv(call).matches("2.15"):
            policy = None
    if policy not in POLICIES:
        raise BadRequest(f"Invalid input for field/attribute policy. Value: {policy}.")
    name = v.name(data.get("name"), allow_blank_edges=True)
    limit = quotas.limit_for(svc(call), call.ctx.project_id, "server_groups")
    with svc(call).db.session() as s:
        count = s.execute(
            select(func.count())
            .select_from(ServerGroup)
            .where(ServerGroup.project_id == (call.ctx.project_id or ""))
        ).scalar_one()
        if 0 <= limit <= count:
            raise OverLimit("Quota exceeded, too many server groups.")
        g = ServerGroup(
            id=new_uuid(),
            name=name,
            project_id=call.ctx.project_id or "",
            user_id=call.ctx.user_id or "",
            policy=policy,
            rules=rules,
            members=[],
            created_at=now(),
        )
        s.add(g)
    return {"server_group": render(call, g)}


@api.route("/v2.1/os-server-groups", "GET")
def list_groups(call: Call):
    admin = svc(call).is_admin(call.ctx)
    stmt = select(ServerGroup).order_by(ServerGroup.created_at)
    if not (admin and call.query.get("all_projects")):
        stmt = stmt.where(ServerGroup.project_id == (call.ctx.project_id or ""))
    with svc(call).db.reader() as s:
        rows = list(s.execute(stmt).scalars())
    offset = int(call.query.get("offset") or 0)
    limit = call.query.get("limit")
    rows = rows[offset:]
    if limit:
        rows = rows[: int(limit)]
    return {"server_groups": [render(call, g) for g in rows]}


def _get(call: Call) -> ServerGroup:
    gid = call.params["group_id"]
    with svc(call).db.reader() as s:
        g = s.get(ServerGroup, gid)
    if g is None or (g.project_id != call.ctx.project_id and not svc(call).is_admin(call.ctx)):
        raise NotFound(f"Instance group {gid} could not be found.")
    return g


@api.route("/v2.1/os-server-groups/{group_id}", "GET")
def show_group(call: Call):
    return {"server_group": render(call, _get(call))}


@api.route("/v2.1/os-server-groups/{group_id}", "DELETE")
def delete_group(call: Call):
    g = _get(call)
    with svc(call).db.session() as s:
        row = s.get(ServerGroup, g.id)
        if row is not None:
            s.delete(row)
    return Response(status_code=204)
