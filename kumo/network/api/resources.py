"""The CRUD collections: one table of (collection, member key, service operations).

Every collection supports list (filters, fields, sorting, pagination), show, create
(single or bulk), update and delete with ``If-Match: revision_number=N``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.network.api.common import if_match, inner, list_response, show_response, svc
from kumo.network.errors import APIError, bad

router = API()

# collection URL, member key, plural key, kind (for NotFound), operation suffix, supports If-Match
COLLECTIONS = [
    ("networks", "network", "networks", "network", "network", True),
    ("subnets", "subnet", "subnets", "subnet", "subnet", True),
    ("subnetpools", "subnetpool", "subnetpools", "subnetpool", "subnetpool", True),
    ("ports", "port", "ports", "port", "port", True),
    ("routers", "router", "routers", "router", "router", True),
    ("floatingips", "floatingip", "floatingips", "floatingip", "floatingip", True),
    ("security-groups", "security_group", "security_groups", "security_group", "security_group", True),
    ("security-group-rules", "security_group_rule", "security_group_rules", "security_group_rule",
     "security_group_rule", False),
    ("metering/metering-labels", "metering_label", "metering_labels", "metering_label", "metering_label", False),
    ("metering/metering-label-rules", "metering_label_rule", "metering_label_rules", "metering_label_rule",
     "metering_label_rule", False),
]


def _op(call: Call, name: str) -> Callable[..., Any]:
    fn = getattr(svc(call), name, None)
    if fn is None:
        raise APIError("The method is not allowed for the requested URL.", status=405, fault="HTTPMethodNotAllowed")
    return fn  # type: ignore[no-any-return]


def _register(url: str, member: str, plural: str, kind: str, op: str, revisioned: bool) -> None:
    base = f"/v2.0/{url}"

    def list_(call: Call) -> dict[str, Any]:
        return list_response(call, plural, kind, _op(call, f"list_{op}s")(call.ctx))

    def create(call: Call) -> Response:
        body = call.body
        fn = _op(call, f"create_{op}")
        if isinstance(body, dict) and plural in body and member not in body:
            items = body[plural]
            if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
                raise bad(f"Resource body required: '{plural}' must be a non-empty list of objects.")
            created: list[dict[str, Any]] = []
            try:
                for item in items:
                    created.append(fn(call.ctx, item))
            except Exception:
                for done in created:  # all or nothing, as upstream's bulk create
                    with contextlib.suppress(Exception):  # best effort rollback of a failed bulk create
                        _op(call, f"delete_{op}")(call.ctx, done["id"])
                raise
            return json_response({plural: created}, 201)
        return json_response({member: fn(call.ctx, inner(call, member))}, 201)

    def show(call: Call) -> dict[str, Any]:
        return show_response(call, member, _op(call, f"show_{op}")(call.ctx, call.params["id"]))

    def update(call: Call) -> dict[str, Any]:
        fn = _op(call, f"update_{op}")
        args = (call.ctx, call.params["id"], inner(call, member))
        return {member: fn(*args, if_match(call)) if revisioned else fn(*args)}

    def delete(call: Call) -> None:
        fn = _op(call, f"delete_{op}")
        if revisioned:
            fn(call.ctx, call.params["id"], if_match(call))
        else:
            fn(call.ctx, call.params["id"])

    router.route(base, "GET")(list_)
    router.route(base, "POST", status=201)(create)
    router.route(base + "/{id}", "GET")(show)
    router.route(base + "/{id}", "PUT")(update)
    router.route(base + "/{id}", "DELETE")(delete)


for _entry in COLLECTIONS:
    _register(*_entry)
