"""A guest reads its metadata at 169.254.169.254: the real path, with no VM.

``kumo up`` with the linux network driver (and the fake compute driver): a server is created
through the compute API, a namespace is plugged into its port like its VM would be, takes its
DHCP lease (with the classless route to 169.254.169.254) and fetches
``/openstack/latest/meta_data.json`` and ``/latest/meta-data/local-ipv4`` with busybox wget;
the DHCP namespace's proxy signs the request and compute's metadata API answers.

Skipped unless root with ip/dnsmasq/busybox and no other network agent holds the host lock.
Cleanup: the guest namespace and its veth by this test; kumo's bridges and namespaces by
stopping kumo (checked by tests/e2e/test_network_api_e2e.py).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import httpx
import pytest

from kumo.agents.network import names
from kumo.privileged import ip
from tests.e2e.netlab import UDHCPC_SCRIPT, require_root_tools, sh
from tests.e2e.test_network_api_e2e import LOCK_FILE, agent_lock_holder, wait_for
from tests.support import KumoCloud


@pytest.fixture
def metadata_cloud(tmp_path):
    require_root_tools()
    holder = agent_lock_holder()
    if holder is not None:
        pytest.skip(f"another kumo network agent (pid {holder}) holds {LOCK_FILE}: only one may run per host")
    cloud = KumoCloud(tmp_path / "kd", env={"KUMO_NETWORK_AGENT__DRIVER": "linux", "KUMO_COMPUTE__DRIVER": "fake"})
    try:
        yield cloud.start()
    finally:
        cloud.stop()


def test_guest_reads_its_metadata_through_the_proxy(metadata_cloud: KumoCloud, tmp_path) -> None:
    cloud = metadata_cloud
    conn = cloud.sdk("kumo-admin")
    net = conn.network.create_network(name="e2e-md-net")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.93.8.0/24", name="e2e-md-sub")
    headers = {"X-Auth-Token": cloud.admin_token, "OpenStack-API-Version": "compute 2.37"}
    image = httpx.post(cloud.url + "/image/v2/images", headers=headers, timeout=30,
                       json={"name": "e2e-md-img", "disk_format": "raw", "container_format": "bare"}).json()  # fmt: skip
    httpx.put(f"{cloud.url}/image/v2/images/{image['id']}/file", content=b"\0" * 65536, timeout=30,
              headers={**headers, "Content-Type": "application/octet-stream"}).raise_for_status()  # fmt: skip
    body = {"server": {"name": "e2e-md-vm", "imageRef": image["id"], "flavorRef": "1", "networks": [{"uuid": net.id}]}}
    r = httpx.post(cloud.url + "/compute/v2.1/servers", json=body, headers=headers, timeout=60)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    wait_for("server ACTIVE", lambda: httpx.get(f"{cloud.url}/compute/v2.1/servers/{sid}", headers=headers,
                                                 timeout=30).json()["server"]["status"] == "ACTIVE", timeout=60)  # fmt: skip
    port = next(iter(conn.network.ports(device_id=sid)))
    fixed_ip = port.fixed_ips[0]["ip_address"]
    proxy_pid = cloud.data_dir / "network-agent" / "dhcp" / names.dhcp_netns(net.id) / "metadata.pid"
    wait_for("the metadata proxy", proxy_pid.is_file, timeout=30)

    token = uuid.uuid4().hex[:4]
    ns, dev, tap = f"ktest{token}md", f"kvt{token}md", names.tap(port.id)
    script = tmp_path / "udhcpc.sh"
    script.write_text(UDHCPC_SCRIPT)
    script.chmod(0o755)
    ip.netns_add(ns)
    try:
        ip.veth_add(tap, dev, names.bridge(net.id), ns, mac=port.mac_address)
        sh(["busybox", "udhcpc", "-i", dev, "-s", str(script), "-n", "-q", "-t", "8", "-T", "1", "-O", "staticroutes"],
           netns=ns, timeout=30)  # fmt: skip
        deadline = time.monotonic() + 20
        while True:  # the proxy may still be starting
            got = sh(["busybox", "wget", "-q", "-O", "-", "http://169.254.169.254/openstack/latest/meta_data.json"],
                     netns=ns, timeout=15, check=False)  # fmt: skip
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert got.returncode == 0, got.stderr
        meta = json.loads(got.stdout)
        assert meta["uuid"] == sid and meta["name"] == "e2e-md-vm" and meta["hostname"].endswith(".novalocal")
        local = sh(["busybox", "wget", "-q", "-O", "-", "http://169.254.169.254/latest/meta-data/local-ipv4"], netns=ns)
        assert local.stdout == fixed_ip
    finally:
        with contextlib.suppress(Exception):
            ip.netns_delete(ns)
        with contextlib.suppress(Exception):
            ip.link_delete(tap)
        conn.close()
