"""limit / marker pagination."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from kumo.common.errors import BadRequest, NotFound
from kumo.common.pagination import next_link, paginate, parse_limit

ITEMS = [{"id": f"id{i}"} for i in range(10)]


def key(item: dict) -> str:
    return item["id"]


@pytest.mark.parametrize(
    ("query", "expected"), [({}, None), ({"limit": ""}, None), ({"limit": "5"}, 5), ({"limit": "0"}, 0)]
)
def test_parse_limit(query, expected):
    assert parse_limit(query) == expected


def test_parse_limit_caps_at_maximum():
    assert parse_limit({"limit": "100000"}) == 1000
    assert parse_limit({"limit": "50"}, maximum=20) == 20


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5", "1e3"])
def test_parse_limit_rejects(bad):
    with pytest.raises(BadRequest) as exc:
        parse_limit({"limit": bad})
    assert exc.value.status == 400


def test_no_limit_returns_everything():
    page, more = paginate(ITEMS, None, None, key)
    assert page == ITEMS and not more


def test_first_page():
    page, more = paginate(ITEMS, 3, None, key)
    assert [x["id"] for x in page] == ["id0", "id1", "id2"] and more


def test_marker_starts_after_it():
    page, more = paginate(ITEMS, 3, "id2", key)
    assert [x["id"] for x in page] == ["id3", "id4", "id5"] and more


def test_last_page_has_no_more():
    page, more = paginate(ITEMS, 3, "id6", key)
    assert [x["id"] for x in page] == ["id7", "id8", "id9"] and not more
    page, more = paginate(ITEMS, 5, "id9", key)
    assert page == [] and not more


def test_marker_without_limit():
    page, more = paginate(ITEMS, None, "id7", key)
    assert [x["id"] for x in page] == ["id8", "id9"] and not more


def test_walking_all_pages_visits_each_item_once():
    seen, marker = [], None
    while True:
        page, more = paginate(ITEMS, 4, marker, key)
        seen += [x["id"] for x in page]
        if not more:
            break
        marker = page[-1]["id"]
    assert seen == [x["id"] for x in ITEMS]


def test_unknown_marker_is_not_found():
    with pytest.raises(NotFound) as exc:
        paginate(ITEMS, 3, "nope", key)
    assert exc.value.status == 404


def test_zero_limit():
    page, more = paginate(ITEMS, 0, None, key)
    assert page == [] and more


def test_next_link_keeps_filters_and_replaces_marker():
    link = next_link("http://h/v2.1/servers", {"name": "web", "marker": "old", "limit": "2"}, "id5", 2)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://h/v2.1/servers"
    assert parse_qs(parts.query) == {"name": ["web"], "limit": ["2"], "marker": ["id5"]}
