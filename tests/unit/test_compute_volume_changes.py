"""Attached volumes changed under the guest: the QMP commands of the QEMU driver (block_resize,
assisted snapshots' blockdev-snapshot / block-stream / block-commit) against a scripted QMP
peer, the fake driver's chain, and the agent operation that dispatches them."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.agents.block_storage.backend import GiB
from kumo.agents.block_storage.file import FileBackend, image_info
from kumo.agents.compute import volume_changes
from kumo.agents.compute.driver import FlavorSpec, PowerState, VmSpec, VolumeSpec
from kumo.agents.compute.errors import PermanentError
from kumo.agents.compute.fake import FakeDriver
from kumo.agents.compute.qemu import volume_ops

VOL = "0b7d4c52-9d1e-4f2a-8c1e-1234567890ab"
VM = "3f2a6c1e-0b7d-4c52-9d1e-1234567890ab"


class ScriptedQmp:
    """Records commands; answers queries from a model of the block graph it keeps up to date."""

    def __init__(self, directory: Path, files: list[str]) -> None:
        self.dir = directory
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # format nodes, base first: (node-name, file)
        self.nodes = [(f"#block{i}" if i < len(files) - 1 else "vol0b7d4c529d1e4f2a8c1e12", str(directory / f))
                      for i, f in enumerate(files)]
        self.events: list[dict[str, Any]] = []
        self.fail: dict[str, str] = {}

    def execute(self, name: str, args: dict[str, Any] | None = None) -> Any:
        self.calls.append((name, dict(args or {})))
        if name in self.fail:
            raise volume_ops.PermanentError(self.fail[name])
        if name == "query-named-block-nodes":
            return [{"node-name": n, "drv": "qcow2", "file": f, "image": {"virtual-size": 1 << 30}}
                    for n, f in reversed(self.nodes)]
        if name == "query-block":
            return [{"qdev": f"/machine/peripheral/vol-{VOL}/virtio-backend",
                     "inserted": {"node-name": self.nodes[-1][0]}}]
        if name == "blockdev-add":
            self.pending_overlay = (args["node-name"], args["file"]["filename"])  # type: ignore[index]
        if name == "blockdev-snapshot":
            self.nodes.append(self.pending_overlay)
        if name in ("block-stream", "block-commit"):
            self.events.append({"event": "BLOCK_JOB_COMPLETED", "data": {"device": args["job-id"]}})  # type: ignore[index]
        if name == "blockdev-del":
            self.nodes = [n for n in self.nodes if n[0] != args["node-name"]]  # type: ignore[index]
        return {}

    def wait_event(self, name: str, match: Any, timeout: float = 10.0) -> dict[str, Any] | None:
        for i, ev in enumerate(self.events):
            if ev["event"] == name and match(ev):
                return self.events.pop(i)
        return None

    def names(self) -> list[str]:
        return [c[0] for c in self.calls if not c[0].startswith("query-")]


def test_block_resize_targets_the_device_root_node(tmp_path: Path) -> None:
    q = ScriptedQmp(tmp_path, [f"volume-{VOL}"])
    volume_ops.resize(q, f"vol-{VOL}", 3 << 30)
    assert q.calls[-1] == ("block_resize", {"node-name": "vol0b7d4c529d1e4f2a8c1e12", "size": 3 << 30})
    with pytest.raises(PermanentError):
        volume_ops.resize(q, "vol-other", 1)


def test_snapshot_create_adds_an_overlay_and_puts_it_on_top(tmp_path: Path) -> None:
    base = f"volume-{VOL}"
    q = ScriptedQmp(tmp_path, [base])
    made: list[tuple] = []

    def make(path: Path, backing: str, fmt: str, size: int) -> None:
        made.append((path, backing, fmt, size))
        path.write_bytes(b"")

    chain = volume_ops.snapshot_create(q, VOL, tmp_path, [base], f"{base}.snap1", make)
    assert chain == [base, f"{base}.snap1"]
    assert made == [(tmp_path / f"{base}.snap1", base, "qcow2", 1 << 30)]
    node = volume_ops.overlay_node(VOL, f"{base}.snap1")
    assert len(node) <= 31
    assert q.names() == ["blockdev-add", "blockdev-snapshot"]
    assert q.calls[-2][1] == {"driver": "qcow2", "node-name": node, "backing": None,
                              "file": {"driver": "file", "filename": str(tmp_path / f"{base}.snap1")}}
    assert q.calls[-1][1] == {"node": "vol0b7d4c529d1e4f2a8c1e12", "overlay": node}
    # repeated: nothing more; a path or an existing file is refused
    assert volume_ops.snapshot_create(q, VOL, tmp_path, chain, f"{base}.snap1", make) == chain
    with pytest.raises(PermanentError):
        volume_ops.snapshot_create(q, VOL, tmp_path, chain, "../evil", make)
    (tmp_path / "taken").write_bytes(b"x")
    with pytest.raises(PermanentError):
        volume_ops.snapshot_create(q, VOL, tmp_path, chain, "taken", make)


def test_a_failed_snapshot_removes_the_new_file(tmp_path: Path) -> None:
    q = ScriptedQmp(tmp_path, ["base"])
    q.fail["blockdev-snapshot"] = "nope"
    with pytest.raises(PermanentError):
        volume_ops.snapshot_create(q, VOL, tmp_path, ["base"], "s1", lambda p, *a: p.write_bytes(b""))
    assert not (tmp_path / "s1").exists()


def test_delete_pulls_into_the_active_file_or_commits_down(tmp_path: Path) -> None:
    files = ["base", "s1", "s2", "s3"]
    q = ScriptedQmp(tmp_path, files)
    # pull: everything above s1 into the active file; s2 drops out of the chain
    chain = volume_ops.snapshot_delete(q, VOL, tmp_path, files,
                                       {"type": "qcow2", "merge_target_file": None, "file_to_merge": "s1"})
    assert chain == ["base", "s1", "s3"]
    stream = next(c for c in q.calls if c[0] == "block-stream")[1]
    assert stream == {"job-id": "kumo-0b7d4c529d1e4f2a8c1e", "device": "vol0b7d4c529d1e4f2a8c1e12",
                      "base-node": "#block1", "backing-file": "s1"}
    # commit: s1 into base (not the active file: the job ends by itself)
    q.calls.clear()
    chain = volume_ops.snapshot_delete(q, VOL, tmp_path, chain,
                                       {"type": "qcow2", "merge_target_file": "base", "file_to_merge": "s1"})
    assert chain == ["base", "s3"]
    commit = next(c for c in q.calls if c[0] == "block-commit")[1]
    assert commit == {"job-id": "kumo-0b7d4c529d1e4f2a8c1e", "device": "vol0b7d4c529d1e4f2a8c1e12",
                      "top-node": "#block1", "base-node": "#block0", "backing-file": "base"}
    assert "block-job-complete" not in q.names()
    # pull with no base: the active file takes in the whole chain
    chain = volume_ops.snapshot_delete(q, VOL, tmp_path, chain,
                                       {"type": "qcow2", "merge_target_file": None, "file_to_merge": None})
    assert chain == ["s3"]
    assert "base-node" not in [c for c in q.calls if c[0] == "block-stream"][-1][1]


def test_delete_refuses_what_the_chain_does_not_allow(tmp_path: Path) -> None:
    files = ["base", "s1"]
    q = ScriptedQmp(tmp_path, files)
    for info in ({"type": "qcow3"}, {},
                 {"type": "qcow2", "merge_target_file": None, "file_to_merge": "nothere"},
                 {"type": "qcow2", "merge_target_file": "s1", "file_to_merge": "base"},
                 {"type": "qcow2", "merge_target_file": "/etc/passwd", "file_to_merge": "s1"}):
        with pytest.raises(PermanentError):
            volume_ops.snapshot_delete(q, VOL, tmp_path, files, info)
    assert "block-stream" not in q.names() and "block-commit" not in q.names()


def test_a_failed_job_is_an_error(tmp_path: Path) -> None:
    q = ScriptedQmp(tmp_path, ["base", "s1"])
    real = q.execute

    def failing(name: str, args: dict[str, Any] | None = None) -> Any:
        out = real(name, args)
        if name == "block-stream":
            q.events[-1]["data"]["error"] = "Input/output error"
        return out

    q.execute = failing  # type: ignore[method-assign]
    with pytest.raises(PermanentError, match="Input/output error"):
        volume_ops.snapshot_delete(q, VOL, tmp_path, ["base", "s1"],
                                   {"type": "qcow2", "merge_target_file": None, "file_to_merge": None})


def test_detach_drops_overlays_top_first(tmp_path: Path) -> None:
    q = ScriptedQmp(tmp_path, ["base"])
    top, mid = volume_ops.overlay_node(VOL, "s2"), volume_ops.overlay_node(VOL, "s1")
    q.nodes += [(mid, "s1"), (top, "s2")]
    order: list[str] = []
    real = q.execute

    def execute(name: str, args: dict[str, Any] | None = None) -> Any:
        if name == "blockdev-del":  # QEMU refuses to delete a node that still backs another
            if args["node-name"] == mid and any(n[0] == top for n in q.nodes):  # type: ignore[index]
                raise RuntimeError("node is in use")
            order.append(args["node-name"])  # type: ignore[index]
        return real(name, args)

    q.execute = execute  # type: ignore[method-assign]
    volume_ops.drop_overlays(q, VOL)
    assert order == [top, mid]


def _spec(volume: VolumeSpec) -> VmSpec:
    return VmSpec(id=VM, name="vm", hostname="vm", project_id="p", flavor=FlavorSpec("f", 1, 128, 1), image=None,
                  volumes=(volume,))


def test_fake_driver_records_size_and_chain_through_the_agent_operation(tmp_path: Path) -> None:
    d = FakeDriver(tmp_path, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    vol = VolumeSpec(volume_id=VOL, attachment_id="a", connection_info={
        "driver_volume_type": "file", "data": {"path": f"/srv/volumes/volume-{VOL}", "format": "qcow2"}})
    spec = _spec(vol)
    assert d.ensure_running(spec) == PowerState.RUNNING
    run = volume_changes.run
    assert run(d, "extend_volume", spec, {"volume_id": VOL, "size": 2 << 30}) == PowerState.RUNNING
    assert d.volume_size(VM, VOL) == 2 << 30
    run(d, "volume_snapshot_create", spec, {"volume_id": VOL, "new_file": f"volume-{VOL}.s1"})
    run(d, "volume_snapshot_create", spec, {"volume_id": VOL, "new_file": f"volume-{VOL}.s2"})
    assert d.volume_chain(VM, VOL) == [f"volume-{VOL}", f"volume-{VOL}.s1", f"volume-{VOL}.s2"]
    run(d, "volume_snapshot_delete", spec, {"volume_id": VOL, "delete_info": {
        "type": "qcow2", "merge_target_file": f"volume-{VOL}", "file_to_merge": f"volume-{VOL}.s1"}})
    assert d.volume_chain(VM, VOL) == [f"volume-{VOL}", f"volume-{VOL}.s2"]
    with pytest.raises(PermanentError):
        run(d, "volume_snapshot_delete", spec, {"volume_id": VOL, "delete_info": {"volume_id": VOL}})
    with pytest.raises(PermanentError):
        run(d, "extend_volume", spec, {"volume_id": VOL, "size": 1 << 30})  # never shrinks
    with pytest.raises(PermanentError):
        run(d, "extend_volume", spec, {"volume_id": "other", "size": 1 << 30})
    # a stopped guest is not grown now (it sees the volume's size when it starts)
    d.ensure_stopped(VM)
    assert run(d, "extend_volume", spec, {"volume_id": VOL, "size": 4 << 30}) == PowerState.SHUTDOWN
    assert d.volume_size(VM, VOL) == 2 << 30


needs_qemu_io = pytest.mark.skipif(shutil.which("qemu-io") is None or shutil.which("qemu-img") is None,
                                   reason="qemu-utils not installed")


@needs_qemu_io
@pytest.mark.parametrize("fmt", ["qcow2", "raw"])
def test_file_backend_grows_an_attached_volume_or_leaves_it_to_the_hypervisor(tmp_path: Path, fmt: str) -> None:
    """An in-use volume file a running QEMU holds (here qemu-io, which takes the same lock):
    a raw file grows under it; a locked qcow2 is left to the compute host's block_resize."""
    b = FileBackend(tmp_path / "volumes", fmt=fmt, capacity_gb=50)
    b.create_volume(VOL, 1)
    path = b.volume_path(VOL)
    holder = subprocess.Popen(["qemu-io", "-f", fmt, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        if fmt == "qcow2":
            with pytest.raises(PermanentError, match="lock|another process"):
                b.extend_volume(VOL, 2)  # not an attached-volume extend: the lock is an error
        b.extend_attached_volume(VOL, 2)
    finally:
        holder.communicate(b"quit\n", timeout=10)
    size = image_info(path, fmt)["virtual-size"]
    assert size == (2 * GiB if fmt == "raw" else 1 * GiB)
    b.extend_attached_volume(VOL, 3)  # nobody holds it any more: it grows here
    assert image_info(path, fmt)["virtual-size"] == 3 * GiB


@needs_qemu_io
def test_qemu_driver_keeps_the_chain_of_a_stopped_guest_and_opens_the_active_file(tmp_path: Path) -> None:
    """A guest that does not run: the overlay is made and merged with qemu-img, the chain is
    kept, and the next start (or hot-plug) opens the active overlay, not the base file."""
    from kumo.agents.compute.qemu.driver import QemuDriver

    d = QemuDriver(tmp_path / "compute", None, inventory={"vcpus": 1, "memory_mb": 512, "local_gb": 1})
    vdir = tmp_path / "volumes"
    vdir.mkdir()
    base = vdir / f"volume-{VOL}"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 64k", str(base)], check=True,
                   stdout=subprocess.DEVNULL)
    vol = VolumeSpec(volume_id=VOL, attachment_id="a", connection_info={
        "driver_volume_type": "file", "data": {"path": str(base), "format": "qcow2"}})
    assert d.volume_snapshot_create(VM, vol, f"{base.name}.s1") == [base.name, f"{base.name}.s1"]
    info = image_info(vdir / f"{base.name}.s1", "qcow2")
    assert info["backing-filename"] == base.name and info["virtual-size"] == 64 << 20
    opened = d.with_active_files(VM, (vol,))[0]
    assert opened.connection_info["data"]["path"] == str(vdir / f"{base.name}.s1")
    with pytest.raises(PermanentError):
        d.volume_snapshot_create(VM, vol, "a/b")
    # pull everything into the active overlay: it stands alone, with the base's data
    chain = d.volume_snapshot_delete(VM, vol, {"type": "qcow2", "merge_target_file": None, "file_to_merge": None})
    assert chain == [f"{base.name}.s1"]
    assert "backing-filename" not in image_info(vdir / f"{base.name}.s1", "qcow2")
    assert d.with_active_files(VM, (vol,))[0].connection_info["data"]["path"] == str(vdir / f"{base.name}.s1")
    read = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 64k", str(vdir / f"{base.name}.s1")],
                          capture_output=True, text=True)
    assert "verification failed" not in read.stdout + read.stderr and read.returncode == 0
    # a volume that is not a file cannot take assisted snapshots
    nbd = VolumeSpec(volume_id=VOL, attachment_id="a", connection_info={"driver_volume_type": "nbd", "data": {}})
    with pytest.raises(PermanentError):
        d.volume_snapshot_create(VM, nbd, "x")


needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-io") is None,
                                reason="qemu-system-x86 not installed")


@contextlib.contextmanager
def _real_qemu(tmp_path: Path, base: str) -> Iterator[Any]:
    """A QEMU that never runs a guest (-S) but holds the volume file as a virtio disk; yields
    a QMP client and quits QEMU at the end (the files are then consistent on disk)."""
    from kumo.agents.compute.qemu import qmp

    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / base), "64M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M", str(tmp_path / base)], check=True,
                   stdout=subprocess.DEVNULL)
    sock = tmp_path / "qmp.sock"
    node = "vol" + VOL.replace("-", "")[:26]
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-S", "-nodefaults", "-display", "none",
         "-qmp", f"unix:{sock},server=on,wait=off",
         "-blockdev", f"driver=qcow2,node-name={node},file.driver=file,file.filename={tmp_path / base}",
         "-device", f"virtio-blk-pci,id=vol-{VOL},drive={node}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "QEMU did not start"
            time.sleep(0.05)
        with qmp.QmpClient(sock, timeout=30) as q:
            yield q
            q.execute("quit")
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _holds_the_data(path: Path, pattern: str = "0x11", offset: str = "0") -> bool:
    read = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", f"read -P {pattern} {offset} 1M", str(path)],
                          capture_output=True, text=True)
    return read.returncode == 0 and "verification failed" not in read.stdout + read.stderr


