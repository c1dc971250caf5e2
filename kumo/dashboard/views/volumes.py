"""Volumes (shown when the block-storage API is in the catalog): volumes, snapshots, attach/detach."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError, Cloud
from kumo.dashboard.web import FormErrors, Page, field_errors, page

SVC = "block-storage"
STEADY = {"available", "in-use", "error", "error_deleting", "error_extending", "error_restoring"}


async def _page_data(cloud: Cloud) -> dict[str, Any]:
    async def servers() -> list[dict[str, Any]]:
        if not cloud.has("compute"):
            return []
        return (await cloud.get("compute", "/servers", params={"limit": 1000})).get("servers", [])

    async def snapshots() -> tuple[list[dict[str, Any]], str]:
        try:  # a failing snapshot listing must not hide the volumes
            return (await cloud.get(SVC, "/snapshots/detail")).get("snapshots", []), ""
        except ApiError as err:
            return [], err.message

    async def backups() -> tuple[list[dict[str, Any]], str]:
        try:
            return (await cloud.get(SVC, "/backups/detail")).get("backups", []), ""
        except ApiError as err:
            return [], err.message

    vols, (snaps, snap_problem), (backs, backup_problem), srv = await asyncio.gather(
        cloud.get(SVC, "/volumes/detail"), snapshots(), backups(), servers())
    names = {s["id"]: s.get("name") or s["id"] for s in srv}
    volumes = sorted(vols.get("volumes", []), key=lambda v: (v.get("name") or "", v["id"]))
    for v in volumes:
        v["_attached"] = [(a.get("server_id"), names.get(a.get("server_id"), a.get("server_id")), a.get("device"))
                          for a in v.get("attachments") or []]
    return {"volumes": volumes, "snapshots": snaps, "snapshot_problem": snap_problem,
            "backups": backs, "backup_problem": backup_problem,
            "servers": [(s["id"], s.get("name") or s["id"]) for s in srv],
            "busy": any(v.get("status") not in STEADY for v in volumes)}


@page()
async def volumes(p: Page) -> Response:
    return p.render("volumes/volumes.html", **await _page_data(p.cloud), errors={}, values={"size": "1"})


@page()
async def volume_update(p: Page) -> Response:
    form = await p.form()
    cloud = p.cloud
    op = form["op"]
    vid = form["id"]
    try:
        if op == "create":
            try:
                size = int(form["size"])
                if size < 1:
                    raise ValueError
            except ValueError:
                raise FormErrors({"size": "Enter the size in GB (1 or more)."}) from None
            body: dict[str, Any] = {"size": size, "name": form["name"] or None}
            if form["description"]:
                body["description"] = form["description"]
            try:
                await cloud.post(SVC, "/volumes", {"volume": body})
            except ApiError as err:
                raise FormErrors(field_errors(err, ["size", "name", "description"])) from None
        elif op == "delete":
            await cloud.delete(SVC, f"/volumes/{vid}")
        elif op == "attach":
            if not form["server_id"]:
                raise FormErrors({f"attach-{vid}": "Choose an instance."})
            try:
                await cloud.post("compute", f"/servers/{form['server_id']}/os-volume_attachments",
                                 {"volumeAttachment": {"volumeId": vid}})
            except ApiError as err:
                raise FormErrors({f"attach-{vid}": err.message}) from None
        elif op == "detach":
            await cloud.delete("compute", f"/servers/{form['server_id']}/os-volume_attachments/{vid}")
        elif op == "snapshot":
            name = form["snapshot_name"] or None
            await cloud.post(SVC, "/snapshots", {"snapshot": {"volume_id": vid, "name": name, "force": True}})
        elif op == "delete-snapshot":
            await cloud.delete(SVC, f"/snapshots/{vid}")
        elif op == "backup":
            await cloud.post(SVC, "/backups", {"backup": {"volume_id": vid, "name": form["backup_name"] or None,
                                                          "incremental": False, "force": True}})
        elif op == "restore-backup":
            await cloud.post(SVC, f"/backups/{vid}/restore", {"restore": {}})
        elif op == "delete-backup":
            await cloud.delete(SVC, f"/backups/{vid}")
        else:
            raise FormErrors({"": f"Unknown operation {op!r}."})
    except FormErrors as err:
        return p.render("volumes/volumes.html", status=400, **await _page_data(cloud), errors=err.errors,
                        values=form.values())
    return p.redirect("/volumes", notice=f"Volume: {op} requested")


@page()
async def volume_rows(p: Page) -> Response:
    return p.render("volumes/_rows.html", **await _page_data(p.cloud))


ROUTES = [
    Route("/volumes", volumes, methods=["GET"]),
    Route("/volumes", volume_update, methods=["POST"]),
    Route("/volumes/rows", volume_rows, methods=["GET"]),
]
