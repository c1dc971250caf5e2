"""The join flow over real sockets, without root: ``kumo serve controller`` on loopback (SQLite),
``kumo node token create``, ``kumo join`` into a second data dir, ``kumo serve compute`` (fake
compute driver, fake network driver) and ``kumo node list`` / the registry's HTTP API."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import clean_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kumo(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "kumo", *args], capture_output=True, text=True, timeout=120,
                       env=clean_env(env))
    if check and r.returncode != 0:
        raise AssertionError(f"kumo {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def wait_for(what: str, check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def controller(tmp_path: Path):
    port = free_port()
    data = tmp_path / "controller"
    env = {"KUMO_COMPUTE__HEARTBEAT_INTERVAL": "1", "KUMO_NODE__HEARTBEAT_INTERVAL": "1",
           "KUMO_NODE__NAME": "ctl", "KUMO_IDENTITY__PASSWORD_HASH_ROUNDS": "4", "KUMO_LOG_LEVEL": "warning"}
    log = (tmp_path / "controller.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "kumo", "serve", "controller", "--data-dir", str(data),
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=clean_env(env))
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "controller.log").read_text()
        try:
            return httpx.get(url + "/nodes/v1/nodes", timeout=3).status_code == 401
        except httpx.HTTPError:
            return False

    try:
        wait_for("the controller", up, 90)
        yield url, data, env
    finally:
        stop(proc)


def test_join_and_node_list(controller, tmp_path: Path):
    url, data, env = controller
    assert (data / "nodes-url").read_text().strip() == url + "/nodes"
    token = kumo("node", "token", "create", "--data-dir", str(data), "--roles", "compute", env=env).stdout.strip()
    # a bad token is refused with the registry's JSON error, and nothing is written
    bad = kumo("join", url, "--token", token[:-4] + "AAAA", "--roles", "compute", "--name", "c1",
               "--data-dir", str(tmp_path / "bad"), check=False)
    assert bad.returncode == 1 and "(401)" in bad.stderr and "not valid" in bad.stderr
    assert not (tmp_path / "bad" / "kumo.toml").exists()
    # a role the token does not allow
    r = httpx.post(url + "/nodes/v1/join", json={"token": token, "name": "c1", "roles": ["storage"]})
    assert r.status_code == 400 and "does not allow" in r.json()["error"]["message"]
    node_dir = tmp_path / "c1"
    kumo("join", url, "--token", token, "--roles", "compute", "--name", "c1", "--data-dir", str(node_dir),
         "--network-driver", "fake")
    again = kumo("join", url, "--token", token, "--roles", "compute", "--name", "c9",
                 "--data-dir", str(tmp_path / "c9"), check=False)
    assert again.returncode == 1 and "already used" in again.stderr
    log = (tmp_path / "c1.log").open("wb")
    node = subprocess.Popen([sys.executable, "-m", "kumo", "serve", "compute", "--data-dir", str(node_dir)],
                            stdout=log, stderr=subprocess.STDOUT, env=clean_env())
    try:
        def listed() -> dict | None:
            nodes = json.loads(kumo("node", "list", "--json", "--data-dir", str(data), env=env).stdout)
            by_name = {n["name"]: n for n in nodes}
            ok = by_name.get("c1", {}).get("health") == "up" and by_name.get("ctl", {}).get("health") == "up"
            return by_name if ok else None

        nodes = wait_for("c1 and the controller up", listed, 60)
        assert nodes["c1"]["roles"] == ["compute"] and nodes["ctl"]["roles"] == ["controller"]
        clouds = {"OS_CLIENT_CONFIG_FILE": str(data / "clouds.yaml")}
        openstack = str(Path(sys.executable).parent / "openstack")

        def compute_up() -> bool:
            out = subprocess.run([openstack, "--os-cloud", "kumo-admin", "compute", "service", "list", "-f", "json",
                                  "--service", "nova-compute"], capture_output=True, text=True,
                                 env=clean_env(clouds)).stdout
            return any(s["Host"] == "c1" and s["State"] == "up" for s in json.loads(out or "[]"))

        wait_for("nova-compute on c1", compute_up, 60)
        # the registry's HTTP API: admins only
        auth = yaml_auth(data, "kumo-admin")
        admin = httpx.post(auth["auth_url"] + "/auth/tokens", json=password_body(auth))
        h = {"X-Auth-Token": admin.headers["X-Subject-Token"]}
        listed_http = httpx.get(url + "/nodes/v1/nodes", headers=h).json()["nodes"]
        assert {n["name"] for n in listed_http} == {"c1", "ctl"}
        demo = yaml_auth(data, "kumo")
        dt = httpx.post(demo["auth_url"] + "/auth/tokens", json=password_body(demo)).headers["X-Subject-Token"]
        assert httpx.get(url + "/nodes/v1/nodes", headers={"X-Auth-Token": dt}).status_code == 403
        r = httpx.post(url + "/nodes/v1/tokens", headers=h, json={"roles": ["network"], "ttl": "soon"})
        assert r.status_code == 400
        r = httpx.post(url + "/nodes/v1/tokens", headers=h, json={"roles": ["network"], "ttl": 120})
        assert r.status_code == 201 and r.json()["token"]["token"].startswith("kmj1.")
        # a heartbeat with a wrong key
        r = httpx.post(url + "/nodes/v1/nodes/c1/heartbeat", headers={"X-Kumo-Node-Key": "nope"})
        assert r.status_code == 401
    finally:
        stop(node)


def yaml_auth(data: Path, cloud: str) -> dict:
    import yaml

    return yaml.safe_load((data / "clouds.yaml").read_text())["clouds"][cloud]["auth"]


def password_body(auth: dict) -> dict:
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
