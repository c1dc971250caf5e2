"""Partition hashes: what the replicator compares between replicas.

A partition directory holds suffix directories (the last three hex digits of an object's name
hash) holding one directory per object.  The hash of a suffix is an MD5 over the state of
its objects (newest timestamp, data or tombstone, metadata timestamp); two replicas of a
partition agree when their suffix hashes agree.  Hashes are cached in ``hashes.json`` per
partition; every write appends its suffix to ``hashes.invalid``, and the next look at the
partition recomputes only those suffixes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path

from kumo.object_store.node.diskfile import HASHES_FILE, INVALID_FILE, ObjectDir

_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(part_dir: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(part_dir, threading.Lock())


def _objdir(part_dir: Path, name_hash: str) -> ObjectDir:
    return ObjectDir(part_dir.parent.parent, int(part_dir.name), name_hash)


def suffix_state(part_dir: Path, suffix: str, reclaim_age: float | None = None) -> dict[str, list[str]]:
    """{name hash: [timestamp, kind, metadata timestamp]} of the objects in one suffix.

    Tombstones older than ``reclaim_age`` and empty object directories are removed on the way.
    """
    out: dict[str, list[str]] = {}
    sdir = part_dir / suffix
    try:
        hashes = os.listdir(sdir)
    except (FileNotFoundError, NotADirectoryError):
        return out
    now = time.time()
    for name_hash in hashes:
        od = _objdir(part_dir, name_hash)
        state = od.state()
        if state is None:
            with contextlib.suppress(OSError):
                for leftover in os.listdir(od.dir):  # incomplete writes (data without metadata)
                    os.unlink(od.dir / leftover)
                os.rmdir(od.dir)
            continue
        if state[1] == "ts" and reclaim_age is not None and now - float(state[0]) > reclaim_age:
            with contextlib.suppress(OSError):
                os.unlink(od.dir / f"{state[0]}.ts")
                os.rmdir(od.dir)
            continue
        out[name_hash] = list(state)
    with contextlib.suppress(OSError):
        if not os.listdir(sdir):
            os.rmdir(sdir)
    return out


def _digest(state: dict[str, list[str]]) -> str:
    h = hashlib.md5()
    for name_hash in sorted(state):
        h.update((name_hash + ":" + ":".join(state[name_hash]) + "\n").encode())
    return h.hexdigest()


def get_hashes(
    part_dir: Path,
    recalc: set[str] | frozenset[str] = frozenset(),
    *,
    full: bool = False,
    reclaim_age: float | None = None,
) -> dict[str, str]:
    """{suffix: hash} of a partition, from the cache where it is still good."""
    with _lock(part_dir):
        if not part_dir.is_dir():
            return {}
        cache: dict[str, str] = {}
        if not full:
            with contextlib.suppress(FileNotFoundError, ValueError):
                cache = json.loads((part_dir / HASHES_FILE).read_text())
        stale = set(recalc)
        work = part_dir / (INVALID_FILE + ".work")
        with contextlib.suppress(FileNotFoundError):
            os.replace(part_dir / INVALID_FILE, work)
        with contextlib.suppress(FileNotFoundError):
            stale.update(line.strip() for line in work.read_text().splitlines() if line.strip())
        on_disk = {n for n in os.listdir(part_dir) if len(n) == 3 and (part_dir / n).is_dir()}
        result: dict[str, str] = {}
        for suffix in on_disk:
            if suffix in cache and suffix not in stale:
                result[suffix] = cache[suffix]
                continue
            state = suffix_state(part_dir, suffix, reclaim_age)
            if state:
                result[suffix] = _digest(state)
        fd, tmp = tempfile.mkstemp(dir=part_dir, prefix=".hashes-")
        with os.fdopen(fd, "w") as fh:
            json.dump(result, fh)
        os.replace(tmp, part_dir / HASHES_FILE)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(work)
        return result


def list_suffixes(part_dir: Path, suffixes: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for suffix in suffixes:
        if len(suffix) == 3 and all(c in "0123456789abcdef" for c in suffix):
            out.update(suffix_state(part_dir, suffix))
    return out


def partitions(device_root: Path) -> list[int]:
    try:
        return sorted(int(n) for n in os.listdir(device_root / "objects") if n.isdigit())
    except FileNotFoundError:
        return []
