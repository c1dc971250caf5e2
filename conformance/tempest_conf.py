"""Generate tempest.conf from a live cloud (python3 stdlib only).

Everything that depends on what the cloud implements is *discovered*: the
catalog decides ``[service_available]``, small probes decide feature flags,
and extension lists come from the APIs themselves.  Nothing is set to ``all``.

To teach the harness about a new feature, add a ``Probe`` to one of the tables
below (IDENTITY_FEATURE_PROBES, IDENTITY_EXTENSION_PROBES, VOLUME_FEATURE_PROBES,
...).  A probe is a name, a one-line description and a function that takes the
``Cloud`` and returns True/False.
"""

from __future__ import annotations

import json
import math
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

HTTP_TIMEOUT = 20
# How long the security compliance probe waits for its locked-out user to be let in again
# (measures [identity] user_lockout_duration; a longer lockout is written as 0 = not tested).
LOCKOUT_WAIT = 20.0
LOCKOUT_POLL = 0.5

# catalog service type(s) -> tempest [service_available] option
SERVICE_TYPES = {
    "nova": ("compute",),
    "glance": ("image",),
    "neutron": ("network",),
    "cinder": ("block-storage", "volumev3", "volume"),
    "swift": ("object-store",),
}
# tempest [service_available] option -> harness service (tempest.api group)
AVAILABLE_TO_SERVICE = {
    "nova": "compute",
    "glance": "image",
    "neutron": "network",
    "cinder": "volume",
    "swift": "object_storage",
}


class ConfError(RuntimeError):
    """The cloud could not be read well enough to write tempest.conf."""


# --------------------------------------------------------------------------- HTTP


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def http(
    method: str,
    url: str,
    token: str | None = None,
    body=None,
    headers: dict | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> Response:
    """One HTTP request; never raises for HTTP status codes (status 0 = no answer)."""
    hdrs = {"Accept": "application/json"}
    if token:
        hdrs["X-Auth-Token"] = token
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local cloud URL
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in (err.headers or {}).items()}, err.read() or b"")
    except (urllib.error.URLError, OSError, ValueError):
        return Response(0, {}, b"")


# --------------------------------------------------------------------------- cloud session


@dataclass
class Credentials:
    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region: str = "RegionOne"

    @classmethod
    def from_clouds(cls, clouds: dict, name: str) -> Credentials:
        try:
            cloud = clouds["clouds"][name]
        except (KeyError, TypeError) as exc:
            raise ConfError(f"cloud {name!r} not found in clouds.yaml") from exc
        auth = cloud.get("auth") or {}
        missing = [k for k in ("auth_url", "username", "password", "project_name") if not auth.get(k)]
        if missing:
            raise ConfError(f"cloud {name!r} lacks auth keys {missing} (a project-scoped admin is needed)")
        return cls(
            auth_url=auth["auth_url"],
            username=auth["username"],
            password=auth["password"],
            project_name=auth["project_name"],
            user_domain_name=auth.get("user_domain_name") or auth.get("domain_name") or "Default",
            project_domain_name=auth.get("project_domain_name") or auth.get("domain_name") or "Default",
            region=cloud.get("region_name") or "RegionOne",
        )


def identity_v3_url(auth_url: str) -> str:
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


@dataclass
class Cloud:
    """An authenticated admin view of the cloud, used by the probes."""

    creds: Credentials
    token: str = ""
    catalog: list = field(default_factory=list)
    user_id: str = ""
    project_id: str = ""
    user_domain_id: str = ""
    project_domain_id: str = ""
    cache: dict = field(default_factory=dict)

    @property
    def identity_url(self) -> str:
        return identity_v3_url(self.creds.auth_url)

    def login(self) -> None:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.creds.username,
                            "domain": {"name": self.creds.user_domain_name},
                            "password": self.creds.password,
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": self.creds.project_name,
                        "domain": {"name": self.creds.project_domain_name},
                    }
                },
            }
        }
        resp = http("POST", self.identity_url + "/auth/tokens", body=body)
        if resp.status != 201:
            raise ConfError(
                f"POST {self.identity_url}/auth/tokens answered {resp.status or 'nothing'}: "
                f"{resp.body[:300].decode('utf-8', 'replace')}"
            )
        self.token = resp.headers.get("x-subject-token", "")
        token = (resp.json() or {}).get("token") or {}
        if not self.token or not token:
            raise ConfError("token response lacks X-Subject-Token or a token body")
        self.catalog = token.get("catalog") or []
        self.user_id = (token.get("user") or {}).get("id", "")
        self.user_domain_id = ((token.get("user") or {}).get("domain") or {}).get("id", "")
        project = token.get("project") or {}
        self.project_id = project.get("id", "")
        self.project_domain_id = (project.get("domain") or {}).get("id", "")

    def endpoint(self, *types: str, interface: str = "public") -> str | None:
        for wanted in types:
            for svc in self.catalog:
                if svc.get("type") != wanted:
                    continue
                for ep in svc.get("endpoints") or []:
                    if ep.get("interface") != interface:
                        continue
                    region = ep.get("region_id") or ep.get("region")
                    if region and region != self.creds.region:
                        continue
                    return ep.get("url", "").rstrip("/")
        return None

    def catalog_type(self, *types: str) -> str | None:
        for wanted in types:
            if self.endpoint(wanted):
                return wanted
        return None

    def get(self, url: str, headers: dict | None = None) -> Response:
        key = ("GET", url, tuple(sorted((headers or {}).items())))
        if key not in self.cache:
            self.cache[key] = http("GET", url, token=self.token, headers=headers)
        return self.cache[key]

    def ok(self, url: str) -> bool:
        return self.get(url).ok

    def idv3(self, path: str) -> str:
        return self.identity_url + path


