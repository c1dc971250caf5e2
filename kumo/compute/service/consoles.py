"""Remote consoles: one-time, expiring access tokens for a server's VNC or serial console.

A token is handed out inside a URL (``POST /servers/{id}/remote-consoles`` or the legacy
``os-getVNCConsole`` / ``os-getSerialConsole`` actions); only its SHA-256 is stored. The
websocket proxy (kumo.compute.api.consoles) consumes it on connect: a token opens one
connection, and never after ``[compute] console_token_ttl`` seconds.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import ConsoleAuthToken, Server
from kumo.compute.service.core import ComputeService, now
from kumo.compute.service.servers import get_server

# protocol -> the console types Nova accepts with it (2.6+; mks/webmks from 2.8)
PROTOCOLS = {
    "vnc": ("novnc", "xvpvnc"),
    "spice": ("spice-html5", "spice-direct"),  # spice-direct from 2.99
    "rdp": ("rdp-html5",),
    "serial": ("serial",),
    "mks": ("webmks",),
}
# the console types kumo serves -> the kind of socket the compute host offers
SUPPORTED = {"novnc": "vnc", "serial": "serial", "spice-direct": "spice"}
READY_STATES = ("active", "paused", "rescued")


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: one connection to one console of one server."""

    server_id: str
    console_type: str
    host: str | None
    port: int
    internal_access_path: str | None

    @property
    def kind(self) -> str:
        return SUPPORTED.get(self.console_type, "")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_type(
    protocol: str | None, console_type: str | None, min_mks: bool = False, min_spice_direct: bool = False
) -> None:
    """400 for a protocol/type pair Nova would not accept, or one kumo does not serve."""
    protocols = {k: v for k, v in PROTOCOLS.items() if k != "mks" or min_mks}
    if protocol is not None and protocol not in protocols:
        raise BadRequest(f"Invalid input for field/attribute protocol. Value: {protocol}.")
    allowed = [t for p, types in protocols.items() if protocol in (None, p) for t in types
               if t != "spice-direct" or min_spice_direct]  # fmt: skip
    if console_type not in allowed:
        raise BadRequest(f"Invalid console type {console_type}")
    if console_type not in SUPPORTED:
        raise BadRequest(f"Unavailable console type {console_type}.")


def ready_server(svc: ComputeService, ctx: RequestContext, server_id: str) -> Server:
    """The server, when it has a console to offer (409 otherwise)."""
    server = get_server(svc, ctx, server_id)
    if not server.host or server.vm_state not in READY_STATES:
        raise Conflict(f"Instance {server_id} is not ready")
    return server


def create_token(
    svc: ComputeService,
    ctx: RequestContext,
    server_id: str,
    console_type: str,
    address: tuple[str, int] | None = None,
) -> tuple[str, Server]:
    """A new token for ``console_type`` of the server (already validated with check_type).
    ``address``: where the console listens on the hypervisor (spice-direct), shown to admins."""
    server = ready_server(svc, ctx, server_id)
    token = secrets.token_urlsafe(32)
    ts = now()
    with svc.db.session() as s:
        s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires_at < ts))
        s.add(
            ConsoleAuthToken(
                token_hash=_hash(token),
                server_id=server.id,
                console_type=console_type,
                host=address[0] if address else server.host,
                port=address[1] if address else 0,
                internal_access_path=None,
                access_url_base="",
                created_at=ts,
                expires_at=ts + timedelta(seconds=svc.settings.console_token_ttl),
            )
        )
    return token, server


def _grant(row: ConsoleAuthToken) -> Grant:
    return Grant(row.server_id, row.console_type, row.host, row.port or 0, row.internal_access_path)


def show_token(svc: ComputeService, token: str) -> Grant:
    """The admin view of a live token (it stays usable)."""
    with svc.db.reader() as s:
        row = s.execute(
            select(ConsoleAuthToken).where(ConsoleAuthToken.token_hash == _hash(token))
        ).scalar_one_or_none()
    if row is None or row.expires_at <= now():
        raise NotFound("The token is invalid or has expired.")
    return _grant(row)


def consume_token(svc: ComputeService, token: str) -> Grant | None:
    """The grant of a valid token, which is used up by this call; None when invalid or expired."""
    if not token:
        return None
    with svc.db.session() as s:
        row = s.execute(
            select(ConsoleAuthToken).where(ConsoleAuthToken.token_hash == _hash(token)).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            return None
        grant = _grant(row)
        expired = row.expires_at <= now()
        s.delete(row)
    if expired:
        return None
    with svc.db.reader() as s:  # the server may have gone away or stopped since
        server = s.get(Server, grant.server_id)
    if server is None or server.deleted or server.vm_state not in READY_STATES:
        return None
    return Grant(grant.server_id, grant.console_type, server.host, grant.port, grant.internal_access_path)


def delete_server_tokens(svc: ComputeService, server_id: str) -> None:
    with svc.db.session() as s:
        s.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.server_id == server_id))
