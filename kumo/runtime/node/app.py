"""The node registry's HTTP API, mounted by the controller at ``/nodes``.

It lives in kumo.runtime (not in a service) because joining a node hands out what
several services own: the compute agent secret, the metadata secret, the object
ring and an identity service user. kumo.runtime may import services; services may
not import each other.

    POST   /nodes/v1/join                    public; a one-time join token in the body
    POST   /nodes/v1/nodes/{name}/heartbeat  public; the node key in X-Kumo-Node-Key
    GET    /nodes/v1/nodes[/{name}]          admin token
    DELETE /nodes/v1/nodes/{name}            admin token
    POST   /nodes/v1/tokens                  admin token: a new join token
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import httpx
from starlette.applications import Starlette

from kumo import __version__
from kumo.common import shared_secret
from kumo.common.asgi import API, Call, create_service_app
from kumo.common.db import Database
from kumo.common.errors import APIError, BadRequest, Forbidden, ServiceUnavailable
from kumo.common.service import Runtime
from kumo.runtime.node.registry import Registry, check_roles

log = logging.getLogger("kumo.runtime.node")
api = API()
KEY_HEADER = "x-kumo-node-key"


def render_error(err: APIError) -> tuple[bytes, str]:
    body = {"error": {"code": err.status, "title": err.title, "message": err.message}}
    return json.dumps(body).encode(), "application/json"


def registry_for(settings: Any) -> Registry:
    db = Database(settings.database_url("node"), echo=settings.database.echo)
    return Registry(db, down_after=settings.node.down_after)


def local_name(settings: Any) -> str:
    return settings.node.name or socket.gethostname().split(".")[0].lower()


def _reg(call: Call) -> Registry:
    return call.request.app.state.registry


def _admin(call: Call) -> None:
    if "admin" not in call.ctx.roles:
        raise Forbidden("Only an admin may manage the nodes of this cloud.")


def _body(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return call.body


@api.route("/v1/nodes", "GET")
def list_nodes(call: Call) -> dict[str, Any]:
    _admin(call)
    return {"nodes": _reg(call).list_nodes()}


@api.route("/v1/nodes/{name}", "GET")
def show_node(call: Call) -> dict[str, Any]:
    _admin(call)
    return {"node": _reg(call).show(call.params["name"])}


@api.route("/v1/nodes/{name}", "DELETE", status=204)
def delete_node(call: Call) -> None:
    _admin(call)
    _reg(call).delete(call.params["name"])


@api.route("/v1/tokens", "POST", status=201)
def create_token(call: Call) -> dict[str, Any]:
    _admin(call)
    body = _body(call)
    ttl = body.get("ttl", 3600)
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise BadRequest("ttl must be an integer number of seconds.")
    created = _reg(call).create_token(body.get("roles"), ttl, str(body.get("description") or ""))
    return {"token": {"token": created.token, "id": created.id, "roles": created.roles,
                      "expires_at": created.expires_at.isoformat() + "Z"}}


@api.route("/v1/nodes/{name}/heartbeat", "POST", public=True, status=204)
def heartbeat(call: Call) -> None:
    body = call.body if isinstance(call.body, dict) else {}
    _reg(call).heartbeat(call.params["name"], call.headers.get(KEY_HEADER, ""), str(body.get("version") or ""))


@api.route("/v1/join", "POST", public=True, status=201)
async def join(call: Call) -> dict[str, Any]:
    body = _body(call)
    roles = check_roles(body.get("roles"), ("compute", "network", "storage"))
    reg: Registry = _reg(call)
    runtime: Runtime = call.request.app.state.runtime
    address = str(body.get("address") or (call.request.client.host if call.request.client else ""))
    node, key, _new = await anyio.to_thread.run_sync(reg.redeem, body.get("token"), body.get("name"), roles, address)
    password = secrets.token_urlsafe(24)
    user_id, endpoints = await provision_user(runtime, f"kumo-node-{node.name}", password)
    await anyio.to_thread.run_sync(reg.set_user, node.name, user_id)
    config = await anyio.to_thread.run_sync(node_config, runtime, call.base_url, endpoints,
                                            f"kumo-node-{node.name}", password)
    return {"node": {"name": node.name, "roles": roles, "key": key, "address": address}, "config": config}


def _block_storage_config(runtime: Runtime) -> dict[str, Any] | None:
    """The volume agent secret for storage nodes (None when block storage is not installed)."""
    try:
        from kumo.block_storage.app import agent_secret
    except ImportError:  # pragma: no cover - block storage ships with kumo
        return None
    return {"agent_secret": agent_secret(runtime), "heartbeat_interval": runtime.settings.block_storage.heartbeat_interval}


def node_config(runtime: Runtime, nodes_url: str, endpoints: dict[str, str], username: str,
                password: str) -> dict[str, Any]:
    """What a joining node needs to reach and authenticate to the control plane."""
    settings = runtime.settings
    data = settings.data_dir
    compute = endpoints.get("compute")
    controller = str(httpx.URL(compute).copy_with(path="/", query=None)).rstrip("/") if compute else runtime.base_url
    from kumo.compute.app import agent_secret

    ring = data / "object-store" / "object.ring.gz"
    meta = shared_secret.ensure(data / "metadata-secret")  # the network nodes share it with compute
    return {
        "controller_url": controller,
        "metadata_url": controller + "/compute-metadata",
        "nodes_url": nodes_url,
        "identity_url": runtime.identity_url,
        "region": settings.identity.region,
        "endpoints": endpoints,
        "credentials": {"auth_url": runtime.identity_url + "/v3", "username": username, "password": password,
                        "user_domain_name": "Default", "project_name": "service",
                        "project_domain_name": "Default"},
        "compute": {"agent_secret": agent_secret(runtime),
                    "heartbeat_interval": settings.compute.heartbeat_interval},
        "metadata_secret": meta.read_text().strip() if meta.is_file() else "",
        "block_storage": _block_storage_config(runtime),
        "object_ring": base64.b64encode(ring.read_bytes()).decode() if ring.is_file() else None,
        "node": {"heartbeat_interval": settings.node.heartbeat_interval},
    }


async def provision_user(runtime: Runtime, username: str, password: str) -> tuple[str, dict[str, str]]:
    """Create (or reset) the node's service user (role ``service`` on project ``service``);
    also return the catalog's public endpoints by service type, as the cloud advertises them."""
    from kumo.runtime import credentials

    admin_pw = credentials.password(runtime.settings.data_dir, "admin")
    base = runtime.identity_url.rstrip("/") + "/v3"
    async with httpx.AsyncClient(transport=runtime.identity_transport, timeout=30.0) as c:
        try:
            auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": "admin", "password": admin_pw, "domain": {"id": "default"}}}},
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
            r = await c.post(base + "/auth/tokens", json=auth)
            r.raise_for_status()
            h = {"X-Auth-Token": r.headers["X-Subject-Token"]}
            region = runtime.settings.identity.region
            endpoints = {entry["type"]: e["url"] for entry in r.json()["token"].get("catalog", [])
                         for e in entry["endpoints"]
                         if e["interface"] == "public" and e.get("region_id", region) == region}

            async def one(path: str, key: str, name: str) -> dict[str, Any]:
                r = await c.get(base + path, params={"name": name}, headers=h)
                r.raise_for_status()
                found = r.json()[key]
                if not found:
                    raise ServiceUnavailable(f"identity has no {key[:-1]} named {name}")
                return found[0]

            project = await one("/projects", "projects", "service")
            role = await one("/roles", "roles", "service")
            r = await c.get(base + "/users", params={"name": username, "domain_id": "default"}, headers=h)
            r.raise_for_status()
            users = r.json()["users"]
            if users:
                user_id = users[0]["id"]
                r = await c.patch(f"{base}/users/{user_id}", json={"user": {"password": password, "enabled": True}},
                                  headers=h)
            else:
                r = await c.post(base + "/users", headers=h, json={"user": {
                    "name": username, "password": password, "domain_id": "default",
                    "default_project_id": project["id"], "description": "kumo node service user"}})
            r.raise_for_status()
            user_id = r.json()["user"]["id"]
            r = await c.put(f"{base}/projects/{project['id']}/users/{user_id}/roles/{role['id']}", headers=h)
            r.raise_for_status()
            return user_id, endpoints
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"The identity service could not provision the node user: {exc}") from exc


def create_app(runtime: Runtime) -> Any:
    settings = runtime.settings
    reg = registry_for(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        task = None
        if "controller" in settings.node.roles:  # a controller shows itself in `kumo node list`
            task = asyncio.create_task(_beat_local(reg, settings))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            reg.db.dispose()

    return create_service_app(api=api, renderer=render_error, validator=runtime.token_validator(),
                              lifespan=lifespan, auth_uri=runtime.identity_url,
                              state={"registry": reg, "runtime": runtime})


async def _beat_local(reg: Registry, settings: Any) -> None:
    name = local_name(settings)
    address = settings.node.address or settings.host
    while True:
        try:
            await anyio.to_thread.run_sync(reg.register_local, name, ["controller"], address, __version__)
        except Exception as exc:  # the database may be briefly unreachable
            log.warning("node registry: local heartbeat failed: %s", exc)
        await asyncio.sleep(settings.node.heartbeat_interval)


def prepare(runtime: Runtime) -> None:
    reg = registry_for(runtime.settings)
    try:
        reg.migrate()
    finally:
        reg.db.dispose()
