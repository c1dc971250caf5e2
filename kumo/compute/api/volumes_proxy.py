"""``/os-volumes`` and ``/os-snapshots``: Nova's deprecated proxies to the block-storage API
(microversions up to 2.35; 404 above, as upstream). Calls go to Cinder with the caller's token
and come back in Nova's camelCase shapes."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest, NotFound
from kumo.compute.service import validate as v
from kumo.compute.service.servers import is_uuid
from kumo.compute.volume_client import Volumes

api = API()
_POSITIVE = re.compile(r"^[0-9]+$")


def _client(call: Call) -> Volumes:
    if mv(call).matches("2.36"):
        raise NotFound("The resource could not be found.")
    vc = Volumes(call.ctx, svc(call).extras)
    if not vc.available:
        raise NotFound("The block storage service is not available.")
    return vc


def _created(ts: Any) -> str:
    text = str(ts or "")
    return text.replace("+00:00", "").rstrip("Z") if text else ""


def _volume(vol: dict[str, Any]) -> dict[str, Any]:
    attachments = [
        {
            "id": a.get("attachment_id") or vol["id"],
            "volumeId": vol["id"],
            "serverId": a.get("server_id") or "",
            "device": a.get("device") or "",
        }
        for a in vol.get("attachments") or []
        if a.get("server_id")
    ]
    return {
        "id": vol["id"],
        "status": vol.get("status"),
        "size": vol.get("size"),
        "availabilityZone": vol.get("availability_zone") or "nova",
        "createdAt": _created(vol.get("created_at")),
        "attachments": attachments or [{}],
        "displayName": vol.get("name"),
        "displayDescription": vol.get("description"),
        "volumeType": vol.get("volume_type"),
        "snapshotId": vol.get("snapshot_id"),
        "metadata": vol.get("metadata") or {},
    }


def _snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": snap["id"],
        "volumeId": snap.get("volume_id"),
        "status": snap.get("status"),
        "size": snap.get("size"),
        "createdAt": _created(snap.get("created_at")),
        "displayName": snap.get("name"),
        "displayDescription": snap.get("description"),
    }


def _page(call: Call, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key in ("offset", "limit"):
        raw = call.query.get(key)
        if raw is not None and (not _POSITIVE.match(raw)):
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {raw}.")
        out.append(int(raw) if raw is not None else None)
    offset, limit = out
    rows = rows[offset or 0 :]
    return rows if limit is None else rows[:limit]


async def _get(vc: Volumes, path: str, key: str, what: str, item_id: str | None = None) -> Any:
    r = await vc.call("GET", path)
    if r.status_code in (404, 400) and item_id is not None:
        raise NotFound(f"{what} {item_id} could not be found.")
    await vc.check(r, 200)
    return r.json()[key]


# -- volumes ----------------------------------------------------------------------------------


@api.route("/v2.1/os-volumes/", "GET", "DELETE")
@api.route("/v2.1/os-snapshots/", "GET", "DELETE")
def missing_id(call: Call):
    """An empty id (``os-volumes/``) names nothing: 404, as Nova answers (not a redirect to the list)."""
    _client(call)
    raise NotFound("The resource could not be found.")


@api.route("/v2.1/os-volumes", "GET")
async def list_volumes(call: Call):
    vols = await _get(_client(call), "/volumes/detail", "volumes", "Volume")
    return {"volumes": [_volume(x) for x in _page(call, vols)]}


@api.route("/v2.1/os-volumes/detail", "GET")
async def list_volumes_detail(call: Call):
    return await list_volumes(call)


@api.route("/v2.1/os-volumes/{volume_id}", "GET")
async def show_volume(call: Call):
    vid = call.params["volume_id"]
    vol = await _get(_client(call), f"/volumes/{vid}", "volume", "Volume", vid)
    return {"volume": _volume(vol)}


@api.route("/v2.1/os-volumes", "POST")
async def create_volume(call: Call):
    vc = _client(call)
    data = v.body_key(call.body, "volume")
    v.only_keys(
        data,
        {
            "size",
            "availability_zone",
            "display_name",
            "display_description",
            "volume_type",
            "metadata",
            "snapshot_id",
        },
    )
    size = data.get("size")
    if isinstance(size, bool) or not (
        (isinstance(size, int) and size >= 1)
        or (isinstance(size, str) and _POSITIVE.match(size) and int(size) >= 1)
    ):
        raise BadRequest(f"Invalid input for field/attribute size. Value: {size}.")
    body: dict[str, Any] = {"size": int(size)}
    for src, dst in (
        ("display_name", "name"),
        ("display_description", "description"),
        ("volume_type", "volume_type"),
        ("availability_zone", "availability_zone"),
        ("snapshot_id", "snapshot_id"),
    ):
        if data.get(src) is not None:
            if not isinstance(data[src], str):
                raise BadRequest(f"Invalid input for field/attribute {src}.")
            body[dst] = data[src]
    if "metadata" in data:
        body["metadata"] = v.metadata(data["metadata"])
    vol = await vc.create_volume(body)
    return {"volume": _volume(vol)}


@api.route("/v2.1/os-volumes/{volume_id}", "DELETE")
async def delete_volume(call: Call):
    vc = _client(call)
    vid = call.params["volume_id"]
    r = await vc.call("DELETE", f"/volumes/{vid}")
    if r.status_code in (404,) or (r.status_code == 400 and not is_uuid(vid)):
        raise NotFound(f"Volume {vid} could not be found.")
    await vc.check(r, 202, 204)
    return Response(status_code=202)


# -- snapshots --------------------------------------------------------------------------------


@api.route("/v2.1/os-snapshots", "GET")
async def list_snapshots(call: Call):
    snaps = await _get(_client(call), "/snapshots/detail", "snapshots", "Snapshot")
    return {"snapshots": [_snapshot(x) for x in _page(call, snaps)]}


@api.route("/v2.1/os-snapshots/detail", "GET")
async def list_snapshots_detail(call: Call):
    return await list_snapshots(call)


@api.route("/v2.1/os-snapshots/{snapshot_id}", "GET")
async def show_snapshot(call: Call):
    sid = call.params["snapshot_id"]
    snap = await _get(_client(call), f"/snapshots/{sid}", "snapshot", "Snapshot", sid)
    return {"snapshot": _snapshot(snap)}


@api.route("/v2.1/os-snapshots", "POST")
async def create_snapshot(call: Call):
    vc = _client(call)
    data = v.body_key(call.body, "snapshot")
    v.only_keys(data, {"volume_id", "force", "display_name", "display_description"})
    if not isinstance(data.get("volume_id"), str):
        raise BadRequest("Invalid input for field/attribute snapshot. 'volume_id' is a required property")
    body: dict[str, Any] = {
        "volume_id": data["volume_id"],
        "force": v.boolean(data.get("force", False), "force"),
    }
    if data.get("display_name") is not None:
        body["name"] = str(data["display_name"])
    if data.get("display_description") is not None:
        body["description"] = str(data["display_description"])
    r = await vc.call("POST", "/snapshots", json={"snapshot": body})
    if r.status_code == 404:
        raise NotFound(f"Volume {data['volume_id']} could not be found.")
    await vc.check(r, 202, 200)
    return {"snapshot": _snapshot(r.json()["snapshot"])}


@api.route("/v2.1/os-snapshots/{snapshot_id}", "DELETE")
async def delete_snapshot(call: Call):
    vc = _client(call)
    sid = call.params["snapshot_id"]
    r = await vc.call("DELETE", f"/snapshots/{sid}")
    if r.status_code == 404:
        raise NotFound(f"Snapshot {sid} could not be found.")
    await vc.check(r, 202, 204)
    return Response(status_code=202)
