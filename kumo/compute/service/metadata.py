"""The metadata service's content: what a guest reads at 169.254.169.254 and on its config drive.

Two trees, both versioned by date as in Nova: the OpenStack one (``/openstack/<version>/
meta_data.json``, ``user_data``, ``network_data.json``, ``vendor_data.json``,
``vendor_data2.json``, ``password``) and the EC2-compatible one (``/<version>/meta-data/...``,
``/<version>/user-data``). Requests come from the network agent's metadata proxy, which names
the instance in ``X-Instance-ID`` and signs it (``X-Instance-ID-Signature`` = HMAC-SHA256 of
the id with the secret shared through ``<data_dir>/metadata-secret``); an unsigned or wrongly
signed request is refused, so a guest can only ever read its own metadata.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kumo.common import shared_secret
from kumo.compute.errors import APIError, BadRequest, Conflict, Forbidden, NotFound
from kumo.compute.models import Server
from kumo.compute.service.core import ComputeService, now

log = logging.getLogger("kumo.compute.metadata")

# Nova's OpenStack metadata versions (FOLSOM ... VICTORIA), oldest first.
FOLSOM, GRIZZLY, HAVANA, LIBERTY = "2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15"
NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA = (
    "2016-06-30",
    "2016-10-06",
    "2017-02-22",
    "2018-08-27",
    "2020-10-14",
)
OPENSTACK_VERSIONS = (FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA)
EC2_VERSIONS = (
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
)
MD_JSON, UD, PASSWORD = "meta_data.json", "user_data", "password"
VD_JSON, VD2_JSON, NW_JSON = "vendor_data.json", "vendor_data2.json", "network_data.json"
MAX_PASSWORD = 256  # bytes a guest may post (Nova's limit)
SECRET_FILE = "metadata-secret"


# -- the shared secret and request identity ------------------------------------------------


def secret_file(data_dir: Path) -> Path:
    """``<data_dir>/metadata-secret``: created here or by the network agent, whichever starts first."""
    return shared_secret.ensure(data_dir / SECRET_FILE)


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def identify(svc: ComputeService, secret: str, headers: Mapping[str, str]) -> Server:
    """The server a proxied request is about; 400 without the proxy's headers, 403 on a bad signature."""
    instance_id = headers.get("x-instance-id", "").strip()
    signature = headers.get("x-instance-id-signature", "").strip()
    if not instance_id:
        raise BadRequest("X-Instance-ID header is missing from request.")
    if not signature:
        raise BadRequest("X-Instance-ID-Signature header is missing from request.")
    if not secret or not hmac.compare_digest(sign(secret, instance_id).encode(), signature.encode()):
        log.warning(
            "metadata: X-Instance-ID-Signature does not match for %s (from %s)",
            instance_id,
            headers.get("x-forwarded-for", "?"),
        )
        raise Forbidden("Invalid proxy request signature.")
    with svc.db.reader() as s:
        server = s.get(Server, instance_id)
    tenant = headers.get("x-tenant-id", "").strip()
    if server is None or server.deleted or (tenant and tenant != server.project_id):
        raise NotFound(f"Instance {instance_id} could not be found.")
    return server


# -- the documents -----------------------------------------------------------------------------


def _after(version: str, since: str) -> bool:
    """True when ``version`` (a date or "latest") includes what appeared in ``since``."""
    return version == "latest" or version >= since


