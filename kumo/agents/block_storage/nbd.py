"""NBD exports of volumes for hypervisors on other hosts (multi-node attach).

One ``qemu-storage-daemon`` per volume agent serves NBD on the storage node's address and a
configured port; each attachment from a remote compute host is one export whose name the block
storage API chose at random (hard to guess: 160 random bits). The agent learns the exports it
must serve from its work document (``exports``: name, volume id, read-only) and reconciles them
level-triggered: missing exports are added (``blockdev-add`` + ``block-export-add`` over QMP),
exports nobody wants any more are removed (``block-export-del`` + ``blockdev-del``). The daemon
outlives an agent restart; when it is gone (host reboot) the next pass starts a new one and
re-creates every export.

Trust boundary: NBD carries no authentication besides the export name and no encryption here —
the storage network (the nodes' addresses) must be private to the cloud's hosts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kumo.agents.block_storage.backend import PermanentError, TemporaryError
from kumo.agents.compute.qemu.qmp import QmpClient, QmpError

log = logging.getLogger("kumo.agents.block_storage.nbd")


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What one export serves: a file or block device in ``fmt``, presented raw over NBD."""

    volume_id: str
    driver: str  # "file" or "host_device"
    filename: str
    fmt: str  # "raw" or "qcow2"
    read_only: bool = False


def export_id(name: str) -> str:
    """The QMP id (and node-name stem) of an export: short, starts with a letter, derived from the name."""
    return "kx" + hashlib.sha256(name.encode()).hexdigest()[:24]


def valid_name(name: Any) -> bool:
    return isinstance(name, str) and 16 <= len(name) <= 128 and all(c.isalnum() or c in "-_" for c in name)


def source_of(info: Mapping[str, Any]) -> tuple[str, str, str]:
    """(driver, filename, format) from a back end's local connection_info."""
    data = info.get("data") or {}
    fmt = str(data.get("format") or "raw")
    if data.get("path"):
        return "file", str(data["path"]), fmt
    if data.get("device_path"):
        return "host_device", str(data["device_path"]), fmt
    raise PermanentError(f"cannot export a volume of connection type {info.get('driver_volume_type')!r}")


