"""Container sync between containers of one kumo, set up with python-swiftclient (`swift post -t -k`).

The kumo of this module runs its container-sync daemon every second; the sync-to values are the
old-style full URL (to 127.0.0.1, an allowed host by default) and the realm form with kumo's
own realm and cluster (//kumo/local/...).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumo.object_store.sync_realms import auth_header
from tests.support import KumoCloud, clean_env, unique

pytestmark = pytest.mark.cli

SWIFT = Path(sys.executable).parent / "swift"


@pytest.fixture(scope="module")
def sync_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KumoCloud]:
    cloud = KumoCloud(
        tmp_path_factory.mktemp("kumo") / "data", env={"KUMO_OBJECT_STORE__CONTAINER_SYNC_INTERVAL": "1"}
    )
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.stop()


def _account(cloud: KumoCloud, user: str) -> tuple[str, str]:
    token, body = cloud.issue(user)
    return f"{cloud.url}/object-store/v1/AUTH_{body['token']['project']['id']}", token


@pytest.fixture(scope="module")
def admin(sync_cloud: KumoCloud) -> Iterator[httpx.Client]:
    url, token = _account(sync_cloud, "admin")
    with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def demo(sync_cloud: KumoCloud) -> Iterator[httpx.Client]:
    url, token = _account(sync_cloud, "demo")
    with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as client:
        yield client


def swift(cloud: KumoCloud, *args: str, cwd: Path | None = None) -> str:
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
    res = subprocess.run([str(SWIFT), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert res.returncode == 0, f"{res.args} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def base(client: httpx.Client) -> str:
    return str(client.base_url).rstrip("/")


def listing(client: httpx.Client, container: str) -> dict[str, dict[str, Any]]:
    r = client.get(f"/{container}", params={"format": "json"})
    assert r.status_code == 200, r.text
    return {row["name"]: row for row in r.json()}


def wait_for(check: Callable[[], bool], timeout: float = 45.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "container sync did not catch up in time"
        time.sleep(0.5)


def test_info_lists_container_sync_with_the_own_realm(sync_cloud: KumoCloud):
    info = httpx.get(f"{sync_cloud.url}/object-store/info", timeout=10).json()
    assert info["container_sync"] == {"realms": {"KUMO": {"clusters": {"LOCAL": {"current": True}}}}}


def test_old_style_url_sync_puts_deletes_metadata_and_timestamps(sync_cloud: KumoCloud, admin: httpx.Client):
    src, dst = unique("sync-src"), unique("sync-dst")
    swift(sync_cloud, "post", src)
    swift(sync_cloud, "post", "-k", "secret-1", dst)
    swift(sync_cloud, "post", "-t", f"{base(admin)}/{dst}", "-k", "secret-1", src)
    stat = swift(sync_cloud, "stat", src)
    assert f"Sync To: {base(admin)}/{dst}" in stat and "Sync Key: secret-1" in stat

    r = admin.put(
        f"/{src}/a.txt",
        content=b"hello sync",
        headers={
            "Content-Type": "text/x-greeting",
            "X-Object-Meta-Color": "blue",
            "Content-Disposition": "inline",
        },
    )
    assert r.status_code == 201
    assert admin.put(f"/{src}/dir/b.bin", content=b"\x00" * 3000).status_code == 201
    assert admin.put(f"/{src}/gone", content=b"soon deleted").status_code == 201

    wait_for(lambda: set(listing(admin, dst)) == {"a.txt", "dir/b.bin", "gone"})
    assert listing(admin, dst) == listing(admin, src)  # hash, bytes, type, last_modified alike
    a_src, a_dst = admin.head(f"/{src}/a.txt").headers, admin.head(f"/{dst}/a.txt").headers
    assert a_dst["x-timestamp"] == a_src["x-timestamp"]
    assert a_dst["x-object-meta-color"] == "blue"
    assert a_dst["content-type"] == "text/x-greeting"
    assert a_dst["content-disposition"] == "inline"
    assert admin.get(f"/{dst}/a.txt").content == b"hello sync"

    assert admin.delete(f"/{src}/gone").status_code == 204
    assert admin.put(f"/{src}/a.txt", content=b"second version").status_code == 201
    wait_for(lambda: set(listing(admin, dst)) == {"a.txt", "dir/b.bin"})
    wait_for(lambda: admin.get(f"/{dst}/a.txt").content == b"second version")
    assert (
        admin.head(f"/{dst}/a.txt").headers["x-timestamp"]
        == admin.head(f"/{src}/a.txt").headers["x-timestamp"]
    )
    assert "x-object-meta-color" not in admin.head(f"/{dst}/a.txt").headers


def test_realm_sync_between_accounts_both_ways(
    sync_cloud: KumoCloud, admin: httpx.Client, demo: httpx.Client
):
    """As Tempest's ContainerSyncMiddlewareTest: two accounts, each container syncing to the other."""
    one, two = unique("realm-a"), unique("realm-b")
    admin_acct = base(admin).rsplit("/", 1)[-1]
    demo_acct = base(demo).rsplit("/", 1)[-1]
    r = admin.put(f"/{one}", headers={"X-Container-Sync-To": f"//kumo/local/{demo_acct}/{two}",
                                      "X-Container-Sync-Key": "k2"})  # fmt: skip
    assert r.status_code == 201, r.text
    r = demo.put(f"/{two}", headers={"X-Container-Sync-To": f"//KUMO/LOCAL/{admin_acct}/{one}",
                                     "X-Container-Sync-Key": "k2"})  # fmt: skip
    assert r.status_code == 201, r.text
    assert admin.put(f"/{one}/from-admin", content=b"A").status_code == 201
    assert demo.put(f"/{two}/from-demo", content=b"D").status_code == 201

    wait_for(lambda: set(listing(admin, one)) == set(listing(demo, two)) == {"from-admin", "from-demo"})
    assert listing(admin, one) == listing(demo, two)
    assert demo.get(f"/{two}/from-admin").content == b"A"
    assert admin.get(f"/{one}/from-demo").content == b"D"


