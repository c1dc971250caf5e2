"""Glance's JSON patch media types and rules."""

from __future__ import annotations

import pytest

from kumo.common.errors import BadRequest, Forbidden, UnsupportedMediaType
from kumo.image.service import patch, validate


def test_media_types():
    assert patch.check_media_type("application/openstack-images-v2.1-json-patch") == patch.MEDIA_V21
    assert (
        patch.check_media_type("application/openstack-images-v2.0-json-patch; charset=UTF-8")
        == patch.MEDIA_V20
    )
    with pytest.raises(UnsupportedMediaType):
        patch.check_media_type("application/json")
    with pytest.raises(UnsupportedMediaType):
        patch.check_media_type(None)


def test_rfc6902_form():
    ops = patch.parse(
        [{"op": "replace", "path": "/name", "value": "x"}, {"op": "remove", "path": "/a~1b"}], patch.MEDIA_V21
    )
    assert ops == [patch.Op("replace", ("name",), "x"), patch.Op("remove", ("a/b",), None)]


def test_draft_form():
    ops = patch.parse([{"add": "/speed", "value": "88mph"}], patch.MEDIA_V20)
    assert ops == [patch.Op("add", ("speed",), "88mph")]


@pytest.mark.parametrize(
    "body",
    [
        {"op": "replace"},
        [{"op": "test", "path": "/name", "value": "x"}],
        [{"op": "move", "path": "/name", "from": "/x"}],
        [{"op": "add", "path": "/name"}],
        [{"op": "add", "path": "name", "value": 1}],
        [{"op": "add", "path": "/", "value": 1}],
        [{"op": "add", "path": "/a/b", "value": 1}],
        ["nope"],
    ],
)
def test_bad_patches(body):
    with pytest.raises(BadRequest):
        patch.parse(body, patch.MEDIA_V21)


def test_draft_needs_exactly_one_op():
    with pytest.raises(BadRequest):
        patch.parse([{"add": "/a", "replace": "/b", "value": "1"}], patch.MEDIA_V20)


def test_read_only_and_reserved():
    for attr in ("status", "size", "checksum", "id", "created_at", "os_hash_value"):
        with pytest.raises(Forbidden, match="read-only"):
            validate.check_writable(attr)
    for attr in ("os_glance_foo", "location", "deleted"):
        with pytest.raises(Forbidden, match="reserved"):
            validate.check_writable(attr)
    validate.check_writable("name")
    validate.check_writable("hw_disk_bus")


def test_values():
    assert validate.value("visibility", "community") == "community"
    assert (
        validate.value("id", "AAAAAAAA-1111-2222-3333-444455556666") == "aaaaaaaa-1111-2222-3333-444455556666"
    )
    for attr, bad in (
        ("visibility", "everyone"),
        ("min_ram", -1),
        ("min_disk", True),
        ("protected", "yes"),
        ("disk_format", "wrong"),
        ("container_format", "wrong"),
        ("tags", "a"),
        ("custom", 5),
        ("ramdisk_id", "nope"),
    ):
        with pytest.raises(BadRequest):
            validate.value(attr, bad)
