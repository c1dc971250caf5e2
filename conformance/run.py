#!/usr/bin/env python3
"""kumo Tempest conformance harness.

    python3 conformance/run.py --services identity[,image,...]
        [--cloud-config PATH --cloud NAME] [--kumo CMD] [--results-dir DIR]
        [--baseline conformance/baseline.json --gate] [--update-baseline]
        [--concurrency 2] [--regex EXTRA] [--exclude-regex RE] [--set SECTION.KEY=VALUE]
    python3 conformance/run.py --smoke            # openstack CLI smoke path on a fresh kumo

Steps: ensure conformance/.venv -> start a fresh all-in-one kumo (unless
--cloud-config) -> write tempest.conf from the live cloud -> tempest run
--subunit -> summarize the subunit stream -> results/latest.{md,json} ->
optional gate against baseline.json -> stop kumo and remove temp dirs.

This driver uses the python3 standard library only; steps that need
third-party packages run with the venv's python.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import tempest_conf  # noqa: E402  (stdlib-only sibling module)
from report import (  # noqa: E402  (stdlib-only sibling module)
    attach_failed_requests,
    gate,
    group_failures,
    interop_status,
    render_markdown,
    server_errors,
    update_baseline,
)

SERVICES = ("identity", "compute", "image", "network", "volume", "object_storage")
SERVICE_ALIASES = {
    "keystone": "identity",
    "nova": "compute",
    "glance": "image",
    "neutron": "network",
    "cinder": "volume",
    "block-storage": "volume",
    "block_storage": "volume",
    "swift": "object_storage",
    "object-store": "object_storage",
    "object_store": "object_storage",
    "object-storage": "object_storage",
}
READY_TIMEOUT = 60

# Security compliance for the fresh kumo this harness starts, as a DevStack gate configures
# keystone for Tempest: keystone.conf [security_compliance] lockout_failure_attempts=2,
# lockout_duration=5, unique_last_password_count=2, minimum_password_age=0 (the values of
# tempest's own [identity] user_lockout_failure_attempts / user_lockout_duration /
# user_unique_last_password_count / user_minimum_password_age defaults). kumo's own defaults
# stay Keystone's (all disabled); only the harness's kumo gets these, as environment variables.
# tempest_conf.py probes the lockout (and measures attempts/duration), but the password
# history count and minimum age cannot be probed cheaply, so the same values are passed to
# tempest.conf as SECTION.KEY=VALUE lines (KUMO_TEMPEST_SETS, applied like --set, before
# the command line's own --set).
# Keep the two tables in step.
KUMO_ENV = {
    "KUMO_IDENTITY__LOCKOUT_FAILURE_ATTEMPTS": "2",
    "KUMO_IDENTITY__LOCKOUT_DURATION": "5",
    "KUMO_IDENTITY__UNIQUE_LAST_PASSWORD_COUNT": "2",
    "KUMO_IDENTITY__MINIMUM_PASSWORD_AGE": "0",
    # Tempest's web-download test fetches an image this harness serves from the cloud's own
    # object storage on 127.0.0.1 (tempest_conf.seed_web_image), which kumo refuses by default.
    "KUMO_IMAGE__WEB_DOWNLOAD_ALLOW_HOSTS": '["127.0.0.1"]',
    # As DevStack's glance jobs for the location tests: image bodies list their locations.
    "KUMO_IMAGE__SHOW_MULTIPLE_LOCATIONS": "true",
    # Store weights (as the tempest-glance-store-weight job), in the order Tempest's other
    # multi-store waiters expect (they compare an image's stores sorted by name).
    "KUMO_IMAGE__STORE_WEIGHTS": '{"file": 100, "swift": 50}',
    # SPICE displays for spice-direct consoles (2.99) when the harness runs real QEMU guests
    "KUMO_COMPUTE__SPICE_ENABLED": "true",
    # Tempest's API tests (run_validation = false) never send traffic into guests, so the
    # harness's kumo runs the fake network and compute drivers: hundreds of short-lived
    # networks need no bridges or dnsmasq, and the run leaves nothing on the host.
    # tests/e2e exercise the real data plane. Override with KUMO_CONFORMANCE_DRIVERS=real.
    **(
        {}
        if os.environ.get("KUMO_CONFORMANCE_DRIVERS") == "real"
        # two fake compute hosts (compute.fake_hosts): Tempest's multinode tests (cold and live
        # migration, scheduling across hosts) run instead of skipping on "Less than 2 compute nodes"
        else {"KUMO_NETWORK_AGENT__DRIVER": "fake", "KUMO_COMPUTE__DRIVER": "fake", "KUMO_COMPUTE__FAKE_HOSTS": "2"}
    ),
}
KUMO_TEMPEST_SETS = [
    "identity.user_lockout_failure_attempts=2",
    "identity.user_lockout_duration=5",
    "identity.user_unique_last_password_count=2",
    "identity.user_minimum_password_age=0",
    # kumo's compute implements resize (confirm/revert) on its single host; no API reveals it.
    "compute-feature-enabled.resize=true",
    # kumo's compute live-migrates (block and volume-backed) between the harness's two fake hosts
    # (the qemu driver refuses migrations: its disks are host-local), and its scheduler honours the
    # same_host / different_host hints besides the server-group ones (kumo.compute.scheduler)
    "compute-feature-enabled.block_migration_for_live_migration=true",
    "compute-feature-enabled.volume_backed_live_migration=true",
    "compute-feature-enabled.scheduler_enabled_filters=AvailabilityZoneFilter,ComputeFilter,ImagePropertiesFilter,"
    "ServerGroupAntiAffinityFilter,ServerGroupAffinityFilter,SameHostFilter,DifferentHostFilter",
    # rescue boots the rescue image, also as a stable device (2.87, hw_rescue_device/hw_rescue_bus);
    # personality files (below 2.57) reach the guest through the metadata service and config drive
    "compute-feature-enabled.stable_rescue=true",
    "compute-feature-enabled.personality=true",
    # spice-direct consoles (2.99): the fake driver offers SPICE, and the harness turns it on for QEMU
    # (KUMO_COMPUTE__SPICE_ENABLED above: ticketless, on 127.0.0.1 only)
    "compute-feature-enabled.spice_console=true",
    # block storage extends in-use volumes (3.42) and compute grows the guest's disk (volume-extended)
    "volume-feature-enabled.extend_attached_volume=true",
]
STOP_GRACE = 15
SMOKE_CLEANUP_GRACE = 90  # smoke.sh deletes what it created when it gets SIGTERM


class HarnessError(RuntimeError):
    """A failure of the harness itself (not of a test)."""


class Interrupted(BaseException):
    """SIGTERM/SIGHUP received: unwind through the finally blocks."""


def log(msg: str) -> None:
    print(f"[conformance] {msg}", flush=True)


# --------------------------------------------------------------------------- venv


def requirements_stamp(requirements: Path) -> str:
    h = hashlib.sha256()
    h.update(requirements.read_bytes())
    h.update(f"\n{os.path.realpath(sys.executable)}\n{sys.version}".encode())
    return h.hexdigest()


def ensure_venv(venv: Path, requirements: Path) -> Path:
    """Create or refresh the venv from requirements.txt; return its python.

    A stamp file (hash of requirements.txt and of this interpreter) skips the
    install when nothing changed.  An existing venv is updated in place (pip
    install -r); only an unusable default venv is removed and recreated.  A lock
    file serializes concurrent runs.
    """
    import fcntl  # noqa: PLC0415 - POSIX only, like the rest of the harness

    py = venv / "bin" / "python"
    stamp_file = venv / ".requirements.sha256"
    want = requirements_stamp(requirements)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if py.exists() and stamp_file.exists() and stamp_file.read_text().strip() == want:
            log(f"venv {venv} is up to date")
            return py
        usable = py.exists() and subprocess.run([str(py), "-c", "pass"], capture_output=True).returncode == 0
        if venv.exists() and not usable:
            if venv != (HERE / ".venv").resolve():
                raise HarnessError(
                    f"{venv} exists but has no working python; remove it or pass another --venv"
                )
            log(f"{venv} is unusable: recreating it")
            shutil.rmtree(venv)
        if not venv.exists():
            log(f"creating venv {venv} with {sys.executable}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        log(f"installing {requirements.name} into {venv}")
        pip_log = venv / "pip-install.log"
        with open(pip_log, "wb") as fh:
            rc = subprocess.run(
                [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
                stdout=fh,
                stderr=subprocess.STDOUT,
            ).returncode
        if rc != 0:
            sys.stderr.write(pip_log.read_text(errors="replace")[-6000:])
            raise HarnessError(f"pip install -r {requirements} failed (exit {rc}); log: {pip_log}")
        stamp_file.write_text(want + "\n")
        return py


def venv_bin(py: Path, name: str) -> str:
    return str(py.parent / name)


# --------------------------------------------------------------------------- processes


class Proc:
    """A child started in its own process group, stopped by its pid/pgid only."""

    def __init__(
        self, argv: list[str], log_path: Path, cwd: Path | None = None, env: dict | None = None, stdout=None
    ):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv,
            cwd=str(cwd) if cwd else None,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else self._log,
            stderr=self._log,
            start_new_session=True,  # own process group: pgid == pid
        )
        self.pid = self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, grace: float = STOP_GRACE) -> int | None:
        if self.running():
            self._signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"pid {self.pid} did not stop within {grace:.0f}s: SIGKILL")
                self._signal_group(signal.SIGKILL)
                self.popen.wait(timeout=10)
        # children left in the group after the leader exited
        self._signal_group(signal.SIGKILL) if _group_alive(self.pid) else None
        with contextlib.suppress(Exception):
            self._log.close()
        return self.popen.returncode


def _alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str, timeout: float = 3) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, OSError):
        return 0


class Kumo:
    """A fresh all-in-one kumo in a temp data dir."""

    def __init__(self, kumo_cmd: str | None, tmp_root: Path, results_dir: Path):
        self.data_dir = Path(tempfile.mkdtemp(prefix="kumo-data-", dir=tmp_root))
        self.port = free_port()
        prefix = shlex.split(kumo_cmd) if kumo_cmd else [str(REPO / ".venv" / "bin" / "kumo")]
        self.argv = prefix + [
            "up",
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.log_path = results_dir / "kumo.log"
        self.proc: Proc | None = None

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    def start(self) -> None:
        if not Path(self.argv[0]).exists() and not shutil.which(self.argv[0]):
            raise HarnessError(f"kumo command not found: {self.argv[0]} (install kumo or pass --kumo)")
        self.log_path.write_bytes(b"")
        log(f"starting kumo: {shlex.join(self.argv)}")
        env = {**os.environ, **KUMO_ENV}
        self.proc = Proc(self.argv, self.log_path, cwd=REPO, env=env)
        url = f"http://127.0.0.1:{self.port}/identity/v3"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if not self.proc.running():
                self._dump_log()
                raise HarnessError(f"kumo exited early with status {self.proc.popen.returncode}")
            if http_status(url) == 200 and self.clouds_yaml.exists():
                log(f"kumo ready on port {self.port} (pid {self.proc.pid})")
                return
            time.sleep(0.5)
        self._dump_log()
        raise HarnessError(f"kumo not ready after {READY_TIMEOUT}s (GET {url} != 200 or no clouds.yaml)")

    def _dump_log(self) -> None:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        sys.stderr.write(
            f"----- kumo log ({self.log_path}) -----\n{text[-20000:]}\n----- end of kumo log -----\n"
        )

    def stop(self) -> None:
        if self.proc is not None:
            rc = self.proc.stop()
            log(f"kumo stopped (exit status {rc})")
            self.proc = None
        self.stop_guests()

    def stop_guests(self) -> None:
        """QEMU guests outlive kumo by design (a restart re-adopts them): with the real drivers,
        the guests Tempest did not delete (an interrupted run) are ended here, by the pid files in
        this run's data dir, and their taps removed."""
        for vm in sorted((self.data_dir / "compute" / "instances").glob("*/qemu.pid")):
            with contextlib.suppress(OSError, ValueError):
                pid = int(vm.read_text().strip())
                if vm.parent.name.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
                    continue  # the pid was reused: not our guest
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)
                log(f"stopped QEMU guest {vm.parent.name} (pid {pid}) left by the run")
            with contextlib.suppress(OSError, ValueError):
                ports = json.loads((vm.parent / "spec.json").read_text()).get("ports", [])
                for port_id, _net in ports:  # the QEMU driver's taps: ktap-<port id[:10]>
                    subprocess.run(["ip", "link", "delete", f"ktap-{port_id[:10]}"], capture_output=True, check=False)


