"""``/flavors``: list/detail/show/create/update/delete, access lists, extra specs."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.common.pagination import paginate, parse_limit
from kumo.compute.api.common import link, mv, next_link, svc
from kumo.compute.errors import BadRequest
from kumo.compute.models import Flavor
from kumo.compute.service import flavors

api = API()


def render_flavor(call: Call, f: Flavor, detail: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"id": f.id, "name": f.name, "links": link(call, "flavors", f.id)}
    version = mv(call)
    if version.matches("2.55"):
        body["description"] = f.description
    if not detail:
        return body
    body.update(
        {
            "ram": f.ram,
            "vcpus": f.vcpus,
            "disk": f.disk,
            "swap": f.swap if (f.swap or version.matches("2.75")) else "",
            "OS-FLV-EXT-DATA:ephemeral": f.ephemeral,
            "OS-FLV-DISABLED:disabled": f.disabled,
            "os-flavor-access:is_public": f.is_public,
            "rxtx_factor": f.rxtx_factor,
        }
    )
    if version.matches("2.61"):
        body["extra_specs"] = dict(f.extra_specs or {})
    return body


def _list(call: Call, detail: bool) -> dict[str, Any]:
    items = flavors.list_flavors(svc(call), call.ctx, call.query)
    limit = parse_limit(call.query)
    try:
        page, _more = paginate(items, limit, call.query.get("marker"), key=lambda f: f.id)
    except Exception:
        raise BadRequest(f"marker [{call.query.get('marker')}] not found") from None
    body: dict[str, Any] = {"flavors": [render_flavor(call, f, detail) for f in page]}
    if limit and len(page) == limit:
        body["flavors_links"] = next_link(call, "flavors/detail" if detail else "flavors", page[-1].id)
    return body


@api.route("/v2.1/flavors", "GET")
def list_flavors(call: Call):
    return _list(call, False)


@api.route("/v2.1/flavors/detail", "GET")
def list_flavors_detail(call: Call):
    return _list(call, True)


@api.route("/v2.1/flavors/{flavor_id}", "GET")
def show_flavor(call: Call):
    return {"flavor": render_flavor(call, flavors.get_flavor(svc(call), call.ctx, call.params["flavor_id"]))}


@api.route("/v2.1/flavors", "POST")
def create_flavor(call: Call):
    f = flavors.create_flavor(svc(call), call.ctx, call.body, mv(call))
    return {"flavor": render_flavor(call, f)}


@api.route("/v2.1/flavors/{flavor_id}", "PUT")
def update_flavor(call: Call):
    if not mv(call).matches("2.55"):
        raise BadRequest(
            "Flavor update requires microversion 2.55 or later.", status=405, fault="methodNotAllowed"
        )  # type: ignore[call-arg]
    f = flavors.update_flavor(svc(call), call.ctx, call.params["flavor_id"], call.body)
    return {"flavor": render_flavor(call, f)}


@api.route("/v2.1/flavors/{flavor_id}", "DELETE")
def delete_flavor(call: Call):
    flavors.delete_flavor(svc(call), call.ctx, call.params["flavor_id"])
    return _accepted()


def _accepted():
    from starlette.responses import Response

    return Response(status_code=202)


def _access(flavor_id: str, tenants: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": t} for t in tenants]}


@api.route("/v2.1/flavors/{flavor_id}/os-flavor-access", "GET")
def list_access(call: Call):
    fid = call.params["flavor_id"]
    return _access(fid, flavors.list_access(svc(call), call.ctx, fid))


@api.route("/v2.1/flavors/{flavor_id}/action", "POST")
def flavor_action(call: Call):
    fid = call.params["flavor_id"]
    body = call.body
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid flavor action.")
    ((action, args),) = body.items()
    if action not in ("addTenantAccess", "removeTenantAccess") or not isinstance(args, dict):
        raise BadRequest(f"Invalid flavor action {action}.")
    tenants = flavors.change_access(svc(call), call.ctx, fid, args.get("tenant"), action == "addTenantAccess")
    return _access(fid, tenants)


@api.route("/v2.1/flavors/{flavor_id}/os-extra_specs", "GET")
def list_specs(call: Call):
    return {"extra_specs": flavors.get_extra_specs(svc(call), call.ctx, call.params["flavor_id"])}


@api.route("/v2.1/flavors/{flavor_id}/os-extra_specs", "POST")
def create_specs(call: Call):
    body = call.body
    if not isinstance(body, dict) or "extra_specs" not in body:
        raise BadRequest(
            "Invalid input for field/attribute extra_specs. 'extra_specs' is a required property"
        )
    return {
        "extra_specs": flavors.set_extra_specs(
            svc(call), call.ctx, call.params["flavor_id"], body["extra_specs"],
            validate=mv(call).matches("2.86"),
        )
    }


@api.route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "GET")
def show_spec(call: Call):
    specs = flavors.get_extra_specs(svc(call), call.ctx, call.params["flavor_id"])
    key = call.params["key"]
    if key not in specs:
        from kumo.compute.errors import NotFound

        raise NotFound(f"Flavor {call.params['flavor_id']} has no extra specs with key {key}.")
    return {key: specs[key]}


@api.route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "PUT")
def update_spec(call: Call):
    return flavors.set_extra_specs(
        svc(call), call.ctx, call.params["flavor_id"], call.body, key=call.params["key"],
        validate=mv(call).matches("2.86"),
    )


@api.route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", "DELETE")
def delete_spec(call: Call):
    flavors.delete_extra_spec(svc(call), call.ctx, call.params["flavor_id"], call.params["key"])
    return _ok_empty()


def _ok_empty():
    from starlette.responses import Response

    return Response(status_code=200)
