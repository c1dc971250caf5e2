"""A source host whose driver cannot migrate refuses (migration error, the server stays ACTIVE
where it is, the action's event says why); a live migration still queued can be aborted."""

from __future__ import annotations

from pathlib import Path

import httpx

from kumo.agents.compute.fake import FakeDriver
from tests.compute_helpers import AgentThread
from tests.functional.test_compute_migrate import _hdr, _migrations, _server, _settled, _until
from tests.support import KumoCloud, unique

HOST_R = "mig-local-disks"


class LocalDisksOnly(FakeDriver):
    """Like the qemu driver: no ``migration_refused`` (its disks cannot leave the host)."""

    migration_refused = None  # type: ignore[assignment]


def _event(nova: httpx.Client, sid: str, action: str) -> dict:
    acts = nova.get(f"/servers/{sid}/os-instance-actions", headers=_hdr("2.62")).json()["instanceActions"]
    req = next(a["request_id"] for a in acts if a["action"] == action)
    detail = nova.get(f"/servers/{sid}/os-instance-actions/{req}", headers=_hdr("2.62")).json()["instanceAction"]
    return detail["events"][-1]


def test_refused_by_the_driver_and_abort_while_queued(kumo_cloud, tmp_path: Path):
    cloud: KumoCloud = kumo_cloud()
    agent = AgentThread(cloud, LocalDisksOnly(tmp_path / "r", {"vcpus": 8, "memory_mb": 8192, "local_gb": 40}), HOST_R)
    nova = httpx.Client(base_url=cloud.url + "/compute/v2.1", headers={"X-Auth-Token": cloud.admin_token},
                        timeout=60)  # fmt: skip
    img_file = tmp_path / "tiny.raw"
    img_file.write_bytes(b"\0" * 1048576)
    img = cloud.cli_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                         "--file", str(img_file), unique("mig"))  # fmt: skip
    agent.start()
    try:
        _until("host up", lambda: [s for s in nova.get("/os-services", params={"binary": "nova-compute"}).json()
                                   ["services"] if s["host"] == HOST_R and s["state"] == "up"])  # fmt: skip
        r = nova.post("/servers", headers=_hdr("2.37"), json={"server": {
            "name": unique("mig"), "imageRef": img["id"], "flavorRef": "1", "networks": "none",
            "availability_zone": f"nova:{HOST_R}"}})  # fmt: skip
        assert r.status_code == 202, r.text
        sid = r.json()["server"]["id"]
        _until("ACTIVE", _settled(nova, sid, "ACTIVE"))

        # cold: accepted, then refused by the source's driver; nothing moved
        assert nova.post(f"/servers/{sid}/action", json={"migrate": None}).status_code == 202
        _until("migration error", lambda: _migrations(nova, sid) and _migrations(nova, sid)[0]["status"] == "error")
        s = _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        assert s["OS-EXT-SRV-ATTR:host"] == HOST_R and "fault" not in s
        ev = _event(nova, sid, "migrate")
        assert ev["result"] == "Error" and "does not support cold migration" in ev["traceback"], ev

        # live: the same
        r = nova.post(f"/servers/{sid}/action", json={"os-migrateLive": {"host": None, "block_migration": "auto"}},
                      headers=_hdr("2.25"))  # fmt: skip
        assert r.status_code == 202, r.text
        _until("live error", lambda: _migrations(nova, sid)[0]["migration_type"] == "live-migration"
               and _migrations(nova, sid)[0]["status"] == "error")  # fmt: skip
        s = _until("ACTIVE", _settled(nova, sid, "ACTIVE"))
        assert s["OS-EXT-SRV-ATTR:host"] == HOST_R
        assert "does not support live migration" in _event(nova, sid, "live-migration")["traceback"]
        # the other host's claims were given back
        hyps = nova.get("/os-hypervisors/detail").json()["hypervisors"]
        assert [h["running_vms"] for h in hyps if h["hypervisor_hostname"] != HOST_R] == [0], hyps

        # with the source's agent away the migration stays queued: list, show, abort it
        agent.stop()
        r = nova.post(f"/servers/{sid}/action", json={"os-migrateLive": {"host": None, "block_migration": False}},
                      headers=_hdr("2.30"))  # fmt: skip
        assert r.status_code == 202, r.text
        assert _server(nova, sid)["OS-EXT-STS:task_state"] == "migrating"
        listed = nova.get(f"/servers/{sid}/migrations", headers=_hdr("2.80")).json()["migrations"]
        assert [(m["status"], m["server_uuid"], m["source_compute"]) for m in listed] == [("queued", sid, HOST_R)]
        mid = listed[0]["id"]
        shown = nova.get(f"/servers/{sid}/migrations/{mid}", headers=_hdr("2.59")).json()["migration"]
        assert shown["uuid"] == listed[0]["uuid"] and shown["memory_total_bytes"] is None
        r = nova.post(f"/servers/{sid}/migrations/{mid}/action", json={"force_complete": None}, headers=_hdr("2.22"))
        assert r.status_code == 400 and "queued" in r.text  # only a running one can be forced
        assert nova.delete(f"/servers/{sid}/migrations/{mid}", headers=_hdr("2.23")).status_code == 404
        assert nova.delete(f"/servers/{sid}/migrations/{mid}", headers=_hdr("2.24")).status_code == 202
        assert _migrations(nova, sid)[0]["status"] == "cancelled"
        s = _server(nova, sid)
        assert (s["status"], s["OS-EXT-STS:task_state"], s["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", None, HOST_R)
        assert nova.delete(f"/servers/{sid}/migrations/{mid}", headers=_hdr("2.24")).status_code == 400
        assert nova.delete(f"/servers/{sid}/migrations/99999", headers=_hdr("2.24")).status_code == 404
        assert nova.get(f"/servers/{sid}/migrations", headers=_hdr("2.80")).json()["migrations"] == []
    finally:
        agent.stop()
