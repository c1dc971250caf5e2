"""Remote consoles: the URL-issuing API and the websocket proxy that serves those URLs.

- ``POST /v2.1/servers/{id}/remote-consoles`` (2.6+) and the legacy ``os-getVNCConsole`` /
  ``os-getSerialConsole`` actions hand out a URL with a one-time token;
  ``GET /v2.1/os-console-auth-tokens/{token}`` shows a token to admins.
- ``/console/websockify?token=T`` (VNC: RFB bytes in binary frames, what noVNC speaks) and
  ``/console/serial?token=T`` (the serial port's bytes) are websockets under the compute
  prefix (all-in-one: ``/compute/console/...``; ``kumo serve compute``: the same path on its
  own port). ``/console/vnc_lite.html`` and the rest of noVNC's files are served from
  ``[compute] novnc_dir`` when noVNC is installed there (Debian package ``novnc``).

Where the proxy finds a console: the compute host's driver knows the console's local socket
(``console_socket(vm_id, kind)``). Agents running in this process register a resolver per
host in ``runtime.extras["console_resolvers"]`` (kumo.runtime.agents); a proxy on another
machine than the VM would reach the compute agent instead (not built yet: a server on a
host with no resolver here gets its websocket closed at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.responses import FileResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from kumo.common.asgi import API, Call
from kumo.compute.api.common import mv, svc
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.service import consoles

log = logging.getLogger("kumo.compute.consoles")
api = API()
CHUNK = 65536


# -- issuing URLs ------------------------------------------------------------------------------


def _url(call: Call, console_type: str, token: str) -> str:
    base = call.base_url  # e.g. http://127.0.0.1:5100/compute
    if console_type == "serial":
        return base.replace("http", "ws", 1) + f"/console/serial?token={token}"
    # noVNC opens ws://host:port/<path>: the websocket's path from the host root
    prefix = call.request.scope.get("root_path", "").strip("/")
    ws_path = (prefix + "/" if prefix else "") + f"console/websockify?token={token}"
    return f"{base}/console/vnc_lite.html?path={quote(ws_path, safe='')}"


def _issue(call: Call, server_id: str, console_type: str) -> str:
    token, _server = consoles.create_token(svc(call), call.ctx, server_id, console_type)
    return _url(call, console_type, token)


def _issue_spice_direct(call: Call, server_id: str) -> str:
    """2.99: a token for the VM's SPICE port itself, for the operator's SPICE proxy (which shows the
    token through os-console-auth-tokens to learn the host and port, and connects there)."""
    service = svc(call)
    server = consoles.ready_server(service, call.ctx, server_id)
    runtime = getattr(call.request.app.state, "runtime", None)
    resolver = ((runtime.extras.get("spice_resolvers") if runtime is not None else None) or {}).get(server.host)
    if resolver is None:  # the host's driver offers no SPICE display (or runs in another process)
        raise BadRequest("Unavailable console type spice-direct.")
    address = resolver(server.id)
    if address is None:
        raise Conflict(f"Instance {server_id} is not ready")
    token, _server = consoles.create_token(service, call.ctx, server_id, "spice-direct", address)
    base = service.settings.spice_direct_proxy_base_url
    return f"{base}{'&' if '?' in base else '?'}token={token}"


@api.route("/v2.1/servers/{server_id}/remote-consoles", "POST")
def create_remote_console(call: Call):
    version = mv(call)
    if not version.matches("2.6"):
        raise NotFound("The resource could not be found.")
    body = call.body
    rc = body.get("remote_console") if isinstance(body, dict) else None
    if not isinstance(rc, dict) or set(body) != {"remote_console"}:
        raise BadRequest("Invalid input for field/attribute remote_console.")
    extra = set(rc) - {"protocol", "type"}
    if extra:
        raise BadRequest(f"Additional properties are not allowed ({', '.join(sorted(extra))} was unexpected)")
    for key in ("protocol", "type"):
        if not isinstance(rc.get(key), str):
            raise BadRequest(f"'{key}' is a required property")
    consoles.check_type(rc["protocol"], rc["type"], min_mks=version.matches("2.8"),
                        min_spice_direct=version.matches("2.99"))  # fmt: skip
    if rc["type"] == "spice-direct":
        url = _issue_spice_direct(call, call.params["server_id"])
    else:
        url = _issue(call, call.params["server_id"], rc["type"])
    return {"remote_console": {"protocol": rc["protocol"], "type": rc["type"], "url": url}}


def _legacy(allowed: tuple[str, ...], action: str):  # type: ignore[no-untyped-def]
    def run(call: Call, sid: str, args: Any) -> Any:
        if not isinstance(args, dict) or not isinstance(args.get("type"), str):
            raise BadRequest(f"Invalid input for field/attribute {action}.")
        extra = set(args) - {"type"}
        if extra:
            raise BadRequest(f"Additional properties are not allowed ({', '.join(sorted(extra))} was unexpected)")
        if args["type"] not in allowed:
            raise BadRequest(f"Invalid input for field/attribute type. Value: {args['type']}.")
        consoles.check_type(None, args["type"])
        return {"console": {"type": args["type"], "url": _issue(call, sid, args["type"])}}

    return run


# the server actions this module handles (kumo.compute.api.server_actions dispatches them)
ACTIONS = {
    "os-getVNCConsole": _legacy(("novnc", "xvpvnc"), "os-getVNCConsole"),
    "os-getSerialConsole": _legacy(("serial",), "os-getSerialConsole"),
    "os-getSPICEConsole": _legacy(("spice-html5",), "os-getSPICEConsole"),
    "os-getRDPConsole": _legacy(("rdp-html5",), "os-getRDPConsole"),
}


@api.route("/v2.1/os-console-auth-tokens/{token}", "GET")
def show_console_auth_token(call: Call):
    service = svc(call)
    service.require_admin(call.ctx, "os_compute_api:os-console-auth-tokens")
    grant = consoles.show_token(service, call.params["token"])
    if not mv(call).matches("2.31") and grant.console_type != "rdp-html5":
        raise BadRequest("The requested console type details are not accessible")
    body = {
        "instance_uuid": grant.server_id,
        "host": grant.host,
        "port": grant.port,
        "internal_access_path": grant.internal_access_path,
    }
    if mv(call).matches("2.99"):
        body["tls_port"] = None  # kumo's consoles have no TLS port
    return {"console": body}


# -- noVNC's files -------------------------------------------------------------------------------


@api.route("/console/{path:path}", "GET", public=True)
def novnc_file(call: Call):
    root = Path(svc(call).settings.novnc_dir)
    rel = call.params.get("path") or "vnc_lite.html"
    if not (root / "vnc_lite.html").is_file():
        raise NotFound(f"noVNC is not installed in {root} (Debian: apt-get install novnc); the websocket "
                       "endpoint console/websockify works with any noVNC client.")  # fmt: skip
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or not target.is_file():
        raise NotFound("The resource could not be found.")
    return FileResponse(target)


# -- the websocket proxy ---------------------------------------------------------------------------


def _resolve(ws: WebSocket, grant: consoles.Grant) -> str | None:
    runtime = getattr(ws.app.state, "runtime", None)
    resolvers = (runtime.extras.get("console_resolvers") if runtime is not None else None) or {}
    resolver = resolvers.get(grant.host)
    if resolver is None:
        log.warning("console for %s: no console resolver for host %s here", grant.server_id, grant.host)
        return None
    return resolver(grant.server_id, grant.kind)


async def _proxy(ws: WebSocket, kind: str) -> None:
    service = ws.app.state.compute
    token = ws.query_params.get("token") or ws.cookies.get("token") or ""
    grant = await anyio.to_thread.run_sync(consoles.consume_token, service, token)
    path = None
    if grant is not None and grant.kind == kind:
        try:
            path = await anyio.to_thread.run_sync(_resolve, ws, grant)
        except Exception:
            log.exception("console for %s: resolving the socket failed", grant.server_id)
    if not path:
        await ws.close()  # before accepting: the client gets a refusal and no data
        return
    try:
        reader, writer = await asyncio.open_unix_connection(path)
    except OSError as exc:
        log.warning("console for %s: cannot connect to %s: %s", grant.server_id if grant else "?", path, exc)
        await ws.close()
        return
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="binary" if "binary" in offered else None)

    async def to_client() -> None:
        while data := await reader.read(CHUNK):
            await ws.send_bytes(data)

    async def to_console() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None and message.get("text") is not None:
                data = message["text"].encode()
            if data:
                writer.write(data)
                await writer.drain()

    tasks = [asyncio.create_task(to_client()), asyncio.create_task(to_console())]
    try:
        _done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, ConnectionError, RuntimeError):
                await task
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        with contextlib.suppress(Exception):
            await ws.close()


@api.websocket("/console/websockify")
async def vnc_websocket(ws: WebSocket) -> None:
    await _proxy(ws, "vnc")


@api.websocket("/console/serial")
async def serial_websocket(ws: WebSocket) -> None:
    await _proxy(ws, "serial")