def _ipv6_subnet_probe(c: Cloud, net_url: str) -> bool:
    """Create (and delete) a network with an IPv6 SLAAC subnet: does the cloud take the attributes?"""
    net = http(
        "POST", net_url + "/v2.0/networks", token=c.token, body={"network": {"name": "tempest-conf-v6-probe"}}
    )
    net_id = ((net.json() or {}).get("network") or {}).get("id") if net.status == 201 else None
    if not net_id:
        return False
    try:
        body = {
            "subnet": {
                "network_id": net_id,
                "ip_version": 6,
                "cidr": "2001:db8:4b::/64",
                "ipv6_ra_mode": "slaac",
                "ipv6_address_mode": "slaac",
            }
        }
        sub = http("POST", net_url + "/v2.0/subnets", token=c.token, body=body)
        got = ((sub.json() or {}).get("subnet") or {}) if sub.status == 201 else {}
        return got.get("ipv6_ra_mode") == "slaac" and got.get("ipv6_address_mode") == "slaac"
    finally:
        http("DELETE", f"{net_url}/v2.0/networks/{net_id}", token=c.token)


# --------------------------------------------------------------------------- probe tables


@dataclass(frozen=True)
class Probe:
    name: str
    what: str
    check: Callable[[Cloud], bool]
    # tempest option written from the result; None = recorded in the results only
    option: str | None = None


def _fixed(value: bool) -> Callable[[Cloud], bool]:
    return lambda _cloud: value


def _password_login(c: Cloud, user_id: str, password: str) -> int:
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": {"id": user_id, "password": password}}}
        }
    }
    return http("POST", c.idv3("/auth/tokens"), body=body).status


def _lockout_probe(c: Cloud, attempts: int) -> bool:
    """Security compliance is a server setting no API reveals: try it on a throwaway user.

    Tempest's [identity-feature-enabled] security_compliance tests assume lockout after
    ``user_lockout_failure_attempts`` (default 2) wrong passwords.  Once locked, the right
    password is retried every LOCKOUT_POLL s (a locked account does not count tries) for at most
    LOCKOUT_WAIT s to measure the lockout duration; both go to ``c.cache["lockout"]``, from
    which ``generate`` writes [identity] user_lockout_*.  The user is deleted again.
    """
    name = "kumo-conformance-probe-" + secrets.token_hex(6)
    password = secrets.token_urlsafe(16)
    domain_id = c.user_domain_id or "default"
    resp = http(
        "POST",
        c.idv3("/users"),
        token=c.token,
        body={"user": {"name": name, "password": password, "domain_id": domain_id}},
    )
    user_id = ((resp.json() or {}).get("user") or {}).get("id") if resp.status == 201 else None
    if not user_id:
        return False
    try:
        if _password_login(c, user_id, password) != 201:
            return False  # no unscoped login: cannot tell
        for _ in range(attempts):
            _password_login(c, user_id, password + "-wrong")
        locked_at = time.monotonic()
        if _password_login(c, user_id, password) != 401:
            return False
        duration = None
        while time.monotonic() - locked_at < LOCKOUT_WAIT:
            time.sleep(LOCKOUT_POLL)
            if _password_login(c, user_id, password) == 201:
                duration = max(1, math.ceil(time.monotonic() - locked_at))
                break
        c.cache["lockout"] = {"attempts": attempts, "duration": duration}
        return True
    finally:
        http("DELETE", c.idv3(f"/users/{user_id}"), token=c.token)


