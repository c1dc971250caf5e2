"""Object-store building blocks: byte ranges, container listings, atomic object files."""

from __future__ import annotations

import pytest

from kumo.object_store import ranges
from kumo.object_store.node.brokers import AccountBroker, ContainerBroker
from kumo.object_store.node.diskfile import ObjectDir


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-3", [(0, 3)]),
        ("bytes=5-", [(5, 9)]),
        ("bytes=-3", [(7, 9)]),
        ("bytes=0-0,8-100", [(0, 0), (8, 9)]),
        ("bytes=3-1", None),  # invalid: ignored
        ("pages=1-2", None),
        ("bytes=abc", None),
        (None, None),
    ],
)
def test_range_parse(header, expected):
    assert ranges.parse(header, 10) == expected


def test_range_unsatisfiable():
    with pytest.raises(ranges.RangeNotSatisfiable):
        ranges.parse("bytes=10-20", 10)


def _container(tmp_path, names):
    b = ContainerBroker(tmp_path / "c.db")
    b.create("a/c", "1")
    for n in names:
        b.put_object(n, "2", 3, "text/plain", "etag")
    return b


def _names(rows):
    return [r.get("name") or r.get("subdir") for r in rows]


def test_listing_markers_prefix_delimiter_reverse(tmp_path):
    b = _container(tmp_path, ["a", "a/b", "a/c/d", "a/c/e", "b", "b/x", "c"])
    assert _names(b.listing(limit=100)) == ["a", "a/b", "a/c/d", "a/c/e", "b", "b/x", "c"]
    assert _names(b.listing(limit=100, delimiter="/")) == ["a", "a/", "b", "b/", "c"]
    assert _names(b.listing(limit=100, prefix="a/", delimiter="/")) == ["a/b", "a/c/"]
    assert _names(b.listing(limit=100, reverse=True, delimiter="/")) == ["c", "b/", "b", "a/", "a"]
    assert _names(b.listing(limit=100, marker="a/b", end_marker="b/x")) == ["a/c/d", "a/c/e", "b"]
    assert _names(b.listing(limit=2, marker="a")) == ["a/b", "a/c/d"]
    assert _names(b.listing(limit=100, reverse=True, marker="b")) == ["a/c/e", "a/c/d", "a/b", "a"]


def test_container_totals_follow_updates(tmp_path):
    b = _container(tmp_path, ["x", "y"])
    assert (b.info().object_count, b.info().bytes_used) == (2, 6)
    b.put_object("x", "3", 10, "t", "e")  # overwrite
    b.delete_object("y", "3")
    b.put_object("x", "1", 99, "t", "e")  # older update: ignored
    info = b.info()
    assert (info.object_count, info.bytes_used) == (1, 10)


def test_account_totals(tmp_path):
    a = AccountBroker(tmp_path / "a.db")
    a.create("AUTH_x", "1")
    a.put_container("c1", "2", "0", 3, 30)
    a.put_container("c2", "2", "0", 1, 5)
    a.put_container("c1", "2", "3", 0, 0)  # deleted
    info = a.info()
    assert (info.item_count, info.object_count, info.bytes_used) == (1, 1, 5)


def test_object_write_is_atomic_and_replaces(tmp_path):
    d = ObjectDir(tmp_path, 7, "0123456789abcdef0123456789abcdef")
    assert d.open() is None
    w = d.writer()
    w.write(b"hello")
    assert d.open() is None  # not visible before commit
    w.commit({"x-timestamp": "0000000001.00000", "content-length": "5", "etag": w.md5.hexdigest()})
    w2 = d.writer()
    w2.write(b"bye")
    w2.commit({"x-timestamp": "0000000002.00000", "content-length": "3", "etag": w2.md5.hexdigest()})
    obj = d.open()
    assert obj is not None and b"".join(obj.read()) == b"bye"
    assert sorted(p.name for p in d.dir.iterdir()) == ["0000000002.00000.data", "0000000002.00000.data.json"]
    d.delete("0000000003.00000")
    assert d.open() is None and d.newest() == ("0000000003.00000", "ts")
    assert not list((tmp_path / "tmp").iterdir())
