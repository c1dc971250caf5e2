"""The object store driven by python-swiftclient's `swift` CLI, the openstack CLI and raw HTTP."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import KumoCloud, clean_env, unique

pytestmark = pytest.mark.cli

SWIFT = Path(sys.executable).parent / "swift"


@pytest.fixture(scope="module")
def store(cloud: KumoCloud):
    """(storage URL, token) of the admin project."""
    token, body = cloud.issue()
    project = body["token"]["project"]["id"]
    return f"{cloud.url}/object-store/v1/AUTH_{project}", token


@pytest.fixture(scope="module")
def http(store):
    url, token = store
    with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as client:
        yield client


def swift(cloud: KumoCloud, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    if not SWIFT.exists():
        pytest.fail(f"python-swiftclient is not installed at {SWIFT} (pip install -e .[dev])")
    env = clean_env(
        {
            "OS_AUTH_URL": cloud.auth_url,
            "OS_USERNAME": "admin",
            "OS_PASSWORD": cloud.admin_password,
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_AUTH_VERSION": "3",
        }
    )
    return subprocess.run([str(SWIFT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def ok(res: subprocess.CompletedProcess) -> str:
    assert res.returncode == 0, f"{res.args} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_info_and_discovery(cloud: KumoCloud):
    info = httpx.get(cloud.url + "/object-store/info", timeout=10).json()
    assert info["swift"]["max_file_size"] > 0
    assert {"slo", "dlo", "tempurl", "bulk_delete"} <= set(info)


def test_swift_cli_round_trip(cloud: KumoCloud, tmp_path: Path):
    c = unique("sw")
    data = os.urandom(300_000)
    (tmp_path / "f.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("hello\n")
    ok(swift(cloud, "upload", c, "f.bin", "small.txt", cwd=tmp_path))
    assert ok(swift(cloud, "list", c)).split() == ["f.bin", "small.txt"]
    assert c in ok(swift(cloud, "list")).split()
    ok(swift(cloud, "post", "-m", "color:blue", c, "small.txt"))
    stat = ok(swift(cloud, "stat", c, "small.txt"))
    assert "Meta Color: blue" in stat and "text/plain" in stat
    out = tmp_path / "out"
    ok(swift(cloud, "download", c, "f.bin", "-o", str(out)))
    assert out.read_bytes() == data
    ok(swift(cloud, "delete", c))
    r = swift(cloud, "stat", c)
    assert r.returncode != 0


@pytest.mark.parametrize("slo", [False, True], ids=["dlo", "slo"])
def test_swift_cli_segmented(cloud: KumoCloud, tmp_path: Path, slo: bool):
    c = unique("seg")
    data = os.urandom(250_000)
    (tmp_path / "big.bin").write_bytes(data)
    ok(swift(cloud, "upload", "-S", "100000", *(["--use-slo"] if slo else []), c, "big.bin", cwd=tmp_path))
    assert len(ok(swift(cloud, "list", c + "_segments")).split()) == 3
    out = tmp_path / "big.out"
    ok(swift(cloud, "download", c, "big.bin", "-o", str(out)))
    assert out.read_bytes() == data
    ok(swift(cloud, "delete", c, "big.bin"))
    assert ok(swift(cloud, "list", c + "_segments")).split() == []


def test_tempurl(cloud: KumoCloud, http: httpx.Client, store):
    url, _ = store
    c, key = unique("tu"), "s3cret"
    assert http.put(f"/{c}").status_code == 201
    assert http.put(f"/{c}/o.txt", content=b"temp data").status_code == 201
    assert http.post("", headers={"X-Account-Meta-Temp-URL-Key": key}).status_code == 204
    path = httpx.URL(url).path + f"/{c}/o.txt"
    signed = ok(swift(cloud, "tempurl", "GET", "60", path, key)).strip()
    r = httpx.get(cloud.url + signed, timeout=10)
    assert r.status_code == 200 and r.content == b"temp data"
    assert r.headers["content-disposition"].startswith("attachment")
    expires = int(time.time()) + 60
    sig = hmac.new(key.encode(), f"GET\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    assert httpx.get(f"{url}/{c}/o.txt?temp_url_sig={sig}&temp_url_expires={expires}").status_code == 200
    assert httpx.get(f"{url}/{c}/o.txt?temp_url_sig={'0' * 64}&temp_url_expires={expires}").status_code == 401
    assert (
        httpx.put(f"{url}/{c}/o.txt?temp_url_sig={sig}&temp_url_expires={expires}", content=b"x").status_code
        == 401
    )


def test_openstack_cli_container_and_object(cloud: KumoCloud, http: httpx.Client, ensure_cli, tmp_path: Path):
    """The openstack CLI path a new user runs (kept to a few calls: each one starts the CLI)."""
    c = unique("osc")
    (tmp_path / "hello.txt").write_text("hi there")
    assert cloud.cli_json("container", "create", c)[0]["container"] == c
    name = cloud.cli_json("object", "create", c, str(tmp_path / "hello.txt"))[0]["object"]
    assert [x["Name"] for x in cloud.cli_json("object", "list", c)] == [name]
    out = tmp_path / "saved"
    assert cloud.cli("object", "save", "--file", str(out), c, name).returncode == 0
    assert out.read_text() == "hi there"
    assert cloud.cli("container", "delete", "--recursive", c).returncode == 0
    assert http.head(f"/{c}").status_code == 404


def test_ranges_conditionals_and_copy(http: httpx.Client):
    c = unique("rg")
    http.put(f"/{c}")
    r = http.put(f"/{c}/o", content=b"0123456789", headers={"Content-Type": "text/plain"})
    etag = r.headers["etag"]
    assert r.status_code == 201 and etag == hashlib.md5(b"0123456789").hexdigest()
    r = http.get(f"/{c}/o", headers={"Range": "bytes=2-4"})
    assert r.status_code == 206 and r.content == b"234" and r.headers["content-range"] == "bytes 2-4/10"
    r = http.get(f"/{c}/o", headers={"Range": "bytes=0-0,-2"})
    assert r.status_code == 206 and r.headers["content-type"].startswith("multipart/byteranges")
    assert b"0" in r.content and b"89" in r.content
    assert http.get(f"/{c}/o", headers={"Range": "bytes=20-30"}).status_code == 416
    assert http.get(f"/{c}/o", headers={"If-None-Match": etag}).status_code == 304
    assert http.get(f"/{c}/o", headers={"If-Match": "nope"}).status_code == 412
    assert http.put(f"/{c}/o", content=b"x", headers={"If-None-Match": "*"}).status_code == 412
    r = http.request("COPY", f"/{c}/o", headers={"Destination": f"{c}/o2"})
    assert r.status_code == 201 and r.headers["x-copied-from"] == f"{c}/o"
    assert http.get(f"/{c}/o2").content == b"0123456789"
    assert http.put(f"/{c}/o", content=b"abc", headers={"ETag": "0" * 32}).status_code == 422
    assert http.delete(f"/{c}").status_code == 409


def test_expiry(http: httpx.Client):
    c = unique("exp")
    http.put(f"/{c}")
    at = int(time.time()) + 4  # whole seconds: +1 could be a few ms away on a loaded machine
    assert http.put(f"/{c}/o", content=b"x", headers={"X-Delete-At": str(at)}).status_code == 201
    head = http.head(f"/{c}/o")
    if time.time() < at:
        assert head.headers["x-delete-at"] == str(at)
    time.sleep(max(0.0, at + 1.1 - time.time()))
    assert http.get(f"/{c}/o").status_code == 404
    assert http.put(f"/{c}/p", content=b"x", headers={"X-Delete-At": "1"}).status_code == 400


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("PUT", "/" + "c" * 257, {}, 400),
        ("PUT", "/{c}/" + "o" * 1025, {}, 400),
        ("PUT", "/{c}/%ff%fe", {}, 412),
        ("PUT", "/{c}/o", {"X-Object-Meta-" + "k" * 129: "v"}, 400),
        ("PUT", "/{c}/o", {"X-Object-Meta-k": "v" * 257}, 400),
        ("POST", "/{c}", {f"X-Container-Meta-k{i}": "v" for i in range(91)}, 400),
        ("GET", "/{c}?limit=10001", {}, 412),
        ("GET", "/{c}?limit=abc", {}, 412),
        ("PUT", "/{c}/o", {"X-Delete-After": "soon"}, 400),
        ("GET", "/nosuchcontainer/o", {}, 404),
    ],
)
def test_bad_input_gets_swift_4xx(http: httpx.Client, method: str, path: str, headers: dict, status: int):
    c = "badinput"
    http.put(f"/{c}")
    url = httpx.URL(str(http.base_url).rstrip("/") + path.replace("{c}", c))
    content = b"" if method in ("PUT", "POST") and "Content-Length" not in headers else None
    r = http.request(method, url, headers=headers, content=content)
    assert r.status_code == status, r.text
    assert r.headers["x-trans-id"].startswith("tx")


def test_anonymous_and_acl(cloud: KumoCloud, http: httpx.Client, store):
    url, _ = store
    c = unique("acl")
    http.put(f"/{c}")
    http.put(f"/{c}/o", content=b"public?")
    assert httpx.get(f"{url}/{c}/o").status_code == 401
    assert http.post(f"/{c}", headers={"X-Container-Read": ".r:*,.rlistings"}).status_code == 204
    assert httpx.get(f"{url}/{c}/o").content == b"public?"
    assert httpx.get(f"{url}/{c}").text.split() == ["o"]
    assert httpx.put(f"{url}/{c}/x", content=b"no").status_code == 401


def test_clients_cannot_send_system_metadata(http: httpx.Client):
    """Swift's gatekeeper: sysmeta and backend headers from a client are dropped, so nobody fakes
    a large object's size or an account's quota through them."""
    c = unique("gate")
    assert http.put(f"/{c}", headers={"X-Container-Sysmeta-Owner": "mallory"}).status_code == 201
    r = http.put(f"/{c}/o", content=b"tiny", headers={
        "X-Object-Sysmeta-Slo-Size": "999999", "X-Object-Sysmeta-Slo-Etag": "feed",
        "X-Object-Transient-Sysmeta-Crypto-Meta": "x", "X-Backend-Storage-Policy-Index": "7"})
    assert r.status_code == 201, r.text
    head = http.head(f"/{c}/o")
    assert head.status_code == 200 and head.headers["content-length"] == "4"
    assert not [k for k in head.headers if "sysmeta" in k.lower() or k.lower().startswith("x-backend")]
    assert http.get(f"/{c}/o").content == b"tiny"  # not treated as a 999999-byte large object
    assert http.post("/", headers={"X-Account-Sysmeta-Quota-Bytes": "1"}).status_code == 204
    assert http.put(f"/{c}/p", content=b"more than one byte").status_code == 201  # no quota was set
    http.delete(f"/{c}/o")
    http.delete(f"/{c}/p")
    http.delete(f"/{c}")
