"""The ring: which devices hold the replicas of a partition, and the builder that makes it.

One ring places accounts, containers and objects alike (Swift keeps three with the same
shape).  A name hashes to a partition (the top ``part_power`` bits of an MD5); the ring maps
each (replica, partition) to a device.  The builder keeps the replicas of a partition in
distinct zones while there are enough zones, gives each device a share of partitions
proportional to its weight, and on rebalance moves only what it must.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

RING_FORMAT = 1
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(slots=True)
class Device:
    id: int
    node: str  # the storage node that serves this device
    device: str  # its directory name on that node
    zone: int = 1
    region: int = 1
    weight: float = 100.0
    url: str = ""  # the node's base URL when it is served on its own port; empty: in-process

    @property
    def failure_domain(self) -> tuple[int, int]:
        return (self.region, self.zone)


class Ring:
    def __init__(
        self,
        part_power: int,
        replicas: int,
        devs: list[Device],
        assignment: list[list[int]],
        *,
        hash_suffix: str = "",
        version: int = 1,
    ) -> None:
        self.part_power = part_power
        self.replicas = replicas
        self.devs = {d.id: d for d in devs}
        self.assignment = assignment  # assignment[replica][partition] -> device id
        self.hash_suffix = hash_suffix
        self.version = version
        self._shift = 32 - part_power

    @property
    def partition_count(self) -> int:
        return 1 << self.part_power

    def partition(self, account: str, container: str | None = None, obj: str | None = None) -> int:
        path = "/" + "/".join(p for p in (account, container, obj) if p is not None)
        digest = hashlib.md5((path + self.hash_suffix).encode("utf-8", "surrogateescape")).digest()
        return int.from_bytes(digest[:4], "big") >> self._shift

    def nodes(self, partition: int) -> list[Device]:
        return [self.devs[row[partition]] for row in self.assignment]

    def handoffs(self, partition: int) -> list[Device]:
        """The other devices, in a fixed order per partition: unused failure domains first."""
        primaries = self.nodes(partition)
        used = {d.id for d in primaries}
        domains = {d.failure_domain for d in primaries}
        rest = [d for d in self.devs.values() if d.id not in used and d.weight > 0]
        rest.sort(
            key=lambda d: (d.failure_domain in domains, hashlib.md5(f"{partition}-{d.id}".encode()).digest())
        )
        return rest

    def to_dict(self) -> dict[str, object]:
        return {
            "format": RING_FORMAT,
            "version": self.version,
            "part_power": self.part_power,
            "replicas": self.replicas,
            "hash_suffix": self.hash_suffix,
            "devs": [asdict(d) for d in self.devs.values()],
            "assignment": self.assignment,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Ring:  # type: ignore[type-arg]
        if not isinstance(data, dict) or data.get("format") != RING_FORMAT:
            raise ValueError(f"not a ring file of format {RING_FORMAT}")
        return cls(
            data["part_power"],
            data["replicas"],
            [Device(**d) for d in data["devs"]],
            data["assignment"],
            hash_suffix=data.get("hash_suffix", ""),
            version=data.get("version", 1),
        )

    def save(self, path: Path) -> None:
        """Write atomically (temp file, fsync, rename)."""
        _atomic_write(path, gzip.compress(json.dumps(self.to_dict()).encode()))

    @classmethod
    def load(cls, path: Path) -> Ring:
        return cls.from_dict(json.loads(gzip.decompress(path.read_bytes())))


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".ring-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with _suppress():
            os.unlink(tmp)
        raise


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


class RingBuilder:
    """Builds rings.  ``min_part_hours`` (Swift's guard): a partition that moved less than that
    many hours ago keeps its replicas where they are, and one rebalance moves at most one replica
    of a partition, so that at least a quorum of its replicas stays put while data is replicated
    to the new place.  Replicas on a removed device move regardless (their device is gone)."""

    def __init__(
        self, part_power: int = 10, replicas: int = 3, *, seed: int = 0, min_part_hours: int = 0
    ) -> None:
        if not 1 <= part_power <= 24:
            raise ValueError("part_power must be between 1 and 24")
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.part_power = part_power
        self.replicas = replicas
        self.devs: dict[int, Device] = {}
        self.assignment: list[list[int | None]] = []
        self.version = 0
        self.hash_suffix = ""
        self.min_part_hours = 0
        self.set_min_part_hours(min_part_hours)
        # per partition: when (Unix time, seconds) one of its replicas last moved; 0: never
        self.last_part_moves: list[int] = []
        self.held_back = 0  # slots the last rebalance left in place because of min_part_hours
        self._rng = random.Random(seed)

    def set_min_part_hours(self, hours: int) -> None:
        if not isinstance(hours, int) or not 0 <= hours <= 8760:
            raise ValueError("min_part_hours must be a whole number of hours between 0 and 8760")
        self.min_part_hours = hours

    def pretend_min_part_hours_passed(self) -> None:
        """Forget when partitions last moved (the next rebalance may move any of them)."""
        self.last_part_moves = []

    def locked_parts(self, now: float | None = None) -> set[int]:
        """Partitions that moved within the last ``min_part_hours``."""
        if not self.min_part_hours or not self.last_part_moves:
            return set()
        since = (time.time() if now is None else now) - self.min_part_hours * 3600
        return {p for p, t in enumerate(self.last_part_moves) if t and t > since}

    @classmethod
    def from_ring(cls, ring: Ring) -> RingBuilder:
        b = cls(ring.part_power, ring.replicas)
        b.devs = dict(ring.devs)
        b.assignment = [list(row) for row in ring.assignment]
        b.version = ring.version
        b.hash_suffix = ring.hash_suffix
        return b

    def to_dict(self) -> dict[str, object]:
        return {
            "format": RING_FORMAT,
            "version": self.version,
            "part_power": self.part_power,
            "replicas": self.replicas,
            "hash_suffix": self.hash_suffix,
            "min_part_hours": self.min_part_hours,
            "last_part_moves": self.last_part_moves,
            "devs": [asdict(d) for d in self.devs.values()],
            "assignment": self.assignment,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RingBuilder:  # type: ignore[type-arg]
        if not isinstance(data, dict) or data.get("format") != RING_FORMAT:
            raise ValueError(f"not a ring builder file of format {RING_FORMAT}")
        b = cls(data["part_power"], data["replicas"])
        b.devs = {d["id"]: Device(**d) for d in data["devs"]}
        b.assignment = [list(row) for row in data["assignment"]]
        b.version = data["version"]
        b.hash_suffix = data["hash_suffix"]
        b.set_min_part_hours(data.get("min_part_hours", 0))  # builders saved before it existed: 0
        moves = data.get("last_part_moves") or []
        if len(moves) not in (0, 1 << b.part_power) or not all(isinstance(t, int) for t in moves):
            raise ValueError("last_part_moves must hold one whole number per partition")
        b.last_part_moves = list(moves)
        return b

    def save(self, path: Path) -> None:
        _atomic_write(path, json.dumps(self.to_dict(), indent=1).encode())

    @classmethod
    def load(cls, path: Path) -> RingBuilder:
        return cls.from_dict(json.loads(path.read_bytes()))

    def parts_per_dev(self) -> dict[int, int]:
        counts = dict.fromkeys(self.devs, 0)
        for row in self.assignment:
            for d in row:
                if d is not None and d in counts:
                    counts[d] += 1
        return counts

    def balance(self) -> float:
        """The worst relative deviation of a device's partition count from its weight's share, in %."""
        counts = self.parts_per_dev()
        targets = self._targets(len(self.assignment) or self.replicas)
        worst = 0.0
        for dev_id, target in targets.items():
            if target > 0:
                worst = max(worst, abs(counts.get(dev_id, 0) - target) / target * 100)
        return worst

    def add_dev(
        self, node: str, device: str, *, zone: int = 1, region: int = 1, weight: float = 100.0, url: str = ""
    ) -> Device:
        if not _NAME.match(node) or not _NAME.match(device):
            raise ValueError("node and device names are letters, digits, '.', '_' and '-'")
        if weight < 0:
            raise ValueError("weight must not be negative")
        if any(d.node == node and d.device == device for d in self.devs.values()):
            raise ValueError(f"device {node}/{device} is already in the ring")
        dev = Device(max(self.devs, default=-1) + 1, node, device, zone, region, weight, url)
        self.devs[dev.id] = dev
        return dev

    def remove_dev(self, dev_id: int) -> None:
        if dev_id not in self.devs:
            raise ValueError(f"no device {dev_id}")
        del self.devs[dev_id]

    def set_weight(self, dev_id: int, weight: float) -> None:
        if dev_id not in self.devs:
            raise ValueError(f"no device {dev_id}")
        if weight < 0:
            raise ValueError("weight must not be negative")
        self.devs[dev_id].weight = weight

    def _targets(self, replicas: int) -> dict[int, float]:
        total = sum(d.weight for d in self.devs.values() if d.weight > 0)
        slots = (1 << self.part_power) * replicas
        return {
            d.id: (d.weight / total * slots if total and d.weight > 0 else 0.0) for d in self.devs.values()
        }

    def rebalance(self, now: float | None = None) -> int:
        """Assign every (replica, partition) slot; returns how many slots moved to a new device.

        Within ``min_part_hours`` of a partition's last move its replicas stay (unless their
        device was removed), and a partition gets at most one replica moved per rebalance;
        ``held_back`` then counts the slots that would have moved for balance but did not.
        """
        live = [d for d in self.devs.values() if d.weight > 0]
        if not live:
            raise ValueError("the ring has no device with weight")
        now = time.time() if now is None else now
        replicas = min(self.replicas, len(live))
        parts = 1 << self.part_power
        # partitions no replica of which may move now; one that gives up a replica joins them
        frozen = self.locked_parts(now) if self.min_part_hours else set()
        guard = bool(self.min_part_hours)
        held_back = 0
        old = [list(row) for row in self.assignment]
        rows: list[list[int | None]] = [
            (list(old[r]) if r < len(old) and len(old[r]) == parts else [None] * parts)
            for r in range(replicas)
        ]
        targets = self._targets(replicas)
        domains = {d.failure_domain for d in live}
        counts = dict.fromkeys(self.devs, 0)
        # 1. drop slots on removed/zero-weight devices and duplicate devices or (when avoidable) zones
        for p in range(parts):
            seen_devs: set[int] = set()
            seen_domains: set[tuple[int, int]] = set()
            for r in range(replicas):
                dev_id = rows[r][p]
                dev = self.devs.get(dev_id) if dev_id is not None else None
                if dev is None or dev.id in seen_devs:  # gone (or a slot that cannot be): must move
                    if dev_id is not None and guard:
                        frozen.add(p)
                    rows[r][p] = None
                    continue
                if dev.weight <= 0 or (dev.failure_domain in seen_domains and len(domains) >= replicas):
                    if p not in frozen:
                        rows[r][p] = None
                        if guard:
                            frozen.add(p)
                        continue
                    if dev.weight > 0:  # a shared zone keeps it for now (a draining device: step 2)
                        held_back += 1
                seen_devs.add(dev.id)
                seen_domains.add(dev.failure_domain)
                counts[dev.id] += 1
        # 2. take slots away from devices above their share, at random
        for dev_id, count in counts.items():
            excess = count - math.ceil(targets.get(dev_id, 0.0))
            if excess <= 0:
                continue
            held = [(r, p) for r in range(replicas) for p in range(parts) if rows[r][p] == dev_id]
            self._rng.shuffle(held)
            # prefer partitions that have no free slot yet, so that one new device can take them all
            held.sort(key=lambda rp: any(rows[x][rp[1]] is None for x in range(replicas)))
            for r, p in held:
                if excess <= 0:
                    break
                if p in frozen:
                    continue
                rows[r][p] = None
                counts[dev_id] -= 1
                excess -= 1
                if guard:
                    frozen.add(p)
            held_back += max(0, excess)
        # 3. fill empty slots: a device in an unused failure domain that wants parts most
        for p in self._rng.sample(range(parts), parts):
            for r in range(replicas):
                if rows[r][p] is not None:
                    continue
                used = {rows[x][p] for x in range(replicas) if rows[x][p] is not None}
                used_domains = {self.devs[u].failure_domain for u in used if u is not None}
                candidates = [d for d in live if d.id not in used]
                fresh = [d for d in candidates if d.failure_domain not in used_domains] or candidates
                best = max(fresh, key=lambda d: (targets[d.id] - counts[d.id], -d.id))
                rows[r][p] = best.id
                counts[best.id] += 1
        moved = 0
        moves = list(self.last_part_moves) if len(self.last_part_moves) == parts else [0] * parts
        for r in range(replicas):
            for p in range(parts):
                before = old[r][p] if r < len(old) and p < len(old[r]) else None
                if before != rows[r][p]:
                    moved += 1
                    moves[p] = int(now)
        self.assignment = rows
        self.last_part_moves = moves
        self.held_back = held_back
        self.version += 1
        return moved

    def get_ring(self) -> Ring:
        if not self.assignment:
            raise ValueError("rebalance the builder first")
        assignment = [[int(d) for d in row if d is not None] for row in self.assignment]
        return Ring(
            self.part_power,
            len(assignment),
            list(self.devs.values()),
            assignment,
            hash_suffix=self.hash_suffix,
            version=self.version,
        )
