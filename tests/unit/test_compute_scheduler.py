"""Scheduler filters, weighers and claims on an in-memory database."""

from __future__ import annotations

from datetime import datetime, timedelta

from kumo.common.config import ComputeSettings
from kumo.common.db import Database
from kumo.compute.models import ComputeBase, ComputeNode, ComputeService
from kumo.compute.scheduler import schedule
from kumo.compute.scheduler.filters import Request


def _db(hosts: dict[str, int]) -> Database:
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    now = datetime(2026, 1, 1)
    with db.session() as s:
        for i, (host, ram) in enumerate(hosts.items()):
            s.add(ComputeService(uuid=f"s{i}", host=host, binary="nova-compute", zone="nova", last_seen=now,
                                 created_at=now, updated_at=now))  # fmt: skip
            s.add(ComputeNode(uuid=f"n{i}", host=host, hypervisor_hostname=host, hypervisor_type="fake", vcpus=4,
                              memory_mb=ram, local_gb=100, created_at=now, updated_at=now))  # fmt: skip
    return db


def test_ram_ratio_is_never_exceeded_and_spread_prefers_free_hosts():
    db = _db({"a": 1000, "b": 2000})
    settings = ComputeSettings()
    now = datetime(2026, 1, 1)
    placed = []
    for _ in range(10):
        with db.session() as s:
            node = schedule(s, Request(vcpus=1, ram_mb=600, disk_gb=1), settings, now)
            placed.append(node.host if node else None)
    assert placed[0] == "b"
    assert placed.count("a") == 2 and placed.count("b") == 5 and placed.count(None) == 3
    with db.reader() as s:
        for n in s.query(ComputeNode):
            assert n.memory_mb_used <= n.memory_mb * settings.ram_allocation_ratio


def test_down_or_disabled_hosts_and_anti_affinity_are_filtered():
    db = _db({"a": 4000, "b": 4000})
    settings = ComputeSettings()
    now = datetime(2026, 1, 1)
    with db.session() as s:
        s.query(ComputeService).filter_by(host="a").one().disabled = True
    with db.session() as s:
        assert schedule(s, Request(vcpus=1, ram_mb=10, disk_gb=0), settings, now).host == "b"
        req = Request(vcpus=1, ram_mb=10, disk_gb=0, group_policy="anti-affinity", group_hosts=("b",))
        assert schedule(s, req, settings, now) is None
    later = now + timedelta(seconds=settings.service_down_time + 1)
    with db.session() as s:
        assert schedule(s, Request(vcpus=1, ram_mb=10, disk_gb=0), settings, later) is None
