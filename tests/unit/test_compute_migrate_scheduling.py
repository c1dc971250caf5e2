"""Scheduling a migration's destination and the same_host / different_host hints."""

from __future__ import annotations

from datetime import datetime

import pytest

from kumo.common.config import ComputeSettings
from kumo.compute.errors import BadRequest
from kumo.compute.scheduler import hints, schedule
from kumo.compute.scheduler.filters import Request
from tests.unit.test_compute_scheduler import _db

NOW = datetime(2026, 1, 1)
A = "11111111-1111-1111-1111-111111111111"
B = "22222222-2222-2222-2222-222222222222"


def _pick(req: Request, hosts: dict[str, int] | None = None) -> str | None:
    db = _db(hosts or {"a": 4000, "b": 8000, "c": 2000})
    with db.session() as s:
        node = schedule(s, req, ComputeSettings(), NOW)
        return node.host if node else None


def test_a_migration_never_lands_on_its_source_host():
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0)) == "b"  # spread: the freest host
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, ignore_hosts=("b",))) == "a"
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, ignore_hosts=("b",), force_host="b")) is None
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, ignore_hosts=("a", "b", "c"))) is None


def test_same_and_different_host_hints():
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, same_host=("c",))) == "c"
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, different_host=("b",))) == "a"
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, different_host=("a", "b"))) == "c"
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, same_host=("c",), different_host=("c",))) is None
    assert _pick(Request(vcpus=1, ram_mb=10, disk_gb=0, same_host=("",))) is None  # its servers are gone


def test_hints_accept_one_uuid_or_a_list_and_refuse_anything_else():
    assert hints.parse({"same_host": A, "group": "x"}) == {"same_host": [A]}
    assert hints.parse({"different_host": [A, B, A]}) == {"different_host": [A, B]}
    assert hints.parse({}) == {}
    for bad in ("not-a-uuid", [], [A, 3], {"x": A}, 7):
        with pytest.raises(BadRequest):
            hints.parse({"different_host": bad})
