"""A small synchronous QMP client over a unix socket (one connection per exchange).

QMP is line-delimited JSON: a greeting, then ``qmp_capabilities``, then commands whose
replies carry ``return`` or ``error``; asynchronous ``event`` messages may arrive at any
time and are kept for :meth:`QmpClient.wait_event`.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class QmpError(Exception):
    """QEMU refused a command (``error`` reply) or the socket failed."""

    def __init__(self, message: str, klass: str = "") -> None:
        super().__init__(message)
        self.klass = klass


class QmpClient:
    def __init__(self, path: Path | str, timeout: float = 5.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def __enter__(self) -> QmpClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise QmpError(f"cannot connect to QMP at {self.path}: {exc}") from exc
        self._sock = sock
        greeting = self._read_message(time.monotonic() + self.timeout)
        if "QMP" not in greeting:
            raise QmpError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _read_message(self, deadline: float) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QmpError("timed out waiting for QEMU")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as exc:
                raise QmpError("timed out waiting for QEMU") from exc
            except OSError as exc:
                raise QmpError(f"QMP socket failed: {exc}") from exc
            if not chunk:
                raise QmpError("QEMU closed the QMP connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            msg = json.loads(line)
        except ValueError as exc:
            raise QmpError(f"bad QMP message: {line[:200]!r}") from exc
        return msg if isinstance(msg, dict) else {}

    def execute(self, command: str, arguments: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        if self._sock is None:
            raise QmpError("not connected")
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as exc:
            raise QmpError(f"QMP socket failed: {exc}") from exc
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QmpError(f"{command}: {err.get('desc', err)}", err.get("class", ""))
            if "return" in reply:
                return reply["return"]

    def wait_event(self, name: str, match: Callable[[dict[str, Any]], bool] = lambda _e: True,
                   timeout: float = 10.0) -> dict[str, Any] | None:
        """The first event ``name`` satisfying ``match`` (already received or arriving); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("event") == name and match(ev):
                    return self.events.pop(i)
            try:
                msg = self._read_message(deadline)
            except QmpError:
                return None
            if "event" in msg:
                self.events.append(msg)


def status(path: Path | str, timeout: float = 3.0) -> str:
    """``query-status``'s ``status`` (running, paused, shutdown, internal-error, ...)."""
    with QmpClient(path, timeout) as q:
        return str(q.execute("query-status").get("status", ""))


def command(path: Path | str, name: str, arguments: dict[str, Any] | None = None, timeout: float = 5.0) -> Any:
    with QmpClient(path, timeout) as q:
        return q.execute(name, arguments)
