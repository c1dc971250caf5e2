"""The 2.93 held rebuild on an in-memory database: what the agent is told while the root volume is
re-imaged, the stop report, the release, a failure, and the recovery after a restart."""

from __future__ import annotations

from datetime import datetime

from kumo.common.config import ComputeSettings
from kumo.common.db import Database
from kumo.compute.models import ComputeBase, Server
from kumo.compute.service import agents, reimage
from kumo.compute.service.core import ComputeService

SID = "11111111-2222-3333-4444-555555555555"
IMG = "99999999-2222-3333-4444-555555555555"


def _svc() -> ComputeService:
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    ts = datetime(2026, 1, 1)
    with db.session() as s:
        s.add(Server(id=SID, seq=1, name="vm", project_id="p", user_id="u", flavor_id="1",
                     flavor={"vcpus": 1, "ram": 64, "disk": 1, "name": "tiny"}, vm_state="active",
                     task_state="rebuilding", power_state=1, host="h1", created_at=ts, updated_at=ts, op_seq=3,
                     pending={"op": "rebuild", "seq": 3, "from": "active", "image_id": None, "hold": True,
                              "reimage": {"image_id": IMG}}))  # fmt: skip
    return ComputeService(db=db, settings=ComputeSettings(), agent_secret="x")


def _server(svc: ComputeService) -> Server:
    with svc.db.reader() as s:
        return s.get(Server, SID)


def test_held_rebuild_stops_the_vm_then_hands_the_rebuild_over() -> None:
    svc = _svc()
    (doc,) = agents.desired(svc, "h1")
    assert doc["pending"] is None and doc["desired"] == "stopped"  # the agent only stops the VM
    assert reimage.state(svc, SID)["reimage"] == {"image_id": IMG}
    agents.report(svc, SID, {"power_state": 4})  # the agent's resync report (no seq)
    assert reimage.state(svc, SID)["vm_stopped"] is True
    assert _server(svc).task_state == "rebuilding"
    assert not reimage.release(svc, SID, 2)  # a superseded flow changes nothing
    assert reimage.release(svc, SID, 3)
    pending = _server(svc).pending
    assert pending == {"op": "rebuild", "seq": 3, "from": "active", "image_id": None}
    (doc,) = agents.desired(svc, "h1")
    assert doc["pending"] == pending  # now the agent rebuilds (restarts the VM on the new disk)
    assert reimage.state(svc, SID) is None
    agents.report(svc, SID, {"seq": 3, "ok": True, "power_state": 1})
    server = _server(svc)
    assert (server.vm_state, server.task_state, server.pending) == ("active", None, None)


def test_failed_reimage_sets_error_and_restart_recovers_held_rebuilds() -> None:
    svc = _svc()
    reimage.fail(svc, SID, 2, "stale")  # another flow's seq: ignored
    assert _server(svc).pending["hold"]
    reimage.fail(svc, SID, 3, "Rebuild failed: too big")
    server = _server(svc)
    assert server.vm_state == "error" and server.fault["message"] == "Rebuild failed: too big"
    svc2 = _svc()
    assert reimage.recover_interrupted(svc2) == 1
    server = _server(svc2)
    assert server.vm_state == "error" and "interrupted" in server.fault["message"] and server.pending is None
    assert reimage.recover_interrupted(svc2) == 0
