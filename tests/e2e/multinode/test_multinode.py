"""Multi-node scenarios on the namespace test bed (testbed.py): a controller (``--isolated``: one
process per service, on PostgreSQL when KUMO_TEST_POSTGRES_URL is set), compute1, compute2 and
network1, each node joined with ``kumo join`` and run with ``kumo serve <role>``.

The compute nodes run the ``fake`` virt driver for (a)-(f): placement, lifecycle, heartbeats and
re-adoption are real, no VM boots; (g) restarts them with the qemu driver (TCG) when QEMU is
installed and boots real guests. The network agents use the linux driver inside their namespaces.
Storage nodes run volume agents exporting volumes over NBD (f, g).

The scenarios run in order in ONE test (one bed: building it costs ~20 s, and pytest-xdist would
otherwise spread the scenarios over workers and build several); each step says which one failed.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import httpx

from kumo.privileged import ip
from tests.e2e.multinode.testbed import Testbed


def wait_for(what: str, check, timeout: float = 30.0, interval: float = 0.3):  # type: ignore[no-untyped-def]
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def compute_hosts(bed: Testbed) -> dict[str, str]:
    """`openstack compute service list`: nova-compute host -> up/down."""
    return {s["Host"]: s["State"] for s in bed.cli_json("compute", "service", "list", "--service", "nova-compute")}


def node_health(bed: Testbed) -> dict[str, str]:
    out = bed.kumo("node", "list", "--json", "--data-dir", str(bed.controller_dir)).stdout
    return {n["name"]: n["health"] for n in json.loads(out)}


class Servers:
    def __init__(self, bed: Testbed, image_id: str) -> None:
        self.demo, self.admin = bed.sdk("kumo"), bed.sdk("kumo-admin")
        self.image_id = image_id
        self.network_id = self.demo.network.find_network("private").id

    def boot(self, *names: str) -> list[str]:
        ids = [self.demo.compute.create_server(name=n, image_id=self.image_id, flavor_id="42",
                                               networks=[{"uuid": self.network_id}]).id for n in names]
        for sid in ids:
            server = self.demo.compute.wait_for_server(self.demo.compute.get_server(sid), wait=60, interval=0.5)
            assert server.status == "ACTIVE", server
        return ids

    def host(self, sid: str) -> str:
        return self.admin.compute.get_server(sid).compute_host


def step_a_nodes_and_spread(bed: Testbed, servers: Servers) -> dict[str, str]:
    """(a) both compute hosts up; servers spread across them; DHCP and router on the network node."""
    health = wait_for("all nodes up", lambda: (h := node_health(bed)) and set(h.values()) == {"up"} and h)
    assert set(health) == {"controller", *bed.nodes}, health
    wait_for("both compute services up", lambda: compute_hosts(bed) == {"compute1": "up", "compute2": "up"})
    agents = {(a.agent_type, a.host) for a in servers.admin.network.agents()}
    assert {("DHCP agent", "network1"), ("L3 agent", "network1"), ("Linux bridge agent", "compute1"),
            ("Linux bridge agent", "compute2")} <= agents, agents
    assert ("DHCP agent", "compute1") not in agents  # compute nodes host no DHCP and no routers
    ids = servers.boot(*(f"spread-{i}" for i in range(4)))
    hosts = {sid: servers.host(sid) for sid in ids}
    assert sorted(hosts.values()) == ["compute1", "compute1", "compute2", "compute2"], hosts
    private = servers.network_id
    router = servers.demo.network.find_router("router1").id
    wait_for("the DHCP and router namespaces of the network node",
             lambda: ip.netns_exists(f"kdhcp-{private}") and ip.netns_exists(f"krouter-{router}"))
    return hosts


def step_b_image_service_killed(bed: Testbed, servers: Servers) -> dict[str, float]:
    """(b) kill -9 the image API process: the other APIs keep answering; the supervisor restarts it."""
    token = servers.admin.session.get_token()
    urls = {"identity": f"{bed.url}/identity/v3/auth/tokens",
            "compute": servers.admin.compute.get_endpoint() + "/servers",
            "network": servers.admin.network.get_endpoint().rstrip("/") + "/networks"}  # .../network/v2.0
    image_url = servers.admin.image.get_endpoint().rstrip("/") + "/images"  # .../image/v2
    failures: dict[str, int] = {k: 0 for k in urls}
    counts: dict[str, int] = {k: 0 for k in urls}
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=5) as c:
            while not stop.is_set():
                for name, url in urls.items():
                    headers = {"X-Auth-Token": token}
                    if name == "identity":
                        headers["X-Subject-Token"] = token
                    try:
                        ok = c.get(url, headers=headers).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    counts[name] += 1
                    failures[name] += 0 if ok else 1
                time.sleep(0.05)

    before = bed.controller_children()
    assert {"identity", "image", "compute", "network", "nodes"} <= set(before), before
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        killed = time.monotonic()
        import os

        os.kill(before["image"], signal.SIGKILL)

        def image_answers() -> bool:
            try:
                return httpx.get(image_url, headers={"X-Auth-Token": token}, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for("the image API to answer again", image_answers, timeout=30, interval=0.1)
        recovered = time.monotonic() - killed
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(10)
    after = bed.controller_children()
    assert after["image"] != before["image"], "the image process was not replaced"
    assert {k: after[k] for k in after if k != "image"} == {k: before[k] for k in before if k != "image"}
    assert all(counts[k] > 3 for k in counts), counts
    assert failures == {k: 0 for k in urls}, (failures, counts)
    print(f"image API answered again {recovered:.2f}s after kill -9; requests to other APIs meanwhile: "
          f"{sum(counts.values())}, failed: {sum(failures.values())}")
    return {"image_recovery_s": recovered}


def step_c_compute_node_down_and_back(bed: Testbed, servers: Servers, hosts: dict[str, str]) -> dict[str, float]:
    """(c) a dead compute node shows down, gets no new servers; restarted, it is up and re-adopts."""
    node = bed.nodes["compute2"]
    bed.kill_node(node, signal.SIGKILL)
    killed = time.monotonic()
    wait_for("compute2 down in the compute service list",
             lambda: compute_hosts(bed) == {"compute1": "up", "compute2": "down"}, timeout=30, interval=0.5)
    detected = time.monotonic() - killed
    wait_for("compute2 down in kumo node list", lambda: node_health(bed).get("compute2") == "down", timeout=20)
    ids = servers.boot("while-down-0", "while-down-1")
    assert [servers.host(sid) for sid in ids] == ["compute1", "compute1"]
    bed.start_node(node)
    wait_for("compute2 up again", lambda: compute_hosts(bed).get("compute2") == "up", timeout=30, interval=0.5)
    wait_for("compute2 up in kumo node list", lambda: node_health(bed).get("compute2") == "up", timeout=20)
    mine = [sid for sid, h in hosts.items() if h == "compute2"]
    for sid in mine:  # re-adopted: the restarted agent converged them to running again
        server = servers.admin.compute.get_server(sid)
        assert server.status == "ACTIVE" and server.compute_host == "compute2", server
    if mine:  # and it manages them again: stop and start one through the API
        sid = mine[0]
        servers.admin.compute.stop_server(sid)
        wait_for("SHUTOFF", lambda: servers.admin.compute.get_server(sid).status == "SHUTOFF", timeout=30)
        servers.admin.compute.start_server(sid)
        wait_for("ACTIVE", lambda: servers.admin.compute.get_server(sid).status == "ACTIVE", timeout=30)
    log = bed.node_log(node)
    assert "compute agent: host compute2" in log, log
    print(f"dead compute node shown down after {detected:.1f}s (service_down_time 8s, heartbeat 1s)")
    return {"compute_down_detect_s": detected}


def step_d_vxlan_between_hosts(bed: Testbed, servers: Servers, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """(d) two guests on one tenant network, on compute1 and compute2, lease from network1's DHCP and
    ping each other over VXLAN between the hosts' network agents."""
    from tests.e2e.netlab import UDHCPC_SCRIPT

    admin = servers.admin
    net = admin.network.create_network(name="mn-vxlan")
    assert net.provider_network_type == "vxlan", net
    subnet = admin.network.create_subnet(network_id=net.id, cidr="10.99.7.0/24", ip_version=4, name="mn-vxlan")
    ports = []
    for host in ("compute1", "compute2"):
        ports.append(admin.network.create_port(network_id=net.id, binding_host_id=host, device_owner="compute:nova",
                                               device_id=f"mn-guest-{host}", port_security_enabled=False))
    guests = [bed.plug_guest(bed.nodes[h], p.id, p.mac_address, net.id, mtu=net.mtu or 1450)
              for h, p in zip(("compute1", "compute2"), ports, strict=True)]
    for p in ports:  # each compute node's agent saw its tap on the bridge
        wait_for(f"port {p.id} ACTIVE", lambda p=p: admin.network.get_port(p.id).status == "ACTIVE", timeout=30)
    peers = {bed.nodes[n].address for n in ("compute2", "network1")}
    vx = f"kvx-{net.id[:11]}"

    def flood_list() -> set[str]:
        out = subprocess.run(["ip", "netns", "exec", bed.nodes["compute1"].ns, "bridge", "fdb", "show", "dev", vx],
                             capture_output=True, text=True).stdout
        return {line.split("dst ")[1].split()[0] for line in out.splitlines() if "dst " in line}

    wait_for("compute1's VXLAN flood list", lambda: peers <= flood_list(), timeout=20)
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    addresses = []
    for g in guests:
        subprocess.run(["ip", "netns", "exec", g, "busybox", "udhcpc", "-i", "g0", "-s", str(script), "-n", "-q",
                        "-t", "10", "-T", "1"], capture_output=True, timeout=40, check=True)
        out = subprocess.run(["ip", "netns", "exec", g, "ip", "-4", "-o", "addr", "show", "dev", "g0"],
                             capture_output=True, text=True).stdout.split()
        addresses.append(out[3].split("/")[0] if len(out) > 3 else "")
    assert addresses == [p.fixed_ips[0]["ip_address"] for p in ports], addresses
    ping = subprocess.run(["ip", "netns", "exec", guests[0], "busybox", "ping", "-c", "3", "-W", "2", addresses[1]],
                          capture_output=True, text=True, timeout=30)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    for p in ports:
        admin.network.delete_port(p.id)
    admin.network.delete_subnet(subnet.id)
    admin.network.delete_network(net.id)


