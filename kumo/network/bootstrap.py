"""The default topology of a fresh cloud (DevStack's): an external ``public`` network,
a ``private`` network in the demo project and ``router1`` joining them. Runs once per
data dir (recorded in ``network_meta``); resources the user deleted later stay deleted."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from kumo.common.context import RequestContext
from kumo.network import models as m
from kumo.network.service import NetworkService

log = logging.getLogger("kumo.network.bootstrap")
KEY = "bootstrap_topology"


def done(service: NetworkService) -> bool:
    return service.read(lambda s: s.get(m.Meta, KEY) is not None)


def _mark(service: NetworkService) -> None:
    def run(s: Any) -> None:
        if s.get(m.Meta, KEY) is None:
            s.add(m.Meta(key=KEY, value="done"))

    service.tx(run)


async def project_ids(client: httpx.AsyncClient, identity_url: str, admin_password: str) -> tuple[str, str | None]:
    """(admin project id, demo project id) by logging in as admin through the identity API."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": admin_password}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}}
    r = await client.post(f"{identity_url}/v3/auth/tokens", json=body)
    r.raise_for_status()
    token = r.headers["X-Subject-Token"]
    admin_project = r.json()["token"]["project"]["id"]
    r = await client.get(f"{identity_url}/v3/projects", params={"name": "demo"}, headers={"X-Auth-Token": token})
    r.raise_for_status()
    projects = r.json().get("projects") or []
    return admin_project, (projects[0]["id"] if projects else None)


def create_topology(service: NetworkService, admin_project: str, demo_project: str | None) -> None:
    settings = service.settings
    ctx = RequestContext(user_id="kumo-bootstrap", project_id=admin_project, project_name="admin",
                         roles=frozenset({"admin", "member", "reader"}))

    def find(kind: str, name: str, project: str) -> dict[str, Any] | None:
        items = getattr(service, f"list_{kind}")(ctx)
        return next((i for i in items if i["name"] == name and i["project_id"] == project), None)

    public = find("networks", "public", admin_project)
    if public is None:
        public = service.create_network(ctx, {
            "name": "public", "router:external": True, "provider:network_type": "flat",
            "provider:physical_network": "public", "project_id": admin_project})
    if not public["subnets"]:
        service.create_subnet(ctx, {
            "name": "public-subnet", "network_id": public["id"], "ip_version": 4, "cidr": settings.public_cidr,
            "gateway_ip": settings.public_gateway, "enable_dhcp": False, "project_id": admin_project})
    if demo_project is None:
        return
    private = find("networks", "private", demo_project)
    if private is None:
        private = service.create_network(ctx, {"name": "private", "project_id": demo_project})
    subnet_id = private["subnets"][0] if private["subnets"] else service.create_subnet(ctx, {
        "name": "private-subnet", "network_id": private["id"], "ip_version": 4, "cidr": settings.private_cidr,
        "project_id": demo_project})["id"]
    router = find("routers", "router1", demo_project)
    if router is None:
        router = service.create_router(ctx, {"name": "router1", "project_id": demo_project,
                                             "external_gateway_info": {"network_id": public["id"]}})
        service.add_router_interface(ctx, router["id"], {"subnet_id": subnet_id})
    service.ensure_default_sg_tx(demo_project)
    service.ensure_default_sg_tx(admin_project)


async def run(service: NetworkService, client: httpx.AsyncClient, identity_url: str, admin_password: str) -> None:
    import anyio.to_thread

    if await anyio.to_thread.run_sync(done, service):
        return
    admin_project, demo_project = await project_ids(client, identity_url, admin_password)
    await anyio.to_thread.run_sync(create_topology, service, admin_project, demo_project)
    await anyio.to_thread.run_sync(_mark, service)
    log.info("network: default topology created (public, private, router1)")
