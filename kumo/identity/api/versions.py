"""Version discovery: ``GET /identity`` (300) and ``GET /identity/v3``."""

from __future__ import annotations

from kumo.common.asgi import API, Call, json_response
from kumo.common.asgi.versions import version_entry

api = API()

MEDIA = "application/vnd.openstack.identity-v3+json"


def _v3(call: Call) -> dict:
    return version_entry("v3.14", call.url("/v3/"), status="stable", updated="2020-04-07T00:00:00Z", media_type=MEDIA)


@api.route("/", "GET", public=True)
async def versions(call: Call):
    return json_response({"versions": {"values": [_v3(call)]}}, status=300)


@api.route("/v3", "GET", public=True)
@api.route("/v3/", "GET", public=True)
async def v3(call: Call):
    return {"version": _v3(call)}