def step_e_storage_node_down(bed: Testbed, servers: Servers) -> None:
    """(e) one of three storage nodes stopped: every object still readable and writable; back, the
    replicators make all three replicas whole again."""
    store = servers.admin.object_store
    store.create_container(name="mn")
    for i in range(8):
        store.upload_object(container="mn", name=f"o{i}", data=f"data-{i}".encode())
    node = bed.nodes["storage2"]
    bed.kill_node(node)
    for i in range(8):
        assert store.download_object(f"o{i}", container="mn") == f"data-{i}".encode()
    for i in range(8, 12):
        store.upload_object(container="mn", name=f"o{i}", data=f"data-{i}".encode())
    assert sorted(o.name for o in store.objects("mn")) == sorted(f"o{i}" for i in range(12))
    device = node.data_dir / "object-store" / node.name

    def replicas_on_storage2() -> int:
        return len(list(device.rglob("*.data")))

    assert replicas_on_storage2() == 8  # it missed the last four writes
    bed.start_node(node)
    wait_for("storage2 to receive the writes it missed", lambda: replicas_on_storage2() == 12, timeout=60)


def _qemu_io(bed: Testbed, node: str, info: dict, command: str, *opts: str) -> subprocess.CompletedProcess:
    d = info["data"]
    url = f"nbd://{d['host']}:{d['port']}/{d['export']}"
    return subprocess.run(["ip", "netns", "exec", bed.nodes[node].ns, "qemu-io", *opts, "-f", "raw", "-c", command,
                           url], capture_output=True, text=True, timeout=60)


