"""Volume type encryption specs (``/v3/types/{id}/encryption``) with the openstack CLI and raw
HTTP: create / show / update / unset, Cinder's errors, and the refusal to create (or retype to)
a volume of an encrypted type while kumo has no key manager."""

from __future__ import annotations

import httpx
import pytest

from tests.support import KumoCloud, unique

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def cinder(cloud: KumoCloud):
    catalog = cloud.admin().get("/auth/catalog").json()["catalog"]
    url = next(ep["url"] for e in catalog if e["type"] == "block-storage" for ep in e["endpoints"]
               if ep["interface"] == "public")  # fmt: skip
    with httpx.Client(base_url=url, headers={"X-Auth-Token": cloud.admin_token}, timeout=60) as client:
        yield client


def test_encryption_type_with_the_cli(cloud: KumoCloud, cinder: httpx.Client):
    name = unique("enc")
    created = cloud.cli_json("volume", "type", "create", name, "--encryption-provider", "luks",
                             "--encryption-cipher", "aes-xts-plain64", "--encryption-key-size", "256",
                             "--encryption-control-location", "front-end")  # fmt: skip
    tid = created["id"]
    try:
        shown = cloud.cli_json("volume", "type", "show", name, "--encryption-type")
        enc = shown["encryption"]
        assert enc["provider"] == "luks" and enc["cipher"] == "aes-xts-plain64"
        assert enc["key_size"] == 256 and enc["control_location"] == "front-end"

        assert cloud.cli("volume", "type", "set", name, "--encryption-key-size", "128").returncode == 0
        raw = cinder.get(f"/types/{tid}/encryption").json()
        assert raw["key_size"] == 128 and raw["volume_type_id"] == tid and raw["deleted"] is False
        assert cinder.get(f"/types/{tid}/encryption/cipher").json() == {"cipher": "aes-xts-plain64"}

        # no key manager: a volume of the type is refused with a 400, never made unencrypted
        r = cinder.post("/volumes", json={"volume": {"size": 1, "volume_type": name}})
        assert r.status_code == 400 and "encrypted" in r.json()["badRequest"]["message"], r.text
        res = cloud.cli("volume", "create", "--size", "1", "--type", name, unique("v"))
        assert res.returncode != 0 and "encrypted" in res.stderr

        assert cloud.cli("volume", "type", "unset", name, "--encryption-type").returncode == 0
        assert cinder.get(f"/types/{tid}/encryption").json() == {}
    finally:
        cloud.cli("volume", "type", "delete", name)


def test_encryption_errors(cloud: KumoCloud, cinder: httpx.Client):
    spec = {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256, "control_location": "front-end"}
    missing = "00000000-0000-4000-8000-000000000000"
    assert cinder.post(f"/types/{missing}/encryption", json={"encryption": spec}).status_code == 404
    tid = cinder.post("/types", json={"volume_type": {"name": unique("enc")}}).json()["volume_type"]["id"]
    plain = cinder.post("/types", json={"volume_type": {"name": unique("plain")}}).json()["volume_type"]["id"]
    vid = None
    try:
        for bad in ({"cipher": "x"}, {**spec, "control_location": "middle"}, {**spec, "key_size": -1},
                    {**spec, "colour": "red"}):  # fmt: skip
            r = cinder.post(f"/types/{tid}/encryption", json={"encryption": bad})
            assert r.status_code == 400, (bad, r.text)
        assert cinder.post(f"/types/{tid}/encryption", json=spec).status_code == 400  # not wrapped
        r = cinder.post(f"/types/{tid}/encryption", json={"encryption": spec})
        assert r.status_code == 200, r.text
        enc_id = r.json()["encryption"]["encryption_id"]
        assert cinder.post(f"/types/{tid}/encryption", json={"encryption": spec}).status_code == 400  # exists
        assert cinder.get(f"/types/{tid}/encryption/colour").status_code == 404
        assert cinder.put(f"/types/{tid}/encryption/{missing}", json={"encryption": {"key_size": 1}}).status_code == 404
        token, body = cloud.issue("demo")
        project = body["token"]["project"]["id"]
        url = str(cinder.base_url).rstrip("/").rsplit("/", 1)[0] + f"/{project}/types/{tid}/encryption"
        r = httpx.get(url, headers={"X-Auth-Token": token}, timeout=30)
        assert r.status_code == 403, r.text

        # a type in use keeps its spec; a volume of a plain type cannot be retyped to it
        r = cinder.post("/volumes", json={"volume": {"size": 1, "volume_type": plain}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
        r = cinder.post(f"/types/{plain}/encryption", json={"encryption": spec})
        assert r.status_code == 400 and "in use" in r.text, r.text
        for _ in range(300):
            if cinder.get(f"/volumes/{vid}").json()["volume"]["status"] == "available":
                break
        r = cinder.post(f"/volumes/{vid}/action", json={"os-retype": {"new_type": tid}})
        assert r.status_code == 400 and "encrypted" in r.text, r.text
        assert cinder.delete(f"/types/{tid}/encryption/{enc_id}").status_code == 202
        assert cinder.delete(f"/types/{tid}/encryption/{enc_id}").status_code == 404
    finally:
        if vid:
            cinder.delete(f"/volumes/{vid}")
        cinder.delete(f"/types/{tid}")
