"""The file back end: each volume is a qcow2 (default) or sparse raw file under
``<data_dir>/volumes``; snapshots are full sparse copies (``snapshot-<id>``), so volumes,
snapshots and clones never depend on one another. Uses ``qemu-img`` (apt qemu-utils).

Files are written under a temporary name and renamed into place, so a crash never leaves a
half-made volume under its real name; every operation is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kumo.agents.block_storage.backend import Capacity, GiB, PermanentError, TemporaryError, round_up_gb

VOLUME_PREFIX = "volume-"
SNAPSHOT_PREFIX = "snapshot-"


def qemu_img(*args: str, timeout: float = 3600.0) -> str:
    exe = shutil.which("qemu-img")
    if exe is None:
        raise PermanentError("qemu-img is not installed on the storage host (apt install qemu-utils).")
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise TemporaryError(f"qemu-img {args[0]} timed out", delay=5.0) from None
    if done.returncode != 0:
        msg = (done.stderr or done.stdout).strip().splitlines()
        raise PermanentError(f"qemu-img {args[0]} failed: {msg[-1] if msg else done.returncode}")
    return done.stdout


def image_info(path: Path, fmt: str | None = None) -> dict[str, Any]:
    args = ["info", "-U", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    return json.loads(qemu_img(*args, str(path)))


class FileBackend:
    name = "file"
    driver_volume_type = "file"

    def __init__(self, root: Path, fmt: str = "qcow2", capacity_gb: int = 0) -> None:
        if fmt not in ("qcow2", "raw"):
            raise ValueError(f"unknown file format {fmt!r}")
        self.root = Path(root)
        self.fmt = fmt
        self.capacity_gb = capacity_gb
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(exist_ok=True, mode=0o700)

    # --- paths --------------------------------------------------------------------------------
    def volume_path(self, volume_id: str) -> Path:
        return self.root / f"{VOLUME_PREFIX}{_safe(volume_id)}"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.root / f"{SNAPSHOT_PREFIX}{_safe(snapshot_id)}"

    def _temp(self, hint: str) -> Path:
        return self.tmp / f"{hint}.{uuid.uuid4().hex[:8]}.part"

    # --- inventory ----------------------------------------------------------------------------
    def capacity(self) -> Capacity:
        st = os.statvfs(self.root)
        total = self.capacity_gb or st.f_blocks * st.f_frsize / GiB
        provisioned = 0
        for p in self.root.glob(VOLUME_PREFIX + "*"):
            with contextlib.suppress(Exception):
                provisioned += self._virtual_size(p)
        free_disk = st.f_bavail * st.f_frsize / GiB
        free = min(free_disk, max(0.0, total - provisioned / GiB)) if self.capacity_gb else free_disk
        return Capacity(total_gb=round(float(total), 2), free_gb=round(float(free), 2),
                        provisioned_gb=round(provisioned / GiB, 2))

    def list_volumes(self) -> list[str]:
        return sorted(p.name[len(VOLUME_PREFIX):] for p in self.root.glob(VOLUME_PREFIX + "*"))

    def list_snapshots(self) -> list[str]:
        return sorted(p.name[len(SNAPSHOT_PREFIX):] for p in self.root.glob(SNAPSHOT_PREFIX + "*"))

    def volume_exists(self, volume_id: str) -> bool:
        return self.volume_path(volume_id).exists()

    def volume_size_gb(self, volume_id: str) -> int | None:
        path = self.volume_path(volume_id)
        if not path.exists():
            return None
        return round_up_gb(self._virtual_size(path))

    def _virtual_size(self, path: Path) -> int:
        if self.fmt == "raw":
            return path.stat().st_size
        return int(image_info(path, "qcow2")["virtual-size"])

    # --- volumes ------------------------------------------------------------------------------
    def _make_empty(self, path: Path, size_gb: int) -> None:
        if self.fmt == "raw":
            with open(path, "wb") as fh:
                fh.truncate(size_gb * GiB)
        else:
            qemu_img("create", "-q", "-f", "qcow2", str(path), f"{size_gb}G")

    def _install(self, tmp: Path, dest: Path) -> None:
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)

    def create_volume(self, volume_id: str, size_gb: int) -> None:
        dest = self.volume_path(volume_id)
        if dest.exists():
            return
        tmp = self._temp(dest.name)
        try:
            self._make_empty(tmp, size_gb)
            self._install(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def _copy_into(self, volume_id: str, size_gb: int, source: Path, source_format: str | None,
                   replace: bool = False) -> None:
        dest = self.volume_path(volume_id)
        if dest.exists() and not replace:
            return
        info = image_info(source, source_format)
        virtual = int(info["virtual-size"])
        if virtual > size_gb * GiB:
            raise PermanentError(f"The source needs {round_up_gb(virtual)} GiB but the volume has {size_gb} GiB.")
        if info.get("backing-filename"):
            raise PermanentError("Images with a backing file are refused.")
        tmp = self._temp(dest.name)
        try:
            args = ["convert", "-U", "-q"]
            if source_format:
                args += ["-f", source_format]
            args += ["-O", self.fmt]
            if self.fmt == "raw":
                args += ["-S", "4k"]
            qemu_img(*args, str(source), str(tmp))
            if virtual < size_gb * GiB:
                qemu_img("resize", "-q", "-f", self.fmt, str(tmp), f"{size_gb}G")
            self._install(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def create_from_image(self, volume_id: str, size_gb: int, image_path: Path, image_format: str) -> None:
        fmt = {"iso": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "vhd": "vpc"}.get(image_format or "", image_format)
        self._copy_into(volume_id, size_gb, Path(image_path), fmt or None)

    def reimage(self, volume_id: str, size_gb: int, image_path: Path, image_format: str) -> None:
        """The new contents are built beside the volume and renamed over it (atomic: a crash leaves
        the old contents or the new, never a mix; a hypervisor holding the old file keeps its copy)."""
        if not self.volume_exists(volume_id):
            raise PermanentError(f"Volume {volume_id} is not on this storage host.")
        size_gb = max(size_gb, self.volume_size_gb(volume_id) or 0)
        fmt = {"iso": "raw", "ami": "raw", "aki": "raw", "ari": "raw", "vhd": "vpc"}.get(image_format or "", image_format)
        self._copy_into(volume_id, size_gb, Path(image_path), fmt or None, replace=True)

    def create_from_snapshot(self, volume_id: str, size_gb: int, snapshot_id: str) -> None:
        src = self.snapshot_path(snapshot_id)
        if not src.exists() and not self.volume_exists(volume_id):
            raise PermanentError(f"Snapshot {snapshot_id} is not on this storage host.")
        self._copy_into(volume_id, size_gb, src, self.fmt)

    def clone_volume(self, volume_id: str, size_gb: int, source_volume_id: str) -> None:
        src = self.volume_path(source_volume_id)
        if not src.exists() and not self.volume_exists(volume_id):
            raise PermanentError(f"Volume {source_volume_id} is not on this storage host.")
        self._copy_into(volume_id, size_gb, src, self.fmt)

    def extend_volume(self, volume_id: str, new_size_gb: int) -> None:
        path = self.volume_path(volume_id)
        if not path.exists():
            raise PermanentError(f"Volume {volume_id} is not on this storage host.")
        if self._virtual_size(path) >= new_size_gb * GiB:
            return
        if self.fmt == "raw":
            with open(path, "r+b") as fh:
                fh.truncate(new_size_gb * GiB)
        else:
            qemu_img("resize", "-q", "-f", "qcow2", str(path), f"{new_size_gb}G")

    def extend_attached_volume(self, volume_id: str, new_size_gb: int) -> None:
        """Grow an in-use volume (Cinder 3.42). A raw file grows under the guest; a qcow2 file a
        running QEMU holds locked is grown by the hypervisor instead (the compute host's
        ``block_resize`` after the ``volume-extended`` event), as for Nova's file-based volumes."""
        try:
            self.extend_volume(volume_id, new_size_gb)
        except PermanentError as exc:
            if self.fmt != "qcow2" or not ("lock" in str(exc) or "another process" in str(exc)):
                raise

    def delete_volume(self, volume_id: str) -> None:
        self.volume_path(volume_id).unlink(missing_ok=True)

    # --- snapshots ----------------------------------------------------------------------------
    def create_snapshot(self, snapshot_id: str, volume_id: str) -> None:
        dest = self.snapshot_path(snapshot_id)
        if dest.exists():
            return
        src = self.volume_path(volume_id)
        if not src.exists():
            raise PermanentError(f"Volume {volume_id} is not on this storage host.")
        tmp = self._temp(dest.name)
        try:
            args = ["convert", "-U", "-q", "-f", self.fmt, "-O", self.fmt]
            if self.fmt == "raw":
                args += ["-S", "4k"]
            qemu_img(*args, str(src), str(tmp))
            self._install(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def delete_snapshot(self, snapshot_id: str) -> None:
        self.snapshot_path(snapshot_id).unlink(missing_ok=True)

    # --- data path ----------------------------------------------------------------------------
    def connection_info(self, volume_id: str, connector: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return {
            "driver_volume_type": self.driver_volume_type,
            "data": {"path": str(self.volume_path(volume_id)), "format": self.fmt, "volume_id": volume_id,
                     "access_mode": "rw"},
        }

    def terminate_connection(self, volume_id: str, connector: Mapping[str, Any] | None = None) -> None:
        return None

    @contextlib.contextmanager
    def raw_reader(self, volume_id: str) -> Iterator[Path]:
        path = self.volume_path(volume_id)
        if not path.exists():
            raise PermanentError(f"Volume {volume_id} is not on this storage host.")
        if self.fmt == "raw":
            yield path
            return
        tmp = self._temp(f"read-{volume_id}")
        try:
            qemu_img("convert", "-U", "-q", "-f", "qcow2", "-O", "raw", "-S", "4k", str(path), str(tmp))
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    @contextlib.contextmanager
    def raw_writer(self, volume_id: str) -> Iterator[Path]:
        path = self.volume_path(volume_id)
        if not path.exists():
            raise PermanentError(f"Volume {volume_id} is not on this storage host.")
        if self.fmt == "raw":
            yield path
            return
        size = self._virtual_size(path)
        raw = self._temp(f"write-{volume_id}")
        out = self._temp(f"commit-{volume_id}")
        try:
            with open(raw, "wb") as fh:
                fh.truncate(size)
            yield raw
            qemu_img("convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(out))
            self._install(out, path)
        finally:
            raw.unlink(missing_ok=True)
            out.unlink(missing_ok=True)


def _safe(item_id: str) -> str:
    """Ids become file names: refuse anything that could leave the directory."""
    s = str(item_id)
    if not s or "/" in s or s.startswith(".") or "\0" in s or len(s) > 128:
        raise PermanentError(f"invalid id {item_id!r}")
    return s
