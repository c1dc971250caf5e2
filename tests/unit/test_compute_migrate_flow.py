"""The control plane's side of a migration on an in-memory database: each agent report moves the
record and the server to the next step, and a failing step rolls back without losing the server."""

from __future__ import annotations

import pytest

from kumo.common.config import ComputeSettings
from kumo.common.context import RequestContext
from kumo.common.db import Database
from kumo.compute.errors import BadRequest, Conflict
from kumo.compute.models import ComputeBase, ComputeNode, Migration, Server
from kumo.compute.models import ComputeService as ServiceRow
from kumo.compute.service import agents, migrate
from kumo.compute.service.core import ComputeService, now

SID = "11111111-2222-3333-4444-555555555555"
ADMIN = RequestContext(user_id="admin", project_id="admin-p", roles=frozenset({"admin", "member", "reader"}))
FLAVOR = {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1}


def _svc(vm_state: str = "active", power: int = 1) -> ComputeService:
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    ts = now()
    with db.session() as s:
        for i, host in enumerate(("a", "b")):
            s.add(ServiceRow(uuid=f"s{i}", host=host, binary="nova-compute", topic="compute", zone="nova",
                             last_seen=ts, created_at=ts, updated_at=ts))  # fmt: skip
            s.add(ComputeNode(uuid=f"n{i}", host=host, hypervisor_hostname=host, hypervisor_type="fake", vcpus=4,
                              memory_mb=4096, local_gb=40, created_at=ts, updated_at=ts,
                              vcpus_used=1 if host == "a" else 0, memory_mb_used=512 if host == "a" else 0,
                              local_gb_used=1 if host == "a" else 0, running_vms=1 if host == "a" else 0))  # fmt: skip
        s.add(Server(id=SID, seq=1, name="s", hostname="s", project_id="p1", user_id="u1", image_id="img",
                     flavor_id="1", flavor=FLAVOR, vm_state=vm_state, power_state=power, host="a", node="a",
                     op_seq=1, launch_index=0, reservation_id="r-1", created_at=ts, updated_at=ts))  # fmt: skip
    return ComputeService(db=db, settings=ComputeSettings(), agent_secret="agent")


def _server(svc: ComputeService) -> Server:
    with svc.db.reader() as s:
        server = s.get(Server, SID)
    assert server is not None
    return server


def _migration(svc: ComputeService) -> Migration:
    with svc.db.reader() as s:
        return s.query(Migration).order_by(Migration.id.desc()).first()


def _used(svc: ComputeService) -> dict[str, tuple[int, int]]:
    with svc.db.reader() as s:
        return {n.host: (n.memory_mb_used, n.running_vms) for n in s.query(ComputeNode)}


def _report(svc: ComputeService, ok: bool = True, **extra) -> Server:  # type: ignore[no-untyped-def]
    pending = _server(svc).pending
    assert pending is not None
    agents.report(svc, SID, {"seq": pending["seq"], "ok": ok, **extra})
    return _server(svc)


def test_cold_migration_whose_destination_fails_powers_the_source_copy_back_on():
    svc = _svc()
    migrate.migrate(svc, ADMIN, SID, None)
    s = _server(svc)
    assert (s.pending["op"], s.host, s.task_state) == ("migrate_source", "a", "resize_prep")
    assert _migration(svc).status == "pre-migrating" and _used(svc)["b"] == (512, 1)
    s = _report(svc, power_state=4)
    assert (s.pending["op"], s.host) == ("migrate_dest", "b") and _migration(svc).status == "post-migrating"
    s = _report(svc, ok=False, fault="no room")
    assert (s.pending["op"], s.host, s.task_state) == ("migrate_revert_source", "a", "resize_reverting")
    s = _report(svc, power_state=1)
    assert (s.vm_state, s.task_state, s.host, s.pending) == ("active", None, "a", None)
    assert _migration(svc).status == "error"
    assert _used(svc) == {"a": (512, 1), "b": (0, 0)}


def test_cold_migration_confirmed_frees_the_source_after_its_agent_dropped_the_copy():
    svc = _svc(vm_state="stopped", power=4)
    migrate.migrate(svc, ADMIN, SID, "b")
    _report(svc, power_state=4)
    s = _report(svc, power_state=4)
    assert (s.vm_state, s.power_state, s.host) == ("resized", 4, "b") and _migration(svc).status == "finished"
    assert migrate.latest_cold(svc, SID) is not None
    migrate.confirm(svc, ADMIN, SID)
    assert _server(svc).vm_state == "stopped" and _migration(svc).status == "confirming"
    assert migrate.stale_on(svc, "a") == [SID] and migrate.stale_on(svc, "b") == []
    migrate.cleaned(svc, "a", SID)
    assert _migration(svc).status == "confirmed" and migrate.stale_on(svc, "a") == []
    assert _used(svc) == {"a": (0, 0), "b": (512, 1)}
    with pytest.raises(Conflict):
        migrate.confirm(svc, ADMIN, SID)


def test_live_migration_rolls_back_when_the_destination_fails_and_completes_otherwise():
    svc = _svc()
    with pytest.raises(BadRequest, match="current host"):
        migrate.live_migrate(svc, ADMIN, SID, "a", "auto")
    with pytest.raises(BadRequest, match="unavailable"):
        migrate.live_migrate(svc, ADMIN, SID, "nowhere", "auto")
    migrate.live_migrate(svc, ADMIN, SID, None, "auto")
    s = _report(svc, power_state=1)
    assert (s.pending["op"], s.host, s.task_state) == ("live_migrate_dest", "b", "migrating")
    assert _migration(svc).status == "running"
    s = _report(svc, ok=False, fault="boom")
    assert (s.vm_state, s.task_state, s.host) == ("active", None, "a") and _migration(svc).status == "error"
    assert _used(svc) == {"a": (512, 1), "b": (0, 0)}
    # again, through to the end
    migrate.live_migrate(svc, ADMIN, SID, None, False)
    _report(svc, power_state=1)
    s = _report(svc, power_state=1)
    assert (s.vm_state, s.task_state, s.host) == ("active", None, "b") and _migration(svc).status == "post-migrating"
    assert migrate.stale_on(svc, "a") == [SID]
    migrate.cleaned(svc, "a", SID)
    assert _migration(svc).status == "completed" and _used(svc) == {"a": (0, 0), "b": (512, 1)}


def test_a_server_deleted_in_verify_resize_has_its_source_copy_dropped():
    svc = _svc()
    migrate.migrate(svc, ADMIN, SID, None)
    _report(svc)
    _report(svc)
    with svc.db.session() as s:
        s.get(Server, SID).deleted = True
    assert migrate.stale_on(svc, "a") == [SID]
    migrate.cleaned(svc, "a", SID)
    assert _migration(svc).status == "confirmed" and migrate.stale_on(svc, "a") == []


def test_no_other_host_and_bad_states_are_refused():
    svc = _svc()
    with svc.db.session() as s:
        s.query(ServiceRow).filter_by(host="b").one().disabled = True
    with pytest.raises(BadRequest, match="No valid host"):
        migrate.migrate(svc, ADMIN, SID, None)
    assert _migration(svc) is None and _server(svc).task_state is None
    svc = _svc(vm_state="paused", power=3)
    with pytest.raises(Conflict):
        migrate.migrate(svc, ADMIN, SID, None)
    migrate.live_migrate(svc, ADMIN, SID, None, True)  # a paused server may live-migrate
