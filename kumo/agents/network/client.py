"""The network agent's HTTP client: password auth against identity, then the agent API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml


def admin_auth(data_dir: Path, cloud: str = "kumo-admin") -> dict[str, Any]:
    """The ``auth`` block of ``cloud`` in ``<data_dir>/clouds.yaml``."""
    doc = yaml.safe_load((data_dir / "clouds.yaml").read_text())
    return dict(doc["clouds"][cloud]["auth"])


class NetworkApi:
    def __init__(self, auth: dict[str, Any], *, identity: httpx.AsyncClient, network: httpx.AsyncClient,
                 network_url: str | None = None) -> None:
        self.auth, self.identity, self.network = auth, identity, network
        self.network_url = network_url.rstrip("/") if network_url else None
        self._token: str | None = None

    async def _authenticate(self) -> str:
        a = self.auth
        body: dict[str, Any] = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": a["username"], "password": a["password"],
            "domain": {"name": a.get("user_domain_name", "Default")}}}}}}
        if a.get("project_name"):
            body["auth"]["scope"] = {"project": {"name": a["project_name"],
                                                "domain": {"name": a.get("project_domain_name", "Default")}}}
        elif a.get("system_scope"):
            body["auth"]["scope"] = {"system": {"all": True}}
        resp = await self.identity.post(a["auth_url"].rstrip("/") + "/auth/tokens", json=body)
        resp.raise_for_status()
        if self.network_url is None:
            for entry in resp.json()["token"].get("catalog", []):
                if entry["type"] == "network":
                    self.network_url = next(e["url"] for e in entry["endpoints"] if e["interface"] == "public").rstrip("/")
            if self.network_url is None:
                raise RuntimeError("no network endpoint in the catalog")
        self._token = resp.headers["X-Subject-Token"]
        return self._token

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self._token or await self._authenticate()
        for attempt in (1, 2):
            resp = await self.network.request(method, f"{self.network_url}/v2.0{path}",
                                              headers={"X-Auth-Token": token}, **kwargs)
            if resp.status_code != 401 or attempt == 2:
                return resp
            token = await self._authenticate()
        raise AssertionError("unreachable")

    async def state(self, host: str, since: int, wait: int) -> dict[str, Any]:
        resp = await self.request("GET", "/kumo-agent/state",
                                  params={"host": host, "since_revision": since, "wait": wait},
                                  timeout=wait + 30)
        resp.raise_for_status()
        return resp.json()

    async def report(self, agent: dict[str, Any]) -> None:
        (await self.request("POST", "/kumo-agent/agents/report", json={"agent": agent})).raise_for_status()

    async def port_status(self, port_id: str, status: str, host: str) -> bool:
        resp = await self.request("PUT", f"/kumo-agent/ports/{port_id}/status", json={"status": status, "host": host})
        if resp.status_code == 404:
            return False
        resp.raise_for_status()
        return True

    async def floatingip_status(self, fip_id: str, status: str) -> bool:
        resp = await self.request("PUT", f"/kumo-agent/floatingips/{fip_id}/status", json={"status": status})
        if resp.status_code == 404:
            return False
        resp.raise_for_status()
        return True
