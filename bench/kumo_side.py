"""kumo, started the way a user starts it (``kumo up``), for a side-by-side benchmark."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from procs import free_port, rss_mb, start, stop, wait_idle, wait_ready

REPO = Path(__file__).resolve().parent.parent
DEFAULT_KUMO = REPO / ".venv" / "bin" / "kumo"


class Kumo:
    name = "kumo"
    identity_path = "/identity/v3"
    ready_path = "/identity/v3"

    def __init__(
        self,
        *,
        workers: int = 1,
        rounds: int = 4,
        password: str = "bench-Admin-pw-1",
        kumo_bin: Path = DEFAULT_KUMO,
        log=print,
    ):
        if not Path(kumo_bin).exists():
            raise FileNotFoundError(f"{kumo_bin} not found: install kumo first (make dev / install.sh)")
        self.workers, self.rounds, self.password = workers, rounds, password
        self.bin, self.log = Path(kumo_bin), log
        self.dir: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.ready_s = 0.0
        self.username, self.project, self.domain_id = "admin", "admin", "default"
        self.version = (
            subprocess.run(
                [str(self.bin), "version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            or "?"
        )

    def _env(self) -> dict[str, str]:
        # PYTHONDONTWRITEBYTECODE (set on this sandbox) would make every start
        # recompile kumo from source; a normal install caches bytecode.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KUMO_", "OS_", "VIRTUAL_ENV", "PYTHON"))
        }
        env["KUMO_IDENTITY__PASSWORD_HASH_ROUNDS"] = str(self.rounds)
        return env

    def start(self, fresh: bool = True) -> float:
        """Start ``kumo up``; returns seconds from process start to the first 200 from identity."""
        if fresh or self.dir is None:
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = Path(tempfile.mkdtemp(prefix="bench-kumo-"))
            self.port = free_port()
        argv = [
            str(self.bin),
            "up",
            "--data-dir",
            str(self.dir / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--admin-password",
            self.password,
            "--workers",
            str(self.workers),
        ]
        log = self.dir / "kumo.log"
        t0 = time.perf_counter()
        self.proc = start(argv, env=self._env(), cwd=str(self.dir), log=log)
        self.ready_s = wait_ready(self.proc, self.port, self.ready_path, t0, timeout=60, log=log)
        return self.ready_s

    def idle_rss_mb(self) -> tuple[float, int]:
        assert self.proc is not None
        wait_idle(self.proc.pid)
        return rss_mb(self.proc.pid)

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def describe(self) -> str:
        return f"kumo {self.version} (`kumo up --workers {self.workers}`), SQLite, fernet tokens"

    def __enter__(self) -> Kumo:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()