# --------------------------------------------------------------------------- helpers


def parse_services(text: str) -> list[str]:
    out = []
    for raw in text.split(","):
        name = raw.strip().lower()
        if not name:
            continue
        name = SERVICE_ALIASES.get(name, name)
        if name not in SERVICES:
            raise SystemExit(f"unknown service {raw!r}; choose from {', '.join(SERVICES)}")
        if name not in out:
            out.append(name)
    return out


def build_regex(services: list[str], extra: str | None) -> str:
    groups = "|".join(services)
    base = rf"tempest\.api\.({groups})\."
    if extra:
        return rf"^(?=.*(?:{extra})){base}"
    return "^" + base


def load_clouds(py: Path, path: Path) -> dict:
    code = "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    out = subprocess.run([str(py), "-c", code, str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit = out.stdout.strip() or "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "kumo"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_version(py: Path, name: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({name!r}))"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


# --------------------------------------------------------------------------- main steps


def write_tempest_conf(
    py: Path,
    workspace: Path,
    clouds_file: Path,
    admin_cloud: str,
    overrides: list[str],
    results_dir: Path,
    harness_settings: list[str] | None = None,
) -> tempest_conf.GeneratedConf:
    clouds = load_clouds(py, clouds_file)
    conf = tempest_conf.generate(
        clouds,
        admin_cloud=admin_cloud,
        overrides=overrides,
        log_file=str(workspace / "tempest.log"),
        harness_settings=harness_settings,
    )
    (workspace / "etc" / "tempest.conf").write_text(conf.render())
    (results_dir / "tempest.conf").write_text(conf.render(redact=True))
    avail = ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in conf.services_available.items())
    log(f"tempest.conf written ({avail})")
    return conf