@dataclass(frozen=True)
class InstanceMetadata:
    """Everything the guest may learn about itself, from one server row."""

    server: Server
    dhcp_domain: str = "novalocal"
    # what the network API says about the ports (kumo.compute.metadata_net); None: the row alone
    net: Mapping[str, Any] | None = None

    @property
    def hostname(self) -> str:
        host = self.server.hostname or self.server.name
        return f"{host}.{self.dhcp_domain}" if self.dhcp_domain else host

    @property
    def user_data(self) -> bytes | None:
        raw = self.server.user_data
        if not raw:
            return None
        try:
            return base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError):
            return raw.encode()

    @property
    def content(self) -> dict[str, bytes]:
        """Personality files by content key ("0000", ...): what ``openstack/content/`` serves."""
        from kumo.compute.service.personality import contents

        return {f"{i:04d}": data for i, (_path, data) in enumerate(contents(self.server.system_metadata))}

    def files(self) -> list[dict[str, str]]:
        """meta_data.json's ``files``: each personality file's path and where its data is."""
        from kumo.compute.service.personality import CONTENT_DIR, contents

        return [{"path": path, "content_path": f"/{CONTENT_DIR}/{i:04d}"}
                for i, (path, _data) in enumerate(contents(self.server.system_metadata))]

    @property
    def password(self) -> str:
        return str((self.server.system_metadata or {}).get("password") or "")

    def fixed_ips(self, version: int = 4) -> list[str]:
        return [
            ip for p in self.server.ports or [] for ip in p.get("ips", []) if (":" in ip) == (version == 6)
        ]

    def floating_ips(self) -> list[str]:
        floating = (self.net or {}).get("floating") or {}
        return [floating[ip] for ip in self.fixed_ips(4) if ip in floating]

    def meta_data(self, version: str = "latest", random_seed: bytes | None = None) -> dict[str, Any]:
        s = self.server
        body: dict[str, Any] = {"uuid": s.id}
        if s.metadata_:  # as in Nova: only when the server has metadata
            body["meta"] = {str(k): str(v) for k, v in s.metadata_.items()}
        if files := self.files():  # personality files (as in Nova: only when there are some)
            body["files"] = files
        body |= {
            "hostname": self.hostname,
            "name": s.name,
            "launch_index": s.launch_index or 0,
            "availability_zone": s.availability_zone or "nova",
        }
        if s.key_name and s.key_data:
            body["public_keys"] = {s.key_name: s.key_data}
            if _after(version, LIBERTY):
                key_type = "x509" if "BEGIN CERTIFICATE" in s.key_data else "ssh"
                body["keys"] = [{"name": s.key_name, "type": key_type, "data": s.key_data}]
        if _after(version, GRIZZLY):
            seed = random_seed if random_seed is not None else os.urandom(512)
            body["random_seed"] = base64.b64encode(seed).decode()
        if _after(version, LIBERTY):
            body["project_id"] = s.project_id
        if _after(version, NEWTON_ONE):
            body["devices"] = self.devices()
        if _after(version, VICTORIA):
            body["dedicated_cpus"] = []
        return body

    def devices(self) -> list[dict[str, Any]]:
        """Tagged devices (2.32+ ``tag`` on networks): the NICs carry their tags."""
        out = []
        for p in self.server.ports or []:
            if p.get("tag"):
                out.append({"type": "nic", "bus": "pci", "address": "", "mac": p.get("mac", ""), "tags": [p["tag"]]})
        return out

    def network_data(self) -> dict[str, Any]:
        """Nova's network_data.json: one link per port, one network per fixed IP, DNS services."""
        net = self.net or {}
        subnets, nports, nets = net.get("subnets") or {}, net.get("ports") or {}, net.get("networks") or {}
        links: list[dict[str, Any]] = []
        networks: list[dict[str, Any]] = []
        services: list[dict[str, Any]] = []
        for p in self.server.ports or []:
            link_id = "tap" + str(p["id"])[:11]
            links.append(
                {
                    "id": link_id,
                    "vif_id": p["id"],
                    "type": "bridge",
                    "mtu": p.get("mtu") or (nets.get(p.get("network_id")) or {}).get("mtu"),
                    "ethernet_mac_address": p.get("mac", ""),
                }
            )
            port = nports.get(p["id"]) or {}
            fixed = [(ip["ip_address"], subnets.get(ip.get("subnet_id"))) for ip in port.get("fixed_ips", [])]
            for ip, subnet in fixed or [(ip, None) for ip in p.get("ips", [])]:
                entry = _network_entry(f"network{len(networks)}", link_id, p.get("network_id", ""), ip, subnet)
                networks.append(entry)
                for svc in entry.get("services", []):
                    if svc not in services:
                        services.append(svc)
        return {"links": links, "networks": networks, "services": services}

    def listing(self, version: str) -> list[str]:
        out = [MD_JSON]
        if self.user_data is not None:
            out.append(UD)
        if _after(version, GRIZZLY):
            out.append(PASSWORD)
        if _after(version, HAVANA):
            out.append(VD_JSON)
        if _after(version, LIBERTY):
            out.append(NW_JSON)
        if _after(version, NEWTON_TWO):
            out.append(VD2_JSON)
        return out

    def ec2_meta_data(self) -> dict[str, Any]:
        s = self.server
        v4 = self.fixed_ips(4)
        image_num = int(hashlib.sha256((s.image_id or "").encode()).hexdigest()[:8], 16)
        data: dict[str, Any] = {
            "ami-id": f"ami-{image_num:08x}",
            "ami-launch-index": s.launch_index or 0,
            "ami-manifest-path": "FIXME",
            "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
            "hostname": self.hostname,
            "instance-action": "none",
            "instance-id": f"i-{(s.seq or 0):08x}",
            "instance-type": (s.flavor or {}).get("name", ""),
            "local-hostname": self.hostname,
            "local-ipv4": v4[0] if v4 else "",
            "placement": {"availability-zone": s.availability_zone or "nova"},
            "public-hostname": self.hostname,
            "public-ipv4": (self.floating_ips() or [""])[0],
            "reservation-id": s.reservation_id or "",
            "security-groups": list(s.security_groups or []),
        }
        if s.key_name and s.key_data:
            data["public-keys"] = {"0": {"_name": f"0={s.key_name}", "openssh-key": s.key_data}}
        return data