IDENTITY_FEATURE_PROBES: list[Probe] = [
    Probe(
        "trust",
        "GET /v3/OS-TRUST/trusts answers 2xx",
        lambda c: c.ok(c.idv3("/OS-TRUST/trusts")),
        option="trust",
    ),
    Probe(
        "access_rules",
        "GET /v3/users/{user_id}/access_rules answers 2xx",
        lambda c: c.ok(c.idv3(f"/users/{c.user_id}/access_rules")),
        option="access_rules",
    ),
    Probe(
        "security_compliance",
        "a throwaway user is locked out after 2 wrong passwords (tempest's user_lockout_failure_attempts)",
        lambda c: _lockout_probe(c, attempts=2),
        option="security_compliance",
    ),
    # Informational: keystone always serves this route, so it says nothing about lockout.
    Probe(
        "security_compliance_config_api",
        "GET /v3/domains/{domain_id}/config/security_compliance answers 2xx",
        lambda c: c.ok(c.idv3(f"/domains/{c.user_domain_id}/config/security_compliance")),
    ),
    Probe(
        "domain_specific_drivers",
        "GET /v3/domains/config/default answers 2xx",
        lambda c: c.ok(c.idv3("/domains/config/default")),
        option="domain_specific_drivers",
    ),
    Probe("api_v2", "kumo implements only identity v3", _fixed(False), option="api_v2"),
    Probe("api_v3", "GET /v3 answers 2xx", lambda c: c.ok(c.idv3("")), option="api_v3"),
    Probe(
        "immutable_user_source",
        "users are created through the API (no read-only backend)",
        _fixed(False),
        option="immutable_user_source",
    ),
    # Informational (no tempest 47 option): recorded in the results.
    Probe(
        "application_credentials",
        "GET /v3/users/{user_id}/application_credentials answers 2xx",
        lambda c: c.ok(c.idv3(f"/users/{c.user_id}/application_credentials")),
    ),
    Probe(
        "project_tags",
        "GET /v3/projects/{project_id}/tags answers 2xx",
        lambda c: c.ok(c.idv3(f"/projects/{c.project_id}/tags")),
    ),
    Probe(
        "system_scope",
        "GET /v3/system/users/{user_id}/roles answers 2xx",
        lambda c: c.ok(c.idv3(f"/system/users/{c.user_id}/roles")),
    ),
]

# Identity v3 has no extension listing: each extension is probed by one of its routes.
IDENTITY_EXTENSION_PROBES: list[Probe] = [
    Probe(
        "OS-EC2",
        "GET /v3/users/{user_id}/credentials/OS-EC2",
        lambda c: c.ok(c.idv3(f"/users/{c.user_id}/credentials/OS-EC2")),
    ),
    Probe(
        "OS-INHERIT",
        "GET /v3/OS-INHERIT/domains/{d}/users/{u}/roles/inherited_to_projects",
        lambda c: c.ok(
            c.idv3(f"/OS-INHERIT/domains/{c.user_domain_id}/users/{c.user_id}/roles/inherited_to_projects")
        ),
    ),
    Probe("OS-TRUST", "GET /v3/OS-TRUST/trusts", lambda c: c.ok(c.idv3("/OS-TRUST/trusts"))),
    Probe(
        "OS-EP-FILTER",
        "GET /v3/OS-EP-FILTER/endpoint_groups",
        lambda c: c.ok(c.idv3("/OS-EP-FILTER/endpoint_groups")),
    ),
    Probe("OS-OAUTH1", "GET /v3/OS-OAUTH1/consumers", lambda c: c.ok(c.idv3("/OS-OAUTH1/consumers"))),
    Probe("OS-REVOKE", "GET /v3/OS-REVOKE/events", lambda c: c.ok(c.idv3("/OS-REVOKE/events"))),
    Probe(
        "OS-FEDERATION",
        "GET /v3/OS-FEDERATION/identity_providers",
        lambda c: c.ok(c.idv3("/OS-FEDERATION/identity_providers")),
    ),
    Probe("OS-SIMPLE-CERT", "GET /v3/OS-SIMPLE-CERT/ca", lambda c: c.ok(c.idv3("/OS-SIMPLE-CERT/ca"))),
]


def _volume_url(c: Cloud, path: str) -> str:
    base = c.cache.get("volume_base") or ""
    return base + path


VOLUME_FEATURE_PROBES: list[Probe] = [
    Probe(
        "backup",
        "GET {volume}/backups answers 2xx",
        lambda c: c.ok(_volume_url(c, "/backups")),
        option="backup",
    ),
    Probe(
        "snapshot",
        "GET {volume}/snapshots answers 2xx",
        lambda c: c.ok(_volume_url(c, "/snapshots")),
        option="snapshot",
    ),
]


def _info(c: Cloud) -> dict:
    return c.cache.get("swift_info") or {}


OBJECT_STORAGE_FEATURE_PROBES: list[Probe] = [
    Probe(
        "discoverability",
        "GET /info answers 2xx with a 'swift' key",
        lambda c: "swift" in _info(c),
        option="discoverability",
    ),
    Probe(
        "container_sync",
        "/info lists container_sync",
        lambda c: "container_sync" in _info(c),
        option="container_sync",
    ),
    Probe(
        "object_versioning",
        "/info lists versioned_writes",
        lambda c: "versioned_writes" in _info(c),
        option="object_versioning",
    ),
]


def seed_multiattach_type(cloud: Cloud, volume_base: str, name: str = "multiattach") -> str | None:
    """A public volume type whose volumes several servers can attach (made once; its name)."""
    found = cloud.get(volume_base + "/types?is_public=None").json() or {}
    for vt in found.get("volume_types") or []:
        if vt.get("name") == name and (vt.get("extra_specs") or {}).get("multiattach") == "<is> True":
            return name
    made = http("POST", volume_base + "/types", token=cloud.token, body={"volume_type": {
        "name": name, "os-volume-type-access:is_public": True, "extra_specs": {"multiattach": "<is> True"}}})
    return name if made.status in (200, 202) else None