@needs_qemu
def test_the_qmp_commands_against_a_real_qemu(tmp_path: Path) -> None:
    """Overlays go on top, the disk grows, commit and stream merge the chain, the data stays."""
    from kumo.agents.compute.qemu.volume_changes import make_overlay

    base = f"volume-{VOL}"
    with _real_qemu(tmp_path, base) as q:
        chain = [base]
        for name in ("s1", "s2", "s3"):
            chain = volume_ops.snapshot_create(q, VOL, tmp_path, chain, f"{base}.{name}", make_overlay)
        assert volume_ops.device_node(q, f"vol-{VOL}") == volume_ops.overlay_node(VOL, f"{base}.s3")
        volume_ops.resize(q, f"vol-{VOL}", 128 << 20)
        assert [b["inserted"]["image"]["virtual-size"] for b in q.execute("query-block")] == [128 << 20]
        chain = volume_ops.snapshot_delete(q, VOL, tmp_path, chain, {
            "type": "qcow2", "merge_target_file": base, "file_to_merge": f"{base}.s1"})
        assert chain == [base, f"{base}.s2", f"{base}.s3"]
        chain = volume_ops.snapshot_delete(q, VOL, tmp_path, chain, {
            "type": "qcow2", "merge_target_file": None, "file_to_merge": base})
        assert chain == [base, f"{base}.s3"]
        chain = volume_ops.snapshot_delete(q, VOL, tmp_path, chain, {
            "type": "qcow2", "merge_target_file": None, "file_to_merge": None})
        assert chain == [f"{base}.s3"]
        names = {n["node-name"] for n in q.execute("query-named-block-nodes", {"flat": True})}
        assert volume_ops.overlay_node(VOL, f"{base}.s1") not in names  # merged-away overlays are gone
    top = tmp_path / f"{base}.s3"
    assert "backing-filename" not in image_info(top, "qcow2")
    assert _holds_the_data(top)


