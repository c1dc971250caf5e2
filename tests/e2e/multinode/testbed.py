"""A multi-host test bed on one machine: network namespaces as hosts.

- a bridge ``kmnbr-<id>`` is the switch; it holds the only host-side address, 10.250.X.1/24,
  where the controller listens (in the host namespace, so it reaches the test PostgreSQL on
  loopback); nothing touches eth0 and no other route is added on the host;
- every other node is a namespace ``kmn-<role><n>-<id>`` joined to the switch by a veth
  (``kmv<id><n>`` on the bridge, ``kmn0`` inside) with address 10.250.X.(10+n)/24;
- node processes run inside their namespace with their own mount namespace and /sys
  (``nsenter --net`` + ``unshare --mount``), so the network agent sees the node's links only,
  while namespaces it creates (kdhcp-, krouter-) stay visible to the host for cleanup;
- every process is started here and stopped by PID; ``close`` removes everything (processes,
  dnsmasq/metadata proxies the agents started, namespaces, the bridge, the database) even after a
  failure, and ``sweep`` removes what a crashed earlier run left (only ``kmn`` names whose owner
  process is gone).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kumo.privileged import ip, process

OWNERS = Path("/tmp/kumo-multinode")  # <id> files holding the owning pytest's pid
BOOT = 'mount --make-rprivate /sys 2>/dev/null; mount -t sysfs kmn /sys && exec "$@"'
ROLE_INDEX = {"compute": 10, "network": 20, "storage": 30}
STORAGE_PORT = 6200  # storage nodes listen on their own address
NBD_PORT = 10809  # storage nodes' volume agents export volumes to compute nodes here


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def stop_pids(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL what is still there after ``timeout``."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
        for pid in pids:  # reap our own children
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, 0)


def qemu_pids(markers: list[str]) -> list[int]:
    """Pids of qemu-system processes whose command line mentions one of ``markers`` (node data dirs)."""
    out = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline.startswith("qemu-system") and any(m in cmdline for m in markers):
            out.append(int(entry.parent.name))
    return out


def stop_nbd_daemon(data_dir: Path) -> None:
    """Stop the NBD exporter a node's volume agent daemonized (found by its command line, which
    names the node's data dir: the pid file may be gone with a removed pytest temp dir)."""
    marker = f"path={data_dir}/volumes/nbd/"
    pids = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = entry.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-storage-daemon" in cmdline.split(" ", 1)[0] and marker in cmdline:
            pids.append(int(entry.parent.name))
    stop_pids(pids, timeout=5)


def _run(*argv: str, check: bool = True) -> None:
    subprocess.run(list(argv), check=check, capture_output=True, timeout=30)


def _netns_delete(name: str) -> None:
    """Delete a test namespace (kmn-*; the kumo-made kdhcp-/krouter- go through kumo.privileged)."""
    if name.startswith("kmn-"):
        _run("ip", "netns", "delete", name, check=False)
    else:
        ip.netns_delete(name)


def sweep() -> list[str]:
    """Remove kmn-named namespaces and bridges of earlier runs whose owner is gone."""
    removed = []
    live = set()
    if OWNERS.is_dir():
        for f in OWNERS.iterdir():
            try:
                if _alive(int(f.read_text().strip())):
                    live.add(f.name)
                    continue
            except (OSError, ValueError):
                pass
            f.unlink(missing_ok=True)
    for ns in ip.netns_list("kmn-"):
        if ns.rsplit("-", 1)[-1] in live:
            continue
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        stop_pids([int(p) for p in pids if p.isdigit()], timeout=3)
        _netns_delete(ns)
        removed.append(ns)
    for br in ip.link_names(prefix="kmnbr-"):
        if br[len("kmnbr-"):] not in live:
            _run("ip", "link", "delete", br, check=False)
            removed.append(br)
    return removed