def current_sync_cluster(info: dict) -> tuple[str | None, str | None]:
    """The realm and cluster that ``/info``'s ``container_sync`` marks ``current`` (this cluster)."""
    realms = ((info.get("container_sync") or {}).get("realms") or {}) if isinstance(info, dict) else {}
    for realm, doc in realms.items() if isinstance(realms, dict) else ():
        for cluster, cdoc in ((doc or {}).get("clusters") or {}).items():
            if isinstance(cdoc, dict) and cdoc.get("current"):
                return realm, cluster
    return None, None


def run_probes(cloud: Cloud, probes: list[Probe]) -> dict[str, bool]:
    results = {}
    for probe in probes:
        try:
            results[probe.name] = bool(probe.check(cloud))
        except Exception:  # noqa: BLE001 - a broken probe means "not available"
            results[probe.name] = False
    return results


# --------------------------------------------------------------------------- discovery helpers


def _root_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def version_info(cloud: Cloud, url: str) -> dict:
    """The current version entry for a versioned endpoint (``{"version": {...}}`` document)."""
    for candidate in (url, url + "/"):
        doc = cloud.get(candidate).json() or {}
        if isinstance(doc, dict) and isinstance(doc.get("version"), dict):
            return doc["version"]
    # fall back to the versions list at the parent path
    parent = url.rsplit("/", 1)[0]
    doc = cloud.get(parent + "/").json() or cloud.get(parent).json() or {}
    versions = doc.get("versions") if isinstance(doc, dict) else None
    if isinstance(versions, dict):
        versions = versions.get("values")
    if isinstance(versions, list):
        last = url.rsplit("/", 1)[-1]
        for entry in versions:
            if isinstance(entry, dict) and entry.get("id", "").startswith(last):
                return entry
        for entry in versions:
            if isinstance(entry, dict) and entry.get("status", "").upper() == "CURRENT":
                return entry
    return {}


def _aliases(resp: Response) -> list[str] | None:
    if not resp.ok:
        return None
    doc = resp.json() or {}
    exts = doc.get("extensions") if isinstance(doc, dict) else None
    if not isinstance(exts, list):
        return None
    return sorted({e.get("alias") for e in exts if isinstance(e, dict) and e.get("alias")})


def _find_id(cloud: Cloud, url: str, key: str, name: str) -> str | None:
    doc = cloud.get(url).json() or {}
    for item in doc.get(key) or [] if isinstance(doc, dict) else []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get("id")
    return None


SEED_IMAGE_BYTES = 1 << 20


def _tiny_qcow2(virtual: int = 1 << 26) -> bytes:
    """A valid, empty qcow2 (version 2, no backing file): header, one L1 and refcount table."""
    import struct

    cluster = 1 << 16
    header = bytearray(3 * cluster)
    struct.pack_into(">4sIQIIQIIQQII", header, 0, b"QFI\xfb", 2, 0, 0, 16, virtual, 0, 1, 2 * cluster,
                     cluster, 1, 0)  # fmt: skip
    return bytes(header)


