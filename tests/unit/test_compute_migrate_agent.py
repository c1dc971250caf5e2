"""The compute agent's migration steps against the fake driver and a driver that cannot migrate."""

from __future__ import annotations

from pathlib import Path

import pytest

from kumo.agents.compute import migrate
from kumo.agents.compute.driver import FlavorSpec, PowerState, VmSpec
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.fake import FakeDriver

INV = {"vcpus": 4, "memory_mb": 4096, "local_gb": 20}


def _spec(sid: str = "vm-1") -> VmSpec:
    return VmSpec(id=sid, name="s", hostname="s", project_id="p", image=None,
                  flavor=FlavorSpec(name="m1.tiny", vcpus=1, ram_mb=512, disk_gb=1))  # fmt: skip


class LocalDisksOnly(FakeDriver):
    """Like the qemu driver: no migration_refused method (disks cannot leave the host)."""

    migration_refused = None  # type: ignore[assignment]


def test_cold_steps_move_the_vm_between_two_drivers(tmp_path: Path):
    src, dst = FakeDriver(tmp_path / "a", INV), FakeDriver(tmp_path / "b", INV)
    spec = _spec()
    src.ensure_running(spec)
    # the source powers off and keeps its copy for a revert
    assert migrate.run(src, "migrate_source", spec, {"from": "active"}) == PowerState.SHUTDOWN
    assert src.observe(spec.id) == PowerState.SHUTDOWN
    assert migrate.run(dst, "migrate_dest", spec, {"from": "active"}) == PowerState.RUNNING
    assert dst.observe(spec.id) == PowerState.RUNNING
    # revert: the destination drops its copy, the source powers its own back on
    assert migrate.run(dst, "migrate_revert_dest", spec, {"from": "active"}) == PowerState.NOSTATE
    assert dst.list_vms() == []
    assert migrate.run(src, "migrate_revert_source", spec, {"from": "active"}) == PowerState.RUNNING
    assert src.observe(spec.id) == PowerState.RUNNING


def test_stopped_and_paused_servers_keep_their_power_state(tmp_path: Path):
    src, dst = FakeDriver(tmp_path / "a", INV), FakeDriver(tmp_path / "b", INV)
    spec = _spec()
    src.ensure_running(spec)
    src.ensure_stopped(spec.id)
    migrate.run(src, "migrate_source", spec, {"from": "stopped"})
    assert migrate.run(dst, "migrate_dest", spec, {"from": "stopped"}) == PowerState.SHUTDOWN
    assert migrate.run(src, "migrate_revert_source", spec, {"from": "stopped"}) == PowerState.SHUTDOWN
    other = _spec("vm-2")
    src.ensure_running(other)
    src.ensure_paused(other.id)
    assert migrate.run(src, "live_migrate_source", other, {"from": "paused"}) == PowerState.PAUSED
    assert migrate.run(dst, "live_migrate_dest", other, {"from": "paused"}) == PowerState.PAUSED
    assert src.observe(other.id) == PowerState.PAUSED  # dropped later, when the API says so


@pytest.mark.parametrize("op", ["migrate_source", "live_migrate_source"])
def test_a_driver_without_migration_support_refuses_on_the_source(tmp_path: Path, op: str):
    driver = LocalDisksOnly(tmp_path / "q", INV)
    spec = _spec()
    driver.ensure_running(spec)
    with pytest.raises(PermanentError, match="does not support (cold|live) migration"):
        migrate.run(driver, op, spec, {"from": "active"})
    assert driver.observe(spec.id) == PowerState.RUNNING  # untouched


def test_unknown_step_is_permanent(tmp_path: Path):
    with pytest.raises(PermanentError):
        migrate.run(FakeDriver(tmp_path, INV), "migrate_sideways", _spec(), {})


def test_the_qemu_driver_refuses_both_kinds():
    from kumo.agents.compute.qemu.driver import QemuDriver

    qemu = QemuDriver.__new__(QemuDriver)  # no host set-up: only its capabilities are asked
    for live in (False, True):
        why = migrate.refused(qemu, live)
        assert why and "QEMU" in why and "does not support" in why
    assert migrate.refused(FakeDriver.__new__(FakeDriver), True) is None
