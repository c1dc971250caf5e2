"""The metadata service's documents and request identity, on an in-memory database."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from kumo.common.config import ComputeSettings
from kumo.common.db import Database
from kumo.common.errors import APIError
from kumo.compute.models import ComputeBase, Server
from kumo.compute.service import metadata as md
from kumo.compute.service.core import ComputeService

SECRET = "s3cret"
SID = "11111111-2222-3333-4444-555555555555"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx kumo@test"


def _svc(**server_attrs) -> ComputeService:  # type: ignore[no-untyped-def]
    db = Database("sqlite://")
    ComputeBase.metadata.create_all(db.engine)
    now = datetime(2026, 1, 1)
    attrs = dict(
        id=SID, seq=42, name="web 1", hostname="web-1", project_id="p1", user_id="u1", image_id="img-1",
        flavor_id="1", flavor={"name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1}, vm_state="active",
        availability_zone="nova", key_name="k1", key_data=KEY, user_data=base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
        metadata_={"role": "web"}, security_groups=["default"], launch_index=0, reservation_id="r-abc",
        ports=[{"id": "port-aaaaaaaaaaaa", "network_id": "net-1", "mac": "fa:16:3e:00:00:01",
                "ips": ["10.0.0.5", "fd00::5"], "tag": "eth-tag"}],
        created_at=now, updated_at=now,
    )  # fmt: skip
    attrs.update(server_attrs)
    with db.session() as s:
        s.add(Server(**attrs))
    return ComputeService(db=db, settings=ComputeSettings(), agent_secret="agent")


def _headers(instance_id: str = SID, secret: str = SECRET, tenant: str = "p1") -> dict[str, str]:
    return {
        "x-instance-id": instance_id,
        "x-instance-id-signature": md.sign(secret, instance_id),
        "x-tenant-id": tenant,
        "x-forwarded-for": "10.0.0.5",
    }


def get(svc: ComputeService, path: str, headers: dict[str, str] | None = None) -> md.Document:
    return md.handle(svc, SECRET, "GET", path, headers or _headers(), b"")


def test_openstack_versions_listing_and_meta_data():
    svc = _svc()
    assert get(svc, "/openstack").body.decode().splitlines() == [*md.OPENSTACK_VERSIONS, "latest"]
    assert "2018-08-27" in md.OPENSTACK_VERSIONS and md.OPENSTACK_VERSIONS[0] == "2012-08-10"
    listing = get(svc, "/openstack/latest").body.decode().splitlines()
    assert listing == ["meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json",
                       "vendor_data2.json"]  # fmt: skip
    doc = get(svc, "/openstack/latest/meta_data.json")
    assert doc.content_type == "application/json"
    meta = json.loads(doc.body)
    assert meta["uuid"] == SID and meta["name"] == "web 1" and meta["hostname"] == "web-1.novalocal"
    assert meta["launch_index"] == 0 and meta["availability_zone"] == "nova" and meta["project_id"] == "p1"
    assert meta["public_keys"] == {"k1": KEY} and meta["keys"] == [{"name": "k1", "type": "ssh", "data": KEY}]
    assert meta["meta"] == {"role": "web"} and len(base64.b64decode(meta["random_seed"])) == 512
    assert meta["devices"] == [{"type": "nic", "bus": "pci", "address": "", "mac": "fa:16:3e:00:00:01",
                                "tags": ["eth-tag"]}]  # fmt: skip
    # the oldest version has none of the later keys
    old = json.loads(get(svc, "/openstack/2012-08-10/meta_data.json").body)
    assert not {"random_seed", "keys", "project_id", "devices"} & set(old) and old["public_keys"] == {"k1": KEY}
    assert get(svc, "/openstack/2012-08-10").body.decode().splitlines() == ["meta_data.json", "user_data"]
    assert get(svc, "/openstack/latest/user_data").body == b"#!/bin/sh\necho hi\n"
    assert json.loads(get(svc, "/openstack/2018-08-27/vendor_data2.json").body) == {}


def test_network_data_and_ec2_tree():
    svc = _svc()
    net = json.loads(get(svc, "/openstack/latest/network_data.json").body)
    assert net["links"] == [{"id": "tapport-aaaaaa", "vif_id": "port-aaaaaaaaaaaa", "type": "bridge", "mtu": None,
                             "ethernet_mac_address": "fa:16:3e:00:00:01"}]  # fmt: skip
    assert [n["type"] for n in net["networks"]] == ["ipv4_dhcp", "ipv6_dhcpv6-stateful"]
    assert {n["link"] for n in net["networks"]} == {"tapport-aaaaaa"} and net["services"] == []
    assert get(svc, "/").body.decode().splitlines()[-2:] == ["2009-04-04", "latest"]
    assert get(svc, "/latest").body.decode().splitlines() == ["meta-data/", "user-data"]
    tree = get(svc, "/latest/meta-data/").body.decode().splitlines()
    assert {"instance-id", "hostname", "local-ipv4", "public-ipv4", "placement/", "public-keys/"} <= set(tree)
    assert get(svc, "/latest/meta-data/instance-id").body == b"i-0000002a"
    assert get(svc, "/2009-04-04/meta-data/local-ipv4").body == b"10.0.0.5"
    assert get(svc, "/latest/meta-data/hostname").body == b"web-1.novalocal"
    assert get(svc, "/latest/meta-data/placement/availability-zone").body == b"nova"
    assert get(svc, "/latest/meta-data/public-keys/").body == b"0=k1"
    assert get(svc, "/latest/meta-data/public-keys/0/").body == b"openssh-key"
    assert get(svc, "/latest/meta-data/public-keys/0/openssh-key").body == KEY.encode()
    assert get(svc, "/latest/meta-data/security-groups").body == b"default"
    assert get(svc, "/latest/user-data").body == b"#!/bin/sh\necho hi\n"


@pytest.mark.parametrize(
    "path", ["/openstack/1999-01-01/meta_data.json", "/openstack/latest/nope", "/latest/meta-data/nope",
             "/latest/meta-data/hostname/x", "/1.5/meta-data/", "/openstack/latest/meta_data.json/x"],
)  # fmt: skip
def test_unknown_paths_are_404(path: str):
    with pytest.raises(APIError) as err:
        get(_svc(), path)
    assert err.value.status == 404


def test_no_user_data_is_404_and_not_listed():
    svc = _svc(user_data=None, key_name=None, key_data=None)
    assert "user_data" not in get(svc, "/openstack/latest").body.decode()
    assert "public_keys" not in json.loads(get(svc, "/openstack/latest/meta_data.json").body)
    for path in ("/openstack/latest/user_data", "/latest/user-data"):
        with pytest.raises(APIError) as err:
            get(svc, path)
        assert err.value.status == 404


def test_identity_is_checked():
    svc = _svc()
    cases = [
        ({}, 400),  # not through the proxy
        ({"x-instance-id": SID}, 400),
        (_headers(secret="wrong"), 403),  # forged signature
        ({**_headers(), "x-instance-id": "22222222-2222-3333-4444-555555555555"}, 403),  # signature of another id
        (_headers("22222222-2222-3333-4444-555555555555"), 404),  # well signed, no such instance
        (_headers(tenant="other"), 404),  # the instance is not the tenant's
    ]
    for headers, status in cases:
        with pytest.raises(APIError) as err:
            md.handle(svc, SECRET, "GET", "/openstack/latest/meta_data.json", headers, b"")
        assert err.value.status == status, headers
    with pytest.raises(APIError) as err:  # no secret configured: nothing is trusted
        md.handle(svc, "", "GET", "/openstack", _headers(), b"")
    assert err.value.status == 403


def test_password_is_posted_once():
    svc = _svc()
    assert get(svc, "/openstack/latest/password").body == b""
    md.handle(svc, SECRET, "POST", "/openstack/latest/password", _headers(), b"encrypted-pw")
    assert get(svc, "/openstack/2013-04-04/password").body == b"encrypted-pw"
    for body, status in ((b"again", 409), (b"x" * 300, 400)):
        with pytest.raises(APIError) as err:
            md.handle(svc, SECRET, "POST", "/openstack/latest/password", _headers(), body)
        assert err.value.status == status
    with pytest.raises(APIError) as err:
        md.handle(svc, SECRET, "POST", "/openstack/latest/meta_data.json", _headers(), b"{}")
    assert err.value.status == 405


def test_config_drive_doc_is_stable_and_complete():
    svc = _svc()
    with svc.db.reader() as s:
        server = s.get(Server, SID)
    doc = md.config_drive_doc(svc, server)
    assert doc == md.config_drive_doc(svc, server)  # same seed every time: a stable desired state
    files = {f["path"]: base64.b64decode(f["content"]) for f in doc["files"]}
    for version in (*md.OPENSTACK_VERSIONS, "latest"):
        assert json.loads(files[f"openstack/{version}/meta_data.json"])["uuid"] == SID
        assert files[f"openstack/{version}/user_data"] == b"#!/bin/sh\necho hi\n"
    assert "openstack/2012-08-10/network_data.json" not in files
    assert json.loads(files["openstack/latest/network_data.json"])["links"][0]["vif_id"] == "port-aaaaaaaaaaaa"
    assert files["openstack/latest/vendor_data.json"] == b"{}"
    assert json.loads(files["ec2/latest/meta-data.json"])["public-keys"] == {"0": {"openssh-key": KEY}}


def test_secret_file_is_created_once(tmp_path):
    path = md.secret_file(tmp_path)
    first = path.read_text()
    assert md.secret_file(tmp_path).read_text() == first and len(first.strip()) >= 32
    assert path.stat().st_mode & 0o777 == 0o600


def test_network_facts_give_static_config_and_public_ip():
    svc = _svc()
    with svc.db.reader() as s:
        server = s.get(Server, SID)
    net = {
        "ports": {"port-aaaaaaaaaaaa": {"fixed_ips": [{"ip_address": "10.0.0.5", "subnet_id": "s4"},
                                                      {"ip_address": "fd00::5", "subnet_id": "s6"}]}},  # fmt: skip
        "subnets": {
            "s4": {"cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "enable_dhcp": False, "dns_nameservers": ["10.0.0.53"],
                   "host_routes": [{"destination": "10.10.0.0/16", "nexthop": "10.0.0.254"}]},  # fmt: skip
            "s6": {"cidr": "fd00::/64", "gateway_ip": "fd00::1", "enable_dhcp": True, "ipv6_address_mode": "slaac"},
        },
        "networks": {"net-1": {"mtu": 1450}},
        "floating": {"10.0.0.5": "203.0.113.7"},
    }
    doc = md.respond(svc, server, "GET", "/openstack/latest/network_data.json", b"", net)
    data = json.loads(doc.body)
    assert data["links"][0]["mtu"] == 1450
    v4, v6 = data["networks"]
    assert v4["type"] == "ipv4" and v4["ip_address"] == "10.0.0.5" and v4["netmask"] == "255.255.255.0"
    assert v4["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                            {"network": "10.10.0.0", "netmask": "255.255.0.0", "gateway": "10.0.0.254"}]  # fmt: skip
    assert v6 == {"id": "network1", "link": v4["link"], "network_id": "net-1", "type": "ipv6_slaac"}
    assert data["services"] == [{"type": "dns", "address": "10.0.0.53"}] == v4["services"]
    assert md.respond(svc, server, "GET", "/latest/meta-data/public-ipv4", b"", net).body == b"203.0.113.7"
    assert md.respond(svc, server, "GET", "/latest/meta-data/public-ipv4", b"").body == b""
    assert md.needs_network("/openstack/latest/network_data.json") and md.needs_network("/latest/meta-data/")
    assert not md.needs_network("/openstack/latest/meta_data.json")