def step_f_volume_from_storage_node(bed: Testbed, servers: Servers, hosts: dict[str, str]) -> dict[str, float]:
    """(f) a volume placed on a storage node is attached to a server on a compute node: the storage
    node's volume agent exports it over NBD for that attachment only; the compute node's namespace
    writes and reads it across the bed's network; detached, the export is gone."""
    demo = servers.demo
    cinder = httpx.Client(base_url=demo.block_storage.get_endpoint().rstrip("/"),
                          headers={"X-Auth-Token": demo.session.get_token(), "OpenStack-API-Version": "volume 3.44"},
                          timeout=60)
    admin_cinder = httpx.Client(base_url=servers.admin.block_storage.get_endpoint().rstrip("/"),
                                headers={"X-Auth-Token": servers.admin.session.get_token()}, timeout=60)
    with cinder, admin_cinder:
        r = cinder.post("/volumes", json={"volume": {"size": 1, "name": "mn-nbd"}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
        wait_for("the volume available", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["status"]
                 == "available", timeout=60)
        vol_host = admin_cinder.get(f"/volumes/{vid}").json()["volume"]["os-vol-host-attr:host"]
        assert vol_host.startswith("storage"), vol_host
        sid = next(sid for sid, h in hosts.items() if h == "compute1")
        started = time.monotonic()
        demo.compute.create_volume_attachment(sid, volume_id=vid)
        wait_for("the volume in-use", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "in-use",
                 timeout=60, interval=0.2)
        attach_s = time.monotonic() - started
        atts = cinder.get("/attachments", params={"volume_id": vid}).json()["attachments"]
        assert len(atts) == 1, atts
        info = cinder.get(f"/attachments/{atts[0]['id']}").json()["attachment"]["connection_info"]
        storage = bed.nodes[vol_host.split("@")[0]]
        assert info["driver_volume_type"] == "nbd", info
        assert info["data"]["host"] == storage.address and len(info["data"]["export"]) >= 32, info
        w = _qemu_io(bed, "compute1", info, "write -P 0x4d 4096 64k")
        assert w.returncode == 0, w.stdout + w.stderr
        t0 = time.monotonic()
        big = _qemu_io(bed, "compute1", info, "write -P 0x33 1M 64M")
        write_mbs = 64 / (time.monotonic() - t0)
        assert big.returncode == 0, big.stderr
        t0 = time.monotonic()
        rd = _qemu_io(bed, "compute2", info, "read -P 0x33 1M 64M", "-r")
        read_mbs = 64 / (time.monotonic() - t0)
        assert "read 67108864/67108864" in rd.stdout, rd.stdout + rd.stderr
        assert "read 65536/65536" in _qemu_io(bed, "compute2", info, "read -P 0x4d 4096 64k", "-r").stdout
        wrong = dict(info, data={**info["data"], "export": info["data"]["export"][:-2] + "xx"})
        assert _qemu_io(bed, "compute1", wrong, "read 0 512", "-r").returncode != 0  # the name is the credential
        demo.compute.delete_volume_attachment(vid, sid)
        wait_for("the volume available again", lambda: cinder.get(f"/volumes/{vid}").json()["volume"]["status"]
                 == "available", timeout=60)
        wait_for("the export removed", lambda: _qemu_io(bed, "compute1", info, "read 0 512", "-r").returncode != 0,
                 timeout=30)
        assert cinder.delete(f"/volumes/{vid}").status_code == 202
    print(f"volume on {vol_host} attached to a server on compute1 in {attach_s:.2f}s; over NBD from compute "
          f"namespaces: write {write_mbs:.0f} MB/s, read {read_mbs:.0f} MB/s (qemu-io, 64 MiB)")
    return {"nbd_attach_s": attach_s, "nbd_write_mbs": write_mbs, "nbd_read_mbs": read_mbs}


GUEST_TIMEOUT = 240.0  # serial console output of TCG guests on a loaded 2-core machine
PING = r"""#!/bin/sh
(
i=0
while [ $i -lt 120 ]; do
  if ping -c 1 -W 2 @PEER@ >/dev/null 2>&1; then echo "PING-OK @PEER@"; break; fi
  sleep 1; i=$((i+1))
done
[ $i -lt 120 ] || echo "PING-TIMEOUT"
i=0
while [ $i -lt 300 ]; do
  for s in /sys/block/vd*/serial; do
    [ -e "$s" ] || continue
    case "$(cat "$s")" in
    @SERIAL@*)
      d=${s%/serial}; d=/dev/${d##*/}
      [ -b "$d" ] || break
      printf "%s" "@MARKER@" | dd of="$d" bs=512 conv=sync 2>/dev/null; sync
      echo "MARKER-WRITTEN $(dd if="$d" bs=64 count=1 2>/dev/null | tr -d "\000")"
      exit 0 ;;
    esac
  done
  sleep 1; i=$((i+1))
done
echo "MARKER-TIMEOUT"
) </dev/null >/dev/console 2>&1 &
"""


def qemu_available() -> bool:
    import os
    import shutil

    return os.geteuid() == 0 and shutil.which("qemu-system-x86_64") is not None


def step_g_qemu_guests(bed: Testbed, servers: Servers, tmp_path) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """(g) compute1 and compute2 restarted with the qemu driver (TCG): a kumo-tiny VM on each, on
    one VXLAN tenant network (DHCP from network1); the VM on compute1 pings the one on compute2,
    then writes a marker to a volume of a storage node attached over NBD; the storage node's
    volume file holds it."""
    import secrets

    from kumo.agents.compute import tiny_image

    admin = servers.admin
    for server in list(admin.compute.servers(all_projects=True)):  # the fake driver's servers
        admin.compute.delete_server(server.id)
    wait_for("the fake servers gone", lambda: not list(admin.compute.servers(all_projects=True)), timeout=60)
    for name in ("compute1", "compute2"):
        node = bed.nodes[name]
        bed.kill_node(node, signal.SIGTERM)
        node.env.update({"KUMO_COMPUTE__DRIVER": "qemu", "KUMO_COMPUTE__SHUTDOWN_TIMEOUT": "10"})
        bed.start_node(node)
    def qemu_hosts_up() -> bool:
        for name in ("compute1", "compute2"):
            proc = bed.nodes[name].proc
            assert proc is not None and proc.poll() is None, f"{name} exited:\n{bed.node_log(bed.nodes[name])}"
        return compute_hosts(bed) == {"compute1": "up", "compute2": "up"}

    time.sleep(3)  # the killed agents' last heartbeats are still fresh
    wait_for("both qemu compute hosts up", qemu_hosts_up, timeout=60, interval=0.5)
    path = tiny_image.build()
    image = bed.cli_json("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--public",
                         "--property", "hw_disk_bus=virtio", "--property", "hw_vif_model=virtio",
                         "--file", str(path), "mn-tiny")
    net = admin.network.create_network(name="mn-vm")
    subnet = admin.network.create_subnet(network_id=net.id, cidr="10.99.8.0/24", ip_version=4, name="mn-vm")
    addrs = {"compute1": "10.99.8.21", "compute2": "10.99.8.22"}
    ports = {h: admin.network.create_port(network_id=net.id, port_security_enabled=False,
                                          fixed_ips=[{"subnet_id": subnet.id, "ip_address": a}])
             for h, a in addrs.items()}
    r = httpx.post(admin.block_storage.get_endpoint().rstrip("/") + "/volumes",
                   headers={"X-Auth-Token": admin.session.get_token()},
                   json={"volume": {"size": 1, "name": "mn-vm-vol"}}, timeout=60)
    assert r.status_code == 202, r.text
    vid = r.json()["volume"]["id"]
    marker = f"kumo-mn-{secrets.token_hex(6)}"
    ids = {}
    started = time.monotonic()
    for host, peer in (("compute1", "compute2"), ("compute2", "compute1")):
        script = tmp_path / f"{host}.sh"
        script.write_text(PING.replace("@PEER@", addrs[peer]).replace("@SERIAL@", vid[:20] if host == "compute1"
                                                                        else "none").replace("@MARKER@", marker))
        ids[host] = bed.cli_json("server", "create", f"mn-vm-{host}", "--flavor", "42", "--image", image["id"],
                                 "--port", ports[host].id, "--availability-zone", f"nova:{host}",
                                 "--config-drive", "True", "--user-data", str(script))["id"]

    def console(sid: str) -> str:
        return bed.cli("console", "log", "show", sid).stdout

    def active(sid: str) -> bool:
        server = admin.compute.get_server(sid)
        assert server.status != "ERROR", (server.fault, bed.node_log(bed.nodes[server.compute_host or "compute1"]))
        return server.status == "ACTIVE"

    try:
        for sid in ids.values():
            wait_for("the VM ACTIVE", lambda sid=sid: active(sid), timeout=GUEST_TIMEOUT, interval=1)
        assert {h: admin.compute.get_server(sid).compute_host for h, sid in ids.items()} == \
            {"compute1": "compute1", "compute2": "compute2"}
        wait_for("compute1's VM pinging compute2's over VXLAN", lambda: "PING-OK" in console(ids["compute1"]),
                 timeout=GUEST_TIMEOUT, interval=2)
        pinged = time.monotonic() - started
        wait_for("the volume available", lambda: admin.block_storage.get_volume(vid).status == "available",
                 timeout=60)
        t0 = time.monotonic()
        admin.compute.create_volume_attachment(ids["compute1"], volume_id=vid)
        wait_for("the volume in-use", lambda: admin.block_storage.get_volume(vid).status == "in-use", timeout=120)
        attach_s = time.monotonic() - t0
        log = wait_for("the guest's marker on the NBD volume", lambda: (c := console(ids["compute1"])) and
                       ("MARKER-WRITTEN" in c or "MARKER-TIMEOUT" in c) and c, timeout=GUEST_TIMEOUT, interval=2)
        assert f"MARKER-WRITTEN {marker}" in log, log[-2000:]
        vol_host = admin.block_storage.get_volume(vid).host
        storage = bed.nodes[vol_host.split("@")[0]]
        admin.compute.delete_volume_attachment(vid, ids["compute1"])
        wait_for("the volume detached", lambda: admin.block_storage.get_volume(vid).status == "available",
                 timeout=120)
        data = subprocess.run(["qemu-io", "-r", "-U", "-c", "read -v 0 32",
                               str(storage.data_dir / "volumes" / f"volume-{vid}")],
                              capture_output=True, text=True, timeout=30).stdout
        dumped = "".join("".join(line.split("  ")[1].split()) for line in data.splitlines()[:2])  # hex bytes
        assert dumped.startswith(marker.encode().hex()), data
    finally:
        for sid in ids.values():
            admin.compute.delete_server(sid)
        wait_for("the VMs gone", lambda: not list(admin.compute.servers(all_projects=True)), timeout=120)
        for p in ports.values():
            admin.network.delete_port(p.id)
    print(f"QEMU guests on compute1/compute2: ping over VXLAN {pinged:.1f}s after the first server create; "
          f"NBD volume attached to the running VM in {attach_s:.1f}s")
    return {"qemu_ping_s": pinged, "qemu_nbd_attach_s": attach_s}


def test_multinode_scenarios(bed: Testbed, tmp_path):  # type: ignore[no-untyped-def]
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * 65536)
    image = bed.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare", "--public",
                         "--file", str(disk), "mn-image")
    servers = Servers(bed, image["id"])
    hosts = step_a_nodes_and_spread(bed, servers)
    step_b_image_service_killed(bed, servers)
    step_c_compute_node_down_and_back(bed, servers, hosts)
    step_d_vxlan_between_hosts(bed, servers, tmp_path)
    if any(n.role == "storage" for n in bed.nodes.values()):
        step_f_volume_from_storage_node(bed, servers, hosts)
        step_e_storage_node_down(bed, servers)
        if qemu_available():
            step_g_qemu_guests(bed, servers, tmp_path)
