"""Server actions: validate the state, set the task, hand the work to the agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound, OverLimit
from kumo.compute.models import Flavor, Migration, Server
from kumo.compute.scheduler import claims
from kumo.compute.service import flavors as flavor_svc
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService, new_uuid, now
from kumo.compute.service.servers import check_lock, get_server, new_action
from kumo.compute.service.states import (
    ACTIVE,
    ERROR,
    PAUSED,
    RESCUED,
    RESIZED,
    SHELVED_OFFLOADED,
    STOPPED,
    SUSPENDED,
)

# action -> (allowed vm_states, task_state while running, agent op, instance-action name)
TABLE: dict[str, tuple[tuple[str, ...], str | None, str | None, str]] = {
    "reboot_soft": ((ACTIVE,), "rebooting", "reboot", "reboot"),
    "reboot_hard": ((ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR), "rebooting_hard", "reboot_hard", "reboot"),
    "stop": ((ACTIVE, ERROR), "powering-off", "stop", "stop"),
    "start": ((STOPPED,), "powering-on", "start", "start"),
    "pause": ((ACTIVE,), "pausing", "pause", "pause"),
    "unpause": ((PAUSED,), "unpausing", "unpause", "unpause"),
    "suspend": ((ACTIVE,), "suspending", "suspend", "suspend"),
    "resume": ((SUSPENDED,), "resuming", "resume", "resume"),
    "rebuild": ((ACTIVE, STOPPED, ERROR), "rebuilding", "rebuild", "rebuild"),
    "resize": ((ACTIVE, STOPPED), "resize_prep", "resize", "resize"),
    "revert_resize": ((RESIZED,), "resize_reverting", "revert_resize", "revertResize"),
    "rescue": ((ACTIVE, STOPPED, ERROR), "rescuing", "rescue", "rescue"),
    "unrescue": ((RESCUED,), "unrescuing", "unrescue", "unrescue"),
    "shelve": ((ACTIVE, STOPPED, PAUSED, SUSPENDED), "shelving", "shelve", "shelve"),
    "unshelve": ((SHELVED_OFFLOADED,), "unshelving", None, "unshelve"),
}

# agent op -> (vm_state after, power_state after); None keeps the vm_state it had
RESULT: dict[str, tuple[str | None, int]] = {
    "build": (ACTIVE, 1),
    "reboot": (ACTIVE, 1),
    "reboot_hard": (ACTIVE, 1),
    "stop": (STOPPED, 4),
    "start": (ACTIVE, 1),
    "pause": (PAUSED, 3),
    "unpause": (ACTIVE, 1),
    "suspend": (SUSPENDED, 7),
    "resume": (ACTIVE, 1),
    "rebuild": (None, 1),
    "resize": (RESIZED, 1),
    "revert_resize": (None, 1),
    "rescue": (RESCUED, 1),
    "unrescue": (ACTIVE, 1),
    "shelve": (SHELVED_OFFLOADED, 0),
}


def _state_error(server: Server, action: str) -> Conflict:
    if server.task_state:
        return Conflict(
            f"Cannot '{action}' instance {server.id} while it is in task_state {server.task_state}"
        )
    return Conflict(f"Cannot '{action}' instance {server.id} while it is in vm_state {server.vm_state}")


def start_action(
    svc: ComputeService,
    ctx: RequestContext,
    server_id: str,
    action: str,
    extra: dict[str, Any] | None = None,
    api_name: str | None = None,
    apply: Callable[[Any, Server], None] | None = None,
) -> Server:
    """Queue ``action`` for the server's agent. ``apply(session, server)`` changes the server in the
    same transaction, before the agent is woken (it must see the new image, name, user data...)."""
    allowed, task, op, action_name = TABLE[action]
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        if server.vm_state not in allowed or server.task_state is not None:
            raise _state_error(server, api_name or action_name)
        if action == "reboot_hard" and server.task_state in ("rebooting_hard",):
            raise _state_error(server, "reboot")
        server.task_state = task
        server.op_seq += 1
        server.pending = {"op": op, "seq": server.op_seq, "from": server.vm_state, **(extra or {})}
        server.updated_at = now()
        if apply is not None:
            apply(s, server)
        s.add(new_action(ctx, server_id, action_name))
    svc.notifier.bump()
    return server


def lock(
    svc: ComputeService, ctx: RequestContext, server_id: str, locked: bool, reason: str | None = None
) -> None:
    server = get_server(svc, ctx, server_id, write=True)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        if not locked and server.locked and server.locked_by == "admin" and not svc.is_admin(ctx):
            raise Conflict(f"Instance {server_id} is locked by an administrator")
        server.locked = locked
        server.locked_by = (
            ("admin" if svc.is_admin(ctx) and ctx.project_id != server.project_id else "owner")
            if locked
            else None
        )
        server.locked_reason = reason if locked else None
        server.updated_at = now()
        s.add(new_action(ctx, server_id, "lock" if locked else "unlock"))


def prepare_resize(
    svc: ComputeService, ctx: RequestContext, server_id: str, flavor_ref: Any
) -> dict[str, Any]:
    if flavor_ref is None or flavor_ref == "":
        raise BadRequest("Invalid input for field/attribute flavorRef. Value: None.")
    if not isinstance(flavor_ref, str | int) or isinstance(flavor_ref, bool):
        raise BadRequest("Invalid input for field/attribute flavorRef.")
    fid = str(flavor_ref).rstrip("/").rsplit("/", 1)[-1]
    server = get_server(svc, ctx, server_id, write=True)
    try:
        flavor = flavor_svc.get_flavor(svc, ctx, fid)
    except NotFound:
        raise BadRequest(f"Unable to find flavor {fid}") from None
    if flavor.id == server.flavor_id:
        raise BadRequest("When resizing, instances must change flavor!")
    return flavor_svc.snapshot(flavor)


def resize(
    svc: ComputeService,
    ctx: RequestContext,
    server_id: str,
    new_flavor: dict[str, Any],
    disk_config: str | None = None,
) -> Server:
    from kumo.compute.models import ComputeNode
    from kumo.compute.service import quotas
    from kumo.compute.service.servers import usage

    dv, dr = new_flavor["vcpus"], new_flavor["ram"]
    dd = new_flavor["disk"] + new_flavor.get("ephemeral", 0)
    server = get_server(svc, ctx, server_id, write=True)
    lim, used = quotas.limits(svc, server.project_id), usage(svc, server.project_id)
    for res, key in (("cores", "vcpus"), ("ram", "ram")):
        delta = new_flavor[key] - server.flavor[key]
        if lim[res] >= 0 and delta > 0 and used[res] + delta > lim[res]:
            raise OverLimit(
                f"Quota exceeded for {res}: Requested {delta}, but already used {used[res]} of {lim[res]} {res}"
            )
    with svc.db.reader() as s:
        node = s.execute(
            select(ComputeNode).where(ComputeNode.host == (server.host or ""))
        ).scalar_one_or_none()
    if server.vm_state in (ACTIVE, STOPPED) and (
        node is None or not claims.fits(node, svc.settings, dv, dr, dd)
    ):
        raise BadRequest("No valid host was found. No valid host found for resize")
    server = start_action(svc, ctx, server_id, "resize", {"flavor": new_flavor})
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        node = s.execute(
            select(ComputeNode).where(ComputeNode.host == server.host).with_for_update()
        ).scalar_one_or_none()
        if node is not None:
            claims.claim(node, dv, dr, dd)
            node.running_vms -= 1
        if disk_config:
            server.disk_config = disk_config
        s.add(
            Migration(
                uuid=new_uuid(),
                server_id=server_id,
                project_id=server.project_id,
                user_id=server.user_id,
                migration_type="resize",
                status="migrating",
                source_compute=server.host,
                dest_compute=server.host,
                source_node=server.node,
                dest_node=server.node,
                old_flavor_id=server.flavor_id,
                new_flavor_id=new_flavor["id"],
                created_at=now(),
                updated_at=now(),
            )
        )
    return server


def confirm_resize(svc: ComputeService, ctx: RequestContext, server_id: str) -> None:
    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        if server.vm_state != RESIZED or server.task_state is not None:
            raise _state_error(server, "confirmResize")
        if server.old_flavor:
            claims.release(s, server.host, server.old_flavor)
            from kumo.compute.models import ComputeNode

            node = s.execute(select(ComputeNode).where(ComputeNode.host == server.host)).scalar_one_or_none()
            if node is not None:
                node.running_vms += 1
        server.old_flavor = None
        prev = (server.pending or {}).get("from") if server.pending else None
        server.vm_state = STOPPED if server.power_state == 4 or prev == STOPPED else ACTIVE
        server.updated_at = now()
        _migration_status(s, server_id, "confirmed")
        s.add(new_action(ctx, server_id, "confirmResize"))


def _migration_status(s: Any, server_id: str, status: str) -> None:
    m = (
        s.execute(select(Migration).where(Migration.server_id == server_id).order_by(Migration.id.desc()))
        .scalars()
        .first()
    )
    if m is not None:
        m.status, m.updated_at = status, now()


def reset_state(svc: ComputeService, ctx: RequestContext, server_id: str, state: Any) -> None:
    svc.require_admin(ctx, "os_compute_api:os-admin-actions:reset_state")
    if state not in ("active", "error"):
        raise BadRequest("Invalid input for field/attribute state.")
    get_server(svc, ctx, server_id)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        server.vm_state, server.task_state, server.pending = state, None, None
        server.updated_at = now()


def rebuild_args(svc: ComputeService, ctx: RequestContext, data: Any, mv: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BadRequest("Invalid input for field/attribute rebuild.")
    allowed = {
        "imageRef",
        "name",
        "adminPass",
        "metadata",
        "accessIPv4",
        "accessIPv6",
        "OS-DCF:diskConfig",
        "preserve_ephemeral",
    }
    if not mv.matches("2.57"):
        allowed.add("personality")
    if mv.matches("2.19"):
        allowed.add("description")
    if mv.matches("2.54"):
        allowed.add("key_name")
    if mv.matches("2.57"):
        allowed.add("user_data")
    if mv.matches("2.90"):
        allowed.add("hostname")
    v.only_keys(data, allowed)
    image_ref = data.get("imageRef")
    if not isinstance(image_ref, str) or not image_ref:
        raise BadRequest("Invalid input for field/attribute imageRef.")
    out: dict[str, Any] = {"image_ref": image_ref.rstrip("/").rsplit("/", 1)[-1]}
    if "OS-DCF:diskConfig" in data:
        if data["OS-DCF:diskConfig"] not in ("AUTO", "MANUAL"):
            raise BadRequest("Invalid input for field/attribute OS-DCF:diskConfig.")
        out["disk_config"] = data["OS-DCF:diskConfig"]
    if "name" in data:
        out["name"] = v.name(data["name"], allow_blank_edges=True)
    if "metadata" in data:
        out["metadata"] = v.metadata(data["metadata"])
    if "description" in data:
        out["description"] = v.string(data["description"], "description", 255, nullable=True)
    if "adminPass" in data:
        out["admin_pass"] = v.string(data["adminPass"], "adminPass", 255)
    if "key_name" in data:
        out["key_name"] = data["key_name"]
    if "personality" in data:  # kumo.compute.service.personality: replaces the server's files
        from kumo.compute.service import personality

        out["personality"] = personality.parse(svc, ctx.project_id, data["personality"], mv)
    if "user_data" in data:
        out["user_data"] = data["user_data"]
    if "hostname" in data:
        from kumo.compute.service.servers import parse_hostname

        out["hostname"] = parse_hostname(data["hostname"], mv)
    for k in ("accessIPv4", "accessIPv6"):
        if k in data:
            out[k] = data[k]
    return out


def apply_rebuild(svc: ComputeService, ctx: RequestContext, server_id: str, args: dict[str, Any]) -> Server:
    image_id = None if args.get("volume_backed") else args["image_ref"]  # a root volume keeps its data
    extra: dict[str, Any] = {"image_id": image_id}
    if args.get("reimage"):  # 2.93: held until the root volume is re-imaged (kumo.compute.service.reimage)
        extra.update(hold=True, reimage={"image_id": args["reimage"]})
    from kumo.compute.service import personality

    # the new files are stored first, so the agent's rebuild already builds the config drive with them
    get_server(svc, ctx, server_id, write=True)
    before = personality.replace(svc, server_id, args.get("personality"))
    try:
        return start_action(svc, ctx, server_id, "rebuild", extra,
                            apply=lambda s, server: _rebuilt(s, ctx, server, image_id, args))
    except Exception:
        personality.replace(svc, server_id, before)
        raise


def _rebuilt(s: Any, ctx: RequestContext, server: Server, image_id: str | None, args: dict[str, Any]) -> None:
    """What a rebuild changes on the server (in the transaction that queues it)."""
    server.image_id = image_id
    if "image_properties" in args:  # 2.98 shows the new image's properties from now on
        from kumo.compute.service.boot_info import IMAGE_KEY

        server.system_metadata = {**(server.system_metadata or {}), IMAGE_KEY: args["image_properties"]}
    if "name" in args:
        server.name = args["name"]
    if "metadata" in args:
        server.metadata_ = args["metadata"]
    if "disk_config" in args:
        server.disk_config = args["disk_config"]
    if "description" in args:
        server.description = args["description"]
    if "user_data" in args:
        server.user_data = args["user_data"]
    if "hostname" in args:
        server.hostname = args["hostname"]
    if "accessIPv4" in args:
        server.access_ipv4 = args["accessIPv4"] or ""
    if "accessIPv6" in args:
        server.access_ipv6 = args["accessIPv6"] or ""
    if "key_name" in args:
        if args["key_name"] is None:
            server.key_name, server.key_data = None, None
        else:
            from kumo.compute.models import Keypair

            kp = s.execute(
                select(Keypair).where(Keypair.user_id == ctx.user_id, Keypair.name == args["key_name"])
            ).scalar_one_or_none()
            if kp is None:
                raise BadRequest("Invalid key_name provided.")
            server.key_name, server.key_data = kp.name, kp.public_key


def flavor_exists(svc: ComputeService, fid: str) -> bool:
    with svc.db.reader() as s:
        return s.get(Flavor, fid) is not None


def unshelve(
    svc: ComputeService, ctx: RequestContext, server_id: str, zone: Any = None, host: str | None = None
) -> Server:
    """Find a host again (the offloaded server has none), then boot it there.

    ``zone``: ``None`` keeps the server's zone; a name pins it there (2.77); ``UNPIN`` (2.91,
    ``"availability_zone": null``) lets it go to any zone. ``host`` (2.91, admin) picks the host.
    """
    from kumo.compute.service.servers import schedule_server, start_build
    from kumo.compute.service.unshelve import UNPIN, check_destination

    server = get_server(svc, ctx, server_id, write=True)
    check_lock(svc, ctx, server)
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        assert server is not None
        if server.vm_state != SHELVED_OFFLOADED or server.task_state is not None:
            raise _state_error(server, "unshelve")
        if zone is not None or host is not None:
            check_destination(s, server, zone, host)
            if zone is not None:
                server.availability_zone = None if zone is UNPIN else zone
        server.task_state = "unshelving"
        server.updated_at = now()
        s.add(new_action(ctx, server_id, "unshelve"))
    placed = schedule_server(svc, server_id, {}, host, unshelving=True)
    if placed.host:
        start_build(svc, server_id, list(placed.ports or []), unshelving=True)
    return placed
