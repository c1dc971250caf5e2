"""Cold and live migration between two fake compute hosts (``compute.fake_hosts = 2``), through
the real ``openstack`` CLI and the compute API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests import compute_helpers as helpers
from tests.support import KumoCloud, unique

_hdr, _until, _server, _settled = helpers.hdr, helpers.until, helpers.server, helpers.settled


def _migrations(nova: httpx.Client, sid: str) -> list[dict]:
    r = nova.get("/os-migrations", params={"instance_uuid": sid}, headers=_hdr("2.80"))
    assert r.status_code == 200, r.text
    return r.json()["migrations"]


def _status_of(nova: httpx.Client, sid: str, mid: int):  # type: ignore[no-untyped-def]
    return lambda: next(m["status"] for m in _migrations(nova, sid) if m["id"] == mid)


def _create(nova: httpx.Client, image: str, name: str, hints: dict | None = None) -> str:
    body: dict[str, Any] = {"server": {"name": name, "imageRef": image, "flavorRef": "1", "networks": "none"}}
    if hints:
        body["os:scheduler_hints"] = hints
    r = nova.post("/servers", headers=_hdr("2.37"), json=body)
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    _until(f"{name} ACTIVE", _settled(nova, sid, "ACTIVE"))
    return sid


def test_cold_and_live_migration_between_two_fake_hosts(kumo_cloud, tmp_path: Path):
    cloud: KumoCloud = kumo_cloud(env={"KUMO_COMPUTE__FAKE_HOSTS": "2"})
    nova = httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                        timeout=60)  # fmt: skip
    def up_hosts() -> list[str]:
        rows = nova.get("/os-services", params={"binary": "nova-compute"}).json()["services"]
        return sorted(r["host"] for r in rows if r["state"] == "up")

    hosts = _until("two compute hosts up", lambda: len(up_hosts()) == 2 and up_hosts(), timeout=30)
    assert len(hosts) == 2 and hosts[1] == f"{hosts[0]}-2", hosts
    assert len(nova.get("/os-hypervisors").json()["hypervisors"]) == 2

    img_file = tmp_path / "tiny.raw"
    img_file.write_bytes(b"\0" * 1048576)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                         "--file", str(img_file), unique("mig"))  # fmt: skip
    name = unique("mig")
    sid = _create(nova, img["id"], name)
    src = _server(nova, sid)["OS-EXT-SRV-ATTR:host"]
    (dst,) = set(hosts) - {src}

    # a member may not migrate; bad targets are refused with 400 and change nothing
    demo = httpx.post(f"{cloud.url}/compute/v2.1/servers/{sid}/action", json={"migrate": None},
                      headers={"X-Auth-Token": cloud.sdk("kumo").auth_token}, timeout=30)  # fmt: skip
    assert demo.status_code in (403, 404), demo.text
    r = nova.post(f"/servers/{sid}/action", json={"migrate": {"host": src}}, headers=_hdr("2.56"))
    assert r.status_code == 400 and "same" in r.json()["badRequest"]["message"], r.text
    r = nova.post(f"/servers/{sid}/action", json={"migrate": {"host": "no-such-host"}}, headers=_hdr("2.56"))
    assert r.status_code == 400 and "could not be found" in r.text, r.text
    r = nova.post(f"/servers/{sid}/action", json={"migrate": {"host": dst}}, headers=_hdr("2.55"))
    assert r.status_code == 202  # before 2.56 the body is ignored (as Nova): the scheduler picks
    _until("VERIFY_RESIZE", _settled(nova, sid, "VERIFY_RESIZE"))
    nova.post(f"/servers/{sid}/action", json={"revertResize": None})
    _until("ACTIVE on the source", lambda: _settled(nova, sid, "ACTIVE")()
           and _server(nova, sid)["OS-EXT-SRV-ATTR:host"] == src)  # fmt: skip

    # cold migration with the CLI; confirm keeps it on the destination
    out = cloud.cli("server", "migrate", sid)
    assert out.returncode == 0, out.stderr
    s = _until("VERIFY_RESIZE", _settled(nova, sid, "VERIFY_RESIZE"))
    assert s and s["OS-EXT-SRV-ATTR:host"] == dst, s
    rows = cloud.cli_json("server", "migration", "list", "--server", sid, "--os-compute-api-version", "2.80")
    latest = rows[0]
    assert (latest["Source Compute"], latest["Dest Compute"], latest["Status"], latest["Type"]) == (
        src, dst, "finished", "migration")
    assert "fake: power on" in nova.post(f"/servers/{sid}/action", json={"os-getConsoleOutput": {}}).json()["output"]
    out = cloud.cli("server", "migration", "confirm", sid)
    assert out.returncode == 0, out.stderr
    _until("ACTIVE on the destination", _settled(nova, sid, "ACTIVE"))
    assert _server(nova, sid)["OS-EXT-SRV-ATTR:host"] == dst
    # the source agent drops its copy: the migration ends confirmed
    _until("confirmed", lambda: _status_of(nova, sid, latest["Id"])() == "confirmed")

    # cold migration back, reverted with the CLI: the server returns to where it was (dst)
    assert cloud.cli("server", "migrate", sid).returncode == 0
    assert _until("VERIFY_RESIZE", _settled(nova, sid, "VERIFY_RESIZE"))["OS-EXT-SRV-ATTR:host"] == src
    out = cloud.cli("server", "migration", "revert", sid)
    assert out.returncode == 0, out.stderr
    _until("reverted", lambda: _settled(nova, sid, "ACTIVE")() and _server(nova, sid)["OS-EXT-SRV-ATTR:host"] == dst)
    assert _migrations(nova, sid)[0]["status"] == "reverted"
    r = nova.post(f"/servers/{sid}/action", json={"confirmResize": None})
    assert r.status_code == 409  # nothing to confirm any more

    # live migration with the CLI, to a named host
    out = cloud.cli("--os-compute-api-version", "2.30", "server", "migrate", "--live-migration", "--host", src, sid)
    assert out.returncode == 0, out.stderr
    _until("ACTIVE on src", lambda: _settled(nova, sid, "ACTIVE")()
           and _server(nova, sid)["OS-EXT-SRV-ATTR:host"] == src)  # fmt: skip
    live = _migrations(nova, sid)[0]
    assert live["migration_type"] == "live-migration" and live["dest_compute"] == src
    _until("completed", lambda: _status_of(nova, sid, live["id"])() == "completed")
    r = nova.get(f"/servers/{sid}/migrations", headers=_hdr("2.23"))
    assert r.status_code == 200 and r.json()["migrations"] == []  # none in progress
    r = nova.get(f"/servers/{sid}/migrations/{live['id']}", headers=_hdr("2.23"))
    assert r.status_code == 404
    r = nova.post(f"/servers/{sid}/migrations/{live['id']}/action", json={"force_complete": None},
                  headers=_hdr("2.22"))  # fmt: skip
    assert r.status_code == 409  # the server is not migrating any more
    assert nova.get(f"/servers/{sid}/migrations", headers=_hdr("2.22")).status_code == 404

    # the same host is refused; a paused server stays paused through a live migration (2.25: auto)
    r = nova.post(f"/servers/{sid}/action", json={"os-migrateLive": {"host": src, "block_migration": "auto"}},
                  headers=_hdr("2.25"))  # fmt: skip
    assert r.status_code == 400, r.text
    r = nova.post(f"/servers/{sid}/action", json={"os-migrateLive": {"host": None, "block_migration": "auto"}},
                  headers=_hdr("2.24"))  # fmt: skip
    assert r.status_code == 400  # "auto" and no disk_over_commit only since 2.25
    assert nova.post(f"/servers/{sid}/action", json={"pause": None}).status_code == 202
    _until("PAUSED", _settled(nova, sid, "PAUSED"))
    r = nova.post(f"/servers/{sid}/action", json={"os-migrateLive": {"host": None, "block_migration": "auto"}},
                  headers=_hdr("2.25"))  # fmt: skip
    assert r.status_code == 202, r.text
    _until("PAUSED on dst", lambda: _settled(nova, sid, "PAUSED")()
           and _server(nova, sid)["OS-EXT-SRV-ATTR:host"] == dst)  # fmt: skip

    # a stopped server: cold migration keeps it SHUTOFF; a live migration is refused
    assert nova.post(f"/servers/{sid}/action", json={"unpause": None}).status_code == 202
    _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
    assert nova.post(f"/servers/{sid}/action", json={"os-stop": None}).status_code == 202
    _until("SHUTOFF", _settled(nova, sid, "SHUTOFF"))
    r = nova.post(f"/servers/{sid}/action", json={"os-migrateLive": {"host": None, "block_migration": False}},
                  headers=_hdr("2.25"))  # fmt: skip
    assert r.status_code == 409
    assert nova.post(f"/servers/{sid}/action", json={"migrate": None}).status_code == 202
    _until("VERIFY_RESIZE", _settled(nova, sid, "VERIFY_RESIZE"))
    assert nova.post(f"/servers/{sid}/action", json={"confirmResize": None}).status_code == 204
    s = _until("SHUTOFF on src", _settled(nova, sid, "SHUTOFF"))
    assert s["OS-EXT-SRV-ATTR:host"] == src

    actions = [a["action"] for a in nova.get(f"/servers/{sid}/os-instance-actions").json()["instanceActions"]]
    for a in ("migrate", "confirmResize", "revertResize", "live-migration"):
        assert a in actions, actions
    # both hosts' usage follows the server: one VM in all
    hyps = {h["hypervisor_hostname"]: h for h in nova.get("/os-hypervisors/detail").json()["hypervisors"]}
    assert hyps[src]["running_vms"] == 1 and hyps[dst]["running_vms"] == 0, hyps

    # scheduler hints: same_host / different_host, honoured by later migrations too
    apart = {"id": _create(nova, img["id"], unique("apart"), {"different_host": sid})}
    assert _server(nova, apart["id"])["OS-EXT-SRV-ATTR:host"] == dst
    near = _create(nova, img["id"], unique("near"), {"same_host": [sid]})
    assert _server(nova, near)["OS-EXT-SRV-ATTR:host"] == src
    r = nova.post(f"/servers/{apart['id']}/action", json={"migrate": None})
    assert r.status_code == 400 and "No valid host" in r.text, r.text  # its only other host runs sid
    r = nova.post("/servers", headers=_hdr("2.37"), json={
        "server": {"name": unique("bad"), "imageRef": img["id"], "flavorRef": "1", "networks": "none"},
        "os:scheduler_hints": {"different_host": "not-a-uuid"}})  # fmt: skip
    assert r.status_code == 400, r.text

    # a server's port binding follows it to its new host
    neutron = httpx.Client(base_url=cloud.url + "/network/v2.0", headers={"X-Auth-Token": cloud.admin_token},
                           timeout=60)  # fmt: skip
    net = neutron.post("/networks", json={"network": {"name": unique("mig")}}).json()["network"]
    r = neutron.post("/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, "cidr": "10.77.0.0/24"}})
    assert r.status_code == 201, r.text
    r = nova.post("/servers", json={"server": {"name": unique("wired"), "imageRef": img["id"], "flavorRef": "1",
                                               "networks": [{"uuid": net["id"]}]}})  # fmt: skip
    assert r.status_code == 202, r.text
    wired = r.json()["server"]["id"]
    before = _until("wired ACTIVE", _settled(nova, wired, "ACTIVE"))["OS-EXT-SRV-ATTR:host"]

    def binding() -> list[str]:
        return [p["binding:host_id"] for p in neutron.get("/ports", params={"device_id": wired}).json()["ports"]]

    assert binding() == [before]
    r = nova.post(f"/servers/{wired}/action", json={"os-migrateLive": {"host": None, "block_migration": "auto"}},
                  headers=_hdr("2.25"))  # fmt: skip
    assert r.status_code == 202, r.text
    after = _until("moved", lambda: _settled(nova, wired, "ACTIVE")()
                   and _server(nova, wired)["OS-EXT-SRV-ATTR:host"] != before and _server(nova, wired))  # fmt: skip
    assert binding() == [after["OS-EXT-SRV-ATTR:host"]]
    for gone in (sid, apart["id"], near, wired):
        assert nova.delete(f"/servers/{gone}").status_code == 204
