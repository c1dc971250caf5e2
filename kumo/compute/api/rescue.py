"""The ``rescue`` server action: checks as Nova makes them, then the agent restarts the guest
on the rescue image (layout decided by ``kumo.compute.service.rescue``)."""

from __future__ import annotations

import secrets
from typing import Any

import anyio.to_thread

from kumo.common.asgi import Call
from kumo.compute.api.common import mv, svc
from kumo.compute.clients import Peers
from kumo.compute.errors import BadRequest, Conflict
from kumo.compute.service import actions, servers
from kumo.compute.service import rescue as rescue_svc
from kumo.compute.service import validate as v


def _args(args: Any) -> tuple[str | None, str | None]:
    """(adminPass, rescue_image_ref) of the request body (``{"rescue": null}`` is allowed)."""
    if args is None:
        return None, None
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute rescue. Value: {args!r}. {args!r} is not of type 'object', 'null'")
    v.only_keys(args, {"adminPass", "rescue_image_ref"})
    password = v.string(args["adminPass"], "adminPass", 255) if "adminPass" in args else None
    ref = args.get("rescue_image_ref")
    if "rescue_image_ref" in args and (not isinstance(ref, str) or not servers.is_uuid(ref)):
        raise BadRequest(f"Invalid input for field/attribute rescue_image_ref. Value: {ref!r}. {ref!r} is not a 'uuid'")
    return password, ref


async def rescue(call: Call, sid: str, args: Any) -> Any:
    service = svc(call)
    password, ref = _args(args)
    server = await anyio.to_thread.run_sync(servers.get_server, service, call.ctx, sid, True)
    await anyio.to_thread.run_sync(servers.check_lock, service, call.ctx, server)
    if server.task_state is not None:
        raise Conflict(f"Cannot 'rescue' instance {sid} while it is in task_state {server.task_state}")
    if server.vm_state not in actions.TABLE["rescue"][0]:
        raise Conflict(f"Cannot 'rescue' instance {sid} while it is in vm_state {server.vm_state}")
    image_id = ref or server.image_id
    image = await Peers(call.ctx, service.extras).get_image(image_id) if image_id else None
    doc = rescue_svc.plan(server, image, ref, not server.image_id, mv(call).matches("2.87"))
    await anyio.to_thread.run_sync(lambda: actions.start_action(service, call.ctx, sid, "rescue", {"rescue": doc}))
    await anyio.to_thread.run_sync(rescue_svc.remember, service, sid, doc)
    return {"adminPass": password or secrets.token_urlsafe(9)}


async def unrescue(call: Call, sid: str) -> None:
    service = svc(call)
    await anyio.to_thread.run_sync(lambda: actions.start_action(service, call.ctx, sid, "unrescue"))
    await anyio.to_thread.run_sync(rescue_svc.remember, service, sid, None)
