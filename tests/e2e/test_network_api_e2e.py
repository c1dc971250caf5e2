"""The whole network path through the API: a real ``kumo up`` with the linux driver, a port
created with openstacksdk, a guest namespace plugged like a VM, a DHCP lease from the
agent's dnsmasq and the port reported ACTIVE by the agent.

Skipped unless root with ip/dnsmasq/busybox, and unless no other kumo network agent holds
the host lock (/run/kumo-network-agent.lock; kumo with the fake driver does not take it).
Cleanup: the guest namespace by its fixture; everything kumo built by stopping kumo (the
all-in-one agent tears its bridges and namespaces down on stop), which the test checks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from kumo.agents.network import names
from kumo.privileged import ip
from tests.e2e.netlab import UDHCPC_SCRIPT, require_root_tools, sh
from tests.support import KumoCloud

LOCK_FILE = Path("/run/kumo-network-agent.lock")


def agent_lock_holder(path: Path = LOCK_FILE) -> int | None:
    """PID holding the network agent's host lock, read from /proc/locks (no locking here)."""
    try:
        st = path.stat()
        text = Path("/proc/locks").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":
            continue
        try:
            pid, dev_ino = int(fields[4]), fields[5].split(":")
            if int(dev_ino[2]) == st.st_ino and os.path.exists(f"/proc/{pid}"):
                return pid
        except (ValueError, IndexError):
            continue
    return None


@pytest.fixture
def linux_cloud(tmp_path):
    require_root_tools()
    holder = agent_lock_holder()
    if holder is not None:
        pytest.skip(f"another kumo network agent (pid {holder}) holds {LOCK_FILE}: only one may run per host")
    cloud = KumoCloud(tmp_path / "kd", env={"KUMO_NETWORK_AGENT__DRIVER": "linux"})
    try:
        yield cloud.start()
    finally:
        cloud.stop()


@pytest.fixture
def guest(tmp_path):
    """attach(port) -> (netns, device): a namespace plugged into the port's bridge like a VM."""
    token = uuid.uuid4().hex[:4]
    made: list[tuple[str, str]] = []
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)

    def attach(port) -> tuple[str, str]:  # type: ignore[no-untyped-def]
        ns, dev = f"ktest{token}api", f"kvt{token}api"
        made.append((ns, names.tap(port.id)))
        ip.netns_add(ns)
        ip.veth_add(names.tap(port.id), dev, names.bridge(port.network_id), ns, mac=port.mac_address)
        return ns, dev

    attach.script = script  # type: ignore[attr-defined]
    try:
        yield attach
    finally:
        for ns, tap in made:
            with contextlib.suppress(Exception):
                ip.netns_delete(ns)
            with contextlib.suppress(Exception):
                ip.link_delete(tap)


def wait_for(what: str, check, timeout: float = 20.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def test_port_gets_dhcp_lease_and_goes_active_through_the_api(linux_cloud: KumoCloud, guest) -> None:
    conn = linux_cloud.sdk("kumo-admin")
    net = conn.network.create_network(name="e2e-api-net")
    subnet = conn.network.create_subnet(
        network_id=net.id, ip_version=4, cidr="10.93.7.0/24", name="e2e-api-sub"
    )
    port = conn.network.create_port(
        network_id=net.id,
        device_owner="compute:nova",
        device_id=str(uuid.uuid4()),
        binding_host_id=socket.gethostname(),
    )
    fixed_ip = port.fixed_ips[0]["ip_address"]
    assert port.fixed_ips[0]["subnet_id"] == subnet.id
    hosts = linux_cloud.data_dir / "network-agent" / "dhcp" / names.dhcp_netns(net.id) / "hosts"
    wait_for(
        "the port in dnsmasq's hosts file",
        lambda: hosts.is_file() and f"{port.mac_address.lower()},{fixed_ip}," in hosts.read_text(),
    )

    ns, dev = guest(port)
    sh(
        [
            "busybox",
            "udhcpc",
            "-i",
            dev,
            "-s",
            str(guest.script),
            "-n",
            "-q",
            "-t",
            "8",
            "-T",
            "1",
            "-O",
            "staticroutes",
        ],
        netns=ns,
        timeout=30,
    )
    addr = sh(["ip", "-4", "-o", "addr", "show", "dev", dev], netns=ns).stdout.split()
    assert len(addr) > 3 and addr[3] == f"{fixed_ip}/24", addr
    wait_for("port status ACTIVE", lambda: conn.network.get_port(port.id).status == "ACTIVE")
    conn.close()

    linux_cloud.stop()  # the all-in-one agent removes what it built
    assert names.dhcp_netns(net.id) not in ip.netns_list("kdhcp-")
    assert not ip.link_exists(names.bridge(net.id))
    assert not hosts.exists()
