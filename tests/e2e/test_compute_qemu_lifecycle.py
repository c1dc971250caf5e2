"""Two real VMs talking to each other, and the power actions seen in QEMU's own state.

``kumo up`` with the qemu driver (TCG) and the linux network agent (the ``qemu_cloud`` fixture of
tests/e2e/test_compute_qemu.py, so the same skips and the same cleanup even on failure: kumo
first, then the VMs' QEMU processes by pid, then taps and bridges).

One scenario sharing one kumo: port B is created first so its fixed IP is known; VM B boots on
it, VM A boots with user_data that pings B's IP from inside the guest and prints ``PING-OK`` or
``PING-FAIL`` on its serial console. Then pause / unpause / stop / start / reboot of A, each
checked through QMP ``query-status`` on A's own QMP socket (kumo's driver opens one connection
per exchange, so the test connects the same way, retrying while the agent holds the socket):
``paused`` after pause, ``running`` after unpause, no QEMU process after stop, ``running`` in a
new process after start, and the same process with a new boot marker after a soft reboot.
Last, ``kumo up`` (the process that runs the compute agent, this test's own child) is killed
with SIGKILL by pid while a third VM is building, then restarted: that VM must end ACTIVE (with
exactly one QEMU and its boot marker) or ERROR, never stay in BUILD.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import sqlite3
import time
from pathlib import Path

from kumo.agents.compute import tiny_image
from kumo.agents.compute.qemu import qmp
from kumo.agents.compute.qemu.driver import QemuDriver
from tests.e2e.test_compute_qemu import qemu_cloud, qemu_pids, wait_for  # noqa: F401  (the fixture)
from tests.support import KumoCloud

CONSOLE_TIMEOUT = 240.0  # the serial console is slow under TCG on a loaded 2-core machine
ACTION_TIMEOUT = 120.0

PINGER = """#!/bin/sh
(
i=0
while [ $i -lt 40 ]; do
  if ping -c 3 -W 3 @IP@ >/dev/null 2>&1; then
    echo "PING-OK @IP@ after $i retries"
    exit 0
  fi
  sleep 2
  i=$((i+1))
done
echo "PING-FAIL @IP@"
) </dev/null >/dev/console 2>&1 &
"""


def console(cloud: KumoCloud, server_id: str) -> str:
    return cloud.cli("console", "log", "show", server_id, cloud="kumo-admin").stdout


def wait_console(cloud: KumoCloud, server_id: str, what: str, check) -> str:  # type: ignore[no-untyped-def]
    """Poll the console log until ``check(text)`` holds; the log's tail in the failure message."""
    deadline = time.monotonic() + CONSOLE_TIMEOUT
    while True:
        text = console(cloud, server_id)
        if check(text):
            return text
        if time.monotonic() > deadline:
            tail = "\n".join(text.splitlines()[-25:])
            raise AssertionError(f"timed out after {CONSOLE_TIMEOUT:.0f}s waiting for {what} on the "
                                 f"console of {server_id}; last lines:\n{tail}")
        time.sleep(2.0)


def qmp_status(sock: Path) -> str | None:
    """QEMU's ``query-status`` through its QMP socket; None when QMP does not answer (the agent may
    be holding the single QMP connection for a moment, or no QEMU runs)."""
    try:
        return qmp.status(sock, timeout=5.0)
    except qmp.QmpError:
        return None


