"""Version discovery: ``GET /volume/`` (300, the version list) and ``GET /volume/v3/``."""

from __future__ import annotations

from typing import Any

from kumo.block_storage.api.common import MAX_VERSION, MIN_VERSION
from kumo.common.asgi import API, Call, json_response

api = API()


def _v3(call: Call) -> dict[str, Any]:
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": MAX_VERSION,
        "min_version": MIN_VERSION,
        "updated": "2023-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": call.base_url + "/v3/"},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    }


@api.route("/", "GET", public=True)
async def root(call: Call):
    return json_response({"versions": [_v3(call)]}, 300)


@api.route("/v3", "GET", public=True)
@api.route("/v3/", "GET", public=True)
async def v3(call: Call):
    return json_response({"versions": [_v3(call)]})
