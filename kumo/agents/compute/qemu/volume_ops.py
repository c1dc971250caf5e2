"""Attached volumes changed under a running guest, over QMP: grow (``block_resize``) and the
external qcow2 snapshots Nova's assisted volume snapshots take of file-based volumes.

An assisted snapshot puts a new qcow2 overlay (``new_file``, next to the volume's file, backed
by the current active file) on top of the attached disk with ``blockdev-snapshot``: the guest
writes into the overlay from then on. Deleting one merges two neighbours of the chain again,
as ``delete_info`` says: ``merge_target_file`` null → ``block-stream`` the data above
``file_to_merge`` (the new backing; null = everything) into the active file; otherwise
``block-commit`` ``file_to_merge`` down into ``merge_target_file``.

The chain is a list of file names (base first, active last) in the volume's directory; the
driver keeps it per VM so a restarted guest opens the active file, not the base.
Every function takes a connected QMP client (``execute``, ``wait_event``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kumo.agents.compute.errors import PermanentError

JOB_TIMEOUT = 600.0  # a merge of a large overlay may take a while


def overlay_prefix(volume_id: str) -> str:
    return "ov" + volume_id.replace("-", "")[:20]


def overlay_node(volume_id: str, filename: str) -> str:
    """Node name of an overlay this module added (≤ 31 characters, unique per file)."""
    return overlay_prefix(volume_id) + hashlib.sha1(filename.encode()).hexdigest()[:8]


def check_name(name: Any, what: str) -> str:
    """A file name in the volume's directory (no path, no ``..``)."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or "\0" in name:
        raise PermanentError(f"{what} must be a file name in the volume's directory, not {name!r}")
    return name


def format_nodes(q: Any) -> dict[str, dict[str, Any]]:
    """Format-layer block nodes (qcow2/raw) by the file they open."""
    out: dict[str, dict[str, Any]] = {}
    for n in q.execute("query-named-block-nodes", {"flat": True}):
        if n.get("drv") in ("qcow2", "raw") and n.get("file"):
            out.setdefault(_own_file(str(n["file"])), n)
    return out


def _own_file(name: str) -> str:
    """The file a node reads itself: QEMU names a node whose backing was set at run time
    (an overlay put on top by blockdev-snapshot) ``json:{..., "file": {"filename": ...}}``."""
    if not name.startswith("json:"):
        return name
    try:
        return str(json.loads(name[5:])["file"]["filename"])
    except (ValueError, KeyError, TypeError):
        return name


def _node_of(nodes: Mapping[str, dict[str, Any]], path: Path) -> str:
    node = nodes.get(str(path))
    if node is None:
        raise PermanentError(f"{path.name} is not open in the guest's disk chain")
    return str(node["node-name"])


def snapshot_create(q: Any, volume_id: str, directory: Path, chain: list[str], new_file: str,
                    make_overlay: Any) -> list[str]:
    """Put ``new_file`` on top of the active file; returns the new chain.
    ``make_overlay(path, backing_name, backing_format, size)`` creates the qcow2 file."""
    check_name(new_file, "new_file")
    if new_file in chain:
        return chain  # done already (a repeated request)
    active = directory / chain[-1]
    nodes = format_nodes(q)
    base = nodes.get(str(active))
    if base is None:
        raise PermanentError(f"{chain[-1]} is not open in the guest's disk chain")
    size = int((base.get("image") or {}).get("virtual-size") or 0)
    new_path = directory / new_file
    if new_path.exists():
        raise PermanentError(f"{new_file} exists already next to the volume")
    make_overlay(new_path, chain[-1], str(base["drv"]), size)
    node = overlay_node(volume_id, new_file)
    try:
        q.execute("blockdev-add", {"driver": "qcow2", "node-name": node, "backing": None,
                                   "file": {"driver": "file", "filename": str(new_path)}})
        q.execute("blockdev-snapshot", {"node": str(base["node-name"]), "overlay": node})
    except Exception:
        new_path.unlink(missing_ok=True)
        raise
    return [*chain, new_file]


def _run_job(q: Any, command: str, args: dict[str, Any], active_commit: bool = False) -> None:
    job = args["job-id"]
    q.execute(command, args)
    if active_commit:
        ready = q.wait_event("BLOCK_JOB_READY", lambda e: e.get("data", {}).get("device") == job, timeout=JOB_TIMEOUT)
        if ready is None:
            raise PermanentError(f"{command} did not converge within {JOB_TIMEOUT:g} s")
        q.execute("block-job-complete", {"device": job})
    done = q.wait_event("BLOCK_JOB_COMPLETED", lambda e: e.get("data", {}).get("device") == job, timeout=JOB_TIMEOUT)
    if done is None:
        raise PermanentError(f"{command} did not finish within {JOB_TIMEOUT:g} s")
    if done.get("data", {}).get("error"):
        raise PermanentError(f"{command} failed: {done['data']['error']}")


