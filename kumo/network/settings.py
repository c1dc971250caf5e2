"""The network service's settings: the ``[network]`` table of kumo.toml and
``KUMO_NETWORK__*`` environment variables (the shared Settings object ignores them)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class QuotaDefaults(BaseModel):
    network: int = 100
    subnet: int = 100
    subnetpool: int = -1
    port: int = 500
    router: int = 10
    floatingip: int = 50
    security_group: int = 10
    security_group_rule: int = 100


class NetworkSettings(BaseModel):
    default_mtu: int = Field(1500, ge=68)  # physical MTU; vxlan networks get 50 bytes less
    vni_min: int = Field(1001, ge=1, le=16777215)
    vni_max: int = Field(16000000, ge=1, le=16777215)
    tenant_network_type: str = Field("vxlan", pattern="^(vxlan|local)$")
    physical_networks: list[str] = ["public"]
    agent_down_time: int = 75  # seconds without a report before an agent is not alive
    dns_domain: str = "openstacklocal."
    default_availability_zone: str = "nova"
    bootstrap_topology: bool = True  # public + private + router1 on the first start
    public_cidr: str = "172.24.4.0/24"
    public_gateway: str = "172.24.4.1"
    private_cidr: str = "10.0.0.0/26"
    quotas: QuotaDefaults = QuotaDefaults()


def load(settings: Any) -> NetworkSettings:
    """Read ``[network]`` from the TOML file next to the data dir, then ``KUMO_NETWORK__*``."""
    data: dict[str, Any] = {}
    attached = getattr(settings, "network", None)
    if isinstance(attached, NetworkSettings):
        return attached
    path = Path(os.environ.get("KUMO_CONFIG_FILE") or Path(settings.data_dir) / "kumo.toml")
    if path.is_file():
        try:
            with path.open("rb") as fh:
                data = dict(tomllib.load(fh).get("network") or {})
        except (OSError, tomllib.TOMLDecodeError):
            data = {}
    for key, value in os.environ.items():
        if not key.startswith("KUMO_NETWORK__"):
            continue
        parts = key[len("KUMO_NETWORK__") :].lower().split("__")
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    return NetworkSettings.model_validate(data)
