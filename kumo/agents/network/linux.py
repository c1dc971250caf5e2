"""The Linux driver: a bridge per network, namespaces for DHCP and routers, iptables for
security groups. Every root operation goes through kumo.privileged."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from kumo.agents.network import dhcp, names, nat
from kumo.agents.network.config import AgentSettings
from kumo.agents.network.firewall import JUMP_MATCH, build_chains, forward_chain
from kumo.agents.network.specs import DhcpSpec, FirewallSpec, NetworkSpec, PortSpec, RouterSpec
from kumo.common.reconcile import PermanentError, TemporaryError
from kumo.privileged import CommandError, ip, iptables, process

log = logging.getLogger(__name__)


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


class Ledger:
    """The host objects this agent made (in its state dir): ``observe_*`` only ever reports
    these, so a resync never removes another agent's or a test's kumo-named objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _load(self) -> dict[str, list[str]]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def add(self, kind: str, key: str) -> None:
        with self._lock:
            data = self._load()
            if key not in data.get(kind, []):
                data.setdefault(kind, []).append(key)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                _write_if_changed(self.path, json.dumps(data, sort_keys=True))

    def discard(self, kind: str, key: str) -> None:
        with self._lock:
            data = self._load()
            if key in data.get(kind, []):
                data[kind].remove(key)
                _write_if_changed(self.path, json.dumps(data, sort_keys=True))

    def keys(self, kind: str) -> set[str]:
        with self._lock:
            return set(self._load().get(kind, []))


