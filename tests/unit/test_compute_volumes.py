"""Compute's volume mappings on an in-memory database: validation, the attach/detach state machine
through the agent API's desired state and reports, and the agent applying it to the fake driver."""

from __future__ import annotations

from datetime import datetime

import pytest

from kumo.agents.compute.agent import ComputeAgent, to_spec
from kumo.agents.compute.fake import FakeDriver
from kumo.common.config import ComputeSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.common.microversion import APIVersion
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import ComputeBase, Server
from kumo.compute.service import agents
from kumo.compute.service import volumes as vols
from kumo.compute.service.core import ComputeService

SID = "11111111-2222-3333-4444-555555555555"
VID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
CTX = RequestContext(user_id="u", project_id="p", roles=frozenset({"member"}), request_id="req-1")


def _svc(vm_state: str = "active", host: str | None = "h1") -> ComputeService:
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    ts = datetime(2026, 1, 1)
    with db.session() as s:
        s.add(Server(id=SID, seq=1, name="vm", project_id="p", user_id="u", flavor_id="1",
                     flavor={"vcpus": 1, "ram": 64, "disk": 1, "name": "tiny"}, vm_state=vm_state,
                     power_state=1, host=host, created_at=ts, updated_at=ts))  # fmt: skip
    return ComputeService(db=db, settings=ComputeSettings(), agent_secret="x")


def _server(svc: ComputeService) -> Server:
    with svc.db.reader() as s:
        return s.get(Server, SID)


def test_parse_attach_per_microversion():
    mv = APIVersion.parse
    assert vols.parse_attach({"volumeAttachment": {"volumeId": VID}}, mv("2.1"))["device"] is None
    with pytest.raises(BadRequest, match="tag"):
        vols.parse_attach({"volumeAttachment": {"volumeId": VID, "tag": "t"}}, mv("2.48"))
    assert vols.parse_attach({"volumeAttachment": {"volumeId": VID, "tag": "t"}}, mv("2.49"))["tag"] == "t"
    with pytest.raises(BadRequest, match="delete_on_termination"):
        vols.parse_attach({"volumeAttachment": {"volumeId": VID, "delete_on_termination": True}}, mv("2.78"))
    req = vols.parse_attach(
        {"volumeAttachment": {"volumeId": VID, "delete_on_termination": True}}, mv("2.79")
    )
    assert req["delete_on_termination"] is True
    for bad in ({}, {"volumeAttachment": {}}, {"volumeAttachment": {"volumeId": "nope"}},
                {"volumeAttachment": {"volumeId": VID, "device": "sdb"}}):  # fmt: skip
        with pytest.raises(BadRequest):
            vols.parse_attach(bad, mv("2.79"))


def test_next_device_skips_the_root_disk_and_taken_names():
    assert vols.next_device([]) == "/dev/vdb"
    assert vols.next_device(["/dev/vdb", "/dev/vdc"]) == "/dev/vdd"


def test_attach_then_detach_through_the_agent_and_the_fake_driver(tmp_path):
    svc = _svc()
    req = {"volume_id": VID, "device": None, "tag": None, "delete_on_termination": False}
    row = vols.reserve(svc, CTX, SID, req, "att-1")
    assert row.device == "/dev/vdb" and row.status == "attaching"
    with pytest.raises(BadRequest, match="already attached"):
        vols.reserve(svc, CTX, SID, req, "att-2")
    conn = {"driver_volume_type": "file", "data": {"path": "/x", "access_mode": "rw"}}
    assert vols.start_attach(svc, row.id, conn) is True
    assert _server(svc).pending["op"] == "attach_volume"
    with pytest.raises(Conflict):  # one operation at a time
        vols.server_for_attach(svc, CTX, SID, "attach_volume")
    (doc,) = agents.desired(svc, "h1")
    spec = to_spec(doc["spec"])
    assert [v.volume_id for v in spec.volumes] == [VID] and spec.volumes[0].connection_info == conn
    driver = FakeDriver(data_dir=tmp_path, inventory={"vcpus": 1, "memory_mb": 1, "local_gb": 1})
    driver.ensure_running(to_spec({**doc["spec"], "volumes": []}))
    agent = ComputeAgent(client=None, base_url="http://x", secret="x", driver=driver, host="h1")
    power = agent._apply("attach_volume", spec, doc["pending"])
    assert driver.attached_volumes(SID) == [VID]
    agents.report(svc, SID, {"seq": doc["pending"]["seq"], "ok": True, "power_state": int(power)})
    assert vols.row_status(svc, row.id) == "plugged" and _server(svc).pending is None
    vols.set_status(svc, row.id, "attached", "plugged")  # what the API does once Cinder completed it
    assert [r.volume_id for r in vols.list_attachments(svc, SID)] == [VID]
    # detach
    with pytest.raises(NotFound):
        vols.check_detach(svc, CTX, SID, "00000000-0000-0000-0000-000000000000")
    vols.check_detach(svc, CTX, SID, VID)
    row, agent_needed = vols.start_detach(svc, CTX, SID, VID)
    assert agent_needed and row.status == "detaching"
    (doc,) = agents.desired(svc, "h1")
    assert doc["spec"]["volumes"] == []  # a detaching volume is no longer wanted
    agent._apply("detach_volume", to_spec(doc["spec"]), doc["pending"])
    assert driver.attached_volumes(SID) == []
    agents.report(svc, SID, {"seq": doc["pending"]["seq"], "ok": True, "power_state": 1})
    assert vols.row_status(svc, row.id) == "detached"
    assert vols.list_attachments(svc, SID) == []
    assert [r.status for r in vols.all_attachments(svc, SID)] == ["detached"]  # Cinder's side is next


