"""``/servers/{id}/action`` and the server sub-resources (metadata, tags, actions, console)."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.compute.api import consoles, evacuate, migrate, rescue
from kumo.compute.api.common import mv, next_link, svc
from kumo.compute.api.render import rebuild_body
from kumo.compute.clients import Peers
from kumo.compute.errors import BadRequest, Conflict, NotFound, OverLimit
from kumo.compute.models import InstanceAction, Server
from kumo.compute.service import actions, boot_info, quotas, servers, snapshots
from kumo.compute.service import migrate as migrate_service
from kumo.compute.service import unshelve as unshelve_args
from kumo.compute.service import validate as v
from kumo.compute.service.core import iso, now

api = API()


def _accepted() -> Response:
    return Response(status_code=202)


def _simple(action: str):  # type: ignore[no-untyped-def]
    def run(call: Call, sid: str, _args: Any) -> Response:
        actions.start_action(svc(call), call.ctx, sid, action, api_name=None)
        return _accepted()

    return run


def _reboot(call: Call, sid: str, args: Any) -> Response:
    if not isinstance(args, dict) or args.get("type", "").upper() not in ("SOFT", "HARD"):
        raise BadRequest("Invalid input for field/attribute type.")
    actions.start_action(
        svc(call), call.ctx, sid, "reboot_hard" if args["type"].upper() == "HARD" else "reboot_soft"
    )
    return _accepted()


def _lock(call: Call, sid: str, args: Any) -> Response:
    reason = None
    if isinstance(args, dict) and "locked_reason" in args:
        if not mv(call).matches("2.73"):
            raise BadRequest("Additional properties are not allowed ('locked_reason' was unexpected)")
        reason = v.string(args["locked_reason"], "locked_reason", 255)
    actions.lock(svc(call), call.ctx, sid, True, reason)
    return _accepted()


def _unlock(call: Call, sid: str, _args: Any) -> Response:
    actions.lock(svc(call), call.ctx, sid, False)
    return _accepted()


def _resize(call: Call, sid: str, args: Any) -> Response:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute resize.")
    v.only_keys(args, {"flavorRef", "OS-DCF:diskConfig"})
    disk_config = args.get("OS-DCF:diskConfig")
    if disk_config is not None and disk_config not in ("AUTO", "MANUAL"):
        raise BadRequest("Invalid input for field/attribute OS-DCF:diskConfig.")
    new = actions.prepare_resize(svc(call), call.ctx, sid, args.get("flavorRef"))
    actions.resize(svc(call), call.ctx, sid, new, disk_config)
    return _accepted()


def _confirm(call: Call, sid: str, _args: Any) -> Response:
    if migrate_service.latest_cold(svc(call), sid):  # a cold migration awaits its confirmation
        migrate_service.confirm(svc(call), call.ctx, sid)
        return Response(status_code=204)
    actions.confirm_resize(svc(call), call.ctx, sid)
    return Response(status_code=204)


def _revert(call: Call, sid: str, _args: Any) -> Response:
    if migrate_service.latest_cold(svc(call), sid):
        migrate_service.revert(svc(call), call.ctx, sid)
        return _accepted()
    actions.start_action(svc(call), call.ctx, sid, "revert_resize")
    return _accepted()


def _rebuild(call: Call, sid: str, args: Any) -> Any:
    raise AssertionError("async")  # handled in the async dispatcher


def _console(call: Call, sid: str, args: Any) -> Any:
    server = servers.get_server(svc(call), call.ctx, sid)
    length = (args or {}).get("length") if isinstance(args, dict) else None
    if length is not None:
        try:
            length = int(length)
        except (TypeError, ValueError):
            raise BadRequest("Invalid input for field/attribute length.") from None
        if length < -1:
            raise BadRequest("Invalid input for field/attribute length.")
    if server.vm_state == "building" or not server.host:
        raise Conflict(f"Instance {sid} is not ready")
    lines = (server.console or "").splitlines()
    if length is not None and length >= 0:
        lines = lines[-length:] if length else []
    return {"output": "\n".join(lines)}


def _reset_state(call: Call, sid: str, args: Any) -> Response:
    actions.reset_state(
        svc(call), call.ctx, sid, (args or {}).get("state") if isinstance(args, dict) else None
    )
    return _accepted()


def _change_password(call: Call, sid: str, args: Any) -> Response:
    if not isinstance(args, dict) or not isinstance(args.get("adminPass"), str):
        raise BadRequest("Invalid input for field/attribute adminPass.")
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    if server.vm_state != "active":
        raise Conflict(f"Cannot 'changePassword' instance {sid} while it is in vm_state {server.vm_state}")
    return _accepted()


async def _shelve(call: Call, sid: str) -> Response:
    """Snapshot into ``<name>-shelved`` (as Nova does), then offload the server from its host."""
    service = svc(call)
    server = await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid, True)
    await anyio.to_thread.run_sync(servers.check_lock, service, call.ctx, server)
    if server.vm_state not in ("active", "stopped", "paused", "suspended") or server.task_state is not None:
        raise Conflict(f"Cannot 'shelve' instance {sid} while it is in vm_state {server.vm_state}")
    peers = Peers(call.ctx, service.extras)
    fmt = await anyio.to_thread.run_sync(snapshots.disk_format, service, server)
    image = await peers.create_image({"name": f"{server.name}-shelved", "container_format": "bare",
                                      "disk_format": fmt, "image_type": "snapshot", "instance_uuid": sid})  # fmt: skip
    # the agent of the server's host uploads the disk (as for createImage), then offloads the VM
    op = {"image_id": image["id"], "image_url": f"{peers.image_url}/v2/images/{image['id']}"}
    try:
        await anyio.to_thread.run_sync(lambda: actions.start_action(service, call.ctx, sid, "shelve", op))
    except Exception:
        await peers.delete_image(image["id"])
        raise
    await anyio.to_thread.run_sync(lambda: _set_system_metadata(call, sid, shelved_image_id=image["id"]))
    return _accepted()


def _set_system_metadata(call: Call, sid: str, **values: Any) -> None:
    with svc(call).db.session() as s:
        row = s.get(Server, sid)
        if row is not None:
            meta = dict(row.system_metadata or {})
            for k, val in values.items():
                if val is None:
                    meta.pop(k, None)
                else:
                    meta[k] = val
            row.system_metadata = meta


async def _unshelve(call: Call, sid: str, args: Any) -> Response:
    service = svc(call)
    await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid, True)
    zone, host = unshelve_args.parse(args, mv(call))
    if host is not None:
        await anyio.to_thread.run_sync(service.require_admin, call.ctx, "os_compute_api:os-shelve:unshelve_to_host")
    # the new disk is made from the <name>-shelved snapshot; the agent deletes it once the guest runs
    await anyio.to_thread.run_sync(actions.unshelve, service, call.ctx, sid, zone, host)
    return _accepted()


def _restore(call: Call, sid: str, _args: Any) -> Response:
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    raise Conflict(f"Cannot 'restore' instance {sid} while it is in vm_state {server.vm_state}")


def _inject_network_info(call: Call, sid: str, _args: Any) -> Response:
    svc(call).require_admin(call.ctx, "os_compute_api:os-admin-actions:inject_network_info")
    servers.get_server(svc(call), call.ctx, sid)
    return _accepted()


def _force_delete(call: Call, sid: str, _args: Any) -> Response:
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    raise Conflict(f"Cannot 'forceDelete' instance {sid} while it is in vm_state {server.vm_state}")


SYNC_ACTIONS = {
    "reboot": _reboot,
    "os-stop": _simple("stop"),
    "os-start": _simple("start"),
    "pause": _simple("pause"),
    "unpause": _simple("unpause"),
    "suspend": _simple("suspend"),
    "resume": _simple("resume"),
    "lock": _lock,
    "unlock": _unlock,
    "resize": _resize,
    "confirmResize": _confirm,
    "revertResize": _revert,
    "os-getConsoleOutput": _console,
    "os-resetState": _reset_state,
    "changePassword": _change_password,
    "migrate": migrate.migrate,
    "os-migrateLive": migrate.live_migrate,
    "restore": _restore,
    "forceDelete": _force_delete,
    "injectNetworkInfo": _inject_network_info,
}
SYNC_ACTIONS["evacuate"] = evacuate.evacuate
SYNC_ACTIONS.update(consoles.ACTIONS)  # os-getVNCConsole, os-getSerialConsole, ...


@api.route("/v2.1/servers/{server_id}/action", "POST")
async def server_action(call: Call):
    body = call.body
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("There is no such action: the body must name exactly one action.")
    ((name, args),) = body.items()
    sid = call.params["server_id"]
    if name == "rebuild":
        return await _rebuild_async(call, sid, args)
    if name == "createImage":
        return await _create_image(call, sid, args)
    if name == "createBackup":
        return await _create_backup(call, sid, args)
    if name == "shelve":
        return await _shelve(call, sid)
    if name == "rescue":
        return await rescue.rescue(call, sid, args)
    if name == "unrescue":
        await rescue.unrescue(call, sid)
        return _accepted()
    if name == "unshelve":
        return await _unshelve(call, sid, args)
    if name in ("addFloatingIp", "removeFloatingIp"):
        from kumo.compute.api import floating_ips

        handler = floating_ips.add_floating_ip if name == "addFloatingIp" else floating_ips.remove_floating_ip
        return await handler(call, sid, args)
    if name in ("addSecurityGroup", "removeSecurityGroup"):
        from kumo.compute.api.server_network import change_security_group

        return await change_security_group(call, sid, args, name == "addSecurityGroup")
    handler = SYNC_ACTIONS.get(name)
    if handler is None:
        await anyio.to_thread.run_sync(servers.get_server, svc(call), call.ctx, sid)
        raise BadRequest(f"There is no such action: {name}")
    return await anyio.to_thread.run_sync(handler, call, sid, args)


async def _same_image_as_root_volume(call: Call, sid: str, image_ref: str) -> None:
    """A volume-backed server is rebuilt only with the image its root volume came from."""
    from kumo.compute.service import volumes as vols
    from kumo.compute.volume_client import Volumes

    rows = await anyio.to_thread.run_sync(vols.list_attachments, svc(call), sid)
    root = next((r.volume_id for r in rows if r.boot_index == 0), None)
    volume = await Volumes(call.ctx, svc(call).extras).get_volume(root) if root else {}
    if (volume.get("volume_image_metadata") or {}).get("image_id") != image_ref:
        raise BadRequest(
            f"Image {image_ref} is unacceptable: Unable to rebuild with a different image for a volume-backed server."
        )


async def _rebuild_async(call: Call, sid: str, args: Any) -> Any:
    service, version = svc(call), mv(call)
    parsed = await anyio.to_thread.run_sync(actions.rebuild_args, service, call.ctx, args, version)
    server = await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid, True)
    image = await Peers(call.ctx, service.extras).get_image(parsed["image_ref"])
    if image is None:
        raise BadRequest(f"Image {parsed['image_ref']} could not be found.")
    if image.get("status") != "active":
        raise BadRequest(f"Image {parsed['image_ref']} is not active.")
    if (image.get("min_ram") or 0) > server.flavor["ram"]:
        raise BadRequest("Flavor's memory is too small for requested image.")
    parsed["image_properties"] = boot_info.image_properties(image)
    if not server.image_id:  # volume-backed: from 2.93 the root volume is re-imaged, before only kept
        if version.matches("2.93"):
            parsed["reimage"] = image["id"]
        else:
            await _same_image_as_root_volume(call, sid, parsed["image_ref"])
        parsed["volume_backed"] = True
    server = await anyio.to_thread.run_sync(actions.apply_rebuild, service, call.ctx, sid, parsed)
    server = await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid)
    if parsed.get("reimage") and (server.pending or {}).get("hold"):
        from kumo.compute.api import volume_flows
        from kumo.compute.volume_client import Volumes

        volume_flows.spawn(service, volume_flows.reimage_and_rebuild(service, Volumes(call.ctx, service.extras), sid,
                                                                     server.pending["seq"]))
    body = rebuild_body(call, server)
    body["adminPass"] = parsed.get("admin_pass") or "kumo-" + sid[:8]
    return json_response({"server": body}, 202)


async def _create_backup(call: Call, sid: str, args: Any) -> Any:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute createBackup.")
    v.only_keys(args, {"name", "backup_type", "rotation", "metadata"})
    if not isinstance(args.get("backup_type"), str):
        raise BadRequest("Invalid input for field/attribute backup_type.")
    rotation = v.integer(args.get("rotation"), "rotation", 0)
    extra = {"image_type": "backup", "backup_type": args["backup_type"]}
    response = await _create_image(call, sid, args, extra)
    await _rotate(call, sid, args["backup_type"], rotation)
    return response


async def _rotate(call: Call, sid: str, backup_type: str, rotation: int) -> None:
    peers = Peers(call.ctx, svc(call).extras)
    async with peers._client() as c:
        r = await c.get(
            f"{peers.image_url}/v2/images",
            params={
                "instance_uuid": sid,
                "image_type": "backup",
                "sort_key": "created_at",
                "sort_dir": "desc",
            },
        )
    if r.status_code != 200:
        return
    backups = [i for i in r.json().get("images", []) if i.get("backup_type") == backup_type]
    for old in backups[rotation:]:
        await peers.delete_image(old["id"])


async def _create_image(call: Call, sid: str, args: Any, extra: dict[str, str] | None = None) -> Any:
    service, version = svc(call), mv(call)
    if (
        not isinstance(args, dict)
        or not isinstance(args.get("name"), str)
        or not args["name"].strip()
        or len(args["name"]) > 255
    ):
        raise BadRequest("Invalid input for field/attribute name.")
    meta = v.metadata(args.get("metadata", {}), "metadata")
    action = "createBackup" if extra else "createImage"
    server = await anyio.to_thread.run_sync(snapshots.check, service, call.ctx, sid, action)
    peers = Peers(call.ctx, service.extras)
    source = await peers.get_image(server.image_id) if server.image_id else None
    body: dict[str, Any] = {
        "name": args["name"],
        "container_format": "bare",
        # what the host's driver writes (qcow2 from QEMU, raw from the fake driver)
        "disk_format": await anyio.to_thread.run_sync(snapshots.disk_format, service, server),
        "image_type": "snapshot",
        "instance_uuid": sid,
        "base_image_ref": server.image_id or "",
    }
    for k, val in meta.items():
        body[k] = val
    body.update(extra or {})
    if source and source.get("min_ram"):
        body["min_ram"] = source["min_ram"]
    body["min_disk"] = max(server.flavor.get("disk", 0), (source or {}).get("min_disk") or 0)
    image = await peers.create_image(body)
    location = f"{peers.image_url}/v2/images/{image['id']}"
    try:  # the agent of the server's host writes the disk and uploads it (kumo.agents.compute.snapshot)
        await anyio.to_thread.run_sync(snapshots.start, service, call.ctx, sid, image["id"], location, action)
    except Exception:  # a second createImage raced this one: no orphan image stays
        with contextlib.suppress(Exception):
            await peers.delete_image(image["id"])
        raise
    if version.matches("2.45"):
        return json_response({"image_id": image["id"]}, 202)
    return Response(status_code=202, headers={"Location": location})


# -- metadata -----------------------------------------------------------------------------------


def _meta_limit(call: Call, meta: dict[str, str]) -> None:
    limit = quotas.limit_for(svc(call), call.ctx.project_id, "metadata_items")
    if 0 <= limit < len(meta):
        raise OverLimit(f"Quota exceeded for metadata_items: Requested {len(meta)}, but maximum is {limit}")


def _update_meta(call: Call, replace: bool, new: dict[str, str]) -> dict[str, str]:
    sid = call.params["server_id"]
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    servers.check_lock(svc(call), call.ctx, server)
    if server.task_state is not None and server.vm_state == "building":
        raise Conflict(f"Cannot update metadata of instance {sid} while it is building")
    with svc(call).db.session() as s:
        row = s.get(Server, sid)
        assert row is not None
        meta = dict(new) if replace else {**(row.metadata_ or {}), **new}
        _meta_limit(call, meta)
        row.metadata_ = meta
        row.updated_at = now()
    return meta


@api.route("/v2.1/servers/{server_id}/metadata", "GET")
def list_metadata(call: Call):
    return {
        "metadata": dict(servers.get_server(svc(call), call.ctx, call.params["server_id"]).metadata_ or {})
    }


@api.route("/v2.1/servers/{server_id}/metadata", "POST")
def update_metadata(call: Call):
    body = call.body
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest("Malformed request body: 'metadata' is a required property")
    return {"metadata": _update_meta(call, False, v.metadata(body["metadata"]))}


@api.route("/v2.1/servers/{server_id}/metadata", "PUT")
def set_metadata(call: Call):
    body = call.body
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest("Malformed request body: 'metadata' is a required property")
    return {"metadata": _update_meta(call, True, v.metadata(body["metadata"]))}


@api.route("/v2.1/servers/{server_id}/metadata/{key}", "GET")
def show_metadata_item(call: Call):
    meta = servers.get_server(svc(call), call.ctx, call.params["server_id"]).metadata_ or {}
    key = call.params["key"]
    if key not in meta:
        raise NotFound("Metadata item was not found")
    return {"meta": {key: meta[key]}}


@api.route("/v2.1/servers/{server_id}/metadata/{key}", "PUT")
def set_metadata_item(call: Call):
    body = call.body
    key = call.params["key"]
    if not isinstance(body, dict) or not isinstance(body.get("meta"), dict):
        raise BadRequest("Malformed request body: 'meta' is a required property")
    item = v.metadata(body["meta"], "meta")
    if len(item) != 1:
        raise BadRequest("Request body contains too many items")
    if key not in item:
        raise BadRequest("Request body and URI mismatch")
    _update_meta(call, False, item)
    return {"meta": item}


@api.route("/v2.1/servers/{server_id}/metadata/{key}", "DELETE")
def delete_metadata_item(call: Call):
    sid, key = call.params["server_id"], call.params["key"]
    server = servers.get_server(svc(call), call.ctx, sid, write=True)
    servers.check_lock(svc(call), call.ctx, server)
    with svc(call).db.session() as s:
        row = s.get(Server, sid)
        assert row is not None
        meta = dict(row.metadata_ or {})
        if key not in meta:
            raise NotFound("Metadata item was not found")
        del meta[key]
        row.metadata_ = meta
    return Response(status_code=204)


# -- tags (2.26) ---------------------------------------------------------------------------------


def _tags_version(call: Call) -> None:
    if not mv(call).matches("2.26"):
        raise NotFound("The resource could not be found.")


def _set_tags(call: Call, tags: list[str]) -> list[str]:
    sid = call.params["server_id"]
    servers.get_server(svc(call), call.ctx, sid, write=True)
    with svc(call).db.session() as s:
        row = s.get(Server, sid)
        assert row is not None
        if row.vm_state == "building":
            raise Conflict(f"Cannot update tags of instance {sid} while it is building")
        row.tags = tags
        row.updated_at = now()
    return tags


@api.route("/v2.1/servers/{server_id}/tags", "GET")
def list_tags(call: Call):
    _tags_version(call)
    return {"tags": list(servers.get_server(svc(call), call.ctx, call.params["server_id"]).tags or [])}


@api.route("/v2.1/servers/{server_id}/tags", "PUT")
def replace_tags(call: Call):
    _tags_version(call)
    body = call.body
    if not isinstance(body, dict) or "tags" not in body:
        raise BadRequest("'tags' is a required property")
    return {"tags": _set_tags(call, servers._parse_tags(body["tags"]))}


@api.route("/v2.1/servers/{server_id}/tags", "DELETE")
def delete_tags(call: Call):
    _tags_version(call)
    _set_tags(call, [])
    return Response(status_code=204)


@api.route("/v2.1/servers/{server_id}/tags/{tag}", "GET")
def check_tag(call: Call):
    _tags_version(call)
    tags = servers.get_server(svc(call), call.ctx, call.params["server_id"]).tags or []
    if call.params["tag"] not in tags:
        raise NotFound(f"Tag {call.params['tag']} could not be found.")
    return Response(status_code=204)


@api.route("/v2.1/servers/{server_id}/tags/{tag}", "PUT")
def add_tag(call: Call):
    _tags_version(call)
    tag = call.params["tag"]
    current = list(servers.get_server(svc(call), call.ctx, call.params["server_id"]).tags or [])
    servers._parse_tags([tag])
    if tag in current:
        return Response(status_code=204)
    if len(current) >= 50:
        raise BadRequest("The number of tags exceeded the per-server limit 50")
    _set_tags(call, current + [tag])
    return Response(
        status_code=201,
        headers={"Location": call.url(f"/v2.1/servers/{call.params['server_id']}/tags/{tag}")},
    )


@api.route("/v2.1/servers/{server_id}/tags/{tag}", "DELETE")
def delete_tag(call: Call):
    _tags_version(call)
    tag = call.params["tag"]
    current = list(servers.get_server(svc(call), call.ctx, call.params["server_id"]).tags or [])
    if tag not in current:
        raise NotFound(f"Tag {tag} could not be found.")
    current.remove(tag)
    _set_tags(call, current)
    return Response(status_code=204)


# -- instance actions ------------------------------------------------------------------------------


def _render_action(call: Call, a: InstanceAction, events: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action": a.action,
        "instance_uuid": a.server_id,
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": iso(a.start_time),
        "message": a.message,
    }
    if mv(call).matches("2.58"):
        body["updated_at"] = iso(a.updated_at)
    if events:
        admin = svc(call).is_admin(call.ctx)
        evs = []
        for e in a.events or []:
            e = dict(e)
            if not admin:
                e.pop("traceback", None)
            if not (admin and mv(call).matches("2.62")):
                e.pop("host", None)
            if not mv(call).matches("2.62"):
                e.pop("hostId", None)
            if mv(call).matches("2.84"):
                e.setdefault("details", None)
            else:
                e.pop("details", None)
            if not (admin or mv(call).matches("2.51")):
                continue
            evs.append(e)
        body["events"] = evs
    return body


def _server_for_actions(call: Call) -> str:
    sid = call.params["server_id"]
    with svc(call).db.reader() as s:
        server = s.get(Server, sid)
    if server is None or (server.deleted and not mv(call).matches("2.21")):
        raise NotFound(f"Instance {sid} could not be found.")
    svc(call).enforce(call.ctx, "server:read", {"project_id": server.project_id})
    return sid


@api.route("/v2.1/servers/{server_id}/os-instance-actions", "GET")
def list_actions(call: Call):
    from sqlalchemy import select

    sid = _server_for_actions(call)
    with svc(call).db.reader() as s:
        rows = list(
            s.execute(
                select(InstanceAction)
                .where(InstanceAction.server_id == sid)
                .order_by(InstanceAction.id.desc())
            ).scalars()
        )
    body: dict[str, Any] = {}
    if mv(call).matches("2.58"):
        from kumo.compute.service.servers import _parse_time

        if call.query.get("changes-since"):
            since = _parse_time(call.query["changes-since"], "changes-since")
            rows = [a for a in rows if a.updated_at >= since]
        if call.query.get("changes-before") and mv(call).matches("2.66"):
            before = _parse_time(call.query["changes-before"], "changes-before")
            rows = [a for a in rows if a.updated_at <= before]
        marker = call.query.get("marker")
        if marker:
            ids = [a.request_id for a in rows]
            if marker not in ids:
                raise BadRequest(f"Marker {marker} could not be found.")
            rows = rows[ids.index(marker) + 1 :]
        if call.query.get("limit"):
            try:
                limit = int(call.query["limit"])
            except ValueError:
                raise BadRequest("Invalid input for field/attribute limit.") from None
            if limit < 0:
                raise BadRequest("Invalid input for field/attribute limit.")
            if len(rows) > limit:
                rows = rows[:limit]
                if rows:
                    body["links"] = next_link(call, f"servers/{sid}/os-instance-actions", rows[-1].request_id)
    body["instanceActions"] = [_render_action(call, a, False) for a in rows]
    return body


@api.route("/v2.1/servers/{server_id}/os-instance-actions/{request_id}", "GET")
def show_action(call: Call):
    from sqlalchemy import select

    sid = _server_for_actions(call)
    with svc(call).db.reader() as s:
        a = (
            s.execute(
                select(InstanceAction).where(
                    InstanceAction.server_id == sid, InstanceAction.request_id == call.params["request_id"]
                )
            )
            .scalars()
            .first()
        )
    if a is None:
        raise NotFound(f"Action for request_id {call.params['request_id']} on instance {sid} not found")
    return {"instanceAction": _render_action(call, a, True)}


# -- interfaces, security groups, diagnostics --------------------------------------------------


@api.route("/v2.1/servers/{server_id}/ips", "GET")
def list_ips(call: Call):
    from kumo.compute.api.render import addresses

    return {
        "addresses": addresses(
            servers.get_server(svc(call), call.ctx, call.params["server_id"]), detail=False
        )
    }


@api.route("/v2.1/servers/{server_id}/ips/{network}", "GET")
def show_ips(call: Call):
    from kumo.compute.api.render import addresses

    addrs = addresses(servers.get_server(svc(call), call.ctx, call.params["server_id"]), detail=False)
    if call.params["network"] not in addrs:
        raise NotFound("Instance is not a member of specified network")
    return {call.params["network"]: addrs[call.params["network"]]}


@api.route("/v2.1/servers/{server_id}/os-server-password", "GET")
def get_password(call: Call):
    server = servers.get_server(svc(call), call.ctx, call.params["server_id"])
    # what the guest posted to the metadata API's /openstack/latest/password (kumo.compute.service.metadata)
    return {"password": str((server.system_metadata or {}).get("password") or "")}


@api.route("/v2.1/servers/{server_id}/os-server-password", "DELETE")
def clear_password(call: Call):
    servers.get_server(svc(call), call.ctx, call.params["server_id"], write=True)
    from kumo.compute.service.metadata import clear_password as clear

    clear(svc(call), call.params["server_id"])
    return Response(status_code=204)