def _network_entry(net_id: str, link: str, network_id: str, ip: str, subnet: Mapping[str, Any] | None) -> dict[str, Any]:
    """One ``networks`` entry as Nova writes it: DHCP/SLAAC types name only the link; static ones
    carry the address, netmask, routes and DNS servers."""
    v6 = ":" in ip
    base = {"id": net_id, "link": link, "network_id": network_id}
    if subnet is None:  # nothing known beyond the address: the subnet serves DHCP (kumo's default)
        return {**base, "type": "ipv6_dhcpv6-stateful" if v6 else "ipv4_dhcp"}
    if v6 and subnet.get("ipv6_address_mode"):
        return {**base, "type": f"ipv6_{subnet['ipv6_address_mode']}"}
    if not v6 and subnet.get("enable_dhcp"):
        return {**base, "type": "ipv4_dhcp"}
    cidr = ipaddress.ip_network(subnet["cidr"], strict=False)
    routes = []
    if subnet.get("gateway_ip"):
        any_net = "::" if v6 else "0.0.0.0"
        routes.append({"network": any_net, "netmask": any_net, "gateway": subnet["gateway_ip"]})
    for r in subnet.get("host_routes") or []:
        dest = ipaddress.ip_network(r["destination"], strict=False)
        routes.append({"network": str(dest.network_address), "netmask": str(dest.netmask), "gateway": r["nexthop"]})
    entry = {**base, "type": "ipv6" if v6 else "ipv4", "ip_address": ip, "netmask": str(cidr.netmask), "routes": routes}
    dns = [{"type": "dns", "address": a} for a in subnet.get("dns_nameservers") or []]
    if dns:
        entry["services"] = dns
    return entry


# -- serving paths ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    body: bytes
    content_type: str = "text/plain; charset=UTF-8"


def _text(lines: list[str]) -> Document:
    return Document("\n".join(lines).encode())


def _json(data: Any) -> Document:
    return Document(json.dumps(data).encode(), "application/json")


def openstack(md: InstanceMetadata, path: str) -> Document:
    """``path`` is what follows ``/openstack`` ("", "/latest", "/latest/meta_data.json" ...)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return _text([*OPENSTACK_VERSIONS, "latest"])
    version = parts[0]
    if version == "content":  # /openstack/content/NNNN: a personality file's data (no listing)
        data = md.content.get(parts[1]) if len(parts) == 2 else None
        if data is None:
            raise NotFound("The resource could not be found.")
        return Document(data, "application/octet-stream")
    if version != "latest" and version not in OPENSTACK_VERSIONS:
        raise NotFound(f"Metadata version {version} is not available.")
    if len(parts) == 1:
        return _text(md.listing(version))
    if len(parts) > 2:
        raise NotFound("The resource could not be found.")
    name = parts[1]
    if name not in md.listing(version):
        raise NotFound("The resource could not be found.")
    if name == MD_JSON:
        return _json(md.meta_data(version))
    if name == UD:
        data = md.user_data
        if data is None:
            raise NotFound("No user data for this instance.")
        return Document(data, "application/octet-stream")
    if name == PASSWORD:
        return Document(md.password.encode())
    if name == NW_JSON:
        return _json(md.network_data())
    return _json({})  # vendor_data.json / vendor_data2.json: no vendor data configured


def ec2(md: InstanceMetadata, path: str) -> Document:
    """``path`` is the whole path below the metadata root ("", "/latest/meta-data/hostname" ...)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return _text([*EC2_VERSIONS, "latest"])
    version = parts[0]
    if version != "latest" and version not in EC2_VERSIONS:
        raise NotFound(f"Metadata version {version} is not available.")
    if len(parts) == 1:
        return _text(["meta-data/", *(["user-data"] if md.user_data is not None else [])])
    if parts[1] == "user-data" and len(parts) == 2:
        data = md.user_data
        if data is None:
            raise NotFound("No user data for this instance.")
        return Document(data, "application/octet-stream")
    if parts[1] != "meta-data":
        raise NotFound("The resource could not be found.")
    node: Any = md.ec2_meta_data()
    for key in parts[2:]:
        if not isinstance(node, dict) or key not in node or key == "_name":
            raise NotFound("The resource could not be found.")
        node = node[key]
    if isinstance(node, dict):
        return _text(
            [
                str(v["_name"]) if isinstance(v, dict) and "_name" in v else (f"{k}/" if isinstance(v, dict) else k)
                for k, v in sorted(node.items())
                if k != "_name"
            ]
        )
    if isinstance(node, list):
        return _text([str(x) for x in node])
    return Document(str(node).encode())