def seed_web_image(cloud: Cloud, swift_url: str) -> str | None:
    """Put a tiny qcow2 in a public-read container; its URL if an anonymous GET works."""
    container = swift_url + "/kumo-tempest-web"
    made = http("PUT", container, token=cloud.token, headers={"X-Container-Read": ".r:*,.rlistings"})
    if made.status not in (201, 202, 204):
        return None
    url = container + "/tiny.qcow2"
    req = urllib.request.Request(
        url, data=_tiny_qcow2(), method="PUT",
        headers={"X-Auth-Token": cloud.token, "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:  # noqa: S310 - local cloud URL
            if resp.status != 201:
                return None
    except (urllib.error.URLError, OSError):
        return None
    return url if http("GET", url).status == 200 else None


def _ws_first_frame(url: str, timeout: float = 10.0) -> bytes | None:
    """Open the websocket noVNC would open for ``url`` (``ws://host:port/<path param>``); the first
    frame's payload, or None when the upgrade is refused or nothing arrives."""
    import base64
    import socket

    parts = urllib.parse.urlparse(url)
    path = urllib.parse.parse_qs(parts.query).get("path", ["websockify"])[0]
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (f"GET /{path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n\r\n")  # fmt: skip
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout) as sock:
            sock.sendall(request.encode())
            data = b""
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 2:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 101"):
                return None
            length = rest[1] & 127
            while len(rest) < 2 + length:
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                rest += chunk
            return rest[2 : 2 + length]
    except OSError:
        return None


def vnc_console_probe(cloud: Cloud, compute_url: str, image_id: str, flavor_id: str) -> bool:
    """Boot a server, ask for its noVNC console, fetch noVNC's page and see RFB bytes on the websocket."""
    mv = {"OpenStack-API-Version": "compute 2.37"}
    body = {"server": {"name": "tempest-conf-vnc-probe", "imageRef": image_id, "flavorRef": flavor_id,
                       "networks": "none"}}  # fmt: skip
    made = http("POST", compute_url + "/servers", token=cloud.token, body=body, headers=mv)
    sid = ((made.json() or {}).get("server") or {}).get("id") if made.status == 202 else None
    if not sid:
        return False
    try:
        deadline = time.monotonic() + 60
        while True:
            status = ((http("GET", f"{compute_url}/servers/{sid}", token=cloud.token).json() or {}).get("server") or {}).get("status")
            if status == "ACTIVE":
                break
            if status in ("ERROR", None) or time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        rc = http("POST", f"{compute_url}/servers/{sid}/remote-consoles", token=cloud.token, headers=mv,
                  body={"remote_console": {"protocol": "vnc", "type": "novnc"}})  # fmt: skip
        url = ((rc.json() or {}).get("remote_console") or {}).get("url") if rc.status == 200 else None
        if not url:
            return False
        page = http("GET", url)
        if page.status != 200 or b"noVNC" not in page.body or b"<script" not in page.body:
            return False
        return (_ws_first_frame(url) or b"").startswith(b"RFB ")
    finally:
        http("DELETE", f"{compute_url}/servers/{sid}", token=cloud.token)


def _image_data(cloud: Cloud, image_url: str, image_id: str) -> tuple[bytes, str] | None:
    """An active image's bytes and disk format (None when it has none yet)."""
    doc = cloud.get(f"{image_url}/v2/images/{image_id}").json() or {}
    if doc.get("status") != "active":
        return None
    data = http("GET", f"{image_url}/v2/images/{image_id}/file", token=cloud.token, timeout=120,
                headers={"Accept": "application/octet-stream"})
    return (data.body, doc.get("disk_format") or "raw") if data.status == 200 and data.body else None


def seed_test_images(cloud: Cloud, image_url: str) -> list[str]:
    """Upload ``kumo-tiny`` and ``kumo-tiny-alt`` (public, raw) when the cloud lacks them.

    As DevStack uploads CirrOS for Tempest. With the fake virt driver these are 1 MiB raw disks of
    zeros; where kumo registered its bootable ``kumo-tiny`` (QEMU), ``kumo-tiny-alt`` is a copy of it.
    """
    made = []
    for name in ("kumo-tiny", "kumo-tiny-alt"):
        if _find_id(cloud, f"{image_url}/v2/images?name={name}", "images", name):
            continue
        data, disk_format = bytes(SEED_IMAGE_BYTES), "raw"
        tiny = _find_id(cloud, f"{image_url}/v2/images?name=kumo-tiny", "images", "kumo-tiny")
        if name == "kumo-tiny-alt" and tiny and "kumo-tiny" not in made:
            # kumo registered its bootable kumo-tiny (real QEMU guests): the alternative image boots
            # too, or a rebuild onto it leaves a guest with no OS (that never releases a volume)
            got = _image_data(cloud, image_url, tiny)
            if got is not None:
                data, disk_format = got
        body = {"name": name, "disk_format": disk_format, "container_format": "bare", "visibility": "public"}
        created = http("POST", image_url + "/v2/images", token=cloud.token, body=body)
        image_id = ((created.json() or {}) if created.status == 201 else {}).get("id")
        if not image_id:
            raise ConfError(f"could not create test image {name}: {created.status} {created.body[:200]!r}")
        req = urllib.request.Request(
            f"{image_url}/v2/images/{image_id}/file",
            data=data,
            method="PUT",
            headers={"X-Auth-Token": cloud.token, "Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:  # noqa: S310 - local cloud URL
            if resp.status != 204:
                raise ConfError(f"upload of test image {name} answered {resp.status}")
        # the lookups above are cached: forget them so the new image is found
        cloud.cache = {k: v for k, v in cloud.cache.items() if "/v2/images" not in k[1]}
        made.append(name)
    return made


# --------------------------------------------------------------------------- generation


@dataclass
class GeneratedConf:
    sections: dict  # section -> list of (key, value, comment | None)
    facts: dict  # everything probed, for the results file
    services_available: dict  # tempest service_available name -> bool

    def set(self, section: str, key: str, value, comment: str | None = None) -> None:
        items = self.sections.setdefault(section, [])
        for i, (k, _v, c) in enumerate(items):
            if k == key:
                items[i] = (key, value, comment or c)
                return
        items.append((key, value, comment))

    def render(self, redact: bool = False) -> str:
        out = [
            "# Generated by kumo conformance/run.py from the live cloud.",
            "# Comments stay on their own lines: oslo.config keeps inline comments in values.",
        ]
        for section, items in self.sections.items():
            out.append("")
            out.append(f"[{section}]")
            for key, value, comment in items:
                if comment:
                    for line in str(comment).splitlines():
                        out.append(f"# {line}")
                out.append(f"{key} = {_ini_value(key, value, redact)}")
        return "\n".join(out) + "\n"


def _is_secret(key: str) -> bool:
    # admin_password, alt_password...; not user_unique_last_password_count and the like
    return key.endswith(("password", "secret"))


def _ini_value(key: str, value, redact: bool) -> str:
    if redact and _is_secret(key) and value:
        return "***"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if value is None:
        return ""
    return str(value)


def generate(
    clouds: dict,
    admin_cloud: str = "kumo-admin",
    overrides: list[str] | None = None,
    log_file: str = "tempest.log",
    harness_settings: list[str] | None = None,
) -> GeneratedConf:
    """``harness_settings``: SECTION.KEY=VALUE lines that describe how the harness configured
    the cloud it started (applied before ``overrides``, which come from the command line)."""
    creds = Credentials.from_clouds(clouds, admin_cloud)
    cloud = Cloud(creds)
    cloud.login()
    conf = GeneratedConf(sections={}, facts={}, services_available={})
    facts = conf.facts

    conf.set("DEFAULT", "log_file", log_file)
    conf.set("DEFAULT", "use_stderr", False)

    # [auth]
    conf.set("auth", "use_dynamic_credentials", True)
    conf.set("auth", "create_isolated_networks", True)
    conf.set("auth", "admin_username", creds.username)
    conf.set("auth", "admin_password", creds.password)
    conf.set("auth", "admin_project_name", creds.project_name)
    conf.set("auth", "admin_domain_name", creds.user_domain_name)
    conf.set("auth", "admin_user_domain_name", creds.user_domain_name)
    conf.set("auth", "admin_project_domain_name", creds.project_domain_name)

    # [identity]
    uri_v3 = cloud.endpoint("identity")
    uri_v3 = identity_v3_url(uri_v3) if uri_v3 else cloud.identity_url
    facts["catalog_types"] = sorted({s.get("type") for s in cloud.catalog if s.get("type")})
    conf.set("identity", "uri_v3", uri_v3)
    conf.set("identity", "auth_version", "v3")
    conf.set("identity", "region", creds.region)
    conf.set("identity", "v3_endpoint_type", "public")
    conf.set("identity", "admin_role", "admin")
    domain_id = (
        _find_id(cloud, cloud.idv3("/domains?name=Default"), "domains", "Default") or cloud.user_domain_id
    )
    if domain_id:
        conf.set("identity", "default_domain_id", domain_id, "id of the domain named Default")

    # [service_available]
    # identity is always there (tempest has no service_available option for keystone)
    available = {}
    for option, types in SERVICE_TYPES.items():
        present = cloud.catalog_type(*types)
        available[option] = bool(present)
        conf.set(
            "service_available",
            option,
            bool(present),
            f"catalog type {present!r} present" if present else f"no {'/'.join(types)} in the catalog",
        )
    conf.set("service_available", "horizon", False)
    conf.services_available = available

    # [identity-feature-enabled]
    feats = run_probes(cloud, IDENTITY_FEATURE_PROBES)
    facts["identity_features"] = feats
    for probe in IDENTITY_FEATURE_PROBES:
        if probe.option:
            conf.set("identity-feature-enabled", probe.option, feats[probe.name], f"probe: {probe.what}")
    lockout = cloud.cache.get("lockout")
    facts["identity_lockout"] = lockout
    if feats.get("security_compliance") and lockout:
        conf.set(
            "identity",
            "user_lockout_failure_attempts",
            lockout["attempts"],
            "probe: wrong passwords that locked the probe user",
        )
        conf.set(
            "identity",
            "user_lockout_duration",
            lockout["duration"] or 0,
            "probe: seconds until the locked probe user could log in again"
            if lockout["duration"]
            else f"probe: still locked after {LOCKOUT_WAIT:.0f}s, 0 skips tempest's lockout test",
        )
    exts = run_probes(cloud, IDENTITY_EXTENSION_PROBES)
    facts["identity_extensions"] = exts
    conf.set(
        "identity-feature-enabled",
        "api_extensions",
        [k for k, v in exts.items() if v],
        "each extension probed by one of its routes (identity v3 has no extension list)",
    )

    # [compute]
    if available["nova"]:
        compute_url = cloud.endpoint("compute")
        ver = version_info(cloud, compute_url)
        facts["compute_version"] = ver
        if ver.get("min_version") and ver.get("version"):
            conf.set("compute", "min_microversion", ver["min_version"], f"from GET {compute_url}")
            conf.set("compute", "max_microversion", ver["version"])
        flavors_url = compute_url + "/flavors"
        f1 = _find_id(cloud, flavors_url, "flavors", "m1.tiny")
        f2 = _find_id(cloud, flavors_url, "flavors", "m1.small") or f1
        if f1:
            conf.set("compute", "flavor_ref", f1, "flavor m1.tiny")
            conf.set("compute", "flavor_ref_alt", f2, "flavor m1.small")
        conf.set("compute", "build_timeout", 120)
        # Tempest's multinode tests (migrations, scheduler hints across hosts) need min_compute_nodes
        # up and enabled nova-compute services; kumo's harness runs 2 fake hosts (compute.fake_hosts)
        svcs = cloud.get(compute_url + "/os-services?binary=nova-compute")
        hosts = {s.get("host") for s in ((svcs.json() or {}).get("services") or []) if isinstance(s, dict)
                 and s.get("state") == "up" and s.get("status") == "enabled"} if svcs.ok else set()  # fmt: skip
        facts["compute_hosts"] = sorted(h for h in hosts if h)
        if len(hosts) >= 2:
            conf.set("compute", "min_compute_nodes", len(hosts), f"probe: {len(hosts)} nova-compute services up")
        comp_exts = _aliases(cloud.get(compute_url + "/extensions"))
        facts["compute_extensions"] = comp_exts
        conf.set(
            "compute-feature-enabled",
            "api_extensions",
            comp_exts or [],
            f"aliases from GET {compute_url}/extensions"
            if comp_exts is not None
            else f"GET {compute_url}/extensions not available: none",
        )
    if available["glance"]:
        image_url = cloud.endpoint("image")
        if harness_settings is not None:  # a cloud the harness started: seed the test images
            facts["seeded_images"] = seed_test_images(cloud, image_url)
        image_id = _find_id(cloud, image_url + "/v2/images?name=kumo-tiny", "images", "kumo-tiny")
        alt_id = _find_id(cloud, image_url + "/v2/images?name=kumo-tiny-alt", "images", "kumo-tiny-alt")
        facts["image_kumo_tiny"] = image_id
        if image_id:
            conf.set("compute", "image_ref", image_id, "image kumo-tiny")
            conf.set("compute", "image_ref_alt", alt_id or image_id, "image kumo-tiny-alt, else kumo-tiny")
        compute_url = cloud.endpoint("compute") if available["nova"] else None
        flavor_id = _find_id(cloud, compute_url + "/flavors", "flavors", "m1.tiny") if compute_url else None
        vnc = bool(image_id and flavor_id and vnc_console_probe(cloud, compute_url, image_id, flavor_id))
        facts["vnc_console"] = vnc
        conf.set("compute-feature-enabled", "vnc_console", vnc,
                 "probe: a server's noVNC URL serves noVNC and its websocket speaks RFB")  # fmt: skip
        imp = cloud.get(image_url + "/v2/info/import").json() or {}
        methods = ((imp.get("import-methods") or {}).get("value")) if isinstance(imp, dict) else None
        facts["image_import_methods"] = methods
        swift_url = cloud.endpoint("object-store")
        if harness_settings is not None and swift_url and methods and "web-download" in methods:
            # web-download needs an http image: serve one from the cloud's own object storage
            # (a public-read container) instead of the internet; the harness's kumo allows
            # loopback URLs (KUMO_IMAGE__WEB_DOWNLOAD_ALLOW_HOSTS in run.py).
            web_image = seed_web_image(cloud, swift_url)
            facts["image_http_qcow2_image"] = web_image
            if web_image:
                conf.set("image", "http_qcow2_image", web_image, "a public object in this cloud's object storage")
                conf.set("image", "http_image", web_image, "a public object in this cloud's object storage")
        # locations: shown in image bodies (show_multiple_locations) and an http store
        probe = http("POST", image_url + "/v2/images", token=cloud.token, body={"name": "kumo-probe-locations"})
        probe_body = (probe.json() or {}) if probe.status == 201 else {}
        if probe_body.get("id"):
            http("DELETE", f"{image_url}/v2/images/{probe_body['id']}", token=cloud.token)
        shows = isinstance(probe_body.get("locations"), list)
        detail = cloud.get(image_url + "/v2/info/stores/detail").json() or {}
        store_types = [s.get("type") for s in (detail.get("stores") or [])] if isinstance(detail, dict) else []
        facts["image_store_types"] = store_types
        conf.set("image-feature-enabled", "manage_locations", shows and "http" in store_types,
                 f"image bodies list locations: {shows}; stores: {store_types}")  # fmt: skip
        conf.set("image-feature-enabled", "http_store_enabled", "http" in store_types,
                 f"GET {image_url}/v2/info/stores/detail types: {store_types}")  # fmt: skip
        info = cloud.get(image_url + "/v2/info/stores").json() or {}
        weights = {s.get("id"): s.get("weight") for s in (info.get("stores") or []) if isinstance(info, dict)}
        weighted = any(w is not None for w in weights.values())
        conf.set("image-feature-enabled", "store_weight_enabled", weighted,
                 f"GET {image_url}/v2/info/stores weights: {weights}")  # fmt: skip
        cache = cloud.get(image_url + "/v2/cache")
        conf.set("image", "image_caching_enabled", cache.status == 200,
                 f"GET {image_url}/v2/cache (admin): {cache.status}")  # fmt: skip
        conf.set("image-feature-enabled", "api_v2", True)
        conf.set(
            "image-feature-enabled",
            "import_image",
            bool(methods),
            f"GET {image_url}/v2/info/import: {methods}",
        )

    # [network]
    if available["neutron"]:
        net_url = cloud.endpoint("network")
        net_id = _find_id(cloud, net_url + "/v2.0/networks?name=public", "networks", "public")
        facts["public_network_id"] = net_id
        if net_id:
            conf.set("network", "public_network_id", net_id, "external network public")
            conf.set("network", "floating_network_name", "public")
        conf.set("network", "project_networks_reachable", False)
        net_exts = _aliases(cloud.get(net_url + "/v2.0/extensions"))
        facts["network_extensions"] = net_exts
        conf.set(
            "network-feature-enabled",
            "api_extensions",
            net_exts or [],
            f"aliases from GET {net_url}/v2.0/extensions",
        )
        v6 = _ipv6_subnet_probe(cloud, net_url)
        facts["ipv6_subnet_attributes"] = v6
        conf.set("network-feature-enabled", "ipv6", v6, "probe: an IPv6 SLAAC subnet can be created")
        conf.set("network-feature-enabled", "ipv6_subnet_attributes", v6, "probe: same")

    # [volume]
    if available["cinder"]:
        vtype = cloud.catalog_type(*SERVICE_TYPES["cinder"])
        vol_url = cloud.endpoint(vtype)
        conf.set("volume", "catalog_type", vtype)
        base = vol_url if vol_url.endswith(cloud.project_id) else vol_url + "/" + cloud.project_id
        cloud.cache["volume_base"] = base
        ver_url = (
            vol_url[: -len(cloud.project_id) - 1] if vol_url.endswith("/" + cloud.project_id) else vol_url
        )
        ver = version_info(cloud, ver_url)
        facts["volume_version"] = ver
        if ver.get("min_version") and ver.get("version"):
            conf.set("volume", "min_microversion", ver["min_version"], f"from GET {ver_url}")
            conf.set("volume", "max_microversion", ver["version"])
        vol_exts = _aliases(cloud.get(base + "/extensions"))
        if vol_exts is None:
            vol_exts = _aliases(cloud.get(ver_url + "/extensions"))
        facts["volume_extensions"] = vol_exts
        conf.set(
            "volume-feature-enabled", "api_extensions", vol_exts or [], "aliases from GET {volume}/extensions"
        )
        pools = cloud.get(base + "/scheduler-stats/get_pools?detail=true").json() or {}
        caps = [p.get("capabilities") or {} for p in pools.get("pools") or [] if isinstance(p, dict)]
        if caps:
            facts["volume_pools"] = caps
            what = "from GET {volume}/scheduler-stats/get_pools?detail=true"
            conf.set("volume", "vendor_name", caps[0].get("vendor_name", ""), what)
            conf.set("volume", "storage_protocol", caps[0].get("storage_protocol", ""))
            names = sorted({c.get("volume_backend_name", "") for c in caps} - {""})
            conf.set("volume", "backend_names", names)
            conf.set("volume-feature-enabled", "multi_backend", len(names) > 1)
        vfeats = run_probes(cloud, VOLUME_FEATURE_PROBES)
        facts["volume_features"] = vfeats
        if harness_settings is not None and available["nova"]:  # as DevStack's ENABLE_VOLUME_MULTIATTACH
            mtype = seed_multiattach_type(cloud, base)
            facts["volume_type_multiattach"] = mtype
            if mtype:
                conf.set("volume", "volume_type_multiattach", mtype, "a public volume type with multiattach='<is> True'")
                conf.set("compute-feature-enabled", "volume_multiattach", True,
                         "the harness made the multiattach volume type; compute attaches such volumes from 2.60")
        for probe in VOLUME_FEATURE_PROBES:
            if probe.option:
                conf.set("volume-feature-enabled", probe.option, vfeats[probe.name], f"probe: {probe.what}")

    # [object-storage]
    if available["swift"]:
        swift_url = cloud.endpoint("object-store")
        info = {}
        for candidate in (_root_of(swift_url) + "/info", swift_url.split("/v1", 1)[0] + "/info"):
            doc = cloud.get(candidate).json()
            if isinstance(doc, dict) and "swift" in doc:
                info = doc
                break
        cloud.cache["swift_info"] = info
        facts["object_storage_info_keys"] = sorted(info)
        conf.set("object-storage", "region", creds.region)
        conf.set("object-storage", "operator_role", "member")
        conf.set(
            "object-storage-feature-enabled",
            "discoverable_apis",
            sorted(k for k in info if k != "swift"),
            "keys of GET /info other than swift",
        )
        ofeats = run_probes(cloud, OBJECT_STORAGE_FEATURE_PROBES)
        facts["object_storage_features"] = ofeats
        realm, cluster = current_sync_cluster(info)
        if realm and cluster:  # the realm-style container sync test signs for this cluster
            conf.set("object-storage", "realm_name", realm.lower(), "/info container_sync: the current cluster's realm")
            conf.set("object-storage", "cluster_name", cluster.lower(), "/info container_sync: the current cluster")
            conf.set("object-storage", "container_sync_timeout", 120, "the cluster syncs every few seconds")
        for probe in OBJECT_STORAGE_FEATURE_PROBES:
            if probe.option:
                conf.set(
                    "object-storage-feature-enabled", probe.option, ofeats[probe.name], f"probe: {probe.what}"
                )

    # [validation]: no SSH/ping into guests
    conf.set("validation", "run_validation", False)
    conf.set("service-clients", "http_timeout", 60)

    for item in harness_settings or []:
        apply_override(conf, item, "the harness's kumo is started with this setting (conformance/run.py)")
    for item in overrides or []:
        apply_override(conf, item)
    return conf


def apply_override(conf: GeneratedConf, item: str, comment: str = "set on the command line (--set)") -> None:
    """``section.key=value`` (section may contain dashes; key is after the last dot)."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
    target, value = item.split("=", 1)
    section, key = target.rsplit(".", 1)
    conf.set(section.strip(), key.strip(), value.strip(), comment)