@dataclass
class Node:
    name: str  # registry name, e.g. compute1
    role: str
    ns: str
    address: str
    data_dir: Path
    proc: subprocess.Popen | None = None
    log: Path | None = None
    driver: str = "linux"  # the node's network agent driver
    env: dict = field(default_factory=dict)


class Testbed:
    __test__ = False  # not a test class
    def __init__(self, tmp: Path, *, computes: int = 2, networks: int = 1, storages: int = 0,
                 isolated: bool = True, env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.id = secrets.token_hex(2)
        self.octet = self._free_octet()
        self.subnet = f"10.250.{self.octet}"
        self.bridge = f"kmnbr-{self.id}"
        self.controller_ip = f"{self.subnet}.1"
        self.isolated = isolated
        self.env = env or {}
        self.controller_dir = tmp / "controller"
        self.controller: subprocess.Popen | None = None
        self.port = 0
        self.nodes: dict[str, Node] = {}
        self.admin_db: tuple[str, str] | None = None
        self.procs: list[subprocess.Popen] = []
        self.guests: list[str] = []  # guest namespaces (kmn-guest<n>-<id>)
        for role, count in (("compute", computes), ("network", networks), ("storage", storages)):
            for n in range(1, count + 1):
                name = f"{role}{n}"
                self.nodes[name] = Node(name, role, f"kmn-{name}-{self.id}",
                                        f"{self.subnet}.{ROLE_INDEX[role] + n}", tmp / name)

    # -- building --------------------------------------------------------------------------------

    def _free_octet(self) -> int:
        used = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
        routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout
        for _ in range(200):
            x = secrets.randbelow(250) + 2
            if f"10.250.{x}." not in used and f"10.250.{x}." not in routes:
                return x
        raise RuntimeError("no free 10.250.X.0/24 for the test bed")

    def start(self) -> Testbed:
        OWNERS.mkdir(parents=True, exist_ok=True)
        (OWNERS / self.id).write_text(f"{os.getpid()}\n")
        sweep()
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{self.controller_ip}/24", "dev", self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        for i, node in enumerate(self.nodes.values()):
            outer = f"kmv{self.id}{i:02d}"
            _run("ip", "netns", "add", node.ns)
            subprocess.run(["ip", "link", "add", outer, "type", "veth", "peer", "name", "kmn0", "netns", node.ns],
                           check=True)
            subprocess.run(["ip", "link", "set", outer, "master", self.bridge, "up"], check=True)
            for argv in (["ip", "addr", "add", f"{node.address}/24", "dev", "kmn0"],
                         ["ip", "link", "set", "kmn0", "up"], ["ip", "link", "set", "lo", "up"]):
                subprocess.run(["ip", "netns", "exec", node.ns, *argv], check=True)
        self._start_controller()

        def bring_up(node: Node) -> None:
            self.join(node)
            self.start_node(node)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:  # joins are mostly process start-up
            for future in [pool.submit(bring_up, node) for node in self.nodes.values()]:
                future.result()
        return self

    def _database_url(self) -> str | None:
        admin = os.environ.get("KUMO_TEST_POSTGRES_URL")
        if not admin:
            return None
        from tests.support import create_pg_database

        url = create_pg_database(admin)
        self.admin_db = (admin, url)
        return url

    def controller_env(self) -> dict[str, str]:
        from tests.support import clean_env

        env = clean_env({
            "KUMO_COMPUTE__HEARTBEAT_INTERVAL": "1", "KUMO_COMPUTE__SERVICE_DOWN_TIME": "8",
            "KUMO_NODE__HEARTBEAT_INTERVAL": "1", "KUMO_NODE__DOWN_AFTER": "8", "KUMO_NODE__NAME": "controller",
            "KUMO_IDENTITY__PASSWORD_HASH_ROUNDS": "4", "KUMO_LOG_LEVEL": "warning",
        })
        url = getattr(self, "database_url", None)
        if url:
            env["KUMO_DATABASE__URL"] = url
        if any(n.role == "storage" for n in self.nodes.values()):
            env["KUMO_BLOCK_STORAGE__RUN_AGENT"] = "false"  # volumes live on the storage nodes
        env.update(self.env)
        return env

    def _object_ring(self) -> None:
        """With storage nodes: the controller's object ring holds one device per storage node, each in
        its own zone, reached at the node's URL (made before the controller starts, so it keeps it)."""
        storage = [n for n in self.nodes.values() if n.role == "storage"]
        if not storage:
            return
        d = ["--data-dir", str(self.controller_dir)]
        self.kumo("object-store", "ring", "create", "--replicas", str(min(3, len(storage))), *d)
        for zone, node in enumerate(storage, start=1):
            self.kumo("object-store", "ring", "add", node.name, "d1", "--zone", str(zone),
                      "--url", f"http://{node.address}:{STORAGE_PORT}", *d)
        self.kumo("object-store", "ring", "rebalance", *d)

    def _start_controller(self) -> None:
        self.controller_dir.mkdir(parents=True, exist_ok=True)
        self._object_ring()
        self.database_url = self._database_url()
        self.port = self._free_port()
        argv = [sys.executable, "-m", "kumo", "serve", "controller", "--data-dir", str(self.controller_dir),
                "--host", self.controller_ip, "--port", str(self.port)]
        if self.isolated:
            argv.append("--isolated")
        self.controller_dir.mkdir(parents=True, exist_ok=True)
        log = (self.tmp / "controller.log").open("ab")
        self.controller = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.controller_env(),
                                           start_new_session=True)
        self.procs.append(self.controller)
        self.wait_http(f"{self.url}/identity/v3", 90)
        self.wait_http(self.nodes_url + "/v1/nodes", 60, ok=(401,))

    def _free_port(self) -> int:
        for _ in range(50):
            port = 20000 + secrets.randbelow(20000)
            span = range(port, port + 8)
            if all(self._port_free(p) for p in span):
                return port
        raise RuntimeError("no free port range")

    def _port_free(self, port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind((self.controller_ip, port))
            except OSError:
                return False
        return True

    @property
    def url(self) -> str:
        return f"http://{self.controller_ip}:{self.port}"

    @property
    def nodes_url(self) -> str:
        f = self.controller_dir / "nodes-url"
        deadline = time.monotonic() + 60
        while not f.is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        return f.read_text().strip()

    def wait_http(self, url: str, timeout: float, ok: tuple[int, ...] = (200, 300)) -> None:
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            if self.controller is not None and self.controller.poll() is not None:
                raise RuntimeError(f"the controller exited ({self.controller.returncode}):\n{self.controller_log()}")
            try:
                r = httpx.get(url, timeout=5)
                if r.status_code in ok:
                    return
                last = f"{r.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise TimeoutError(f"{url} did not answer in {timeout}s ({last}):\n{self.controller_log()}")

    def controller_log(self) -> str:
        path = self.tmp / "controller.log"
        return path.read_text(errors="replace")[-6000:] if path.is_file() else ""

    # -- nodes -----------------------------------------------------------------------------------

    def in_ns(self, ns: str, argv: list[str]) -> list[str]:
        return ["nsenter", f"--net=/run/netns/{ns}", "--", "unshare", "--mount", "--propagation", "unchanged",
                "--", "sh", "-c", BOOT, "sh", *argv]

    def node_env(self, node: Node) -> dict[str, str]:
        from tests.support import clean_env

        return clean_env({
            "KUMO_NETWORK_AGENT__LOCK_FILE": str(node.data_dir / "network-agent.lock"),
            "KUMO_NETWORK_AGENT__PUBLIC_TEST_NAMESPACE": "",
            "KUMO_NETWORK_AGENT__HEARTBEAT_INTERVAL": "2",
            "KUMO_LOG_LEVEL": "warning",
            "KUMO_OBJECT_STORE__REPLICATOR_INTERVAL": "2",
            **({"KUMO_BLOCK_STORAGE__NBD_PORT": str(NBD_PORT), "KUMO_BLOCK_STORAGE__NBD_ADDRESS": node.address,
                "KUMO_BLOCK_STORAGE__HEARTBEAT_INTERVAL": "2", "KUMO_BLOCK_STORAGE__CAPACITY_GB": "20"}
               if node.role == "storage" else {}),
            **node.env,
        })

    def kumo(self, *args: str, node: Node | None = None, check: bool = True,
             timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "kumo", *args]
        env = self.node_env(node) if node else self.controller_env()
        if node is not None:
            argv = self.in_ns(node.ns, argv)
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kumo {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def join(self, node: Node) -> None:
        token = self.kumo("node", "token", "create", "--data-dir", str(self.controller_dir),
                          "--roles", node.role).stdout.strip()
        self.kumo("join", self.nodes_url, "--token", token, "--roles", node.role, "--name", node.name,
                  "--data-dir", str(node.data_dir), "--network-driver", node.driver,
                  "--host", node.address, "--port", str(STORAGE_PORT), node=node)

    def start_node(self, node: Node) -> None:
        node.log = self.tmp / f"{node.name}.log"
        argv = self.in_ns(node.ns, [sys.executable, "-m", "kumo", "serve", node.role,
                                    "--data-dir", str(node.data_dir)])
        with node.log.open("ab") as log:
            node.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.node_env(node),
                                         start_new_session=True)
        self.procs.append(node.proc)

    def plug_guest(self, node: Node, port_id: str, mac: str, network_id: str, mtu: int = 1450) -> str:
        """A guest namespace wired like a VM on ``node``: a veth whose node end is the port's tap
        (``ktap-<port>``) on the network's bridge, the guest end ``g0`` with the port's MAC."""
        from kumo.agents.network import names

        guest = f"kmn-guest{len(self.guests) + 1}-{self.id}"
        self.guests.append(guest)
        _run("ip", "netns", "add", guest)
        tap = names.tap(port_id)
        _run("ip", "link", "add", tap, "netns", node.ns, "mtu", str(mtu), "type", "veth", "peer", "name", "g0",
             "netns", guest, "address", mac, "mtu", str(mtu))
        bridge = names.bridge(network_id)
        deadline = time.monotonic() + 30
        while subprocess.run(["ip", "netns", "exec", node.ns, "ip", "link", "show", bridge],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} never built {bridge}")
            time.sleep(0.2)
        _run("ip", "netns", "exec", node.ns, "ip", "link", "set", tap, "master", bridge, "up")
        for argv in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "g0", "up"]):
            _run("ip", "netns", "exec", guest, *argv)
        return guest

    def kill_node(self, node: Node, sig: int = signal.SIGKILL) -> None:
        assert node.proc is not None
        node.proc.send_signal(sig)
        node.proc.wait(15)

    def node_log(self, node: Node) -> str:
        return node.log.read_text(errors="replace")[-4000:] if node.log and node.log.is_file() else ""

    # -- clients ---------------------------------------------------------------------------------

    def cli_env(self) -> dict[str, str]:
        from tests.support import clean_env

        return clean_env({"OS_CLIENT_CONFIG_FILE": str(self.controller_dir / "clouds.yaml")})

    def cli(self, *args: str, cloud: str = "kumo-admin", check: bool = True) -> subprocess.CompletedProcess:
        exe = Path(sys.executable).parent / "openstack"
        r = subprocess.run([str(exe), "--os-cloud", cloud, *args], capture_output=True, text=True,
                           env=self.cli_env(), timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
        return r

    def cli_json(self, *args: str, cloud: str = "kumo-admin") -> object:
        return json.loads(self.cli(*args, "-f", "json", cloud=cloud).stdout)

    def sdk(self, cloud: str = "kumo-admin"):  # type: ignore[no-untyped-def]
        import openstack.config
        import openstack.connection

        config = openstack.config.OpenStackConfig(config_files=[str(self.controller_dir / "clouds.yaml")],
                                                  vendor_files=[], secure_files=[], load_envvars=False)
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))

    def controller_children(self) -> dict[str, int]:
        """Isolated controller: service name -> pid of its process."""
        assert self.controller is not None
        out = {}
        for pid in _descendants(self.controller.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve" in argv:
                out[argv[argv.index(b"serve") + 1].decode().removesuffix("-api")] = pid
        return out

    def dump(self) -> str:
        parts = [f"== controller ==\n{self.controller_log()}"]
        for node in self.nodes.values():
            parts.append(f"== {node.name} ==\n{self.node_log(node)}")
        return "\n".join(parts)

    # -- cleanup ---------------------------------------------------------------------------------

    def _kumo_namespaces(self) -> set[str]:
        """The DHCP and router namespaces of every network and router the cloud knows of (asked
        before the nodes stop: an agent killed mid-way may not have written its ledger)."""
        from kumo.agents.network import names

        def ask() -> set[str]:
            conn = self.sdk()
            found = {names.dhcp_netns(n.id) for n in conn.network.networks()}
            return found | {names.router_netns(r.id) for r in conn.network.routers()}

        if self.controller is None or self.controller.poll() is not None:
            return set()
        pool = concurrent.futures.ThreadPoolExecutor(1)
        try:
            return pool.submit(ask).result(timeout=20)
        except Exception:
            return set()
        finally:
            pool.shutdown(wait=False)

    def close(self) -> None:
        errors: list[Exception] = []
        known = self._kumo_namespaces()
        # nodes first: their long polls end, so the controller's servers stop without waiting for them
        for group in ([p for p in self.procs if p is not self.controller], [self.controller]):
            pids = []
            for proc in group:
                if proc is not None and proc.poll() is None:
                    pids += [proc.pid, *_descendants(proc.pid)]
            stop_pids(pids)
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.wait(1)
        for node in self.nodes.values():  # dnsmasq and metadata proxies the agents started
            for pidfile in (node.data_dir / "network-agent").rglob("*.pid"):
                with contextlib.suppress(Exception):
                    process.stop(pidfile, str(pidfile.parent))
            owned = node.data_dir / "network-agent" / "owned.json"
            try:
                ledger = json.loads(owned.read_text()) if owned.is_file() else {}
            except ValueError:
                ledger = {}
            for ns in [*ledger.get("dhcp", []), *ledger.get("router", [])]:
                known.discard(ns)
                try:
                    ip.netns_delete(ns)
                except Exception as exc:
                    errors.append(exc)
        present = set(ip.netns_list("kdhcp-")) | set(ip.netns_list("krouter-"))
        for ns in sorted(known & present):  # made by this bed's agents but missing from their ledgers
            try:
                ip.netns_delete(ns)
            except Exception as exc:
                errors.append(exc)
        for node in self.nodes.values():  # the volume agents' qemu-storage-daemon (it outlives an agent)
            stop_nbd_daemon(node.data_dir)
        stop_pids(qemu_pids([str(n.data_dir) + "/" for n in self.nodes.values()]), timeout=5)  # daemonized VMs
        for ns in self.guests:
            _netns_delete(ns)
        for node in self.nodes.values():
            _netns_delete(node.ns)
        _run("ip", "link", "delete", self.bridge, check=False)
        if self.admin_db:
            from tests.support import drop_pg_database

            with contextlib.suppress(Exception):
                drop_pg_database(*self.admin_db)
        (OWNERS / self.id).unlink(missing_ok=True)
        left = [n for n in ip.netns_list("kmn-") if n.endswith(self.id)]
        left += [n for n in ip.link_names(prefix="kmn") if self.id in n]
        if left:
            errors.append(RuntimeError(f"left behind: {left}"))
        if errors:
            raise errors[0]
