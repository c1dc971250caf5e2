"""Version discovery: ``GET /compute/`` and ``GET /compute/v2.1``, ``/compute/v2``."""

from __future__ import annotations

from kumo.common.asgi import API, Call, json_response
from kumo.compute.api.common import MAX_VERSION, MIN_VERSION

api = API()

UPDATED = "2013-07-23T11:33:21Z"
MEDIA = [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]


def _v21(call: Call) -> dict:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": MAX_VERSION,
        "min_version": MIN_VERSION,
        "updated": UPDATED,
        "links": [
            {"rel": "self", "href": call.base_url + "/v2.1/"},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": MEDIA,
    }


def _v20(call: Call) -> dict:
    return {
        "id": "v2.0",
        "status": "SUPPORTED",
        "version": "",
        "min_version": "",
        "updated": "2011-01-21T11:33:21Z",
        "links": [
            {"rel": "self", "href": call.base_url + "/v2/"},
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}
        ],
    }


@api.route("/", "GET", public=True)
async def root(call: Call):
    v20, v21 = _v20(call), _v21(call)
    for v in (v20, v21):
        v.pop("media-types")
        v["links"] = v["links"][:1]
    return json_response({"versions": [v20, v21]})


@api.route("/v2.1", "GET", public=True)
@api.route("/v2.1/", "GET", public=True)
async def v21(call: Call):
    return json_response({"version": _v21(call)})


@api.route("/v2", "GET", public=True)
@api.route("/v2/", "GET", public=True)
async def v20(call: Call):
    return json_response({"version": _v20(call)})
