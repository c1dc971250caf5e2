"""Real VMs through the API: ``kumo up`` with the qemu driver (TCG) and the linux network agent.

The tiny image boots on a private network: ACTIVE, the boot marker and the DHCP address (the
port's fixed IP) on the serial console (``openstack console log show``), metadata read (the
instance uuid and hostname), a ping from the DHCP namespace, stop/start/reboot seen in QEMU's
own state, and delete leaving no QEMU process, tap or overlay behind.

Skipped unless root with qemu-system-x86_64 and the network tools, and unless the network
agent's host lock frees up within a while (one linux network agent per host). Cleanup, even on
failure: the VMs' QEMU processes (found by the data dir in their command line, ended by pid),
their taps, then kumo (whose network agent removes its bridges and namespaces).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from kumo.agents.compute import tiny_image
from kumo.agents.network import names
from kumo.privileged import ip
from tests.e2e.netlab import require_root_tools, sh
from tests.e2e.test_network_api_e2e import agent_lock_holder
from tests.support import KumoCloud

BOOT_TIMEOUT = 180.0  # TCG boots take ~3 s idle, far longer on a loaded 2-core machine
LOCK_WAIT = float(os.environ.get("KUMO_E2E_LOCK_WAIT", "240"))


def qemu_pids(marker: str) -> list[int]:
    """Pids of QEMU processes whose command line mentions ``marker`` (this test's data dir)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("qemu-system") and marker in cmdline:
            out.append(int(entry))
    return out


def wait_for(what: str, check, timeout: float = 60.0, interval: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def qemu_cloud(tmp_path: Path):  # type: ignore[no-untyped-def]
    require_root_tools()
    if shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None:
        pytest.skip("qemu-system-x86 / qemu-utils are not installed (scripts/test.sh installs them)")
    try:
        tiny_image.build()  # cached; built before kumo starts so registering it is quick
    except tiny_image.BuildError as exc:
        pytest.skip(f"the tiny image cannot be built here: {exc}")
    deadline = time.monotonic() + LOCK_WAIT
    while (holder := agent_lock_holder()) is not None:
        if time.monotonic() > deadline:
            pytest.skip(f"another kumo network agent (pid {holder}) holds the host lock")
        time.sleep(2.0)
    data = tmp_path / "kd"
    cloud = KumoCloud(data, env={"KUMO_NETWORK_AGENT__DRIVER": "linux", "KUMO_COMPUTE__DRIVER": "qemu",
                                 "KUMO_COMPUTE__SHUTDOWN_TIMEOUT": "20"})
    try:
        yield cloud.start()
    finally:
        cloud.stop()  # first: its agent would restart a VM killed under it
        for pid in qemu_pids(str(data)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for network_id in getattr(cloud, "e2e_networks", []):  # a bridge the compute side re-made late
            with contextlib.suppress(Exception):
                ip.link_delete(names.bridge(network_id))
        instances = data / "compute" / "instances"
        for vm in instances.iterdir() if instances.is_dir() else []:
            for link in ip.link_names(prefix="ktap"):
                spec = vm / "spec.json"
                if spec.is_file() and link[5:] in spec.read_text():
                    with contextlib.suppress(Exception):
                        ip.link_delete(link)


def console(cloud: KumoCloud, server_id: str) -> str:
    return cloud.cli("console", "log", "show", server_id, cloud="kumo-admin").stdout


def test_tiny_vm_boots_gets_its_ip_and_metadata_and_goes_away(qemu_cloud: KumoCloud) -> None:
    cloud = qemu_cloud
    conn = cloud.sdk("kumo-admin")
    image = wait_for("image kumo-tiny", lambda: next(iter(conn.image.images(name="kumo-tiny")), None), 120)
    wait_for("kumo-tiny active", lambda: conn.image.get_image(image.id).status == "active", 60)
    net = conn.network.create_network(name="e2e-qemu-net")
    cloud.e2e_networks = [net.id]  # type: ignore[attr-defined]
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.93.9.0/24", name="e2e-qemu-sub")
    sg = conn.network.create_security_group(name="e2e-qemu-icmp")
    conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="icmp",
                                            ethertype="IPv4", remote_ip_prefix="0.0.0.0/0")
    flavor = conn.compute.find_flavor("m1.nano")
    started = time.monotonic()
    server = conn.compute.create_server(name="e2e-tiny", image_id=image.id, flavor_id=flavor.id,
                                        networks=[{"uuid": net.id}], security_groups=[{"name": sg.name}])
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=0.5)
    to_active = time.monotonic() - started
    port = next(iter(conn.network.ports(device_id=server.id)))
    fixed_ip = port.fixed_ips[0]["ip_address"]
    assert port.fixed_ips[0]["subnet_id"] == subnet.id

    log = wait_for("the boot marker on the console", lambda: (t := console(cloud, server.id)).count(
        tiny_image.BOOT_MARKER) >= 1 and t, BOOT_TIMEOUT, 1.0)
    to_marker = time.monotonic() - started
    print(f"\nboot: ACTIVE after {to_active:.1f}s, guest ready marker after {to_marker:.1f}s")
    assert f"eth0 {port.mac_address.lower()} {fixed_ip}/24" in log, log
    # the guest ran only once its port was ACTIVE (network-vif-plugged): dnsmasq knew its MAC, so
    # the first DHCPDISCOVER got the lease
    assert "eth0 DHCP discovers sent: 1\n" in log, log
    assert f"instance {server.id} hostname e2e-tiny" in log, log
    wait_for("port ACTIVE", lambda: conn.network.get_port(port.id).status == "ACTIVE", 60)
    tap = names.tap(port.id)
    assert ip.link_info(tap)["master"] == names.bridge(net.id)
    ping = sh(["busybox", "ping", "-c", "3", "-W", "3", fixed_ip], netns=names.dhcp_netns(net.id), timeout=30,
              check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr

    data = cloud.data_dir / "compute" / "instances" / server.id
    assert (data / "disk.qcow2").is_file()
    (pid,) = qemu_pids(str(cloud.data_dir))

    conn.close()
    cloud.restart()  # the VM survives, is re-adopted (same QEMU) and its tap goes back on the bridge
    conn = cloud.sdk("kumo-admin")
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    assert qemu_pids(str(cloud.data_dir)) == [pid]
    wait_for("the tap back on its bridge", lambda: (ip.link_info(tap) or {}).get("master") == names.bridge(net.id), 60)
    wait_for("ping after the restart", lambda: sh(["busybox", "ping", "-c", "1", "-W", "2", fixed_ip],
                                                  netns=names.dhcp_netns(net.id), timeout=30, check=False
                                                  ).returncode == 0, 60, 1.0)

    conn.compute.stop_server(server)
    conn.compute.wait_for_server(server, status="SHUTOFF", wait=90, interval=0.5)
    assert qemu_pids(str(cloud.data_dir)) == [] and not ip.link_exists(tap)
    assert (data / "disk.qcow2").is_file()  # the disk stays for the next start

    conn.compute.start_server(server)
    conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.5)
    wait_for("a second boot", lambda: console(cloud, server.id).count(tiny_image.BOOT_MARKER) >= 2, BOOT_TIMEOUT, 1.0)
    (pid2,) = qemu_pids(str(cloud.data_dir))
    assert pid2 != pid

    conn.compute.reboot_server(server, "HARD")
    conn.compute.wait_for_server(server, status="ACTIVE", wait=90, interval=0.5)
    wait_for("a third boot", lambda: console(cloud, server.id).count(tiny_image.BOOT_MARKER) >= 3, BOOT_TIMEOUT, 1.0)
    assert qemu_pids(str(cloud.data_dir)) == [pid2]  # a reset, not a new process

    # createImage: the agent pauses the VM, writes a compressed qcow2 of its disk and uploads it
    snap = conn.compute.create_server_image(server, "e2e-snap")
    snap_id = snap if isinstance(snap, str) else snap.id
    wait_for("the snapshot active", lambda: conn.image.get_image(snap_id).status == "active", 120, 1.0)
    snap = conn.image.get_image(snap_id)
    assert (snap.disk_format, snap.container_format) == ("qcow2", "bare")
    assert 64 * 1024 < snap.size < 512 * 1024 * 1024, snap.size
    head = next(conn.image.download_image(snap_id, stream=True).iter_content(4))
    assert head == b"QFI\xfb"  # the qcow2 magic
    wait_for("task_state cleared", lambda: conn.compute.get_server(server.id).task_state is None, 30)
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    assert qemu_pids(str(cloud.data_dir)) == [pid2]  # paused for the copy, then resumed
    print(f"snapshot: {snap.size} bytes qcow2")
    conn.image.delete_image(snap_id)

    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=90, interval=0.5)
    wait_for("QEMU gone", lambda: qemu_pids(str(cloud.data_dir)) == [], 30)
    assert not ip.link_exists(tap)
    assert not data.exists()
    conn.network.delete_network(net)
    conn.network.delete_security_group(sg)
    conn.close()