class LinuxDriver:
    name = "linux"

    def __init__(self, config: AgentSettings, metadata_secret_file: Path | None = None) -> None:
        self.config = config
        self.state = config.state
        self.metadata_secret_file = metadata_secret_file
        self.ledger = Ledger(self.state / "owned.json")

    # -- networks ----------------------------------------------------------------------------

    def bridge_for(self, network_id: str, physical_network: str | None) -> str:
        if physical_network and physical_network in self.config.bridge_mappings:
            return self.config.bridge_mappings[physical_network]
        return names.bridge(network_id)

    def network_key(self, spec: NetworkSpec) -> str:
        return self.bridge_for(spec.id, spec.physical_network)

    def ensure_network(self, spec: NetworkSpec) -> None:
        br = self.network_key(spec)
        self.ledger.add("network", br)
        ip.bridge_add(br, spec.mtu)
        vx = names.vxlan(spec.id)
        if spec.network_type == "vxlan" and spec.vxlan_peers and self.config.tunnel_local_ip:
            if spec.segmentation_id is None:
                raise PermanentError(f"network {spec.id}: vxlan segment without a VNI")
            ip.vxlan_add(vx, br, spec.segmentation_id, self.config.tunnel_local_ip, list(spec.vxlan_peers))
        else:
            ip.link_delete(vx)
        uplink = self.config.interface_mappings.get(spec.physical_network or "")
        if uplink:
            if spec.network_type not in ("flat", "local"):
                raise PermanentError(f"network {spec.id}: {spec.network_type} segments on an uplink are not supported")
            ip.attach_uplink(uplink, br)
        if spec.external and spec.physical_network in self.config.bridge_mappings:
            self._ensure_public_test_namespace(br, spec)

    def _test_veth(self) -> tuple[str, str]:
        ns = self.config.public_test_namespace
        host = ("kv" + ns[1:])[:13]
        return host, host + "i"

    def _ensure_public_test_namespace(self, br: str, spec: NetworkSpec) -> None:
        ns = self.config.public_test_namespace
        subnet = next((s for s in spec.subnets if s.ip_version == 4), None)
        if not ns or subnet is None:
            return
        net = ipaddress.ip_network(subnet.cidr, strict=False)
        address = f"{net[self.config.public_test_index]}/{net.prefixlen}"
        host, inner = self._test_veth()
        ip.netns_add(ns)
        ip.veth_add(host, inner, br, ns, mtu=spec.mtu)
        ip.set_addresses(inner, ns, {address})

    def remove_network(self, key: str) -> None:
        if key.startswith("kbr-"):
            ip.link_delete(names.vxlan(key[4:]))
        if key in self.config.bridge_mappings.values() and self.config.public_test_namespace:
            ip.link_delete(self._test_veth()[0])
            ip.netns_delete(self.config.public_test_namespace)
        ip.link_delete(key)
        self.ledger.discard("network", key)

    def observe_networks(self) -> set[str]:
        return ip.link_names(prefix="kbr-", kind="bridge") & self.ledger.keys("network")

    # -- ports (the compute side's contract) -------------------------------------------------

    def port_device(self, port_id: str) -> str:
        return names.tap(port_id)

    def plug_port(self, spec: PortSpec) -> str:
        """Create the VM's tap on its network's bridge; return the tap name for QEMU."""
        br = self.bridge_for(spec.network_id, spec.physical_network)
        ip.bridge_add(br, spec.mtu)
        tap = names.tap(spec.id)
        ip.tap_add(tap, br, mtu=spec.mtu)
        return tap

    def unplug_port(self, port_id: str) -> None:
        ip.link_delete(names.tap(port_id))

    def observe_ports(self) -> set[str]:
        return ip.link_names(prefix="ktap")

    # -- DHCP ----------------------------------------------------------------------------------

    def dhcp_key(self, spec: DhcpSpec) -> str:
        return names.dhcp_netns(spec.network_id)

    def _dhcp_state(self, ns: str) -> Path:
        return self.state / "dhcp" / ns

    def ensure_dhcp(self, spec: DhcpSpec) -> None:
        ns = self.dhcp_key(spec)
        br = self.bridge_for(spec.network_id, spec.physical_network)
        if not ip.link_exists(br):
            raise TemporaryError(f"bridge {br} not there yet", delay=0.5)
        state = self._dhcp_state(ns)
        state.mkdir(parents=True, exist_ok=True)
        self.ledger.add("dhcp", ns)
        host, inner = names.dhcp_veth(spec.network_id)
        ip.netns_add(ns)
        ip.veth_add(host, inner, br, ns, mac=spec.mac_address, mtu=spec.mtu)
        ip.set_addresses(inner, ns, {*spec.addresses, f"{dhcp.METADATA_IP}/32"})
        changed = _write_if_changed(state / "hosts", dhcp.hosts_file(spec))
        changed |= _write_if_changed(state / "opts", dhcp.opts_file(spec))
        argv = dhcp.dnsmasq_argv(spec, inner, state)
        marker = str(state / "hosts")
        pidfile = state / "dnsmasq.pid"
        if _write_if_changed(state / "cmdline", json.dumps(argv)):
            process.stop(pidfile, marker)
        leases = state / "leases"
        if changed and leases.is_file() and dhcp.without_conflicts(leases.read_text(), spec) is not None:
            process.stop(pidfile, marker)  # it rewrites its lease file when it ends: filter after
            kept = dhcp.without_conflicts(leases.read_text(), spec)
            if kept is not None:
                leases.write_text(kept)
        if not dhcp.dhcp_subnets(spec):
            process.stop(pidfile, marker)
        elif process.pid_of(pidfile, marker) is None:
            process.start(argv, pidfile, marker, netns=ns, log=state / "dnsmasq.log")
        elif changed:
            process.signal_process(pidfile, marker, signal.SIGHUP)
        self._ensure_metadata_proxy(ns, spec, state)

    def _ensure_metadata_proxy(self, ns: str, spec: DhcpSpec, state: Path) -> None:
        hosts = {m.ip_address: {"device_id": m.device_id, "project_id": m.project_id} for m in spec.metadata}
        map_file = state / "metadata.json"
        _write_if_changed(map_file, json.dumps(hosts, sort_keys=True))
        if not self.config.metadata_url:
            return
        argv = [sys.executable, "-m", "kumo.agents.network.metadata_proxy", "--netns", ns,
                "--listen", dhcp.METADATA_IP, "--port", "80", "--upstream", self.config.metadata_url,
                "--hosts-file", str(map_file), "--network-id", spec.network_id]
        if self.metadata_secret_file:
            argv += ["--secret-file", str(self.metadata_secret_file)]
        process.start(argv, state / "metadata.pid", str(map_file), log=state / "metadata.log")

    def remove_dhcp(self, key: str) -> None:
        state = self._dhcp_state(key)
        process.stop(state / "metadata.pid", str(state / "metadata.json"))
        process.stop(state / "dnsmasq.pid", str(state / "hosts"))
        if key.startswith("kdhcp-"):
            ip.link_delete(names.dhcp_veth(key[len("kdhcp-"):])[0])
        ip.netns_delete(key)
        shutil.rmtree(state, ignore_errors=True)
        self.ledger.discard("dhcp", key)

    def observe_dhcp(self) -> set[str]:
        return set(ip.netns_list("kdhcp-")) & self.ledger.keys("dhcp")

    # -- routers -------------------------------------------------------------------------------

    def router_key(self, spec: RouterSpec) -> str:
        return names.router_netns(spec.id)

    def ensure_router(self, spec: RouterSpec) -> None:
        ns = self.router_key(spec)
        self.ledger.add("router", ns)
        ip.netns_add(ns)
        ip.netns_sysctl(ns, "net.ipv4.ip_forward", "1")
        wanted: set[str] = set()
        gw_dev = None
        legs = [(leg, names.router_leg(leg.port_id)) for leg in spec.interfaces]
        if spec.gateway is not None:
            legs.append((spec.gateway, names.gateway_leg(spec.gateway.port_id)))
        for leg, (host, inner) in legs:
            br = self.bridge_for(leg.network_id, leg.physical_network)
            if not ip.link_exists(br):
                raise TemporaryError(f"bridge {br} not there yet", delay=0.5)
            ip.veth_add(host, inner, br, ns, mac=leg.mac_address, mtu=leg.mtu)
            addresses = set(leg.addresses)
            if leg is spec.gateway:
                gw_dev = inner
                addresses |= {f"{f.floating_ip}/32" for f in spec.floating_ips}
            self._set_addresses_flushing(ns, inner, addresses)
            wanted.add(inner)
        for stale in ip.link_names(ns, prefix="kv") - wanted:
            ip.link_delete(stale, ns)
        routes = set(spec.routes)
        if spec.gateway is not None and spec.gateway_nexthop:
            routes.add(("0.0.0.0/0", spec.gateway_nexthop))
        try:
            ip.set_static_routes(ns, {r for r in routes if ipaddress.ip_network(r[0]).version == 4})
        except CommandError as exc:  # e.g. a nexthop not on any attached subnet (yet)
            raise TemporaryError(str(exc), delay=2.0) from exc
        iptables.restore_netns(4, ns, nat.nat_table(spec, gw_dev))

    def _set_addresses_flushing(self, ns: str, dev: str, wanted: set[str]) -> None:
        gone = {a for a in ip.addresses(dev, ns) - wanted if a.endswith("/32")}
        ip.set_addresses(dev, ns, wanted)
        for cidr in gone:  # a floating IP went away: forget its connections
            ip.conntrack_flush(ns, cidr.split("/")[0])

    def remove_router(self, key: str) -> None:
        if ip.netns_exists(key):
            for name in ip.link_names(key, prefix="kv"):
                ip.link_delete(name, key)
        ip.netns_delete(key)
        self.ledger.discard("router", key)

    def observe_routers(self) -> set[str]:
        return set(ip.netns_list("krouter-")) & self.ledger.keys("router")

    # -- security groups -----------------------------------------------------------------------

    def ensure_firewall(self, spec: FirewallSpec) -> None:
        prefix, accept = self.config.chain_prefix, tuple(self.config.firewall_accept)
        for version in (4, 6):
            try:
                iptables.replace_kumo_chains(version, "filter", build_chains(spec, version, prefix, accept), prefix)
                iptables.ensure_jump(version, "filter", "FORWARD", JUMP_MATCH, forward_chain(prefix))
            except CommandError:
                if version == 4:
                    raise
                log.warning("ip6tables unavailable: IPv6 security groups not enforced", exc_info=True)

    def remove_firewall(self) -> None:
        for version in (4, 6):
            try:
                prefix = self.config.chain_prefix
                iptables.remove_jump(version, "filter", "FORWARD", JUMP_MATCH, forward_chain(prefix))
                iptables.replace_kumo_chains(version, "filter", {}, prefix)
            except CommandError:
                if version == 4:
                    raise