def snapshot_delete(q: Any, volume_id: str, directory: Path, chain: list[str],
                    delete_info: Mapping[str, Any]) -> list[str]:
    """Merge as ``delete_info`` says; returns the new chain (the merged-away files stay on disk:
    deleting them is the block storage's business, as with Cinder's remotefs drivers)."""
    if delete_info.get("type") != "qcow2":
        raise PermanentError(f"Unknown delete_info type {delete_info.get('type')!r}")
    target, merge = delete_info.get("merge_target_file"), delete_info.get("file_to_merge")
    nodes = format_nodes(q)
    active = _node_of(nodes, directory / chain[-1])
    job = "kumo-" + volume_id.replace("-", "")[:20]
    if target is None:  # pull: the active file takes in everything above file_to_merge
        if merge is not None and check_name(merge, "file_to_merge") not in chain[:-1]:
            raise PermanentError(f"file_to_merge {merge} is not below the active file")
        keep = chain[: chain.index(merge) + 1] if merge is not None else []
        args: dict[str, Any] = {"job-id": job, "device": active}
        if merge is not None:
            args["base-node"] = _node_of(nodes, directory / merge)
            args["backing-file"] = merge
        _run_job(q, "block-stream", args)
        dropped, new_chain = chain[len(keep):-1], [*keep, chain[-1]]
    else:  # commit: file_to_merge (and what lies between) goes down into merge_target_file
        check_name(target, "merge_target_file")
        if check_name(merge, "file_to_merge") not in chain or target not in chain \
                or chain.index(target) >= chain.index(merge):
            raise PermanentError(f"{merge} cannot be committed into {target}: not above it in the chain")
        top, base = chain.index(merge), chain.index(target)
        args = {"job-id": job, "device": active, "top-node": _node_of(nodes, directory / merge),
                "base-node": _node_of(nodes, directory / target)}
        if top != len(chain) - 1:
            args["backing-file"] = target
        _run_job(q, "block-commit", args, active_commit=top == len(chain) - 1)
        dropped = chain[base + 1: top + 1]
        new_chain = chain[: base + 1] + chain[top + 1:]
    for name in dropped:  # overlays added here stay referenced by the monitor until deleted
        node = overlay_node(volume_id, name)
        if any(n.get("node-name") == node for n in q.execute("query-named-block-nodes", {"flat": True})):
            q.execute("blockdev-del", {"node-name": node})
    return new_chain


def commit_all(q: Any, volume_id: str, directory: Path, chain: list[str]) -> list[str]:
    """Commit every overlay down into the volume's own file (``chain[0]``): an active commit,
    completed once QEMU reports it ready. Returns the chain that is left, ``[chain[0]]``."""
    if len(chain) < 2:
        return chain
    nodes = format_nodes(q)
    top = _node_of(nodes, directory / chain[-1])
    args = {"job-id": "kumo-" + volume_id.replace("-", "")[:20], "device": top, "top-node": top,
            "base-node": _node_of(nodes, directory / chain[0])}
    _run_job(q, "block-commit", args, active_commit=True)
    return chain[:1]


def drop_overlays(q: Any, volume_id: str) -> None:
    """Before the volume's own node is deleted at detach: the overlays added over it, top first."""
    prefix = overlay_prefix(volume_id)
    names = [str(n.get("node-name")) for n in q.execute("query-named-block-nodes", {"flat": True})
             if str(n.get("node-name") or "").startswith(prefix)]
    while names:  # a node still backing another overlay refuses: delete the top ones first
        left = []
        for name in names:
            try:
                q.execute("blockdev-del", {"node-name": name})
            except Exception:
                left.append(name)
        if len(left) == len(names):
            raise PermanentError(f"cannot remove the snapshot overlays of volume {volume_id}")
        names = left


def device_node(q: Any, device_id: str) -> str:
    """The root block node of the guest device ``device_id``."""
    for b in q.execute("query-block"):
        qdev = str(b.get("qdev") or "")
        if qdev == device_id or qdev.startswith(f"/machine/peripheral/{device_id}/"):
            node = (b.get("inserted") or {}).get("node-name")
            if node:
                return str(node)
    raise PermanentError(f"device {device_id} is not plugged into the guest")


def resize(q: Any, device_id: str, size_bytes: int) -> None:
    """Grow the disk under the guest (QEMU tells the guest: virtio-blk capacity change)."""
    q.execute("block_resize", {"node-name": device_node(q, device_id), "size": int(size_bytes)})
