"""Upstream OpenStack Keystone, set up and run for a side-by-side benchmark.

Single-node configuration as keystone's install guide describes it: SQL
backend (SQLite in a temp dir here), fernet tokens with a key repository made
by ``keystone-manage fernet_setup``, credential keys by ``credential_setup``,
``db_sync`` and ``bootstrap``; served by uWSGI (the WSGI container keystone's
docs and devstack use) with W worker processes of one thread each on
127.0.0.1.  No cache backend is configured (the install guide sets none, and
there is no memcached here); ``cache="memory"`` turns on oslo.cache's
in-process dogpile memory backend for a what-if run.

All of it lives in a temp dir that is removed on stop; nothing touches kumo.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from procs import free_port, rss_mb, start, stop, wait_idle, wait_ready

from upstream.venv import ensure_venv

# uWSGI front ends that can be compared with --keystone-http:
#   socket: plain --http-socket in each worker, one connection per request (default)
#   router: uWSGI's HTTP router process with --http-keepalive in front of the workers
#   http11: --http11-socket keep-alive in each worker.  Unusable with one-thread
#           workers: a kept-alive connection holds its worker, so other clients
#           stall until it times out (measured: p99 of 50 s and dropped requests).
HTTP_MODES = ("socket", "router", "http11")


class Keystone:
    name = "keystone"
    identity_path = "/v3"  # identity API root on this server
    ready_path = "/v3"

    def __init__(
        self,
        *,
        workers: int = 1,
        rounds: int = 4,
        password: str = "bench-Admin-pw-1",
        cache: str | None = None,
        http_mode: str = "socket",
        log=print,
    ):
        if http_mode not in HTTP_MODES:
            raise ValueError(f"http_mode must be one of {HTTP_MODES}")
        self.workers, self.rounds, self.password = workers, rounds, password
        self.cache, self.http_mode, self.log = cache, http_mode, log
        self.venv = ensure_venv("keystone", "requirements-keystone.txt", "constraints-keystone.txt", log=log)
        self.bin = self.venv / "bin"
        self.dir: Path | None = None
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.setup_s = self.ready_s = 0.0
        self.version = subprocess.run(
            [
                str(self.bin / "python"),
                "-c",
                "import importlib.metadata as m;print(m.version('keystone'), m.version('uWSGI'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        self.username, self.project, self.domain_id = "admin", "admin", "default"

    # -- setup ---------------------------------------------------------------

    def _conf(self) -> str:
        d = self.dir
        cache = ""
        if self.cache:
            cache = f"\n[cache]\nenabled = true\nbackend = dogpile.cache.{self.cache}\n"
        return f"""\
[DEFAULT]
log_dir = {d}
log_file = keystone.log

[database]
connection = sqlite:///{d}/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = {d}/fernet-keys

[credential]
key_repository = {d}/credential-keys

[identity]
password_hash_algorithm = bcrypt
password_hash_rounds = {self.rounds}
{cache}"""

    def _manage(self, *args: str) -> None:
        assert self.dir is not None
        proc = subprocess.run(
            [str(self.bin / "keystone-manage"), "--config-file", str(self.dir / "keystone.conf"), *args],
            cwd=self.dir,
            env=self._env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"keystone-manage {args[0]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "VIRTUAL_ENV", "PYTHON"))}
        env.update(
            OS_KEYSTONE_CONFIG_DIR=str(self.dir),
            PYTHONWARNINGS="ignore",
            PATH=f"{self.bin}:{env.get('PATH', '')}",
        )
        return env

    def setup(self) -> None:
        t0 = time.perf_counter()
        self.dir = Path(tempfile.mkdtemp(prefix="bench-keystone-"))
        self.port = free_port()
        for sub in ("fernet-keys", "credential-keys"):
            (self.dir / sub).mkdir(mode=0o700)
        (self.dir / "keystone.conf").write_text(self._conf())
        owner = ["--keystone-user", str(os.getuid()), "--keystone-group", str(os.getgid())]
        with ThreadPoolExecutor(3) as ex:  # independent steps; bootstrap needs all three
            for f in [
                ex.submit(self._manage, "db_sync"),
                ex.submit(self._manage, "fernet_setup", *owner),
                ex.submit(self._manage, "credential_setup", *owner),
            ]:
                f.result()
        url = f"http://127.0.0.1:{self.port}/v3"
        self._manage(
            "bootstrap",
            "--bootstrap-password",
            self.password,
            "--bootstrap-username",
            self.username,
            "--bootstrap-project-name",
            self.project,
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
            "--bootstrap-region-id",
            "RegionOne",
        )
        self.setup_s = time.perf_counter() - t0

    def _uwsgi_ini(self) -> str:
        addr = f"127.0.0.1:{self.port}"
        front = {
            "http11": f"http11-socket = {addr}",
            "socket": f"http-socket = {addr}",
            "router": f"http = {addr}\nhttp-keepalive = true\nhttp-auto-chunked = true",
        }[self.http_mode]
        # Settings follow devstack's uwsgi config for keystone (master, N processes,
        # lazy apps, thunder lock, die on term), minus request logging.
        return f"""\
[uwsgi]
{front}
module = keystone.wsgi.api:application
virtualenv = {self.venv}
chdir = {self.dir}
env = OS_KEYSTONE_CONFIG_DIR={self.dir}
env = PYTHONWARNINGS=ignore
master = true
processes = {self.workers}
threads = 1
enable-threads = true
lazy-apps = true
thunder-lock = true
die-on-term = true
exit-on-reload = false
buffer-size = 65535
listen = 128
disable-logging = true
"""

    # -- run -----------------------------------------------------------------

    def start(self) -> None:
        if self.dir is None:
            self.setup()
        assert self.dir is not None
        ini = self.dir / "uwsgi.ini"
        ini.write_text(self._uwsgi_ini())
        log = self.dir / "uwsgi.log"
        t0 = time.perf_counter()
        self.proc = start(
            [str(self.bin / "uwsgi"), "--ini", str(ini)], env=self._env(), cwd=str(self.dir), log=log
        )
        self.ready_s = wait_ready(self.proc, self.port, self.ready_path, t0, timeout=90, log=log)
        # lazy-apps: each worker loads keystone on its own; a worker only counts as
        # ready once it answered, so touch the API until all workers are warm.
        for _ in range(self.workers * 3):
            wait_ready(self.proc, self.port, self.ready_path, t0, timeout=90, log=log)

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
        return (
            f"keystone {self.version[0]} under uWSGI {self.version[1]} ({self.http_mode}), "
            f"{self.workers} process(es) x 1 thread, SQLite, fernet tokens, "
            f"cache {'dogpile.cache.' + self.cache if self.cache else 'off'}"
        )

    def __enter__(self) -> Keystone:
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()
