"""What the metadata service learns from the network API about a guest's ports.

Subnets (CIDR, gateway, DNS, host routes, DHCP or static), network MTUs and floating IPs:
what ``network_data.json`` and the EC2 ``public-ipv4`` need and the server row does not hold.
Guests carry no token, so compute asks with the cloud admin's credentials
(``<data_dir>/admin-password``), as Nova's metadata API uses its service user. Without them
(a controller whose data dir has no admin password) the documents fall back to what the
server row knows: DHCP-configured links and no public address.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from kumo.common.service import Runtime

log = logging.getLogger("kumo.compute.metadata")
FACTS_TTL = 5.0


class NetworkFacts:
    """Per-server facts from the network API, cached for a few seconds (a boot asks several times)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._token: tuple[str, float, str] | None = None  # token, expiry (monotonic), network URL
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}

    async def _login(self, client: httpx.AsyncClient) -> tuple[str, str] | None:
        if self._token and self._token[1] > time.monotonic():
            return self._token[0], self._token[2]
        path = self.runtime.settings.data_dir / "admin-password"
        if not path.is_file():
            return None
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": path.read_text().strip()}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}  # fmt: skip
        async with httpx.AsyncClient(transport=self.runtime.identity_transport, timeout=30.0) as identity:
            r = await identity.post(self.runtime.identity_url + "/v3/auth/tokens", json=body)
        if r.status_code != 201:
            log.warning("metadata: cannot log in to read network facts (%s)", r.status_code)
            return None
        url = next(
            (ep["url"] for entry in r.json()["token"].get("catalog", []) if entry.get("type") == "network"
             for ep in entry.get("endpoints", []) if ep.get("interface") == "public"),
            None,
        )  # fmt: skip
        if not url:
            return None
        self._token = (r.headers["X-Subject-Token"], time.monotonic() + 600, url.rstrip("/"))
        return self._token[0], self._token[2]

    async def for_server(self, server_id: str) -> dict[str, Any] | None:
        """``{"subnets": {id: subnet}, "ports": {id: port}, "networks": {id: net}, "floating": {fixed: fip}}``."""
        hit = self._cache.get(server_id)
        if hit and hit[0] > time.monotonic():
            return hit[1]
        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                login = await self._login(client)
                if login is None:
                    return None
                token, url = login
                headers = {"X-Auth-Token": token}

                async def get(path: str, **params: Any) -> dict[str, Any]:
                    r = await client.get(f"{url}/v2.0{path}", params=params, headers=headers)
                    if r.status_code == 401:
                        self._token = None
                    r.raise_for_status()
                    return r.json()

                ports = (await get("/ports", device_id=server_id))["ports"]
                subnet_ids = sorted({ip["subnet_id"] for p in ports for ip in p.get("fixed_ips", [])})
                net_ids = sorted({p["network_id"] for p in ports})
                subnets = (await get("/subnets", id=subnet_ids))["subnets"] if subnet_ids else []
                networks = (await get("/networks", id=net_ids))["networks"] if net_ids else []
                fips = (await get("/floatingips", port_id=[p["id"] for p in ports]))["floatingips"] if ports else []
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            log.warning("metadata: network facts for %s unavailable: %s", server_id, exc)
            return None
        facts = {
            "ports": {p["id"]: p for p in ports},
            "subnets": {s["id"]: s for s in subnets},
            "networks": {n["id"]: n for n in networks},
            "floating": {f["fixed_ip_address"]: f["floating_ip_address"] for f in fips if f.get("fixed_ip_address")},
        }
        self._cache = {k: v for k, v in self._cache.items() if v[0] > time.monotonic()}
        self._cache[server_id] = (time.monotonic() + FACTS_TTL, facts)
        return facts