@needs_qemu
def test_overlays_are_committed_back_into_the_volume_file(tmp_path: Path) -> None:
    """What detach does before the volume leaves the guest: an active commit of the chain."""
    from kumo.agents.compute.qemu.volume_changes import make_overlay

    base = f"volume-{VOL}"
    with _real_qemu(tmp_path, base) as q:
        chain = [base]
        for name in ("s1", "s2"):
            chain = volume_ops.snapshot_create(q, VOL, tmp_path, chain, f"{base}.{name}", make_overlay)
        dev = f"/machine/peripheral/vol-{VOL}/virtio-backend"  # the guest writes (through the device)
        q.execute("human-monitor-command", {"command-line": f'qemu-io -d {dev} "write -P 0x22 1M 1M"'})
        assert not _holds_the_data(tmp_path / base, "0x22", "1M")  # the write went to the overlay
        assert volume_ops.commit_all(q, VOL, tmp_path, chain) == [base]
        assert volume_ops.device_node(q, f"vol-{VOL}") == "vol" + VOL.replace("-", "")[:26]
        volume_ops.drop_overlays(q, VOL)
        names = {n["node-name"] for n in q.execute("query-named-block-nodes", {"flat": True})}
        assert not any(n.startswith(volume_ops.overlay_prefix(VOL)) for n in names)
    assert _holds_the_data(tmp_path / base) and _holds_the_data(tmp_path / base, "0x22", "1M")
