"""Version discovery: ``GET /image`` and ``GET /image/v2`` (300, Glance's list of v2.N)."""

from __future__ import annotations

from kumo.common.asgi import API, Call, json_response

api = API()

NEWEST_MINOR = 17


def _versions(call: Call) -> dict:
    href = call.url("/v2/")
    versions = [
        {
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == NEWEST_MINOR else "SUPPORTED",
            "links": [{"rel": "self", "href": href}],
        }
        for minor in range(NEWEST_MINOR, -1, -1)
    ]
    return {"versions": versions}


@api.route("/", "GET", public=True)
@api.route("/versions", "GET", public=True)
@api.route("/v2", "GET", public=True)
@api.route("/v2/", "GET", public=True)
async def versions(call: Call):
    status = 200 if call.request.url.path.rstrip("/").endswith("/versions") else 300
    return json_response(_versions(call), status=status)
