#!/usr/bin/env python3
"""Network benchmark: Neutron API latency at scale and the linux agent's convergence.

    python3 bench/network.py                       # 1,000 ports, 100 routers
    python3 bench/network.py --quick               # 200 ports, 20 routers, fewer samples
    python3 bench/network.py --ports 1000 --routers 100

Starts its own ``kumo up`` (linux network driver, temp data dir, free loopback port) and,
as the admin cloud over the Neutron API (stdlib http.client, one request at a time):

- one network with a /20 subnet (DHCP on), ``--ports`` ports on it: port-create latency;
  list-ports latency with all of them there;
- ``--routers`` routers, each with an interface on its own network + /28 subnet
  (DHCP off on those subnets, so the figure is about routers, not 100 dnsmasqs):
  router-create, network/subnet-create and add_router_interface latency;
- agent convergence: for sampled ports, time from the port-create call until the port's
  ``mac,ip`` line is in the DHCP namespace's dnsmasq hosts file (the agent's state dir);
  for the whole batch, time until all ports are there; for a few "VM" ports
  (device_owner compute:nova) plugged into a guest namespace like tests/e2e do: time
  to the hosts entry, to a real DHCP lease (busybox udhcpc) and to status ACTIVE; and the
  time until every router namespace exists.

Needs root, ip, dnsmasq, iptables, busybox, and the host's network-agent lock free (one
kumo linux agent per host). Prints the figures; writes bench/results/network-latest.md
and network-YYYY-MM-DD.md. Everything it made goes at the end: guest namespaces by name,
kumo stopped by PID (its agent tears its bridges/namespaces/dnsmasqs down on stop), then
checked with ``ip netns list`` / ``ip -br link``. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import procs  # noqa: E402

REPO = BENCH.parent
KUMO = REPO / ".venv" / "bin" / "kumo"
LOCK_FILE = Path("/run/kumo-network-agent.lock")
TOOLS = ("ip", "bridge", "iptables", "iptables-restore", "iptables-save", "dnsmasq", "busybox")
UDHCPC_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
esac
exit 0
"""


# -- host checks ------------------------------------------------------------------------------


def lock_holder() -> int | None:
    """PID holding the network agent's host lock (read from /proc/locks; takes no lock)."""
    try:
        ino = LOCK_FILE.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if len(f) >= 6 and f[1] == "FLOCK":
            with contextlib.suppress(ValueError, IndexError):
                if int(f[5].split(":")[2]) == ino and Path(f"/proc/{f[4]}").exists():
                    return int(f[4])
    return None


def why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (the linux network driver builds bridges and namespaces)"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)}"
    holder = lock_holder()
    if holder is not None:
        return f"another kumo network agent (pid {holder}) holds {LOCK_FILE}; only one may run per host"
    return None


def run(argv: list[str], netns: str | None = None, timeout: float = 30, check: bool = True) -> str:
    full = ["ip", "netns", "exec", netns, *argv] if netns else argv
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout, check=check).stdout


def netns_list() -> set[str]:
    return {line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.strip()}


def link_names() -> set[str]:
    return {line.split()[0].split("@")[0] for line in run(["ip", "-br", "link"]).splitlines() if line.strip()}


# -- the API --------------------------------------------------------------------------------


class Api:
    def __init__(self, port: int, data_dir: Path) -> None:
        self.port = port
        password = (data_dir / "admin-password").read_text().strip()
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        }
        status, headers, raw = procs.http_json(port, "POST", "/identity/v3/auth/tokens", body)
        if status != 201:
            raise RuntimeError(f"token: {status} {raw[:300]!r}")
        self.token = headers["x-subject-token"]
        self.project_id = json.loads(raw)["token"]["project"]["id"]

    def call(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> tuple[float, Any]:
        t0 = time.perf_counter()
        status, _, raw = procs.http_json(
            self.port, method, "/network/v2.0" + path, body, {"X-Auth-Token": self.token}, timeout=120
        )
        took = time.perf_counter() - t0
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {raw[:300]!r}")
        return took, (json.loads(raw) if raw else None)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))] if s else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": pct(values, 50) * 1000,
        "p99_ms": pct(values, 99) * 1000,
        "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
        "max_ms": max(values) * 1000 if values else float("nan"),
    }


