"""The QEMU driver: a daemonized qemu-system-x86_64 per VM, a qcow2 overlay, taps, QMP.

Everything about a VM lives in ``<root>/instances/<id>/`` (overlay, pid file, console log,
the spec it runs with); its unix sockets (QMP, serial, VNC) sit there too unless that path is
too long for a socket, in which case under a short per-host directory. All state is on disk,
so a restarted agent re-adopts running VMs by pid file and QMP and never starts one twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kumo.agents.compute.driver import ImageRef, PowerState, VmSpec, VolumeSpec
from kumo.agents.compute.errors import PermanentError, TemporaryError
from kumo.agents.compute.fake import _host_inventory
from kumo.agents.compute.qemu import accel as accel_mod
from kumo.agents.compute.qemu import cmdline, disks, qmp
from kumo.agents.compute.qemu.bridges import BridgeLedger
from kumo.agents.compute.qemu.cmdline import VmPaths
from kumo.agents.compute.qemu.volume_changes import VolumeChanges
from kumo.privileged import ip
from kumo.privileged import process as proc

log = logging.getLogger("kumo.agents.compute.qemu")

GiB = 1024**3
CONSOLE_CAP = 4 * 1024 * 1024  # the serial log is cut back to its last CONSOLE_KEEP bytes beyond this
CONSOLE_KEEP = 1024 * 1024
# A guest that never releases a hot-unplugged volume (no OS, no ACPI hotplug): the detach fails after
# this long, as Nova's libvirt driver gives up after its detach attempts; the volume stays in-use.
DETACH_GIVE_UP = 180.0
STATUS_POWER = {
    "running": PowerState.RUNNING,
    "paused": PowerState.PAUSED,
    "suspended": PowerState.SUSPENDED,
    "shutdown": PowerState.SHUTDOWN,
    "internal-error": PowerState.CRASHED,
    "guest-panicked": PowerState.CRASHED,
    "io-error": PowerState.PAUSED,
    "prelaunch": PowerState.PAUSED,
    "inmigrate": PowerState.PAUSED,
    "postmigrate": PowerState.PAUSED,
    "finish-migrate": PowerState.PAUSED,
    "restore-vm": PowerState.PAUSED,
    "save-vm": PowerState.PAUSED,
    "debug": PowerState.PAUSED,
    "watchdog": PowerState.PAUSED,
}


def _valid_id(vm_id: str) -> str:
    if not vm_id or "/" in vm_id or vm_id.startswith(".") or len(vm_id) > 64:
        raise PermanentError(f"bad server id {vm_id!r}")
    return vm_id


SPICE_ADDRESS = "127.0.0.1"  # where VM SPICE displays listen: a spice-direct proxy on this host reaches them


def _free_port(address: str) -> int:
    """A TCP port free on ``address`` now (QEMU binds it a moment later; a clash fails the start)."""
    import socket

    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class QemuDriver(VolumeChanges):
    type = "QEMU"
    plugs_vifs = True  # a new guest waits (paused) for network-vif-plugged of its bound ports

    def __init__(
        self,
        data_dir: Path,
        fetch: Any = None,
        *,
        accel: str = "tcg",
        binary: str = "qemu-system-x86_64",
        stop_timeout: float = 30.0,
        inventory: Mapping[str, int] | None = None,
        vnc: bool = True,
        network_ledger: Path | None = None,
        spice: bool = False,
    ) -> None:
        self.root = Path(data_dir)
        self.bridges = BridgeLedger(self.root / "bridges.json", network_ledger)
        self.instances = self.root / "instances"
        self.images = disks.ImageCache(self.root / "images", fetch)
        self.binary = binary
        self.accel_setting = accel
        self._accel: str | None = None
        self.stop_timeout = stop_timeout
        self.vnc = vnc
        self.spice_consoles = spice  # each VM also gets a SPICE display on 127.0.0.1 (spice-direct, 2.99)
        self._detaching: dict[tuple[str, str], float] = {}  # (vm, volume) -> when the first device_del went
        self._inventory = dict(inventory) if inventory else _host_inventory(self.root)
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:10]
        self._short_sockets = Path(tempfile.gettempdir()) / f"kumo-vm-{digest}"

    # -- bookkeeping ---------------------------------------------------------------------------

    def inventory(self) -> Mapping[str, int]:
        return dict(self._inventory)

    def cache_image(self, image: ImageRef) -> None:
        """Fetch ``image`` into this host's image cache (checksum verified) ahead of any boot (2.81)."""
        self.images.ensure(image)

    @property
    def accel(self) -> str:
        if self._accel is None:
            self._accel = accel_mod.resolve(self.accel_setting, self.root, self.binary)
        return self._accel

    def _lock(self, vm_id: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(vm_id, threading.RLock())

    def paths(self, vm_id: str) -> VmPaths:
        d = self.instances / _valid_id(vm_id)
        sockets = d if len(str(d / "serial.sock")) < 100 else self._short_sockets / vm_id
        return VmPaths(d, sockets)

    def _pid(self, p: VmPaths) -> int | None:
        return proc.pid_of(p.pidfile, str(p.dir))

    def _status(self, p: VmPaths) -> str | None:
        """QMP status of a live QEMU ("running", "paused", ...); None when no process runs."""
        if self._pid(p) is None:
            return None
        try:
            status = qmp.status(p.qmp)
        except qmp.QmpError:
            return "running" if self._pid(p) is not None else None  # alive but QMP busy
        if status == "paused" and (p.dir / "suspended").exists():
            return "suspended"
        return status

    def _saved(self, p: VmPaths, name: str) -> dict[str, Any]:
        try:
            return json.loads((p.dir / name).read_text())
        except (OSError, ValueError):
            return {}

    def _save(self, p: VmPaths, name: str, doc: Any) -> None:
        tmp = p.dir / (name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, p.dir / name)

    # -- the lifecycle -------------------------------------------------------------------------

    def ensure_running(self, spec: VmSpec) -> PowerState:
        with self._lock(spec.id):
            p = self.paths(spec.id)
            status = self._status(p)
            if status is not None and self._needs_restart(p, spec):
                self._shutdown(p, graceful=True)
                status = None
            if status is None:
                self._start(spec, p)
                return PowerState.PAUSED if spec.start_paused else PowerState.RUNNING
            if spec.start_paused and status in ("prelaunch", "paused"):
                return PowerState.PAUSED  # still waiting for its network: not let run yet
            with contextlib.suppress(qmp.QmpError), qmp.QmpClient(p.qmp) as q:
                if status in ("shutdown", "internal-error", "guest-panicked"):
                    q.execute("system_reset")
                if status != "running":
                    q.execute("cont")
            (p.dir / "suspended").unlink(missing_ok=True)
            return self.observe(spec.id)

    def _needs_restart(self, p: VmPaths, spec: VmSpec) -> bool:
        running = self._saved(p, "running.json")
        want = self._machine(spec)
        return bool(running) and running != want

    def _machine(self, spec: VmSpec) -> dict[str, Any]:
        """What a restart would change: CPUs, RAM, disk size, NICs, boot-time volumes."""
        machine = {"vcpus": spec.flavor.vcpus, "ram_mb": spec.flavor.ram_mb, "disk_gb": spec.flavor.disk_gb,
                   "ports": [[port.id, port.mac_address] for port in spec.ports]}
        if spec.rescue is not None:  # rescue and unrescue restart the guest on another boot disk
            r = spec.rescue
            machine["rescue"] = [r.image.id, r.stable, r.device, r.bus]
        return machine

    def _start(self, spec: VmSpec, p: VmPaths) -> None:
        p.dir.mkdir(parents=True, exist_ok=True)
        p.sockets.mkdir(parents=True, exist_ok=True)
        boot_volume = any(v.boot_index == 0 for v in spec.volumes)
        if not boot_volume:
            self._ensure_disk(spec, p)
        config_drive = False
        if spec.config_drive:
            config_drive = self._config_drive(spec, p)
        for port in spec.ports:
            bridge = cmdline.bridge_name(port.network_id)
            try:
                with self.bridges.lock:
                    self.bridges.ensure(bridge, port.mtu)
                    ip.tap_add(cmdline.tap_name(port.id), bridge, mtu=port.mtu)
            except ip.PrivilegedError as exc:
                if os.geteuid() != 0:
                    raise PermanentError(f"cannot plug port {port.id}: the compute agent needs root for taps") from exc
                raise TemporaryError(f"cannot plug port {port.id}: {exc}", delay=3.0) from exc
        rescue_disk = self._rescue_disk(spec, p)
        spice = (SPICE_ADDRESS, _free_port(SPICE_ADDRESS)) if self.spice_consoles else None
        (p.dir / "spice.json").unlink(missing_ok=True)
        argv = cmdline.build_argv(spec, p, accel=self.accel, binary=self.binary,
                                  volumes=self.with_active_files(spec.id, spec.volumes),
                                  config_drive=config_drive, vnc=self.vnc, rescue_disk=rescue_disk, spice=spice)
        for sock in (p.qmp, p.serial, p.vnc):
            sock.unlink(missing_ok=True)
        self._save(p, "spec.json", {"ports": [[port.id, port.network_id] for port in spec.ports]})
        self._save(p, "argv.json", argv)
        try:
            res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                                 check=False, cwd=p.dir, start_new_session=True)
        except FileNotFoundError as exc:
            raise PermanentError(f"{self.binary} is not installed on this compute host") from exc
        except subprocess.TimeoutExpired as exc:
            raise TemporaryError("QEMU did not start within 60 s", delay=5.0) from exc
        if res.returncode != 0 or self._pid(p) is None:
            err = (res.stderr or res.stdout).strip()[-500:]
            raise PermanentError(f"QEMU failed to start: {err or f'exit status {res.returncode}'}")
        (p.dir / "suspended").unlink(missing_ok=True)
        self._save(p, "running.json", self._machine(spec))
        if spice is not None:
            self._save(p, "spice.json", list(spice))
        log.info("compute: started %s (pid %s, %s)", spec.id, self._pid(p), self.accel)

    def _ensure_disk(self, spec: VmSpec, p: VmPaths) -> None:
        want = spec.flavor.disk_gb * GiB
        if p.disk.is_file():
            if want:
                disks.grow(p.disk, want)
            return
        if spec.image is None:
            disks.blank(p.disk, want or GiB)
            return
        base, fmt = self.images.ensure(spec.image)
        size = max(want, self.images.virtual_size(spec.image.id))
        disks.create_overlay(p.disk, base, fmt, size)

    def _rescue_disk(self, spec: VmSpec, p: VmPaths) -> Path | None:
        """The rescue disk of a rescued VM: a fresh overlay of the rescue image (the guest restarts
        on it at each rescue). Not rescued: the last rescue's disk is thrown away."""
        if spec.rescue is None:
            p.rescue_disk.unlink(missing_ok=True)
            return None
        if (self._saved(p, "running.json").get("rescue") != self._machine(spec).get("rescue")
                or not p.rescue_disk.is_file()):
            p.rescue_disk.unlink(missing_ok=True)
            base, fmt = self.images.ensure(spec.rescue.image)
            disks.create_overlay(p.rescue_disk, base, fmt, self.images.virtual_size(spec.rescue.image.id))
        return p.rescue_disk

    def _config_drive(self, spec: VmSpec, p: VmPaths) -> bool:
        doc = getattr(spec, "config_drive_doc", None)
        if not doc:
            log.warning("compute: %s asks for a config drive but the control plane sent no content", spec.id)
            return False
        try:
            from kumo.agents.compute.configdrive import build_config_drive
        except ImportError:  # pragma: no cover - the config drive builder is optional
            return False
        try:
            build_config_drive(doc, p.config_drive)
        except ValueError as exc:
            raise PermanentError(f"cannot build the config drive: {exc}") from exc
        return True

    def _wait(self, p: VmPaths, until: set[str | None], timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            status = self._status(p)
            if status in until or time.monotonic() > deadline:
                return status
            time.sleep(0.2)

    def _shutdown(self, p: VmPaths, graceful: bool) -> None:
        """End the QEMU process: ACPI power-off first when ``graceful``, then quit, then by pid."""
        status = self._status(p)
        if status is None:
            p.pidfile.unlink(missing_ok=True)
            return
        if graceful and status == "running":
            with contextlib.suppress(qmp.QmpError):
                qmp.command(p.qmp, "system_powerdown")
                self._wait(p, {"shutdown", None}, self.stop_timeout)
        with contextlib.suppress(qmp.QmpError):
            if self._pid(p) is not None:
                qmp.command(p.qmp, "quit")
        deadline = time.monotonic() + 5.0
        while self._pid(p) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.stop(p.pidfile, str(p.dir), timeout=5.0)  # SIGTERM, then SIGKILL: by pid, marker-checked

    def _unplug(self, p: VmPaths) -> None:
        ports = self._saved(p, "spec.json").get("ports", [])
        for port_id, _net in ports:
            with contextlib.suppress(ip.PrivilegedError):
                ip.link_delete(cmdline.tap_name(port_id))
        with contextlib.suppress(ip.PrivilegedError):
            for bridge in self.bridges.release({cmdline.bridge_name(net) for _port, net in ports}):
                log.info("compute: removed bridge %s (made for a guest, now without taps)", bridge)

    def ensure_stopped(self, vm_id: str) -> PowerState:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if not p.dir.is_dir():
                return PowerState.NOSTATE
            self._shutdown(p, graceful=True)
            self._unplug(p)
            (p.dir / "suspended").unlink(missing_ok=True)
            (p.dir / "running.json").unlink(missing_ok=True)
            return PowerState.SHUTDOWN

    def ensure_paused(self, vm_id: str) -> PowerState:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            status = self._status(p)
            if status is None:
                return self.observe(vm_id)
            if status in ("running", "suspended"):
                try:
                    qmp.command(p.qmp, "stop")
                except qmp.QmpError as exc:
                    raise TemporaryError(f"cannot pause: {exc}", delay=1.0) from exc
            (p.dir / "suspended").unlink(missing_ok=True)
            return PowerState.PAUSED

    def ensure_suspended(self, vm_id: str) -> PowerState:
        """Suspend = the vCPUs stopped and marked suspended (memory stays in the QEMU process)."""
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if self._status(p) is None:
                return self.observe(vm_id)
            self.ensure_paused(vm_id)
            (p.dir / "suspended").touch()
            return PowerState.SUSPENDED

    def ensure_deleted(self, vm_id: str) -> None:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if p.dir.is_dir():
                self._shutdown(p, graceful=False)
                self._unplug(p)
                shutil.rmtree(p.dir, ignore_errors=True)
            if p.sockets != p.dir:
                shutil.rmtree(p.sockets, ignore_errors=True)
        with self._guard:
            self._locks.pop(vm_id, None)

    def reboot(self, spec: VmSpec, hard: bool) -> PowerState:
        with self._lock(spec.id):
            p = self.paths(spec.id)
            status = self._status(p)
            if status is None or self._needs_restart(p, spec):
                self._shutdown(p, graceful=not hard)
                self._start(spec, p)
                return PowerState.RUNNING
            try:
                with qmp.QmpClient(p.qmp) as q:
                    if not hard and status == "running":
                        q.execute("system_powerdown")
                if not hard and status == "running":
                    self._wait(p, {"shutdown", None}, self.stop_timeout)
                with qmp.QmpClient(p.qmp) as q:
                    q.execute("system_reset")
                    if q.execute("query-status").get("status") != "running":
                        q.execute("cont")
            except qmp.QmpError as exc:
                raise TemporaryError(f"reboot failed: {exc}", delay=1.0) from exc
            (p.dir / "suspended").unlink(missing_ok=True)
            return PowerState.RUNNING

    def rebuild(self, spec: VmSpec) -> PowerState:
        """A fresh overlay from the (possibly new) image; the VM keeps its NICs and volumes."""
        with self._lock(spec.id):
            p = self.paths(spec.id)
            self._shutdown(p, graceful=True)
            p.disk.unlink(missing_ok=True)
            p.console_log.unlink(missing_ok=True)
            self._start(spec, p)
            return PowerState.RUNNING

    def observe(self, vm_id: str) -> PowerState:
        p = self.paths(vm_id)
        status = self._status(p)
        if status is None:
            return PowerState.SHUTDOWN if p.dir.is_dir() else PowerState.NOSTATE
        self._replug(p)
        return STATUS_POWER.get(status, PowerState.NOSTATE)

    def _replug(self, p: VmPaths) -> None:
        """Put a live VM's taps back on their bridges (a restarted network agent may rebuild them)."""
        for port_id, network_id in self._saved(p, "spec.json").get("ports", []):
            tap, bridge = cmdline.tap_name(port_id), cmdline.bridge_name(network_id)
            try:
                info = ip.link_info(tap)
                if info is not None and info.get("master") != bridge:
                    with self.bridges.lock:
                        self.bridges.ensure(bridge)
                        ip.tap_add(tap, bridge)
                    log.warning("compute: tap %s put back on bridge %s", tap, bridge)
            except ip.PrivilegedError as exc:
                log.warning("compute: cannot re-plug %s: %s", tap, exc)

    def list_vms(self) -> list[str]:
        if not self.instances.is_dir():
            return []
        return sorted(d.name for d in self.instances.iterdir() if d.is_dir())

    # -- consoles ------------------------------------------------------------------------------

    def console_output(self, vm_id: str, length: int | None = None) -> str:
        p = self.paths(vm_id)
        try:
            size = p.console_log.stat().st_size
            with open(p.console_log, "rb") as fh:
                fh.seek(max(0, size - CONSOLE_KEEP))
                data = fh.read()
        except OSError:
            return ""
        if size > CONSOLE_CAP:  # QEMU appends (O_APPEND): cutting the file back is safe
            with contextlib.suppress(OSError), open(p.console_log, "r+b") as fh:
                fh.truncate(0)
                fh.write(data)
        text = data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
        text = "".join(ch for ch in text if ch in "\n\t" or ch >= " ")
        lines = text.splitlines()
        if length is not None:
            lines = lines[-length:] if length > 0 else []
        return "\n".join(lines) + ("\n" if lines else "")

    def spice_address(self, vm_id: str) -> tuple[str, int] | None:
        """(address, port) of the running VM's SPICE display (spice-direct consoles), else None."""
        p = self.paths(vm_id)
        saved = p.dir / "spice.json"
        if not self.spice_consoles or self._pid(p) is None or not saved.is_file():
            return None
        host, port = json.loads(saved.read_text())
        return str(host), int(port)

    def console_socket(self, vm_id: str, kind: str) -> str | None:
        """The unix socket of the VM's ``vnc`` display or ``serial`` console (None if it does not run)."""
        p = self.paths(vm_id)
        path = {"vnc": p.vnc, "serial": p.serial}.get(kind)
        if path is None or self._pid(p) is None or not path.exists():
            return None
        return str(path)

    # -- volumes -------------------------------------------------------------------------------

    def attach_volume(self, vm_id: str, volume: VolumeSpec) -> None:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if self._pid(p) is None:
                return  # a stopped VM gets spec.volumes when it starts
            node, dev = cmdline.volume_ids(volume.volume_id)
            objects, blockdev = cmdline.volume_blockdev(self.with_active_files(vm_id, (volume,))[0])
            try:
                with qmp.QmpClient(p.qmp, timeout=15.0) as q:
                    if any(d.get("name") == dev for d in q.execute("qom-list", {"path": "/machine/peripheral"})):
                        return
                    nodes = {n.get("node-name") for n in q.execute("query-named-block-nodes")}
                    if node not in nodes:
                        for obj in objects:
                            with contextlib.suppress(qmp.QmpError):
                                q.execute("object-add", obj)
                        q.execute("blockdev-add", blockdev)
                    q.execute("device_add", cmdline.volume_device(volume))
            except qmp.QmpError as exc:
                raise PermanentError(f"attaching volume {volume.volume_id} failed: {exc}") from exc

    def detach_volume(self, vm_id: str, volume_id: str) -> None:
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if self._pid(p) is None:
                return
            node, dev = cmdline.volume_ids(volume_id)
            try:
                with qmp.QmpClient(p.qmp, timeout=15.0) as q:
                    present = any(d.get("name") == dev for d in q.execute("qom-list", {"path": "/machine/peripheral"}))
                    if present:
                        with contextlib.suppress(qmp.QmpError):
                            q.execute("device_del", {"id": dev})
                        if q.wait_event("DEVICE_DELETED", lambda e: e.get("data", {}).get("device") == dev,
                                        timeout=60.0) is None:
                            since = self._detaching.setdefault((vm_id, volume_id), time.monotonic() - 60.0)
                            if time.monotonic() - since >= DETACH_GIVE_UP:
                                self._detaching.pop((vm_id, volume_id), None)
                                raise PermanentError(f"Device detach failed for {volume_id}: the guest did not "
                                                     f"release it within {DETACH_GIVE_UP:g} s")
                            raise TemporaryError(f"the guest has not released volume {volume_id} yet", delay=2.0)
                    self._detaching.pop((vm_id, volume_id), None)
                    self.release_overlays(q, vm_id, volume_id)  # assisted snapshots' overlays over the node
                    nodes = {n.get("node-name") for n in q.execute("query-named-block-nodes")}
                    if node in nodes:  # its inline children (format, throttle's file) go with it
                        q.execute("blockdev-del", {"node-name": node})
                    with contextlib.suppress(qmp.QmpError):
                        q.execute("object-del", {"id": f"tg{node[3:]}"})
            except qmp.QmpError as exc:
                raise TemporaryError(f"detaching volume {volume_id} failed: {exc}", delay=2.0) from exc

    def attached_volumes(self, vm_id: str) -> list[str]:
        """Volume ids plugged into the running VM (from QEMU itself)."""
        p = self.paths(vm_id)
        if self._pid(p) is None:
            return []
        with qmp.QmpClient(p.qmp) as q:
            names = [d.get("name", "") for d in q.execute("qom-list", {"path": "/machine/peripheral"})]
        return sorted(n[4:] for n in names if n.startswith("vol-"))

    # -- snapshots -----------------------------------------------------------------------------

    def snapshot_to(self, vm_id: str, dest: Path) -> Path:
        """The root disk (overlay and base merged) as a compressed qcow2 at ``dest``; the VM is
        paused while it is copied so the copy is consistent."""
        with self._lock(vm_id):
            p = self.paths(vm_id)
            if not p.disk.is_file():
                raise PermanentError(f"server {vm_id} has no local root disk to snapshot")
            paused = False
            if self._status(p) == "running":
                with contextlib.suppress(qmp.QmpError):
                    qmp.command(p.qmp, "stop")
                    paused = True
            try:
                return disks.flatten(p.disk, Path(dest))
            finally:
                if paused:
                    with contextlib.suppress(qmp.QmpError):
                        qmp.command(p.qmp, "cont")

    def snapshot(self, vm_id: str) -> bytes:
        with tempfile.TemporaryDirectory(prefix="kumo-snap-", dir=self.root) as tmp:
            return self.snapshot_to(vm_id, Path(tmp) / "snapshot.qcow2").read_bytes()

    def machine_info(self, vm_id: str) -> dict[str, Any]:
        """Diagnostics for tests and operators: pid, QMP status, files (never shown by the API)."""
        p = self.paths(vm_id)
        return {"pid": self._pid(p), "status": self._status(p), "dir": str(p.dir), "qmp": str(p.qmp),
                "argv": self._saved(p, "argv.json") or None}


def from_settings(settings: Any, cloud: str = "kumo-admin") -> QemuDriver:
    """The driver of this host's compute agent: images fetched with the credentials of ``cloud`` in
    the data dir's clouds.yaml (a joined node's is ``kumo-node``)."""
    clouds = Path(settings.data_dir) / "clouds.yaml"
    fetch = disks.PasswordFetcher.from_clouds_yaml(clouds, cloud=cloud) if clouds.is_file() else None
    from kumo.agents.network.config import AgentSettings  # the host's network agent: its ledger of bridges

    agent_state = AgentSettings.from_settings(settings).state
    return QemuDriver(Path(settings.data_dir) / "compute", fetch, accel=settings.compute.accel,
                      stop_timeout=settings.compute.shutdown_timeout, network_ledger=Path(agent_state) / "owned.json",
                      spice=settings.compute.spice_enabled)
