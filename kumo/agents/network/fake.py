"""An in-memory network driver (labelled as such): for tests and hosts without root."""

from __future__ import annotations

from kumo.agents.network import names
from kumo.agents.network.specs import DhcpSpec, FirewallSpec, NetworkSpec, PortSpec, RouterSpec


class FakeDriver:
    name = "fake"

    def __init__(self) -> None:
        self.networks: dict[str, NetworkSpec] = {}
        self.dhcp: dict[str, DhcpSpec] = {}
        self.routers: dict[str, RouterSpec] = {}
        self.firewall = FirewallSpec()
        self.ports: dict[str, PortSpec] = {}
        self.calls: list[tuple[str, str]] = []

    def network_key(self, spec: NetworkSpec) -> str:
        return names.bridge(spec.id)

    def ensure_network(self, spec: NetworkSpec) -> None:
        self.calls.append(("ensure_network", spec.id))
        self.networks[self.network_key(spec)] = spec

    def remove_network(self, key: str) -> None:
        self.calls.append(("remove_network", key))
        self.networks.pop(key, None)

    def observe_networks(self) -> set[str]:
        return set(self.networks)

    def dhcp_key(self, spec: DhcpSpec) -> str:
        return names.dhcp_netns(spec.network_id)

    def ensure_dhcp(self, spec: DhcpSpec) -> None:
        self.calls.append(("ensure_dhcp", spec.network_id))
        self.dhcp[self.dhcp_key(spec)] = spec

    def remove_dhcp(self, key: str) -> None:
        self.calls.append(("remove_dhcp", key))
        self.dhcp.pop(key, None)

    def observe_dhcp(self) -> set[str]:
        return set(self.dhcp)

    def router_key(self, spec: RouterSpec) -> str:
        return names.router_netns(spec.id)

    def ensure_router(self, spec: RouterSpec) -> None:
        self.calls.append(("ensure_router", spec.id))
        self.routers[self.router_key(spec)] = spec

    def remove_router(self, key: str) -> None:
        self.calls.append(("remove_router", key))
        self.routers.pop(key, None)

    def observe_routers(self) -> set[str]:
        return set(self.routers)

    def ensure_firewall(self, spec: FirewallSpec) -> None:
        self.calls.append(("ensure_firewall", str(len(spec.ports))))
        self.firewall = spec

    def remove_firewall(self) -> None:
        self.firewall = FirewallSpec()

    def port_device(self, port_id: str) -> str:
        return names.tap(port_id)

    def plug_port(self, spec: PortSpec) -> str:
        self.ports[spec.id] = spec
        return names.tap(spec.id)

    def unplug_port(self, port_id: str) -> None:
        self.ports.pop(port_id, None)

    def observe_ports(self) -> set[str]:
        return {names.tap(p) for p in self.ports}
