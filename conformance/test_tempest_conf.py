"""Tests of tempest.conf generation against a small fake cloud (stdlib only).

The fake cloud also runs as a stand-in for ``kumo up`` so the whole harness can
be exercised without kumo:

    python3 conformance/run.py --services identity \
        --kumo "python3 conformance/test_tempest_conf.py"
"""

from __future__ import annotations

import configparser
import json
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tempest_conf  # noqa: E402

PROJECT_ID = "p0000000000000000000000000000001"
USER_ID = "u0000000000000000000000000000001"


class FakeCloud:
    """Identity + network + compute + object store, just enough for the probes."""

    def __init__(
        self, services=("identity", "network", "compute", "object-store"), lockout=None, unlock_after=None
    ):
        self.services = services
        self.lockout = lockout  # None: no POST /users; N: lock a probe user after N failures
        self.unlock_after = unlock_after  # seconds a lock lasts (None: forever)
        self.probe_users: dict[str, dict] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def clouds(self) -> dict:
        auth = {
            "auth_url": self.base + "/identity",
            "username": "admin",
            "password": "secret",
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        return {
            "clouds": {"kumo-admin": {"auth": auth, "region_name": "RegionOne", "identity_api_version": 3}}
        }

    def catalog(self) -> list:
        urls = {
            "identity": self.base + "/identity/v3",
            "network": self.base + "/network",
            "compute": self.base + "/compute/v2.1",
            "object-store": f"{self.base}/v1/AUTH_{PROJECT_ID}",
        }
        return [
            {
                "type": t,
                "name": t,
                "id": t,
                "endpoints": [
                    {
                        "interface": "public",
                        "region_id": "RegionOne",
                        "region": "RegionOne",
                        "url": urls[t],
                        "id": t + "-pub",
                    }
                ],
            }
            for t in self.services
        ]

    def _handler(self):
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body=None, headers=None):
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/identity/v3/users" and cloud.lockout is not None:
                    uid = f"probe{len(cloud.probe_users)}"
                    cloud.probe_users[uid] = {"password": body["user"]["password"], "failures": 0, "at": 0.0}
                    return self._send(201, {"user": {"id": uid, "name": body["user"]["name"]}})
                if self.path == "/identity/v3/auth/tokens":
                    user = body["auth"]["identity"]["password"]["user"]
                    probe = cloud.probe_users.get(user.get("id", ""))
                    if probe is not None:
                        if probe["failures"] >= (cloud.lockout or 10**9):
                            expired = (
                                cloud.unlock_after and time.monotonic() - probe["at"] >= cloud.unlock_after
                            )
                            if not expired:
                                return self._send(401, {"error": {"code": 401, "message": "locked"}})
                            probe["failures"] = 0
                        if user["password"] != probe["password"]:
                            probe["failures"] += 1
                            probe["at"] = time.monotonic()
                            return self._send(401, {"error": {"code": 401, "message": "bad"}})
                        probe["failures"] = 0
                        return self._send(
                            201, {"token": {"methods": ["password"]}}, {"X-Subject-Token": "t2"}
                        )
                    if user["password"] != "secret":
                        return self._send(401, {"error": {"code": 401, "message": "bad"}})
                    token = {
                        "token": {
                            "expires_at": "2099-01-01T00:00:00.000000Z",
                            "user": {
                                "id": USER_ID,
                                "name": "admin",
                                "domain": {"id": "default", "name": "Default"},
                            },
                            "project": {
                                "id": PROJECT_ID,
                                "name": "admin",
                                "domain": {"id": "default", "name": "Default"},
                            },
                            "roles": [{"id": "r1", "name": "admin"}],
                            "catalog": cloud.catalog(),
                        }
                    }
                    return self._send(201, token, {"X-Subject-Token": "tok"})
                return self._send(404, {"error": {"code": 404}})

            def do_DELETE(self):  # noqa: N802
                uid = self.path.rsplit("/", 1)[-1]
                if self.path.startswith("/identity/v3/users/") and cloud.probe_users.pop(uid, None):
                    return self._send(204)
                return self._send(404, {"error": {"code": 404}})

            def do_GET(self):  # noqa: N802
                url = urllib.parse.urlsplit(self.path)
                path, query = url.path.rstrip("/"), urllib.parse.parse_qs(url.query)
                routes = {
                    "/identity/v3": {"version": {"id": "v3.14", "status": "stable"}},
                    "/identity/v3/domains": {"domains": [{"id": "default", "name": "Default"}]},
                    "/identity/v3/OS-TRUST/trusts": {"trusts": []},
                    f"/identity/v3/users/{USER_ID}/application_credentials": {"application_credentials": []},
                    f"/identity/v3/users/{USER_ID}/credentials/OS-EC2": {"credentials": []},
                    "/network": {"versions": [{"id": "v2.0", "status": "CURRENT"}]},
                    "/network/v2.0/extensions": {
                        "extensions": [{"alias": "security-group"}, {"alias": "router"}]
                    },
                    "/network/v2.0/networks": {
                        "networks": [{"id": "net-public", "name": "public"}]
                        if query.get("name") == ["public"]
                        else []
                    },
                    "/compute/v2.1": {
                        "version": {
                            "id": "v2.1",
                            "status": "CURRENT",
                            "min_version": "2.1",
                            "version": "2.90",
                        }
                    },
                    "/compute/v2.1/flavors": {
                        "flavors": [{"id": "1", "name": "m1.tiny"}, {"id": "2", "name": "m1.small"}]
                    },
                    "/info": {"swift": {"version": "2.x"}, "tempurl": {}, "slo": {}, "bulk_delete": {}},
                }
                if path in routes and (
                    path.split("/")[1] in ("identity", "info")
                    or any(path.startswith("/" + s.split("-")[0]) for s in cloud.services)
                ):
                    return self._send(200, routes[path])
                return self._send(404, {"error": {"code": 404, "message": "not found"}})

        return Handler


