"""Listing rows: the fast ``last_modified`` equals the datetime-based one, and the storage node's
ready-made rows are exactly what the proxy would have built."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from kumo.object_store.listing_rows import account_rows, container_rows, iso
from kumo.object_store.utils import normalize_ts


def test_iso_matches_datetime_for_swift_timestamps() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        ts = normalize_ts(rng.uniform(0, 4e9))
        assert iso(ts) == datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S.%f"), ts
    assert iso("1700000000") == "2023-11-14T22:13:20.000000"
    assert iso("1e9") == "2001-09-09T01:46:40.000000"  # not digits: the general path


def test_container_rows_shape_and_symlinks() -> None:
    rows = [
        {"subdir": "a/"},
        {"name": "o", "created_at": "1700000000.12345", "bytes": 3, "content_type": "text/plain", "hash": "h"},
        {"name": "l", "created_at": "1700000000.00001", "bytes": 0, "hash": "h2",
         "content_type": "application/symlink;symlink_target=c/t;symlink_target_account=AUTH_x"},
    ]
    out = container_rows(rows)
    assert out[0] == {"subdir": "a/"}
    assert out[1] == {"hash": "h", "last_modified": "2023-11-14T22:13:20.123450", "bytes": 3, "name": "o",
                      "content_type": "text/plain"}
    assert out[2]["content_type"] == "application/symlink" and out[2]["symlink_path"] == "/v1/AUTH_x/c/t"
    acc = account_rows([{"name": "c", "count": 1, "bytes": 2, "put_timestamp": "1700000000.00000"}])
    assert acc == [{"name": "c", "count": 1, "bytes": 2, "last_modified": "2023-11-14T22:13:20.000000"}]


def test_sqlite_built_rows_equal_the_python_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from kumo.object_store.node.brokers import ContainerBroker

    broker = ContainerBroker(tmp_path / "c.db")
    broker.create("/AUTH_a/c", normalize_ts(1.0))
    rng = random.Random(3)
    heads, tails = ["a", "b/", "é", "x y", 'q"'], ["", "/z", "\\"]
    names = [rng.choice(heads) + f"{i:04d}" + rng.choice(tails) for i in range(300)]
    for i, name in enumerate(names):
        broker.put_object(name, normalize_ts(rng.uniform(1e9, 2e9)), i, rng.choice(["text/plain", "a/b; x=1"]),
                          f"{i:032x}")  # fmt: skip
    broker.delete_object(names[7], normalize_ts(3e9))
    for kw in ({}, {"limit": 5}, {"marker": "b"}, {"end_marker": "b/0200"}, {"prefix": "b/"}, {"reverse": True},
               {"reverse": True, "marker": "x", "end_marker": "b"}, {"prefix": "é", "reverse": True, "limit": 7}):
        args = {"limit": 10000, **kw}
        fast = broker.swift_json(**args)
        assert fast is not None
        assert json.loads(fast) == container_rows(broker.listing(**args)), kw
    broker.put_object("link", normalize_ts(5.0), 0, "application/symlink;symlink_target=c/t", "e")
    assert broker.swift_json(limit=10000) is None  # the Python path shapes symlink rows
    assert broker.swift_json(limit=10000, prefix="a") is not None