def run_tempest(
    py: Path,
    workspace: Path,
    regex: str,
    exclude: str | None,
    concurrency: int,
    stream_path: Path,
    results_dir: Path,
    test_timeout: int,
    run_timeout: int,
) -> None:
    argv = [venv_bin(py, "tempest"), "run", "--subunit", "--concurrency", str(concurrency), "--regex", regex]
    if exclude:
        argv += ["--exclude-regex", exclude]
    env = dict(os.environ)
    env["OS_TEST_TIMEOUT"] = str(test_timeout)
    env.pop("OS_CLOUD", None)
    env.pop("OS_CLIENT_CONFIG_FILE", None)
    log(f"running: {shlex.join(argv)}")
    with open(stream_path, "wb") as stream:
        proc = Proc(argv, results_dir / "tempest-run.log", cwd=workspace, env=env, stdout=stream)
        try:
            proc.popen.wait(timeout=run_timeout)
        except subprocess.TimeoutExpired:
            log(f"tempest run exceeded {run_timeout}s: stopping it (results so far are kept)")
        finally:
            proc.stop()
    log(f"tempest run finished (exit status {proc.popen.returncode}; judged from the stream, not this)")


def summarize(py: Path, stream_path: Path, out: Path) -> dict:
    subprocess.run([str(py), str(HERE / "summarize.py"), str(stream_path), "--out", str(out)], check=True)
    return json.loads(out.read_text())


