"""The fake driver's consoles: real unix sockets speaking just enough of each protocol.

``serial``: a banner and a ``login:`` prompt, then every byte echoed back (a terminal in
raw mode would look the same). ``vnc``: an RFB 3.8 (or 3.3) server with no authentication
that completes the handshake and announces a 640x480 desktop named after the VM, then
ignores what the client sends. Enough for the websocket proxy, noVNC and Tempest's
handshake checks to exercise real bytes without a hypervisor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import struct
import tempfile
import threading
import weakref
from pathlib import Path

WIDTH, HEIGHT = 640, 480
# 32 bpp, depth 24, little-endian, true colour, 8 bits per channel at shifts 16/8/0
PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return buf


def _serve_serial(sock: socket.socket, name: str) -> None:
    sock.sendall(f"\r\nkumo fake serial console of {name}\r\n{name} login: ".encode())
    while data := sock.recv(4096):
        sock.sendall(data)


def _serve_vnc(sock: socket.socket, name: str) -> None:
    sock.sendall(b"RFB 003.008\n")
    version = _recv_exact(sock, 12)
    if version.startswith(b"RFB 003.003"):
        sock.sendall(struct.pack(">I", 1))  # 3.3: the server picks security type None
    else:
        sock.sendall(bytes((1, 1)))  # one security type: None
        if _recv_exact(sock, 1) != b"\x01":
            return
        sock.sendall(struct.pack(">I", 0))  # SecurityResult OK
    _recv_exact(sock, 1)  # ClientInit (shared flag)
    desktop = f"kumo fake {name}".encode()
    sock.sendall(struct.pack(">HH", WIDTH, HEIGHT) + PIXEL_FORMAT + struct.pack(">I", len(desktop)) + desktop)
    while sock.recv(4096):
        pass


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            if self.server.kind == "vnc":
                _serve_vnc(self.request, self.server.vm_name)
            else:
                _serve_serial(self.request, self.server.vm_name)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, kind: str, vm_name: str) -> None:
        self.kind, self.vm_name = kind, vm_name
        super().__init__(path, _Handler)


def _sweep_dead() -> None:
    """Remove socket dirs left by fake drivers whose process was killed (kumo-fc-<pid>-*)."""
    for stale in Path(tempfile.gettempdir()).glob("kumo-fc-*-*"):
        pid = stale.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)


class FakeConsoles:
    """One listening socket per (VM, kind), started on first use, under a short temp dir."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._servers: dict[tuple[str, str], _Server] = {}
        self._dir: Path | None = None
        self._finalizer: weakref.finalize | None = None

    def socket_path(self, vm_id: str, kind: str, vm_name: str) -> str:
        if kind not in ("vnc", "serial"):
            raise ValueError(f"unknown console kind {kind!r}")
        with self._lock:
            server = self._servers.get((vm_id, kind))
            if server is None:
                if self._dir is None:  # unix socket paths are short: not under a deep data dir
                    _sweep_dead()
                    self._dir = Path(tempfile.mkdtemp(prefix=f"kumo-fc-{os.getpid()}-"))
                    self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)
                path = self._dir / f"{vm_id}.{kind}"
                path.unlink(missing_ok=True)
                server = _Server(str(path), kind, vm_name)
                threading.Thread(target=server.serve_forever, name=f"fake-{kind}-{vm_id[:8]}", daemon=True).start()
                self._servers[(vm_id, kind)] = server
            return str(server.server_address)

    def stop(self, vm_id: str) -> None:
        with self._lock:
            servers = [self._servers.pop(k) for k in list(self._servers) if k[0] == vm_id]
        for server in servers:
            server.shutdown()
            server.server_close()
            Path(str(server.server_address)).unlink(missing_ok=True)

    def close(self) -> None:
        for vm_id in {k[0] for k in list(self._servers)}:
            self.stop(vm_id)
        if self._finalizer is not None:
            self._finalizer()