class NbdExporter:
    def __init__(self, run_dir: Path, address: str, port: int, exe: str = "qemu-storage-daemon",
                 timeout: float = 10.0) -> None:
        self.run_dir = run_dir
        self.address = address
        self.port = int(port)
        self.exe = exe
        self.timeout = timeout
        self.qmp_path = run_dir / "nbd-qmp.sock"
        self.pid_path = run_dir / "nbd.pid"

    @property
    def endpoint(self) -> dict[str, Any]:
        return {"host": self.address, "port": self.port}

    # --- the daemon ---------------------------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _qmp(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        with QmpClient(self.qmp_path, timeout=self.timeout) as q:
            return q.execute(command, arguments)

    def running(self) -> bool:
        if self._pid() is None:
            return False
        try:
            self._qmp("query-block-exports")
            return True
        except (QmpError, OSError):
            return False

    def ensure_daemon(self) -> None:
        if self.running():
            return
        exe = shutil.which(self.exe) or (self.exe if os.path.isabs(self.exe) else None)
        if exe is None:
            raise PermanentError("qemu-storage-daemon is not installed on the storage host (package qemu-utils).")
        self.stop()  # a stale pid file or a wedged daemon
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.qmp_path.unlink(missing_ok=True)
        argv = [exe,
                "--chardev", f"socket,id=qmp0,path={self.qmp_path},server=on,wait=off",
                "--monitor", "chardev=qmp0",
                "--nbd-server", f"addr.type=inet,addr.host={self.address},addr.port={self.port}",
                "--pidfile", str(self.pid_path), "--daemonize"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        if done.returncode != 0:
            raise TemporaryError(f"qemu-storage-daemon did not start: {done.stderr.strip()[-300:]}", delay=2.0)
        deadline = time.monotonic() + self.timeout
        while not self.running():
            if time.monotonic() > deadline:
                raise TemporaryError("qemu-storage-daemon started but its QMP socket does not answer", delay=2.0)
            time.sleep(0.05)
        log.info("nbd: qemu-storage-daemon serving %s:%s", self.address, self.port)

    def stop(self) -> None:
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        self.qmp_path.unlink(missing_ok=True)

    # --- exports --------------------------------------------------------------------------------
    def active(self) -> set[str]:
        """Ids of the exports the daemon serves (nothing when it is not running)."""
        if not self.running():
            return set()
        return {e["id"] for e in self._qmp("query-block-exports") if not e.get("shutting-down")}

    def _nodes(self) -> set[str]:
        return {n["node-name"] for n in self._qmp("query-named-block-nodes", {"flat": True}) if n.get("node-name")}

    def reconcile(self, wanted: Mapping[str, ExportSpec]) -> set[str]:
        """Serve exactly ``wanted`` (export name -> source); returns the names served afterwards."""
        if not wanted and not self.running():
            return set()
        self.ensure_daemon()
        ids = {export_id(n): n for n in wanted}
        for eid in self.active() - set(ids):
            self._remove(eid)
        # nodes of removed exports whose blockdev-del failed earlier
        for node in self._nodes():
            if node.startswith("kx") and node[:-1] not in ids and node.endswith(("f", "p")):
                with contextlib.suppress(QmpError):
                    self._qmp("blockdev-del", {"node-name": node})
        present = self.active()
        for eid, name in ids.items():
            if eid not in present:
                self._add(eid, name, wanted[name])
        served = self.active()
        return {name for eid, name in ids.items() if eid in served}

    def _add(self, eid: str, name: str, spec: ExportSpec) -> None:
        fmt_node, file_node = eid + "f", eid + "p"
        nodes = self._nodes()
        try:
            if fmt_node not in nodes:
                if file_node in nodes:
                    self._qmp("blockdev-del", {"node-name": file_node})
                self._qmp("blockdev-add", {
                    "driver": spec.fmt, "node-name": fmt_node, "read-only": spec.read_only,
                    "file": {"driver": spec.driver, "node-name": file_node, "filename": spec.filename,
                             "read-only": spec.read_only},
                })
            self._qmp("block-export-add", {"type": "nbd", "id": eid, "node-name": fmt_node, "name": name,
                                           "writable": not spec.read_only})
        except QmpError as exc:
            raise TemporaryError(f"exporting volume {spec.volume_id} failed: {exc}", delay=2.0) from None
        log.info("nbd: exporting volume %s as %s", spec.volume_id, eid)

    def _remove(self, eid: str) -> None:
        with contextlib.suppress(QmpError):
            self._qmp("block-export-del", {"id": eid, "mode": "hard"})
        deadline = time.monotonic() + self.timeout
        while eid in {e["id"] for e in self._qmp("query-block-exports")}:
            if time.monotonic() > deadline:
                raise TemporaryError(f"export {eid} does not go away", delay=2.0)
            time.sleep(0.05)
        for node in (eid + "f", eid + "p"):
            with contextlib.suppress(QmpError):
                self._qmp("blockdev-del", {"node-name": node})
        log.info("nbd: removed export %s", eid)


def wanted_exports(doc_exports: Any, local_info: Callable[[str], Mapping[str, Any]],
                   exists: Callable[[str], bool]) -> dict[str, ExportSpec]:
    """The exports of a work document (``[{"name", "volume_id", "read_only"}]``) whose volumes
    this back end holds, as name -> source."""
    out: dict[str, ExportSpec] = {}
    for e in doc_exports or []:
        if not isinstance(e, Mapping) or not valid_name(e.get("name")) or not isinstance(e.get("volume_id"), str):
            continue
        vid = e["volume_id"]
        if not exists(vid):
            continue
        driver, filename, fmt = source_of(local_info(vid))
        out[e["name"]] = ExportSpec(vid, driver, filename, fmt, bool(e.get("read_only")))
    return out