def run_smoke(py: Path, clouds_file: Path, cloud: str, art: Path, results_dir: Path) -> int:
    env = dict(os.environ)
    env["OS_CLIENT_CONFIG_FILE"] = str(clouds_file)
    env["OS_CLOUD"] = cloud
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    log_path = art / "smoke.log"
    log(f"running smoke.sh against cloud {cloud} (log: {results_dir / 'smoke.log'})")
    with open(log_path, "wb") as fh:
        proc = subprocess.Popen(
            ["bash", str(HERE / "smoke.sh")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        finished = False
        try:
            assert proc.stdout is not None
            for chunk in iter(proc.stdout.readline, b""):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                fh.write(chunk)
            rc = proc.wait()
            finished = True
        finally:
            if not finished:
                # Interrupted: let smoke.sh delete what it created, and keep its output.
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                    signal.signal(sig, signal.SIG_IGN)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    rest, _ = proc.communicate(timeout=SMOKE_CLEANUP_GRACE)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    rest, _ = proc.communicate()
                if rest:
                    sys.stdout.buffer.write(rest)
                    sys.stdout.flush()
                    fh.write(rest)
    log(f"smoke: {'PASSED' if rc == 0 else f'FAILED (exit {rc})'}")
    return rc


def publish_artifacts(art: Path, results_dir: Path) -> None:
    """Copy this run's files into the results dir (latest.md/json last)."""
    if not art.is_dir():
        return
    names = sorted(p.name for p in art.iterdir() if p.is_file())
    names.sort(key=lambda n: n in ("latest.json", "latest.md"))
    for name in names:
        with contextlib.suppress(OSError):
            shutil.copyfile(art / name, results_dir / (name + ".tmp"))
            os.replace(results_dir / (name + ".tmp"), results_dir / name)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Run Tempest against kumo and judge the result.")
    p.add_argument("--services", help="comma list: " + ",".join(SERVICES))
    p.add_argument("--cloud-config", type=Path, help="use this clouds.yaml instead of starting a fresh kumo")
    p.add_argument(
        "--cloud", default=None, help="admin cloud in clouds.yaml used for tempest.conf (default kumo-admin)"
    )
    p.add_argument("--smoke-cloud", default=None, help="cloud used by smoke.sh (default: --cloud)")
    p.add_argument("--kumo", help="command prefix to start kumo (default <repo>/.venv/bin/kumo)")
    p.add_argument("--results-dir", type=Path, default=HERE / "results")
    p.add_argument("--baseline", type=Path, default=HERE / "baseline.json")
    p.add_argument(
        "--gate", action="store_true", help="exit 1 if a service passes fewer tests than its baseline"
    )
    p.add_argument(
        "--update-baseline", action="store_true", help="write this run's passed counts to the baseline"
    )
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--regex", help="extra regex a test id must also match (e.g. test_tokens)")
    p.add_argument("--exclude-regex", help="tests to leave out (passed to tempest run)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a tempest.conf option (repeatable)",
    )
    p.add_argument(
        "--interop",
        type=Path,
        default=None,
        help="interop required-tests JSON (default: ../shared/interop-2020.06-required-tests.json)",
    )
    p.add_argument("--smoke", action="store_true", help="run conformance/smoke.sh (the openstack CLI path)")
    p.add_argument(
        "--venv", type=Path, default=HERE / ".venv", help="venv to create/use (default conformance/.venv)"
    )
    p.add_argument("--no-install", action="store_true", help="use --venv as it is (no pip install)")
    p.add_argument(
        "--test-timeout", type=int, default=300, help="per-test timeout, seconds (OS_TEST_TIMEOUT)"
    )
    p.add_argument(
        "--run-timeout", type=int, default=3 * 3600, help="timeout of the whole tempest run, seconds"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temp dirs (workspace, kumo data) for debugging"
    )
    args = p.parse_args(argv)
    if not args.services and not args.smoke:
        p.error("give --services (and/or --smoke)")
    args.services = parse_services(args.services) if args.services else []
    return args


def _raise_interrupted(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)
    results_dir = args.results_dir.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix="kumo-conformance-"))
    # Run artefacts are written here and copied to results_dir at the end, so concurrent
    # runs sharing a results dir never interleave inside one file.
    art = tmp_root / "artifacts"
    art.mkdir()
    kumo: Kumo | None = None
    started = time.monotonic()
    try:
        if args.no_install:
            py = args.venv / "bin" / "python"
            if not py.exists():
                raise HarnessError(f"{py} not found")
        else:
            py = ensure_venv(args.venv.resolve(), HERE / "requirements.txt")
        py = Path(os.path.abspath(py))

        if args.cloud_config:
            clouds_file = args.cloud_config.resolve()
            admin_cloud = args.cloud or "kumo-admin"
        else:
            kumo = Kumo(args.kumo, tmp_root, art)
            kumo.start()
            clouds_file = kumo.clouds_yaml
            admin_cloud = args.cloud or "kumo-admin"

        rc = 0
        if args.smoke:
            smoke_rc = run_smoke(py, clouds_file, args.smoke_cloud or admin_cloud, art, results_dir)
            rc = rc or (1 if smoke_rc else 0)
        if not args.services:
            return rc

        workspace = tmp_root / "workspace"
        # A private workspace registry: nothing is added to ~/.tempest/workspace.yaml.
        subprocess.run(
            [
                venv_bin(py, "tempest"),
                "init",
                "--name",
                tmp_root.name,
                "--workspace-path",
                str(tmp_root / "workspaces.yaml"),
                str(workspace),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        # the fresh kumo's settings (see KUMO_ENV); the command line's --set still win
        conf = write_tempest_conf(
            py, workspace, clouds_file, admin_cloud, args.set, art, KUMO_TEMPEST_SETS if kumo else None
        )
        regex = build_regex(args.services, args.regex)
        stream_path = art / "latest.subunit"
        t0 = time.monotonic()
        run_tempest(
            py,
            workspace,
            regex,
            args.exclude_regex,
            args.concurrency,
            stream_path,
            art,
            args.test_timeout,
            args.run_timeout,
        )
        duration = time.monotonic() - t0
        with contextlib.suppress(OSError):
            shutil.copyfile(workspace / "tempest.log", art / "tempest.log")
        summary = summarize(py, stream_path, tmp_root / "summary.json")

        services = {
            s: summary["services"].get(s, {"passed": 0, "failed": 0, "skipped": 0, "total": 0})
            for s in args.services
        }
        report = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "kumo_commit": git_commit(),
            "tempest_version": package_version(py, "tempest"),
            "duration_s": round(duration, 1),
            "services_requested": args.services,
            "regex": regex,
            "exclude_regex": args.exclude_regex,
            "concurrency": args.concurrency,
            "cloud": "fresh kumo" if kumo else str(clouds_file),
            "services": services,
            "totals": summary["totals"],
            "cloud_facts": conf.facts,
            "services_available": conf.services_available,
            "failure_causes": (
                attach_failed_requests(summary["tests"], art / "tempest.log")
                or group_failures(summary["tests"])
            ),
            "server_errors": server_errors(art / "tempest.log"),
            "interop": interop_status(summary["tests"], args.services, args.interop),
            "class_fixtures": summary["class_fixtures"],
            "tests": summary["tests"],
        }
        if args.gate:
            ok, lines = gate(services, args.services, args.baseline, summary["totals"]["total"])
            report["gate"] = {
                "verdict": "PASS" if ok else "FAIL",
                "lines": lines,
                "baseline": str(args.baseline),
            }
        (art / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
        (art / "latest.md").write_text(render_markdown(report))

        log(f"results: {results_dir / 'latest.md'}")
        for name, s in services.items():
            log(
                f"  {name:15s} passed {s['passed']:4d}  failed {s['failed']:4d}  "
                f"skipped {s['skipped']:4d}  total {s['total']:4d}"
            )
        if args.update_baseline:
            update_baseline(args.baseline, services, args.services)
        if args.gate:
            gate_info = report["gate"]
            for line in gate_info["lines"]:
                log(f"  gate: {line}")
            log(f"GATE {gate_info['verdict']}")
            rc = rc or (0 if gate_info["verdict"] == "PASS" else 1)
        elif summary["totals"]["total"] == 0:
            log("the run produced no test results")
            rc = rc or 1
        return rc
    except HarnessError as exc:
        log(f"ERROR: {exc}")
        return 2
    except tempest_conf.ConfError as exc:
        log(f"ERROR writing tempest.conf: {exc}")
        return 2
    except subprocess.CalledProcessError as exc:
        log(f"ERROR: {shlex.join(map(str, exc.cmd))} exited {exc.returncode}")
        return 2
    except (KeyboardInterrupt, Interrupted) as exc:
        log(f"interrupted ({str(exc) or 'SIGINT'}): cleaning up")
        return 130
    finally:
        # A second Ctrl-C must not skip the cleanup.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if kumo is not None:
            kumo.stop()
        publish_artifacts(art, results_dir)
        if args.keep:
            log(f"kept temp dir {tmp_root}")
        else:
            shutil.rmtree(tmp_root, ignore_errors=True)
        log(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