def test_wrong_key_is_refused(sync_cloud: KumoCloud, admin: httpx.Client):
    src, dst = unique("bad-src"), unique("bad-dst")
    swift(sync_cloud, "post", "-k", "right", dst)
    swift(sync_cloud, "post", "-t", f"{base(admin)}/{dst}", "-k", "wrong", src)
    assert admin.put(f"/{src}/x", content=b"x").status_code == 201
    url = f"{base(admin)}/{dst}/direct"
    ts = f"{time.time():.5f}"
    # old style without a token: the wrong key is a 401, the right one writes with the given timestamp
    r = httpx.put(url, content=b"d", headers={"X-Container-Sync-Key": "wrong", "X-Timestamp": ts})
    assert r.status_code == 401
    r = httpx.put(url, content=b"d", headers={"X-Container-Sync-Key": "right", "X-Timestamp": ts})
    assert r.status_code == 201, r.text
    assert admin.head(f"/{dst}/direct").headers["x-timestamp"] == ts
    # realm style: a bad signature is a 401 with Swift's text
    path = httpx.URL(url).raw_path.decode()
    key = (sync_cloud.data_dir / "object-store" / "container-sync-realm.key").read_text().strip()
    nonce = uuid.uuid4().hex
    good = auth_header("KUMO", key, "right", "DELETE", path, ts, nonce)
    bad = auth_header("KUMO", key, "wrong", "DELETE", path, ts, nonce)
    r = httpx.delete(url, headers={"X-Container-Sync-Auth": bad, "X-Timestamp": ts})
    assert r.status_code == 401
    assert r.text == "X-Container-Sync-Auth header not valid; contact cluster operator for support."
    assert r.headers["www-authenticate"].startswith("SwiftContainerSync")
    r = httpx.delete(url, headers={"X-Container-Sync-Auth": "KUMO only-two", "X-Timestamp": ts})
    assert r.status_code == 401
    later = f"{float(ts) + 1:.5f}"
    good = auth_header("KUMO", key, "right", "DELETE", path, later, nonce)
    assert httpx.delete(url, headers={"X-Container-Sync-Auth": good, "X-Timestamp": later}).status_code == 204
    # the daemon's own PUT of x was refused: nothing arrives
    time.sleep(3)
    assert listing(admin, dst) == {}
    assert "refused 401" in sync_cloud.log() or "answered 401" in sync_cloud.log()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://example.com/v1/AUTH_x/c", "Invalid host 'example.com' in X-Container-Sync-To"),
        (
            "ftp://127.0.0.1/v1/AUTH_x/c",
            'Invalid scheme \'ftp\' in X-Container-Sync-To, must be "//", "http", or "https".',
        ),
        ("http://127.0.0.1", "Path required in X-Container-Sync-To"),
        ("http://127.0.0.1/v1/a/c?x=1", "Params, queries, and fragments not allowed in X-Container-Sync-To"),
        ("//nowhere/local/AUTH_x/c", "No realm key for 'nowhere'"),
        ("//kumo/elsewhere/AUTH_x/c", "No cluster endpoint for 'kumo' 'elsewhere'"),
        ("//kumo/local/AUTH_x", "Invalid X-Container-Sync-To format '//kumo/local/AUTH_x'"),
    ],
)
def test_bad_sync_to_is_a_400(admin: httpx.Client, value: str, message: str):
    c = unique("badto")
    r = admin.put(f"/{c}", headers={"X-Container-Sync-To": value})
    assert (r.status_code, r.text) == (400, message)
    assert admin.put(f"/{c}").status_code == 201
    r = admin.post(f"/{c}", headers={"X-Container-Sync-To": value})
    assert (r.status_code, r.text) == (400, message)
    assert "x-container-sync-to" not in admin.head(f"/{c}").headers


def test_static_large_object_manifest_syncs_and_reads_whole(
    sync_cloud: KumoCloud, admin: httpx.Client, tmp_path: Path
):
    src, dst = unique("slo-src"), unique("slo-dst")
    data = bytes(range(256)) * 40  # 10 KiB in 1 KiB segments (kept in <src>_segments, not synced)
    (tmp_path / "big.bin").write_bytes(data)
    swift(sync_cloud, "post", "-k", "k3", dst)
    swift(sync_cloud, "post", "-t", f"{base(admin)}/{dst}", "-k", "k3", src)
    swift(sync_cloud, "upload", "--use-slo", "-S", "1024", src, "big.bin", cwd=tmp_path)
    wait_for(lambda: "big.bin" in listing(admin, dst))
    head = admin.head(f"/{dst}/big.bin").headers
    assert head["x-static-large-object"].lower() == "true"
    assert head["etag"] == admin.head(f"/{src}/big.bin").headers["etag"]
    assert admin.get(f"/{dst}/big.bin").content == data
