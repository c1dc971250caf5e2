"""Server share attachments (compute 2.97): ``/servers/{id}/shares``.

Nova attaches a Manila share to a stopped server through virtio-fs. kumo has no shared file
system service and none of its compute drivers (fake, QEMU) exports a host directory to a
guest with virtio-fs, so a kumo host never offers the capability: attaching answers 403, as
Nova does when the server's compute host cannot do it, after the same checks Nova makes first
(body, server, policy, the server being stopped). No attachment can exist, so a server's list
is empty and a given share is not attached (404).
"""

from __future__ import annotations

import re
from typing import Any

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Forbidden, NotFound, invalid_state
from kumo.compute.models import Server
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService
from kumo.compute.service.servers import get_server, is_uuid

_TAG = re.compile(r"^[^\s\x00-\x1f\x7f]{1,255}$")
# vm_states a share may be attached in (Nova: stopped) / detached in (stopped or error)
ATTACH_STATES = ("stopped",)
DETACH_STATES = ("stopped", "error")


def parse_attach(body: Any) -> dict[str, str]:
    """The ``{"share": {"share_id": uuid, "tag": ...}}`` body, validated as Nova's schema does."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute share. 'share' is a required property")
    v.only_keys(body, {"share"})
    data = v.body_key(body, "share")
    v.only_keys(data, {"share_id", "tag"})
    if "share_id" not in data:
        raise BadRequest("Invalid input for field/attribute share. 'share_id' is a required property")
    share_id = data["share_id"]
    if not isinstance(share_id, str) or not is_uuid(share_id):
        raise BadRequest(f"Invalid input for field/attribute share_id. Value: {share_id!r}. is not a 'uuid'")
    out = {"share_id": share_id}
    if "tag" in data:
        tag = data["tag"]
        if not isinstance(tag, str) or not _TAG.match(tag):
            raise BadRequest(f"Invalid input for field/attribute tag. Value: {tag!r}.")
        out["tag"] = tag
    return out


def _server(svc: ComputeService, ctx: RequestContext, server_id: str, write: bool) -> Server:
    """The server, for its project's readers (list, show) or members (attach, detach) and admins:
    Nova's default rules for ``os_compute_api:os-server-shares:*``."""
    return get_server(svc, ctx, server_id, write=write)


def host_supports_shares(svc: ComputeService, host: str | None) -> bool:
    """Whether the compute host can export a share to a guest with virtio-fs: no kumo driver can."""
    return False


def list_shares(svc: ComputeService, ctx: RequestContext, server_id: str) -> list[dict[str, Any]]:
    _server(svc, ctx, server_id, write=False)
    return []  # nothing can be attached (see the module docstring)


def show_share(svc: ComputeService, ctx: RequestContext, server_id: str, share_id: str) -> dict[str, Any]:
    _server(svc, ctx, server_id, write=False)
    raise NotFound(f"Share {share_id} could not be found.")


def attach_share(svc: ComputeService, ctx: RequestContext, server_id: str, body: Any) -> dict[str, Any]:
    req = parse_attach(body)
    server = _server(svc, ctx, server_id, write=True)
    if server.vm_state not in ATTACH_STATES:
        raise invalid_state(server_id, "vm_state", server.vm_state, "create share")
    if not host_supports_shares(svc, server.host):
        raise Forbidden(
            f"Share {req['share_id']} cannot be attached: the compute host of server {server_id} does not "
            "support shares (virtio-fs)."
        )
    raise NotFound(f"Share {req['share_id']} could not be found.")  # no shared file system service


def detach_share(svc: ComputeService, ctx: RequestContext, server_id: str, share_id: str) -> None:
    server = _server(svc, ctx, server_id, write=True)
    if server.vm_state not in DETACH_STATES:
        raise invalid_state(server_id, "vm_state", server.vm_state, "delete share")
    raise NotFound(f"Share {share_id} could not be found.")
