"""Network agent settings: the ``[network_agent]`` table of kumo.toml and KUMO_NETWORK_AGENT__*."""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path

from pydantic import BaseModel, Field

from kumo.common.config import Settings


class AgentSettings(BaseModel):
    # auto: linux when root and the tools are there (else none, saying why); linux | fake | none
    driver: str = Field("auto", pattern="^(auto|linux|fake|none)$")
    # all-in-one: remove the bridges/namespaces/chains kumo built when kumo stops
    teardown_on_stop: bool = True
    host: str = Field(default_factory=socket.gethostname)
    # Where the agent keeps dnsmasq files, pid files, metadata maps. Default <data_dir>/network-agent.
    state_dir: Path | None = None
    # physical_network -> a kumo-made bridge (isolated; all-in-one's "public" network lives here).
    bridge_mappings: dict[str, str] = {"public": "kbr-public"}
    # physical_network -> a real interface enslaved to the network's bridge (real deployments
    # only; empty by default, and never the interface carrying the default route).
    interface_mappings: dict[str, str] = {}
    # Local VTEP address for VXLAN segments; empty: VXLAN networks stay local to this host.
    tunnel_local_ip: str = ""
    # Host-side namespace on the external bridge, so tests reach floating IPs without the
    # host's own stack; "" disables it. It takes address index public_test_index of the subnet.
    public_test_namespace: str = "kpubtest"
    public_test_index: int = -2
    # Security groups: host iptables chains are named <chain_prefix>*; after the per-port
    # checks, traffic through these bridge ports is accepted (tests narrow both).
    chain_prefix: str = "KUMO-"
    firewall_accept: tuple[str, ...] = ("ktap+", "kv+")
    # Where metadata proxies forward guests' requests ("" -> <base_url>/compute-metadata).
    metadata_url: str = ""
    # Multi-node: a compute-only node wires its own ports but hosts no DHCP and no routers.
    dhcp: bool = True
    l3: bool = True
    # One agent per host (they share the KUMO-* chains); a per-node file when namespaces are hosts.
    lock_file: Path = Path("/run/kumo-network-agent.lock")
    resync_interval: float = 60.0
    poll_wait: int = 30
    heartbeat_interval: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> AgentSettings:
        data: dict = {}
        path = settings.data_dir / "kumo.toml"
        if path.is_file():
            with path.open("rb") as fh:
                data = dict(tomllib.load(fh).get("network_agent", {}))
        prefix = "KUMO_NETWORK_AGENT__"
        for key, value in os.environ.items():
            if key.startswith(prefix):
                data[key[len(prefix):].lower()] = value
        data.update({k: v for k, v in overrides.items() if v is not None})
        agent = cls.model_validate(data)
        if agent.state_dir is None:
            agent.state_dir = settings.data_dir / "network-agent"
        if not agent.metadata_url:
            agent.metadata_url = settings.base_url + "/compute-metadata"
        return agent

    @property
    def state(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir
