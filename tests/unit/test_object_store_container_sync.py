"""Container sync: realm signatures, X-Container-Sync-To validation, the realms config, the
middleware's admission of sync requests and the daemon's walk of the listing rows."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kumo.common.config import ObjectStoreSettings, Settings
from kumo.object_store.app import make_cluster
from kumo.object_store.daemons import Stats, _db_files
from kumo.object_store.node.brokers import ContainerBroker
from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.pipeline import build_pipeline
from kumo.object_store.proxy.types import Handler, Req
from kumo.object_store.ring import RingBuilder
from kumo.object_store.sync_daemon import ContainerSyncer
from kumo.object_store.sync_realms import (
    InvalidSyncTo,
    Realm,
    SyncRealms,
    auth_header,
    load,
    parse_realms_file,
    signature,
    verify,
)

A = "AUTH_test"


def _realms(**kw: Any) -> SyncRealms:
    realms = {
        "US": Realm(
            "US", "realm-key", "realm-key-2", {"EAST": "https://east.example/v1/", "WEST": "http://w/v1"}
        ),
        "EU": Realm("EU", "eu-key"),
    }
    return SyncRealms(realms, kw.pop("hosts", ["127.0.0.1", "sync.example"]), **kw)


# ---- signatures ----------------------------------------------------------------------------------


def test_signature_is_swifts():
    # the vector of Swift's own unit test: kumo and Swift clusters can sync to each other
    sig = signature("GET", "/some/path", "1387212345.67890", "my_nonce", "realm_key", "user_key")
    assert sig == "5a6eb486eb7b44ae1b1f014187a94529c3f9c8f9"


def test_verify_accepts_either_realm_key_and_nothing_else():
    r = _realms()
    path, ts = "/v1/AUTH_a/c/o", "1700000000.00000"
    good = auth_header("us", "realm-key", "user", "PUT", path, ts, "n1")
    rotated = auth_header("US", "realm-key-2", "user", "PUT", path, ts, "n1")
    assert verify(r, good, "PUT", [path], ts, "user")
    assert verify(r, rotated, "PUT", ["/other", path], ts, "user")  # any of the path spellings
    assert not verify(r, good, "PUT", [path], ts, "other-user-key")
    assert not verify(r, good, "DELETE", [path], ts, "user")
    assert not verify(r, good, "PUT", ["/v1/AUTH_a/c/o2"], ts, "user")
    assert not verify(r, good, "PUT", [path], "1700000001.00000", "user")
    assert not verify(r, good, "PUT", [path], ts, "")  # the container has no key
    assert not verify(r, good.replace("us ", "EU ", 1), "PUT", [path], ts, "user")  # another realm's key
    assert not verify(r, good.replace("us ", "MARS ", 1), "PUT", [path], ts, "user")
    assert not verify(r, "US n1", "PUT", [path], ts, "user")
    assert not verify(r, good + " extra", "PUT", [path], ts, "user")


# ---- X-Container-Sync-To -------------------------------------------------------------------------


def test_validate_realm_form():
    r = _realms()
    t = r.validate("//us/east/AUTH_b/target/")
    assert t is not None and (t.url, t.realm, t.realm_key) == (
        "https://east.example/v1/AUTH_b/target",
        "US",
        "realm-key",
    )
    assert r.validate("//US/West/AUTH_b/t").url == "http://w/v1/AUTH_b/t"  # type: ignore[union-attr]
    assert r.validate("") is None and r.validate("  ") is None
    with pytest.raises(InvalidSyncTo, match=r"^Invalid X-Container-Sync-To format '//us/east/AUTH_b'$"):
        r.validate("//us/east/AUTH_b")
    with pytest.raises(InvalidSyncTo, match=r"^No realm key for 'mars'$"):
        r.validate("//mars/east/a/c")
    with pytest.raises(InvalidSyncTo, match=r"^No cluster endpoint for 'eu' 'x'$"):
        r.validate("//eu/x/a/c")


def test_validate_full_urls():
    r = _realms()
    assert r.validate("http://127.0.0.1:8080/v1/AUTH_a/c").url == "http://127.0.0.1:8080/v1/AUTH_a/c"  # type: ignore[union-attr]
    assert r.validate("https://sync.example/v1/AUTH_a/c") is not None
    with pytest.raises(InvalidSyncTo, match="Invalid host 'evil.example'"):
        r.validate("http://evil.example/v1/AUTH_a/c")
    with pytest.raises(InvalidSyncTo, match="Invalid scheme 'ftp'"):
        r.validate("ftp://127.0.0.1/v1/AUTH_a/c")
    with pytest.raises(InvalidSyncTo, match="Path required"):
        r.validate("http://127.0.0.1")
    with pytest.raises(InvalidSyncTo, match="Params, queries, and fragments"):
        r.validate("http://127.0.0.1/v1/a/c#frag")
    with pytest.raises(InvalidSyncTo, match="Full URLs are not allowed"):
        _realms(allow_full_urls=False).validate("http://127.0.0.1/v1/AUTH_a/c")
    assert _realms(allow_full_urls=False).validate("//us/east/a/c") is not None  # realms still do


def test_localhost_allows_every_loopback_address():
    r = _realms(hosts=["localhost"])
    assert r.host_allowed("127.0.0.1") and r.host_allowed("::1") and r.host_allowed("[::1]")
    assert r.host_allowed("localhost") and not r.host_allowed("10.0.0.1") and not r.host_allowed(None)
    assert not _realms(hosts=["127.0.0.1"]).host_allowed("::1")


# ---- configuration -------------------------------------------------------------------------------


def test_realms_file_in_swifts_format(tmp_path: Path):
    conf = tmp_path / "container-sync-realms.conf"
    conf.write_text(
        "[DEFAULT]\nmtime_check_interval = 300\n\n"
        "[realm1]\nkey = k1\nkey2 = k1b\ncluster_name1 = https://one.example/v1/\ncluster_name2 = http://two/v1/\n\n"
        "[nokey]\ncluster_x = http://x/v1/\n"
    )
    realms = parse_realms_file(conf)
    assert list(realms) == ["REALM1"]
    assert realms["REALM1"].key2 == "k1b"
    assert realms["REALM1"].clusters == {"NAME1": "https://one.example/v1/", "NAME2": "http://two/v1/"}
    assert parse_realms_file(tmp_path / "missing.conf") == {}


def test_load_adds_the_clouds_own_realm_with_a_key_kept_in_the_data_dir(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, port=5999)
    r = load(settings)
    assert r.current == ("KUMO", "LOCAL")
    assert r.info() == {"KUMO": {"clusters": {"LOCAL": {"current": True}}}}
    key = (tmp_path / "object-store" / "container-sync-realm.key").read_text().strip()
    assert len(key) >= 32 and r.keys("kumo") == [key]
    assert load(settings).keys("KUMO") == [key]  # the same on the next start
    split = load(settings, "http://ctrl.example:5100/object-store/v1/")  # a storage node: the proxy's URL
    assert split.validate("//kumo/local/a/c").url == "http://ctrl.example:5100/object-store/v1/a/c"  # type: ignore[union-attr]
    assert r.validate("//kumo/local/AUTH_x/c").url == "http://127.0.0.1:5999/object-store/v1/AUTH_x/c"  # type: ignore[union-attr]

    conf = tmp_path / "realms.conf"
    conf.write_text("[kumo]\nkey = shared\ncluster_remote = https://remote.example/v1/\n")
    os_settings = ObjectStoreSettings(container_sync_realms_file=str(conf), container_sync_cluster="east",
                                      container_sync_cluster_url="https://me.example/object-store/v1/")  # fmt: skip
    r = load(Settings(data_dir=tmp_path, object_store=os_settings))
    assert r.keys("KUMO") == ["shared"]  # the realms file's key wins
    assert r.info() == {"KUMO": {"clusters": {"REMOTE": {}, "EAST": {"current": True}}}}
    assert r.validate("//kumo/east/a/c").url == "https://me.example/object-store/v1/a/c"  # type: ignore[union-attr]

    none = load(Settings(data_dir=tmp_path, object_store=ObjectStoreSettings(container_sync_realm="")))
    assert none.realms == {} and none.info() == {} and none.current is None
    with pytest.raises(InvalidSyncTo):
        none.validate("//kumo/local/a/c")


def test_sync_points_start_over_for_a_new_target(tmp_path: Path):
    b = ContainerBroker(tmp_path / "c.db")
    b.create("a/c", "1")
    assert b.sync_points("//r/c/a/x") == (-1, -1)
    b.set_sync_points("//r/c/a/x", point1=7)
    b.set_sync_points("//r/c/a/x", point2=3)
    assert b.sync_points("//r/c/a/x") == (7, 3)
    assert b.sync_points("//r/c/a/other") == (-1, -1)
    assert b.sync_points("//r/c/a/x") == (-1, -1)


# ---- the middleware ------------------------------------------------------------------------------


def _proxy(tmp_path: Path, replicas: int = 1, realms: SyncRealms | None = None) -> tuple[Handler, Backend]:
    b = RingBuilder(part_power=4, replicas=replicas)
    b.hash_suffix = "sfx"
    for i in range(replicas):
        b.add_dev(f"node{i}", "d1", zone=i + 1)
    b.rebalance()
    b.get_ring().save(tmp_path / "object.ring.gz")
    backend = Backend(make_cluster(tmp_path, ObjectStoreSettings(run_daemons=False)))
    return build_pipeline(backend, realms or _realms())[0], backend


def _req(method: str, c: str | None = None, o: str | None = None, body: bytes | None = None, *,
         owner: bool = False, addr: str = "127.0.0.1", **headers: str) -> Req:  # fmt: skip
    environ: dict[str, Any] = {"remote_addr": addr, "root_path": "/object-store"}
    if owner:
        environ["authorized"] = True
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    return Req(method, A, c, o, headers=hdrs, body=body, environ=environ)


def test_middleware_admits_signed_and_keyed_requests_only(tmp_path: Path):
    proxy, backend = _proxy(tmp_path)
    ts = "1700000000.12345"

    async def run() -> None:
        try:
            bad = await proxy(_req("PUT", "c", owner=True, x_container_sync_to="http://evil/v1/a/c"))
            assert (bad.status, bad.body) == (400, b"Invalid host 'evil' in X-Container-Sync-To")
            ok = await proxy(_req("PUT", "c", owner=True, x_container_sync_key="ukey"))
            assert ok.status == 201
            # realm style, signed over the path with the object store's prefix
            auth = auth_header("US", "realm-key", "ukey", "PUT", f"/object-store/v1/{A}/c/o", ts, "n")
            put = await proxy(_req("PUT", "c", "o", b"data", x_container_sync_auth=auth, x_timestamp=ts))
            assert put.status == 201 and put.headers["x-timestamp"] == ts
            head = await proxy(_req("HEAD", "c", "o", owner=True))
            assert head.headers["x-timestamp"] == ts
            wrong = auth_header("US", "realm-key", "nope", "PUT", f"/v1/{A}/c/o", ts, "n")
            denied = await proxy(_req("PUT", "c", "o", b"x", x_container_sync_auth=wrong, x_timestamp=ts))
            assert denied.status == 401 and denied.body.startswith(b"X-Container-Sync-Auth header not valid")
            # old style: the key itself, an X-Timestamp, from an allowed host
            later = "1700000001.00000"
            put = await proxy(_req("PUT", "c", "o2", b"d", x_container_sync_key="ukey", x_timestamp=later))
            assert put.status == 201 and put.headers["x-timestamp"] == later
            for refused in (
                _req("PUT", "c", "o3", b"d", x_container_sync_key="nope", x_timestamp=later),
                _req("PUT", "c", "o3", b"d", x_container_sync_key="ukey"),  # no X-Timestamp
                _req("PUT", "c", "o3", b"d", addr="10.1.2.3", x_container_sync_key="ukey", x_timestamp=later),
            ):
                assert (await proxy(refused)).status == 401
            # a token's own X-Timestamp is ignored: only sync requests keep theirs
            own = await proxy(_req("PUT", "c", "o4", b"d", owner=True, x_timestamp=later))
            assert own.status == 201 and own.headers["x-timestamp"] != later
            # a signed DELETE keeps its timestamp too (the tombstone is the sender's)
            dts = "1700000002.00000"
            auth = auth_header("US", "realm-key", "ukey", "DELETE", f"/v1/{A}/c/o", dts, "n2")
            gone = await proxy(_req("DELETE", "c", "o", x_container_sync_auth=auth, x_timestamp=dts))
            assert gone.status == 204
        finally:
            await backend.cluster.aclose()

    asyncio.run(run())


# ---- the daemon ----------------------------------------------------------------------------------


class _Target:
    """A fake sync target: records requests, checks each one's signature, answers like Swift."""

    def __init__(self, realms: SyncRealms, user_key: str) -> None:
        self.realms = realms
        self.user_key = user_key
        self.objects: dict[str, str] = {}  # name -> timestamp
        self.requests: list[tuple[str, str]] = []
        self.fail: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = urlsplit(str(request.url)).path.rsplit("/", 1)[-1]
        ts = request.headers["x-timestamp"]
        assert verify(self.realms, request.headers["x-container-sync-auth"], request.method,
                      [request.url.raw_path.decode()], ts, self.user_key)  # fmt: skip
        self.requests.append((request.method, name))
        if request.method == "HEAD":
            have = self.objects.get(name)
            return httpx.Response(200, headers={"x-timestamp": have}) if have else httpx.Response(404)
        if name in self.fail:
            return httpx.Response(503)
        if request.method == "PUT":
            self.objects[name] = ts
            return httpx.Response(201)
        self.objects.pop(name, None)
        return httpx.Response(204)


def test_daemon_shares_rows_among_copies_and_retries_failures(tmp_path: Path):
    realms = _realms()
    proxy, backend = _proxy(tmp_path, replicas=3, realms=realms)
    target = _Target(realms, "ukey")
    cluster = backend.cluster

    async def run() -> None:
        syncers = []
        try:
            r = await proxy(_req("PUT", "c", owner=True, x_container_sync_to="//us/east/AUTH_b/t",
                                 x_container_sync_key="ukey"))  # fmt: skip
            assert r.status == 201
            for i in range(12):
                assert (await proxy(_req("PUT", "c", f"o{i}", b"x" * i, owner=True))).status == 201
            assert (await proxy(_req("DELETE", "c", "o0", owner=True))).status == 204
            target.fail = {"o5"}
            for i in range(3):
                s = ContainerSyncer(f"node{i}", cluster, realms, threading.Event())
                s._http = httpx.AsyncClient(transport=httpx.MockTransport(target))
                syncers.append(s)

            async def one_pass() -> dict[str, int]:
                total: dict[str, int] = {}
                for i, s in enumerate(syncers):
                    stats = Stats("container-sync")
                    root = tmp_path / f"node{i}"
                    dbs = [
                        (d.name, p, path) for d in root.iterdir() for p, _h, path in _db_files(d, "container")
                    ]
                    await s.run(dbs, stats)
                    for k, v in stats.counts.items():
                        total[k] = total.get(k, 0) + v
                return total

            first = await one_pass()
            # each live row went out once, from the copy it hashes to; o5 failed
            puts = [n for m, n in target.requests if m == "PUT"]
            assert sorted(puts) == sorted({f"o{i}" for i in range(1, 12)}), puts
            assert first["puts"] == 10 and first["refused 503"] == 1
            assert set(target.objects) == {f"o{i}" for i in range(1, 12) if i != 5}
            target.requests.clear()
            target.fail = set()
            await one_pass()  # the catch-up walk: every copy checks every row; o5 arrives now
            assert "o5" in target.objects
            assert [n for m, n in target.requests if m == "PUT"] == ["o5"]
            target.requests.clear()
            third = await one_pass()
            assert [m for m, _ in target.requests if m == "PUT"] == [] and "puts" not in third
            # timestamps are the source's
            head = await proxy(_req("HEAD", "c", "o3", owner=True))
            assert target.objects["o3"] == head.headers["x-timestamp"]
        finally:
            for s in syncers:
                await s.aclose()
            await cluster.aclose()

    asyncio.run(run())