def set_password(svc: ComputeService, server_id: str, data: bytes) -> None:
    """A guest posts its (encrypted) password once; the API's os-server-password clears it."""
    if len(data) > MAX_PASSWORD:
        raise BadRequest("Request is too large.")
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is None or server.deleted:
            raise NotFound(f"Instance {server_id} could not be found.")
        meta = dict(server.system_metadata or {})
        if meta.get("password"):
            raise Conflict("Password already set.")
        meta["password"] = data.decode("utf-8", "replace")
        server.system_metadata = meta
        server.updated_at = now()


def clear_password(svc: ComputeService, server_id: str) -> None:
    """``DELETE /servers/{id}/os-server-password``: the guest may post a new one."""
    with svc.db.session() as s:
        server = s.get(Server, server_id)
        if server is not None and (server.system_metadata or {}).get("password"):
            server.system_metadata = {k: v for k, v in server.system_metadata.items() if k != "password"}
            server.updated_at = now()


def needs_network(path: str) -> bool:
    """Whether answering ``path`` uses the network API's facts (network_data.json, EC2 meta-data)."""
    return path.rstrip("/").endswith(NW_JSON) or "/meta-data" in path


def handle(
    svc: ComputeService,
    secret: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    net: Mapping[str, Any] | None = None,
) -> Document:
    """One metadata request: ``path`` is below the metadata root, e.g. ``/openstack/latest``."""
    return respond(svc, identify(svc, secret, headers), method, path, body, net)


def respond(
    svc: ComputeService, server: Server, method: str, path: str, body: bytes, net: Mapping[str, Any] | None = None
) -> Document:
    """The answer to a request already identified as ``server``'s."""
    md = InstanceMetadata(server, svc.settings.dhcp_domain, net)
    clean = "/" + "/".join(p for p in path.split("/") if p)
    if method == "POST":
        if clean in (f"/openstack/{v}/{PASSWORD}" for v in (*OPENSTACK_VERSIONS, "latest")):
            version = clean.split("/")[2]
            if not _after(version, GRIZZLY):
                raise NotFound("The resource could not be found.")
            set_password(svc, server.id, body)
            return Document(b"")
        raise APIError("The method is not allowed for the requested URL.", status=405, fault="HTTPMethodNotAllowed")
    if clean == "/openstack" or clean.startswith("/openstack/"):
        return openstack(md, clean[len("/openstack") :])
    return ec2(md, clean)


# -- the config drive's content --------------------------------------------------------------


def config_drive_files(md: InstanceMetadata, random_seed: bytes | None = None) -> dict[str, bytes]:
    """``relative path -> bytes`` for the config drive, as Nova lays it out (``config-2`` label)."""
    seed = random_seed if random_seed is not None else os.urandom(512)
    files: dict[str, bytes] = {}
    for version in (*OPENSTACK_VERSIONS, "latest"):
        base = f"openstack/{version}/"
        files[base + MD_JSON] = json.dumps(md.meta_data(version, seed)).encode()
        if md.user_data is not None:
            files[base + UD] = md.user_data
        if _after(version, HAVANA):
            files[base + VD_JSON] = b"{}"
        if _after(version, LIBERTY):
            files[base + NW_JSON] = json.dumps(md.network_data()).encode()
        if _after(version, NEWTON_TWO):
            files[base + VD2_JSON] = b"{}"
    for key, data in md.content.items():  # personality files, named in meta_data.json's "files"
        files[f"openstack/content/{key}"] = data
    ec2_md = json.dumps(_plain(md.ec2_meta_data())).encode()
    for version in ("2009-04-04", "latest"):
        files[f"ec2/{version}/meta-data.json"] = ec2_md
        if md.user_data is not None:
            files[f"ec2/{version}/user-data"] = md.user_data
    return files


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if k != "_name"}
    return node


def config_drive_doc(svc: ComputeService, server: Server) -> dict[str, Any]:
    """What the agent's config-drive builder takes: ``{"files": [{"path", "content" (base64)}]}``."""
    # a stable seed (so the desired state does not change on every poll), unguessable without the secret
    key = svc.agent_secret.encode()
    seed = b"".join(hmac.new(key, f"{server.id}:{i}".encode(), hashlib.sha512).digest() for i in range(8))
    files = config_drive_files(InstanceMetadata(server, svc.settings.dhcp_domain), seed)
    return {
        "label": "config-2",
        "files": [{"path": p, "content": base64.b64encode(data).decode()} for p, data in sorted(files.items())],
    }