def wait_until(check, timeout: float, interval: float = 0.005) -> float | None:  # type: ignore[no-untyped-def]
    """Seconds until check() is true (polling), or None on timeout."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if check():
            return time.perf_counter() - t0
        time.sleep(interval)
    return None


def hosts_has(path: Path, needle: str) -> bool:
    try:
        return needle in path.read_text()
    except OSError:
        return False


# -- guests (namespaces plugged like a VM's tap) -----------------------------------------------


class Guests:
    def __init__(self, tmp: Path) -> None:
        self.token = uuid.uuid4().hex[:4]
        self.made: list[tuple[str, str]] = []
        self.script = tmp / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)

    def attach(self, port: dict) -> tuple[str, str]:
        n = len(self.made)
        ns, dev, tap = f"kbench{self.token}g{n}", f"kvb{self.token}{n:02d}", f"ktap-{port['id'][:10]}"
        bridge = f"kbr-{port['network_id'][:11]}"
        self.made.append((ns, tap))
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", tap, "type", "veth", "peer", "name", dev])
        run(["ip", "link", "set", dev, "netns", ns])
        run(["ip", "link", "set", dev, "address", port["mac_address"]], netns=ns)
        run(["ip", "link", "set", dev, "up"], netns=ns)
        run(["ip", "link", "set", tap, "master", bridge])
        run(["ip", "link", "set", tap, "up"])
        return ns, dev

    def lease(self, ns: str, dev: str) -> str:
        run(
            ["busybox", "udhcpc", "-i", dev, "-s", str(self.script), "-n", "-q", "-t", "10", "-T", "1"],
            netns=ns,
            timeout=30,
        )
        out = run(["ip", "-4", "-o", "addr", "show", "dev", dev], netns=ns).split()
        return out[3].split("/")[0] if len(out) > 3 else ""

    def remove(self) -> None:
        for ns, tap in self.made:
            run(["ip", "netns", "delete", ns], check=False)
            if tap in link_names():
                run(["ip", "link", "delete", tap], check=False)


# -- the benchmark -------------------------------------------------------------------------------


def bench(args: argparse.Namespace, api: Api, state: Path, guests: Guests, say, r: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Fill r as figures come in (a failure part-way keeps what was measured)."""
    quota = {"quota": {"port": -1, "network": -1, "subnet": -1, "router": -1}}
    api.call("PUT", f"/quotas/{api.project_id}", quota)

    _, net = api.call("POST", "/networks", {"network": {"name": "bench-ports"}}, 201)
    net_id = net["network"]["id"]
    _, sub = api.call(
        "POST",
        "/subnets",
        {"subnet": {"network_id": net_id, "ip_version": 4, "cidr": "10.200.0.0/20", "name": "bench-ports"}},
        201,
    )
    hosts = state / "dhcp" / f"kdhcp-{net_id}" / "hosts"
    took = wait_until(hosts.is_file, 60)
    say(
        f"network {net_id}: DHCP namespace ready {took:.2f}s after subnet create"
        if took is not None
        else "DHCP hosts file never appeared"
    )
    r["dhcp_ready_s"] = took

    # ports: every k-th is a convergence sample (create, then wait for its hosts line)
    creates, conv, macs = [], [], []
    every = max(1, args.ports // args.samples)
    t_batch = time.perf_counter()
    for i in range(args.ports):
        t0 = time.perf_counter()
        took, body = api.call("POST", "/ports", {"port": {"network_id": net_id, "name": f"b{i}"}}, 201)
        creates.append(took)
        p = body["port"]
        needle = f"{p['mac_address'].lower()},{p['fixed_ips'][0]['ip_address']},"
        macs.append(needle)
        if i % every == 0:  # never the last port: the batch figure below must not be pre-waited
            hit = wait_until(lambda n=needle: hosts_has(hosts, n), 60)
            if hit is not None:
                conv.append(time.perf_counter() - t0)
        if (i + 1) % 200 == 0:
            say(f"  {i + 1} ports")
    t_last = time.perf_counter()

    def all_there() -> bool:
        try:
            text = hosts.read_text()
        except OSError:
            return False
        return all(m in text for m in macs[-50:]) and all(m in text for m in macs)

    took = wait_until(all_there, 120, interval=0.05)
    r["ports_all_in_hosts_after_last_create_s"] = took
    r["ports_batch_wall_s"] = (t_last - t_batch) + (took or 0)
    r["port_create"] = summary(creates)
    r["port_in_dhcp_hosts"] = summary(conv)

    lists = []
    for _ in range(args.list_rounds):
        took, body = api.call("GET", f"/ports?network_id={net_id}")
        lists.append(took)
    r["list_ports_count"] = len(body["ports"])
    r["list_ports"] = summary(lists)
    lists_all = [api.call("GET", "/ports")[0] for _ in range(args.list_rounds)]
    r["list_ports_all"] = summary(lists_all)

    # VM-like ports with a guest namespace: hosts entry, real lease, ACTIVE
    vm = []
    for i in range(args.vm_samples):
        t0 = time.perf_counter()
        _, body = api.call(
            "POST",
            "/ports",
            {
                "port": {
                    "network_id": net_id,
                    "name": f"vm{i}",
                    "device_owner": "compute:nova",
                    "device_id": str(uuid.uuid4()),
                    "binding:host_id": socket.gethostname(),
                }
            },
            201,
        )
        p = body["port"]
        ns, dev = guests.attach(p)
        fixed = p["fixed_ips"][0]["ip_address"]
        needle = f"{p['mac_address'].lower()},{fixed},"
        t_hosts = wait_until(lambda n=needle: hosts_has(hosts, n), 60)
        t_hosts = (time.perf_counter() - t0) if t_hosts is not None else None
        got = guests.lease(ns, dev)
        t_lease = time.perf_counter() - t0

        def active(pid: str = p["id"]) -> bool:
            return api.call("GET", f"/ports/{pid}")[1]["port"]["status"] == "ACTIVE"

        t_active = wait_until(active, 60, interval=0.05)
        t_active = (time.perf_counter() - t0) if t_active is not None else None
        vm.append({"hosts_s": t_hosts, "lease_s": t_lease, "lease_ok": got == fixed, "active_s": t_active})
        say(f"  vm port {i}: hosts {t_hosts}, lease {got} ({t_lease:.2f}s), ACTIVE {t_active}")
    r["vm_ports"] = vm

    # routers, each with an interface on its own small network
    rc, nc, sc, ai, router_ids = [], [], [], [], []
    t_batch = time.perf_counter()
    for i in range(args.routers):
        took, body = api.call("POST", "/routers", {"router": {"name": f"bench-r{i}"}}, 201)
        rc.append(took)
        rid = body["router"]["id"]
        router_ids.append(rid)
        took, body = api.call("POST", "/networks", {"network": {"name": f"bench-rn{i}"}}, 201)
        nc.append(took)
        nid = body["network"]["id"]
        cidr = f"10.{128 + i // 16}.{(i % 16) * 16}.0/28"
        took, body = api.call(
            "POST",
            "/subnets",
            {"subnet": {"network_id": nid, "ip_version": 4, "cidr": cidr, "enable_dhcp": False}},
            201,
        )
        sc.append(took)
        took, _ = api.call("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": body["subnet"]["id"]})
        ai.append(took)
        if (i + 1) % 25 == 0:
            say(f"  {i + 1} routers")
    t_last = time.perf_counter()
    wanted = {f"krouter-{rid}" for rid in router_ids}
    took = wait_until(lambda: wanted <= netns_list(), 300, interval=0.2)
    r["routers_all_namespaces_after_last_call_s"] = took
    r["routers_batch_wall_s"] = (t_last - t_batch) + (took or 0)
    r["router_create"] = summary(rc)
    r["network_create"] = summary(nc)
    r["subnet_create"] = summary(sc)
    r["add_router_interface"] = summary(ai)
    lists = [api.call("GET", "/routers")[0] for _ in range(args.list_rounds)]
    r["list_routers"] = summary(lists)
    r["ids"] = {"network": net_id, "subnet": sub["subnet"]["id"], "routers": router_ids}