def _parse(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(text)
    return cp


def test_generate_full_catalog():
    with FakeCloud() as cloud:
        conf = tempest_conf.generate(cloud.clouds(), "kumo-admin")
        cp = _parse(conf.render())
    assert cp["identity"]["uri_v3"] == cloud.base + "/identity/v3"
    assert cp["identity"]["region"] == "RegionOne"
    assert cp["identity"]["default_domain_id"] == "default"
    sa = cp["service_available"]
    assert (sa["nova"], sa["neutron"], sa["swift"], sa["glance"], sa["cinder"], sa["horizon"]) == (
        "true",
        "true",
        "true",
        "false",
        "false",
        "false",
    )
    ife = cp["identity-feature-enabled"]
    assert ife["trust"] == "true"
    assert ife["security_compliance"] == "false"
    assert ife["api_v2"] == "false"
    assert ife["api_extensions"] == "OS-EC2,OS-TRUST"
    assert conf.facts["identity_features"]["application_credentials"] is True
    assert conf.facts["identity_features"]["project_tags"] is False
    assert cp["compute"]["min_microversion"] == "2.1" and cp["compute"]["max_microversion"] == "2.90"
    assert cp["compute"]["flavor_ref"] == "1" and cp["compute"]["flavor_ref_alt"] == "2"
    assert "image_ref" not in cp["compute"]  # no image service
    assert cp["compute-feature-enabled"]["api_extensions"] == ""  # no /extensions: none, never "all"
    assert cp["network"]["public_network_id"] == "net-public"
    assert cp["network-feature-enabled"]["api_extensions"] == "router,security-group"
    assert cp["object-storage-feature-enabled"]["discoverable_apis"] == "bulk_delete,slo,tempurl"
    assert cp["object-storage-feature-enabled"]["discoverability"] == "true"
    assert cp["validation"]["run_validation"] == "false"
    assert cp["auth"]["use_dynamic_credentials"] == "true"
    assert cp["auth"]["admin_password"] == "secret"
    assert "all" not in [v for s in cp.sections() for k, v in cp[s].items() if k.endswith("extensions")]


def test_identity_only_and_redaction():
    with FakeCloud(services=("identity",)) as cloud:
        conf = tempest_conf.generate(cloud.clouds(), "kumo-admin", overrides=["compute.build_timeout=7"])
    text = conf.render(redact=True)
    cp = _parse(text)
    assert cp["auth"]["admin_password"] == "***"
    assert cp["service_available"]["nova"] == "false"
    assert "network" not in cp and "object-storage" not in cp
    assert cp["compute"]["build_timeout"] == "7"
    # comments live on their own lines only
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            assert "#" not in line.split("=", 1)[1], line


def test_bad_credentials_raise():
    with FakeCloud(services=("identity",)) as cloud:
        clouds = cloud.clouds()
        clouds["clouds"]["kumo-admin"]["auth"]["password"] = "wrong"
        try:
            tempest_conf.generate(clouds, "kumo-admin")
        except tempest_conf.ConfError as exc:
            assert "401" in str(exc)
        else:
            raise AssertionError("expected ConfError")


def _serve_as_kumo(argv: list[str]) -> int:
    """Mimic `kumo up --data-dir D --host H --port P` (fake identity only)."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["up"])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    cloud = FakeCloud(services=("identity",))
    cloud.server.server_close()
    cloud.server = ThreadingHTTPServer((args.host, args.port), cloud._handler())
    cloud.port = args.port
    cloud.base = f"http://{args.host}:{args.port}"
    clouds = cloud.clouds()
    lines = ["clouds:"]
    for name, c in clouds["clouds"].items():
        lines.append(f"  {name}:")
        lines.append("    auth:")
        lines += [f"      {k}: {v}" for k, v in c["auth"].items()]
        lines += ["    region_name: RegionOne", "    identity_api_version: 3"]
    (Path(args.data_dir) / "clouds.yaml").write_text("\n".join(lines) + "\n")
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=cloud.server.shutdown).start())
    print(f"fake kumo on {cloud.base}", flush=True)
    cloud.server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(_serve_as_kumo(sys.argv[1:]))


def test_security_compliance_probe_uses_lockout(monkeypatch):
    monkeypatch.setattr(tempest_conf, "LOCKOUT_WAIT", 0.3)
    monkeypatch.setattr(tempest_conf, "LOCKOUT_POLL", 0.1)
    for lockout, expected in ((2, "true"), (0, "false"), (5, "false")):
        with FakeCloud(services=("identity",), lockout=lockout or None) as cloud:
            if lockout == 0:
                cloud.lockout = 0  # POST /users works, no lockout ever
            conf = tempest_conf.generate(cloud.clouds(), "kumo-admin")
            assert not cloud.probe_users, "probe user must be deleted"
        cp = _parse(conf.render())
        assert cp["identity-feature-enabled"]["security_compliance"] == expected, lockout


def test_security_compliance_probe_measures_lockout_duration(monkeypatch):
    monkeypatch.setattr(tempest_conf, "LOCKOUT_POLL", 0.1)
    with FakeCloud(services=("identity",), lockout=2, unlock_after=1.2) as cloud:
        conf = tempest_conf.generate(cloud.clouds(), "kumo-admin")
        assert not cloud.probe_users, "probe user must be deleted"
    cp = _parse(conf.render())
    assert cp["identity-feature-enabled"]["security_compliance"] == "true"
    assert cp["identity"]["user_lockout_failure_attempts"] == "2"
    assert cp["identity"]["user_lockout_duration"] == "2"  # ceil of the 1.2 s measured
    assert conf.facts["identity_lockout"] == {"attempts": 2, "duration": 2}


def test_security_compliance_probe_long_lockout_is_not_tested(monkeypatch):
    monkeypatch.setattr(tempest_conf, "LOCKOUT_WAIT", 0.3)
    monkeypatch.setattr(tempest_conf, "LOCKOUT_POLL", 0.1)
    with FakeCloud(services=("identity",), lockout=2) as cloud:
        conf = tempest_conf.generate(cloud.clouds(), "kumo-admin")
    cp = _parse(conf.render())
    assert cp["identity-feature-enabled"]["security_compliance"] == "true"
    assert cp["identity"]["user_lockout_duration"] == "0"


def test_harness_settings_and_counts_not_redacted():
    with FakeCloud(services=("identity",)) as cloud:
        conf = tempest_conf.generate(
            cloud.clouds(),
            "kumo-admin",
            overrides=["identity.user_lockout_duration=9"],
            harness_settings=[
                "identity.user_unique_last_password_count=2",
                "identity.user_lockout_duration=5",
            ],
        )
    text = conf.render(redact=True)
    cp = _parse(text)
    assert cp["identity"]["user_unique_last_password_count"] == "2"
    assert cp["identity"]["user_lockout_duration"] == "9"  # the command line wins
    assert cp["auth"]["admin_password"] == "***"
    assert "the harness's kumo is started with this setting" in text


def test_current_sync_cluster_from_info():
    info = {"container_sync": {"realms": {"KUMO": {"clusters": {"OTHER": {}, "LOCAL": {"current": True}}}}}}
    assert tempest_conf.current_sync_cluster(info) == ("KUMO", "LOCAL")
    assert tempest_conf.current_sync_cluster({"container_sync": {"realms": {}}}) == (None, None)
    assert tempest_conf.current_sync_cluster({"swift": {}}) == (None, None)