def wait_qmp(sock: Path, want: str, timeout: float = 60.0) -> None:
    seen: list[str | None] = []

    def check() -> bool:
        seen.append(qmp_status(sock))
        return seen[-1] == want

    try:
        wait_for(f"QMP status {want!r}", check, timeout, 0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last QMP statuses seen: {seen[-5:]}") from None


def vm_state(db: Path, server_id: str) -> str | None:
    """The server's vm_state straight from kumo's compute database (sqlite only; None otherwise):
    shows whether the kill really hit a boot in progress."""
    if not db.is_file():
        return None
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
        row = con.execute("SELECT vm_state FROM compute_servers WHERE id = ?", (server_id,)).fetchone()
    return row[0] if row else None


def test_two_vms_ping_and_power_actions_reach_qemu(qemu_cloud: KumoCloud) -> None:  # noqa: F811
    cloud = qemu_cloud
    started = time.monotonic()
    conn = cloud.sdk("kumo-admin")
    image = wait_for("image kumo-tiny", lambda: next(iter(conn.image.images(name="kumo-tiny")), None), 120)
    wait_for("kumo-tiny active", lambda: conn.image.get_image(image.id).status == "active", 60)
    net = conn.network.create_network(name="e2e-life-net")
    cloud.e2e_networks = [net.id]  # type: ignore[attr-defined]
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.93.13.0/24", name="e2e-life-sub")
    sg = conn.network.create_security_group(name="e2e-life-icmp")
    conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="icmp",
                                            ethertype="IPv4", remote_ip_prefix="10.93.13.0/24")
    flavor = conn.compute.find_flavor("m1.nano")

    # 1. B on a port made first (its IP known up front); A pings it from inside the guest
    port_b = conn.network.create_port(network_id=net.id, name="e2e-life-b", security_groups=[sg.id])
    ip_b = port_b.fixed_ips[0]["ip_address"]
    b = conn.compute.create_server(name="e2e-life-b", image_id=image.id, flavor_id=flavor.id,
                                   networks=[{"port": port_b.id}])
    a = conn.compute.create_server(name="e2e-life-a", image_id=image.id, flavor_id=flavor.id,
                                   networks=[{"uuid": net.id}], security_groups=[{"name": sg.name}],
                                   user_data=base64.b64encode(PINGER.replace("@IP@", ip_b).encode()).decode())
    b = conn.compute.wait_for_server(b, status="ACTIVE", wait=ACTION_TIMEOUT, interval=0.5)
    a = conn.compute.wait_for_server(a, status="ACTIVE", wait=ACTION_TIMEOUT, interval=0.5)
    wait_console(cloud, b.id, "B's boot marker", lambda t: tiny_image.BOOT_MARKER in t)
    log = wait_console(cloud, a.id, "A's ping result", lambda t: "PING-OK" in t or "PING-FAIL" in t)
    assert f"PING-OK {ip_b}" in log, "\n".join(log.splitlines()[-25:])
    print("\nA's console: " + next(x for x in log.splitlines() if "PING-OK" in x).strip())
    pinged = time.monotonic() - started

    # 2. power actions on A, seen through QMP query-status on A's own socket
    sock = QemuDriver(cloud.data_dir / "compute", inventory={"vcpus": 1}).paths(a.id).qmp
    wait_console(cloud, a.id, "A's boot marker", lambda t: tiny_image.BOOT_MARKER in t)
    wait_qmp(sock, "running")
    (pid,) = qemu_pids(a.id)

    conn.compute.pause_server(a)
    conn.compute.wait_for_server(a, status="PAUSED", wait=ACTION_TIMEOUT, interval=0.5)
    wait_qmp(sock, "paused")
    assert qemu_pids(a.id) == [pid]

    conn.compute.unpause_server(a)
    conn.compute.wait_for_server(a, status="ACTIVE", wait=ACTION_TIMEOUT, interval=0.5)
    wait_qmp(sock, "running")
    assert qemu_pids(a.id) == [pid]

    conn.compute.stop_server(a)
    conn.compute.wait_for_server(a, status="SHUTOFF", wait=ACTION_TIMEOUT, interval=0.5)
    wait_for("A's QEMU gone", lambda: qemu_pids(a.id) == [], 30)
    assert qmp_status(sock) is None  # nothing answers on the socket any more

    conn.compute.start_server(a)
    conn.compute.wait_for_server(a, status="ACTIVE", wait=ACTION_TIMEOUT, interval=0.5)
    wait_qmp(sock, "running")
    (pid2,) = qemu_pids(a.id)
    assert pid2 != pid
    wait_console(cloud, a.id, "A's second boot marker", lambda t: t.count(tiny_image.BOOT_MARKER) >= 2)

    conn.compute.reboot_server(a, "SOFT")
    conn.compute.wait_for_server(a, status="ACTIVE", wait=ACTION_TIMEOUT, interval=0.5)
    wait_console(cloud, a.id, "A's third boot marker", lambda t: t.count(tiny_image.BOOT_MARKER) >= 3)
    wait_qmp(sock, "running")
    assert qemu_pids(a.id) == [pid2]  # a reset inside the same QEMU, not a new process
    lifecycle = time.monotonic() - started - pinged
    print(f"qemu lifecycle e2e: boot two VMs + guest ping {pinged:.1f}s, "
          f"pause/unpause/stop/start/reboot {lifecycle:.1f}s")

    mark = time.monotonic()
    conn.compute.delete_server(a)
    conn.compute.delete_server(b)
    conn.compute.wait_for_delete(a, wait=ACTION_TIMEOUT, interval=0.5)
    conn.compute.wait_for_delete(b, wait=ACTION_TIMEOUT, interval=0.5)

    # 3. kill -9 the process that runs the compute agent (kumo up itself, this test's own child)
    # while it boots C; after a restart C ends ACTIVE (one QEMU) or ERROR, never stuck in BUILD
    print(f"delete A and B {time.monotonic() - mark:.1f}s")
    c = conn.compute.create_server(name="e2e-life-c", image_id=image.id, flavor_id=flavor.id,
                                   networks=[{"uuid": net.id}])
    vm_dir = cloud.data_dir / "compute" / "instances" / c.id
    wait_for("the agent working on C", lambda: vm_dir.exists() or qemu_pids(c.id), 60, 0.02)
    conn.close()
    assert cloud.proc is not None
    os.kill(cloud.proc.pid, signal.SIGKILL)
    cloud.proc.wait(30)
    at_kill = vm_state(cloud.data_dir / "compute.db", c.id)
    killed = time.monotonic()
    cloud.restart()
    restarted = time.monotonic() - killed
    conn = cloud.sdk("kumo-admin")
    seen: list[str] = []
    wait_for("C out of BUILD", lambda: seen.append(conn.compute.get_server(c.id).status) or seen[-1] != "BUILD",
             ACTION_TIMEOUT, 1.0)
    assert seen[-1] in ("ACTIVE", "ERROR"), seen
    settled = time.monotonic() - killed
    if seen[-1] == "ACTIVE":
        wait_console(cloud, c.id, "C's boot marker", lambda t: tiny_image.BOOT_MARKER in t)
        assert len(qemu_pids(c.id)) == 1, qemu_pids(c.id)
    print(f"agent killed with C in vm_state {at_kill}: kumo back in {restarted:.1f}s, C ended {seen[-1]} "
          f"{settled:.1f}s after the kill (console checked {time.monotonic() - killed:.1f}s after)")
    conn.compute.delete_server(c)
    conn.compute.wait_for_delete(c, wait=ACTION_TIMEOUT, interval=0.5)
    print(f"total {time.monotonic() - started:.1f}s")
    wait_for("no QEMU left", lambda: qemu_pids(str(cloud.data_dir)) == [], 30)
    if conn.network.find_port(port_b.id) is not None:
        conn.network.delete_port(port_b.id)
    conn.network.delete_network(net)
    conn.network.delete_security_group(sg)
    conn.close()