# -- report --------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu, mem = "?", 0.0
    with contextlib.suppress(OSError):
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "?",
        )
    with contextlib.suppress(OSError):
        mem = next(
            int(ln.split()[1]) / 1024 / 1024
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal:")
        )
    commit = (
        subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "no commit"
    )
    dnsmasq = run(["dnsmasq", "--version"], check=False).splitlines()[:1]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "kumo_commit": commit,
        "dnsmasq": dnsmasq[0] if dnsmasq else "?",
        "loadavg_at_start": os.getloadavg(),
    }


def fmt(v: Any, unit: str = "s") -> str:
    if v is None:
        return "timeout"
    return f"{v:.2f} {unit}" if isinstance(v, float) else str(v)


def report(args: argparse.Namespace, m: dict[str, Any], r: dict[str, Any], cleanup: str) -> str:
    rows = []
    for key, label in (
        ("port_create", "port create"),
        ("list_ports", f"list ports (network, {r.get('list_ports_count')} ports)"),
        ("list_ports_all", "list ports (all)"),
        ("router_create", "router create"),
        ("network_create", "network create (router nets)"),
        ("subnet_create", "subnet create (/28, no DHCP)"),
        ("add_router_interface", "add_router_interface"),
        ("list_routers", "list routers"),
        ("port_in_dhcp_hosts", "port create -> in dnsmasq hosts file"),
    ):
        s = r.get(key)
        if s:
            rows.append(f"| {label} | {s['n']} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.1f} |")
    vm_rows = [
        f"| {i} | {fmt(v['hosts_s'])} | {fmt(v['lease_s'])} ({'ok' if v['lease_ok'] else 'WRONG/none'}) "
        f"| {fmt(v['active_s'])} |"
        for i, v in enumerate(r.get("vm_ports", []))
    ]
    lines = [
        f"# kumo network benchmark — {dt.date.today().isoformat()}",
        "",
        f"`python3 bench/network.py --ports {args.ports} --routers {args.routers}"
        f"{' --quick' if args.quick else ''}` — one `kumo up` (all-in-one, linux network driver,"
        " SQLite, 1 worker), driven sequentially as the admin cloud over the Neutron API on loopback.",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in m.items()),
        "",
        "## API latency (ms)",
        "",
        "| call | n | p50 | p99 | max |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "## Agent convergence",
        "",
        f"- DHCP namespace + hosts file after the /20 subnet create: {fmt(r.get('dhcp_ready_s'))}",
        f"- all {args.ports} ports in the dnsmasq hosts file, after the last port create: "
        f"{fmt(r.get('ports_all_in_hosts_after_last_create_s'))} (whole batch, creates included: "
        f"{fmt(r.get('ports_batch_wall_s'))})",
        f"- all {args.routers} router namespaces exist, after the last add_router_interface: "
        f"{fmt(r.get('routers_all_namespaces_after_last_call_s'))} (whole batch: {fmt(r.get('routers_batch_wall_s'))})",
        "",
        "VM-like ports (device_owner compute:nova, a guest namespace plugged on the bridge as the port's tap),"
        " seconds from the port-create call:",
        "",
        "| sample | in hosts file | DHCP lease (busybox udhcpc) | status ACTIVE |",
        "|---|---|---|---|",
        *vm_rows,
        "",
        "## What was done",
        "",
        f"- one network, one /20 subnet (DHCP on), {args.ports} plain ports (no device owner) on it; every "
        f"{max(1, args.ports // args.samples)}th create (from the first; never the last) waits for its `mac,ip,` line in "
        "`<data-dir>/network-agent/dhcp/kdhcp-<net>/hosts` (polled every 5 ms), the others go back to back;",
        f"- {args.routers} routers, each with an interface on its own network + /28 subnet (DHCP off on these, so "
        "no extra dnsmasq per router network);",
        "- plain ports are never ACTIVE (no device is plugged for them): ACTIVE is measured on the VM-like ports;"
        " the agent notices a new tap at the latest on its next status pass (≤ 3 s), usually sooner because"
        " every API change wakes it;",
        f"- cleanup: {cleanup}",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", type=int, default=None)
    ap.add_argument("--routers", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="200 ports, 20 routers, fewer samples")
    ap.add_argument("--kumo", default=str(KUMO))
    ap.add_argument("--no-write", action="store_true", help="print only, write no report")
    args = ap.parse_args()
    args.ports = args.ports if args.ports is not None else (200 if args.quick else 1000)
    args.routers = args.routers if args.routers is not None else (20 if args.quick else 100)
    args.samples = 10 if args.quick else 40
    args.vm_samples = 3 if args.quick else 5
    args.list_rounds = 5 if args.quick else 20

    reason = why_not()
    if reason:
        print(f"bench/network.py: cannot run: {reason}", file=sys.stderr)
        return 2

    def say(msg: str) -> None:
        print(msg, flush=True)

    m = machine()
    tmp = Path(tempfile.mkdtemp(prefix="kumo-bench-net-"))
    data_dir, log = tmp / "kd", tmp / "kumo.log"
    port = procs.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUMO_", "OS_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        {
            "KUMO_NETWORK_AGENT__DRIVER": "linux",
            "KUMO_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
            "PYTHONUNBUFFERED": "1",
        }
    )
    before_ns, before_links = netns_list(), link_names()
    guests = Guests(tmp)
    proc = None
    result: dict[str, Any] = {}
    error = None
    try:
        t0 = time.perf_counter()
        proc = procs.start(
            [args.kumo, "up", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            log=log,
        )
        ready = procs.wait_ready(proc, port, "/identity/v3", t0, timeout=90, log=log)
        say(f"kumo up (pid {proc.pid}, port {port}) ready in {ready:.2f}s; data dir {data_dir}")
        api = Api(port, data_dir)
        bench(args, api, data_dir / "network-agent", guests, say, result)
    except Exception as exc:  # report what we have, clean up all the same
        error = f"{type(exc).__name__}: {exc}"
        say(f"benchmark failed: {error}")
        with contextlib.suppress(OSError):
            say("kumo log tail:\n" + log.read_text(errors="replace")[-3000:])
    finally:
        guests.remove()
        t_stop = time.perf_counter()
        procs.stop(proc, grace=180)  # the agent removes its bridges/namespaces before exiting
        stop_s = time.perf_counter() - t_stop
        left_ns = sorted(n for n in netns_list() - before_ns if n.startswith("k"))
        left_links = sorted(n for n in link_names() - before_links if n.startswith("k"))
        cleanup = (
            f"kumo stopped by PID in {stop_s:.1f}s; new namespaces left: {left_ns or 'none'}; "
            f"new k* links left: {left_links or 'none'}"
        )
        say(cleanup)
        shutil.rmtree(tmp, ignore_errors=True)
    m["loadavg_at_end"] = os.getloadavg()
    if error and not result:
        return 1
    text = report(args, m, result, cleanup)
    if error:
        text += f"\n**The run failed part-way:** {error}\n"
    print("\n" + text)
    if not args.no_write:
        out = BENCH / "results"
        out.mkdir(exist_ok=True)
        (out / "network-latest.md").write_text(text)
        (out / f"network-{dt.date.today().isoformat()}.md").write_text(text)
        print(f"wrote {out / 'network-latest.md'}")
    return 1 if error or left_ns or left_links else 0


if __name__ == "__main__":
    sys.exit(main())
