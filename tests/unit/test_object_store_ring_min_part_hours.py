"""The ring builder's min_part_hours: within it a partition's replicas stay put, and one rebalance
moves at most one replica of a partition (Swift's guard); a removed device's replicas move anyway."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kumo.object_store.cli import app as cli_app
from kumo.object_store.ring import RingBuilder

T0 = 1_800_000_000.0
HOUR = 3600.0


def _builder(nodes: int = 3, hours: int = 1, part_power: int = 8) -> RingBuilder:
    b = RingBuilder(part_power=part_power, replicas=3, min_part_hours=hours)
    for i in range(nodes):
        b.add_dev(f"node{i}", "d1", zone=i + 1)
    b.rebalance(now=T0)
    return b


def _moved_per_part(before: list[list[int | None]], after: list[list[int | None]]) -> list[int]:
    parts = len(after[0])
    return [sum(1 for r in range(len(after)) if before[r][p] != after[r][p]) for p in range(parts)]


def test_no_partition_moves_within_min_part_hours_of_the_first_placement():
    b = _builder()
    b.add_dev("node3", "d1", zone=4)
    before = [list(r) for r in b.assignment]
    assert b.rebalance(now=T0 + 0.5 * HOUR) == 0
    assert b.assignment == before
    assert b.held_back == (1 << 8) * 3 // 4  # the new device's share waits


def test_after_min_part_hours_one_replica_per_partition_moves_and_that_partition_then_waits():
    b = _builder()
    b.add_dev("node3", "d1", zone=4)
    before = [list(r) for r in b.assignment]
    moved = b.rebalance(now=T0 + HOUR + 1)
    per_part = _moved_per_part(before, b.assignment)
    assert moved == sum(per_part) > 0
    assert max(per_part) == 1  # never two replicas of one partition in one rebalance
    just_moved = {p for p, n in enumerate(per_part) if n}
    assert b.locked_parts(T0 + HOUR + 2) == just_moved
    # right after: the partitions that just moved stay; nothing else needed to move
    again = [list(r) for r in b.assignment]
    b.rebalance(now=T0 + HOUR + 2)
    for p in just_moved:
        assert [row[p] for row in b.assignment] == [row[p] for row in again]
    for part in range(1 << 8):  # zones stay distinct throughout
        assert len({b.devs[row[part]].zone for row in b.assignment}) == 3


def test_repeated_rebalances_hours_apart_reach_balance():
    b = _builder(nodes=3)
    b.add_dev("node3", "d1", zone=4)
    b.add_dev("node4", "d1", zone=5)
    now = T0
    for _ in range(4):
        now += HOUR + 1
        before = [list(r) for r in b.assignment]
        b.rebalance(now=now)
        assert max(_moved_per_part(before, b.assignment)) <= 1
        if b.held_back == 0:
            break
    assert b.held_back == 0
    assert b.balance() < 2.0


def test_a_removed_device_moves_at_once_a_drained_one_waits():
    b = _builder(nodes=5)
    held = sum(1 for row in b.assignment for d in row if d == 3)
    b.remove_dev(3)
    assert b.rebalance(now=T0 + 60) == held  # its device is gone: those replicas must move
    assert all(d != 3 for row in b.assignment for d in row)
    b.set_weight(2, 0)
    before = [list(r) for r in b.assignment]
    b.rebalance(now=T0 + 120)
    assert b.assignment == before  # draining honours min_part_hours
    draining = sum(1 for row in b.assignment for d in row if d == 2)
    assert b.held_back == draining > 0
    b.rebalance(now=T0 + 2 * HOUR)  # past min_part_hours: the drained device's replicas move
    assert max(_moved_per_part(before, b.assignment)) == 1
    assert sum(1 for row in b.assignment for d in row if d == 2) == 0


def test_zero_hours_is_the_old_behaviour():
    b = _builder(hours=0)
    b.add_dev("node3", "d1", zone=4)
    assert b.rebalance(now=T0 + 1) > 0
    assert b.held_back == 0 and b.locked_parts(T0 + 1) == set()


def test_pretend_passed_and_persistence(tmp_path: Path):
    b = _builder()
    path = tmp_path / "b.json"
    b.save(path)
    again = RingBuilder.load(path)
    assert again.min_part_hours == 1 and again.last_part_moves == b.last_part_moves
    assert again.locked_parts(T0 + 60) == set(range(1 << 8))
    again.pretend_min_part_hours_passed()
    again.add_dev("node3", "d1", zone=4)
    assert again.rebalance(now=T0 + 60) > 0
    with pytest.raises(ValueError):
        b.set_min_part_hours(-1)
    with pytest.raises(ValueError):
        RingBuilder(min_part_hours=10**6)
    data = b.to_dict()
    data["last_part_moves"] = [0, 1]
    with pytest.raises(ValueError):
        RingBuilder.from_dict(data)
    old = b.to_dict()  # a builder file written before min_part_hours existed
    del old["min_part_hours"], old["last_part_moves"]
    assert RingBuilder.from_dict(old).min_part_hours == 0


def test_cli_create_set_show_rebalance_and_pretend(tmp_path: Path):
    runner = CliRunner()

    def kumo(*args: str) -> tuple[int, str]:
        res = runner.invoke(cli_app, ["ring", *args, "--data-dir", str(tmp_path)])
        return res.exit_code, res.output

    code, out = kumo("create", "--part-power", "6", "--replicas", "3", "--min-part-hours", "2")
    assert code == 0 and "min_part_hours 2" in out
    for i in range(3):
        assert kumo("add", f"n{i}", "d1", "--zone", str(i + 1))[0] == 0
    assert kumo("rebalance")[0] == 0
    assert kumo("add", "n3", "d1", "--zone", "4")[0] == 0
    code, out = kumo("rebalance")
    assert code == 0 and ": 0 of 192" in out and "stay for now" in out
    code, out = kumo("show")
    assert code == 0 and "min_part_hours 2 (64 partitions moved within it)" in out
    assert kumo("set-min-part-hours", "-1")[0] != 0
    code, out = kumo("set-min-part-hours", "0")
    assert code == 0
    code, out = kumo("rebalance")
    assert code == 0 and ": 0 of 192" not in out and "stay for now" not in out
    assert kumo("set-min-part-hours", "1")[0] == 0
    assert kumo("pretend-min-part-hours-passed")[0] == 0
    code, out = kumo("show")
    assert "(0 partitions moved within it)" in out
