"""Test support: a real kumo process on loopback, driven by the openstack CLI, SDK and httpx.

Every process started here is remembered by PID and killed at exit as a last resort;
the fixtures in conftest.py stop them properly.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

OPENSTACK = Path(sys.executable).parent / "openstack"
PG_ENV = "KUMO_TEST_POSTGRES_URL"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

_LIVE: dict[int, subprocess.Popen] = {}  # every kumo process still running, by PID
CLOUDS: list[KumoCloud] = []  # every cloud made in this process (for failure reports)


def _kill_leftovers() -> None:  # last resort if pytest dies before the finalizers
    for pid, proc in list(_LIVE.items()):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(5)


atexit.register(_kill_leftovers)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any OS_* / KUMO_* leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "KUMO_"))}
    env.update(extra or {})
    return env


# -- PostgreSQL: a fresh database per cloud --------------------------------------------------


def _pg_admin_conn(url: str):  # type: ignore[no-untyped-def]
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username,
        password=u.password,
        dbname=u.database or "postgres",
        autocommit=True,
    )


def create_pg_database(url: str) -> str:
    """Create ``kumo_t_<random>`` on the server of ``url``; returns its URL."""
    from sqlalchemy.engine import make_url

    name = "kumo_t_" + uuid.uuid4().hex[:12]
    with _pg_admin_conn(url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(admin_url: str, db_url: str) -> None:
    from sqlalchemy.engine import make_url

    name = make_url(db_url).database
    with _pg_admin_conn(admin_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url_or_skip() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against (scripts/test.sh starts one)")
    return url


# -- a kumo process --------------------------------------------------------------------------


class KumoCloud:
    """A real ``kumo up`` on 127.0.0.1, with helpers to drive it."""

    def __init__(self, data_dir: Path, database_url: str | None = None, env: dict[str, str] | None = None):
        self.data_dir = Path(data_dir)
        self.database_url = database_url
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.proc: subprocess.Popen | None = None
        self._log_fh = None
        self._admin_token: str | None = None
        CLOUDS.append(self)

    # -- addresses and files ----------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def identity_url(self) -> str:
        return f"{self.url}/identity"

    @property
    def auth_url(self) -> str:
        return f"{self.identity_url}/v3"

    @property
    def clouds_yaml(self) -> Path:
        return self.data_dir / "clouds.yaml"

    @property
    def openrc(self) -> Path:
        return self.data_dir / "openrc"

    @property
    def admin_password(self) -> str:
        return (self.data_dir / "admin-password").read_text().strip()

    @property
    def demo_password(self) -> str:
        return (self.data_dir / "demo-password").read_text().strip()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int, limit: int = 20000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except OSError:
            return ""
        text = data.decode(errors="replace")
        return text if len(text) <= limit else "...\n" + text[-limit:]

    # -- lifecycle ----------------------------------------------------------------------
    def server_env(self) -> dict[str, str]:
        env = clean_env(
            {
                "KUMO_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
                "PYTHONUNBUFFERED": "1",
                # API tests need no real data plane; tests/e2e exercise the linux driver.
                "KUMO_NETWORK_AGENT__DRIVER": "fake",
                "KUMO_COMPUTE__DRIVER": "fake",
            }
        )
        if self.database_url:
            env["KUMO_DATABASE__URL"] = self.database_url
        env.update(self.extra_env)
        return env

    def start(self) -> KumoCloud:
        """Start ``kumo up`` and wait until identity answers (a taken port means another try)."""
        assert self.proc is None, "already running"
        for attempt in range(3):
            if self._start_once(last=attempt == 2):
                self._admin_token = None
                return self
            self.port = free_port()  # someone took the port meanwhile: kumo rewrites clouds.yaml
        raise AssertionError("unreachable")

    def _start_once(self, last: bool) -> bool:
        offset = self.log_size()
        self._log_fh = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        cmd = [sys.executable, "-m", "kumo", "up", "--data-dir", str(self.data_dir),
               "--host", "127.0.0.1", "--port", str(self.port)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            env=self.server_env(),
            start_new_session=True,  # its own process group, so workers die with it
        )
        _LIVE[self.proc.pid] = self.proc
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.stop()
                log = self.log_since(offset)
                if "address already in use" in log.lower() and not last:
                    return False
                pytest.fail(f"kumo exited with {rc} while starting; log:\n{log}")
            try:
                ok = httpx.get(self.auth_url, timeout=2).status_code == 200
            except httpx.HTTPError:
                ok = False
            # the answer must come from our process, not another server on a reused port
            if ok and self.proc.poll() is None and f":{self.port}" in self.log_since(offset):
                return True
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"kumo did not answer GET /identity/v3 within {START_TIMEOUT:.0f}s; log:\n{self.log_since(offset)}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            # anything left in its process group (uvicorn workers) goes too
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            _LIVE.pop(proc.pid, None)
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None

    def restart(self) -> KumoCloud:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- the openstack CLI and SDK ----------------------------------------------------
    def cli_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        return clean_env({"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), **(env or {})})

    def cli(
        self,
        *args: str,
        cloud: str | None = "kumo-admin",
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Run the real ``openstack`` CLI (``cloud=None``: credentials from ``env`` only)."""
        cmd = [str(OPENSTACK)]
        if cloud:
            cmd += ["--os-cloud", cloud]
        cmd += list(args)
        return subprocess.run(cmd, capture_output=True, text=True, env=self.cli_env(env), timeout=timeout)

    def cli_json(
        self, *args: str, cloud: str | None = "kumo-admin", env: dict[str, str] | None = None
    ) -> Any:
        """``openstack ... -f json``, asserting success; returns the parsed output."""
        res = self.cli(*args, "-f", "json", cloud=cloud, env=env)
        assert res.returncode == 0, f"openstack {' '.join(args)} failed ({res.returncode}):\n{res.stderr}"
        return json.loads(res.stdout)

    def sdk(self, cloud: str = "kumo-admin"):  # type: ignore[no-untyped-def]
        import openstack.config
        import openstack.connection

        config = openstack.config.OpenStackConfig(
            config_files=[str(self.clouds_yaml)], vendor_files=[], secure_files=[], load_envvars=False
        )
        return openstack.connection.Connection(config=config.get_one(cloud=cloud))

    def sdk_as(self, *, username: str | None = None, user_id: str | None = None, password: str,
               project_id: str | None = None, domain_id: str | None = None, user_domain_id: str = "default"):  # fmt: skip
        """An SDK connection for any user, scoped to a project or a domain."""
        import openstack

        auth: dict[str, Any] = {"auth_url": self.auth_url, "password": password}
        auth.update(
            {"user_id": user_id} if user_id else {"username": username, "user_domain_id": user_domain_id}
        )
        if project_id:
            auth["project_id"] = project_id
        elif domain_id:
            auth["domain_id"] = domain_id
        return openstack.connect(
            auth=auth, auth_type="password", identity_api_version="3", region_name="RegionOne",
            load_yaml_config=False, load_envvars=False,
        )  # fmt: skip

    @staticmethod
    def user_env(user: dict, project_id: str | None = None, domain_id: str | None = None) -> dict[str, str]:
        """OS_* variables authenticating as ``user`` (a dict from :meth:`new_user`)."""
        env = {
            "OS_AUTH_TYPE": "password",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_USER_ID": user["id"],
            "OS_PASSWORD": user["password"],
            "OS_REGION_NAME": "RegionOne",
        }
        if project_id:
            env["OS_PROJECT_ID"] = project_id
        if domain_id:
            env["OS_DOMAIN_ID"] = domain_id
        return env

    def cli_as(self, user: dict, *args: str, project_id: str | None = None, domain_id: str | None = None):  # type: ignore[no-untyped-def]
        env = {"OS_AUTH_URL": self.auth_url, **self.user_env(user, project_id, domain_id)}
        return self.cli(*args, cloud=None, env=env)

    # -- raw HTTP ---------------------------------------------------------------------
    def client(self, token: str | None = None) -> httpx.Client:
        """An httpx client on ``<identity>/v3`` sending ``token`` as X-Auth-Token."""
        headers = {"X-Auth-Token": token} if token else {}
        return httpx.Client(base_url=self.auth_url, headers=headers, timeout=30)

    def issue(
        self,
        username: str = "admin",
        password: str | None = None,
        *,
        user_id: str | None = None,
        domain: str = "default",
        project_id: str | None = None,
        project_name: str | None = None,
        domain_scope: str | None = None,
        system: bool = False,
        unscoped: bool = False,
        expect: int = 201,
    ) -> tuple[str, dict]:
        """Password-authenticate; returns (token, body). Default: admin on project admin."""
        if password is None:
            password = self.admin_password if username == "admin" else self.demo_password
        user: dict[str, Any] = {"password": password}
        user.update({"id": user_id} if user_id else {"name": username, "domain": {"id": domain}})
        auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": user}}}
        if project_id:
            auth["scope"] = {"project": {"id": project_id}}
        elif domain_scope:
            auth["scope"] = {"domain": {"id": domain_scope}}
        elif system:
            auth["scope"] = {"system": {"all": True}}
        elif not unscoped:
            name = project_name or ("admin" if username == "admin" else "demo")
            auth["scope"] = {"project": {"name": name, "domain": {"id": "default"}}}
        r = httpx.post(f"{self.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)
        assert r.status_code == expect, f"token issue: {r.status_code} {r.text}"
        return r.headers.get("X-Subject-Token", ""), (r.json() if r.content else {})

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token, _ = self.issue()
        return self._admin_token

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    # -- quick entity creation through the API (for setting up tests) ----------------------
    def create(self, collection: str, key: str, body: dict[str, Any], token: str | None = None) -> dict:
        with self.client(token or self.admin_token) as c:
            r = c.post(f"/{collection}", json={key: body})
        assert r.status_code == 201, f"POST /v3/{collection}: {r.status_code} {r.text}"
        return r.json()[key]

    def new_domain(self, **attrs: Any) -> dict:
        return self.create("domains", "domain", {"name": unique("dom"), **attrs})

    def new_project(self, domain_id: str = "default", **attrs: Any) -> dict:
        return self.create("projects", "project", {"name": unique("proj"), "domain_id": domain_id, **attrs})

    def new_user(self, domain_id: str = "default", password: str = "secret-pw-1", **attrs: Any) -> dict:
        user = self.create(
            "users", "user", {"name": unique("user"), "domain_id": domain_id, "password": password, **attrs}
        )
        user["password"] = password
        return user

    def role_id(self, name: str) -> str:
        with self.admin() as c:
            r = c.get("/roles", params={"name": name})
        assert r.status_code == 200, r.text
        (role,) = [x for x in r.json()["roles"] if x["name"] == name]
        return role["id"]

    def grant(
        self, role: str, user_id: str, *, project_id: str | None = None, domain_id: str | None = None
    ) -> None:
        target = f"/projects/{project_id}" if project_id else f"/domains/{domain_id}"
        with self.admin() as c:
            r = c.put(f"{target}/users/{user_id}/roles/{self.role_id(role)}")
        assert r.status_code == 204, f"grant {role}: {r.status_code} {r.text}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_keystone_error(response: httpx.Response, status: int | tuple[int, ...]) -> dict:
    """A 4xx with Keystone's ``{"error": {"code", "title", "message"}}`` body."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url}: expected {statuses}, "
        f"got {response.status_code} {response.text[:500]}"
    )
    body = response.json()
    err = body.get("error")
    assert isinstance(err, dict), body
    assert err.get("code") == response.status_code, body
    assert isinstance(err.get("title"), str) and err["title"], body
    assert isinstance(err.get("message"), str) and err["message"], body
    return err
