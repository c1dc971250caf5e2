"""Child processes kumo starts (dnsmasq, metadata proxies): start, signal, stop — by pid file.

A pid is only ever signalled when ``/proc/<pid>/cmdline`` still contains the marker the
process was started with (its state directory), so a recycled pid is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from kumo.privileged.cmd import CommandError, in_netns

_CHILDREN: dict[int, subprocess.Popen] = {}  # started by this process: reaped here


def _reap() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def pid_of(pidfile: Path, marker: str) -> int | None:
    """The live pid recorded in ``pidfile`` whose command line contains ``marker``."""
    _reap()
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    if marker not in cmdline or state == "Z":
        return None
    return pid


def start(argv: list[str], pidfile: Path, marker: str, *, netns: str | None = None, log: Path | None = None,
          env: dict[str, str] | None = None) -> int:
    """Start ``argv`` (in ``netns``) in its own session unless already running; record its pid."""
    pid = pid_of(pidfile, marker)
    if pid is not None:
        return pid
    if marker not in " ".join(argv):
        raise CommandError(argv, -1, f"marker {marker!r} must appear in the command line")
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(in_netns(netns, argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True, env=env)
    except FileNotFoundError as exc:
        raise CommandError(argv, 127, f"command not found: {exc.filename}") from exc
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    _CHILDREN[proc.pid] = proc
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def signal_process(pidfile: Path, marker: str, sig: int = signal.SIGHUP) -> bool:
    pid = pid_of(pidfile, marker)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    return True


def stop(pidfile: Path, marker: str, timeout: float = 5.0) -> None:
    """SIGTERM the recorded process, SIGKILL after ``timeout``; remove the pid file."""
    pid = pid_of(pidfile, marker)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_of(pidfile, marker) is not None and time.monotonic() < deadline:
            proc = _CHILDREN.get(pid)
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.05)
            else:
                time.sleep(0.05)
        if pid_of(pidfile, marker) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            proc = _CHILDREN.get(pid)
            if proc is not None:
                proc.wait(timeout)
    _reap()
    pidfile.unlink(missing_ok=True)
