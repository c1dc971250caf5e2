"""``/v2.0/{resource}/{id}/tags[/{tag}]``."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call, no_content
from kumo.network.api.common import svc
from kumo.network.errors import APIError, bad
from kumo.network.service.misc import TAGGABLE

router = API()


def _tags_body(call: Call) -> list[str]:
    body = call.body
    if not isinstance(body, dict) or "tags" not in body:
        raise bad("Invalid tags body: expected {\"tags\": [...]}")
    return body["tags"]  # type: ignore[no-any-return]


def _register(coll: str) -> None:
    base = f"/v2.0/{coll}/{{id}}/tags"

    def get_all(call: Call) -> dict[str, Any]:
        return {"tags": svc(call).get_tags(call.ctx, coll, call.params["id"])}

    def put_all(call: Call) -> dict[str, Any]:
        return {"tags": svc(call).change_tags(call.ctx, coll, call.params["id"], replace=_tags_body(call))}

    def delete_all(call: Call) -> None:
        svc(call).change_tags(call.ctx, coll, call.params["id"], clear=True)

    def get_one(call: Call) -> Response:
        if not svc(call).has_tag(call.ctx, coll, call.params["id"], call.params["tag"]):
            raise APIError(f"Tag {call.params['tag']} could not be found.", status=404, fault="TagNotFound")
        return no_content()

    def put_one(call: Call) -> Response:
        svc(call).change_tags(call.ctx, coll, call.params["id"], add=call.params["tag"])
        return Response(status_code=201)

    def delete_one(call: Call) -> None:
        svc(call).change_tags(call.ctx, coll, call.params["id"], remove=call.params["tag"])

    router.route(base, "GET")(get_all)
    router.route(base, "PUT")(put_all)
    router.route(base, "DELETE")(delete_all)
    router.route(base + "/{tag}", "GET")(get_one)
    router.route(base + "/{tag}", "PUT")(put_one)
    router.route(base + "/{tag}", "DELETE")(delete_one)


for _coll in TAGGABLE:
    _register(_coll)
