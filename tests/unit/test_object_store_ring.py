"""The object-store ring builder: placement, dispersion, balance, minimal movement."""

from __future__ import annotations

from collections import Counter

import pytest

from kumo.object_store.ring import Ring, RingBuilder


def _builder(nodes: int, replicas: int = 3, part_power: int = 8) -> RingBuilder:
    b = RingBuilder(part_power=part_power, replicas=replicas)
    for i in range(nodes):
        b.add_dev(f"node{i}", "d1", zone=i + 1)
    b.rebalance()
    return b


def test_replicas_in_distinct_zones():
    ring = _builder(3).get_ring()
    for part in range(ring.partition_count):
        zones = [d.zone for d in ring.nodes(part)]
        assert len(set(zones)) == 3


def test_replicas_capped_by_devices():
    ring = _builder(1).get_ring()
    assert ring.replicas == 1
    assert {d.node for p in range(ring.partition_count) for d in ring.nodes(p)} == {"node0"}


def test_rebalance_after_adding_device_moves_about_its_share():
    b = _builder(3)
    total = (1 << b.part_power) * 3
    b.add_dev("node3", "d1", zone=4)
    moved = b.rebalance()
    expected = total / 4
    assert expected * 0.9 <= moved <= expected * 1.2
    ring = b.get_ring()
    counts = Counter(d.id for p in range(ring.partition_count) for d in ring.nodes(p))
    assert max(counts.values()) - min(counts.values()) <= 2
    for part in range(ring.partition_count):
        assert len({d.zone for d in ring.nodes(part)}) == 3
    assert b.rebalance() == 0  # already balanced: nothing moves


def test_weights_are_honoured():
    b = RingBuilder(part_power=8, replicas=1)
    b.add_dev("a", "d1", zone=1, weight=100)
    b.add_dev("b", "d1", zone=2, weight=300)
    b.rebalance()
    ring = b.get_ring()
    counts = Counter(ring.nodes(p)[0].node for p in range(ring.partition_count))
    assert counts["b"] == pytest.approx(3 * counts["a"], rel=0.05)


def test_removing_device_reassigns_only_its_partitions():
    b = _builder(4)
    before = b.get_ring()
    b.remove_dev(3)
    moved = b.rebalance()
    held = sum(1 for r in before.assignment for d in r if d == 3)
    assert moved == held
    ring = b.get_ring()
    assert all(d.id != 3 for p in range(ring.partition_count) for d in ring.nodes(p))


def test_ring_round_trip_and_stable_placement(tmp_path):
    ring = _builder(3).get_ring()
    path = tmp_path / "object.ring.gz"
    ring.save(path)
    again = Ring.load(path)
    assert again.to_dict() == ring.to_dict()
    assert again.partition("AUTH_x", "c", "o") == ring.partition("AUTH_x", "c", "o")
    assert 0 <= ring.partition("AUTH_x") < ring.partition_count


def test_handoffs_are_the_other_devices_other_zones_first():
    b = RingBuilder(part_power=6, replicas=2)
    for i, zone in enumerate((1, 2, 1, 3)):
        b.add_dev(f"n{i}", "d1", zone=zone)
    b.rebalance()
    ring = b.get_ring()
    for part in range(ring.partition_count):
        primaries = {d.id for d in ring.nodes(part)}
        handoffs = ring.handoffs(part)
        assert {d.id for d in handoffs} == {0, 1, 2, 3} - primaries
        zones = {d.zone for d in ring.nodes(part)}
        fresh = [d.zone not in zones for d in handoffs]
        assert fresh == sorted(fresh, reverse=True)  # unused zones come first