def test_failed_attach_and_stopped_or_offloaded_servers():
    svc = _svc(vm_state="stopped")
    req = {"volume_id": VID, "device": "/dev/vdq", "tag": "data", "delete_on_termination": True}
    row = vols.reserve(svc, CTX, SID, req, "att-1")
    assert row.device == "/dev/vdq"
    vols.start_attach(svc, row.id, {})
    seq = _server(svc).pending["seq"]
    agents.report(svc, SID, {"seq": seq, "ok": False, "fault": "boom"})
    server = _server(svc)
    assert vols.row_status(svc, row.id) == "error" and server.vm_state == "stopped" and server.pending is None
    svc2 = _svc(vm_state="shelved_offloaded", host=None)
    row2 = vols.reserve(svc2, CTX, SID, req, "att-2")
    assert vols.start_attach(svc2, row2.id, {}) is False  # no host: attached at once, no agent op
    assert vols.row_status(svc2, row2.id) == "attached"
    svc3 = _svc(vm_state="building")
    with pytest.raises(Conflict, match="vm_state building"):
        vols.server_for_attach(svc3, CTX, SID, "attach_volume")


class _FakeCinder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def attachment_complete(self, attachment_id):  # type: ignore[no-untyped-def]
        self.calls.append(("complete", attachment_id))

    async def attachment_delete(self, attachment_id):  # type: ignore[no-untyped-def]
        self.calls.append(("delete", attachment_id))

    async def action(self, volume_id, name, value=None):  # type: ignore[no-untyped-def]
        self.calls.append((name, volume_id))


def test_repair_finishes_what_a_lost_task_left():
    import anyio

    from kumo.compute.api import volume_flows

    svc = _svc()
    ids = {}
    for n, status in enumerate(("plugged", "detached", "error", "detach_failed", "attached")):
        vid = f"aaaaaaaa-bbbb-cccc-dddd-00000000000{n}"
        req = {"volume_id": vid, "device": None, "tag": None, "delete_on_termination": False}
        row = vols.reserve(svc, CTX, SID, req, f"att-{status}")
        vols.set_status(svc, row.id, status)
        ids[status] = row.id
    busy = vols.reserve(svc, CTX, SID, {"volume_id": VID}, "att-busy")
    vols.set_status(svc, busy.id, "plugged")
    volume_flows._busy(svc).add(busy.id)  # a live task owns this one
    cinder = _FakeCinder()
    anyio.run(volume_flows.repair, svc, cinder, SID)
    assert sorted(cinder.calls) == sorted([
        ("complete", "att-plugged"), ("delete", "att-detached"), ("delete", "att-error"),
        ("os-roll_detaching", "aaaaaaaa-bbbb-cccc-dddd-000000000003"),
    ])  # fmt: skip
    left = {r.attachment_id: r.status for r in vols.all_attachments(svc, SID)}
    assert left == {"att-plugged": "attached", "att-detach_failed": "attached", "att-attached": "attached",
                    "att-busy": "plugged"}  # fmt: skip
