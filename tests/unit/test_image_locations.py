"""Location helpers: validation_data checks, patch indexes, store order by weight."""

from __future__ import annotations

import hashlib

import pytest

from kumo.image.errors import BadRequest, Conflict
from kumo.image.models import Image
from kumo.image.service import location_ops, locations


def test_validation_data_accepts_matching_lengths():
    sha256 = hashlib.sha256(b"x").hexdigest()
    assert location_ops.validation_data(None) == {}
    assert location_ops.validation_data({}) == {}
    got = location_ops.validation_data(
        {"os_hash_algo": "sha256", "os_hash_value": sha256, "checksum": "a" * 32}
    )
    assert got == {"os_hash_algo": "sha256", "os_hash_value": sha256, "checksum": "a" * 32}


@pytest.mark.parametrize(
    "vd",
    [
        {"os_hash_algo": "sha512", "os_hash_value": "dbc9e0f80d131e64b94913a7b40bb5"},  # too short
        {"os_hash_value": "ab" * 64},  # no algorithm
        {"os_hash_algo": "sha123", "os_hash_value": "ab" * 64},  # unknown algorithm
        {"os_hash_algo": "sha512", "os_hash_value": "ab" * 32},  # a sha256-sized value
        {"os_hash_algo": "sha512"},
        {"checksum": "xyz"},
        {"checksum": "g" * 32},
        {"something": "else"},
        ["not", "a", "dict"],
    ],
)
def test_validation_data_refused(vd):
    with pytest.raises(BadRequest):
        location_ops.validation_data(vd)


def test_conflicting_hashes_are_a_conflict():
    image = Image(checksum="1" * 32, os_hash_algo="sha512", os_hash_value="de" * 64)
    with pytest.raises(Conflict):
        location_ops._apply_validation(image, {"checksum": "2" * 32})
    with pytest.raises(Conflict):
        location_ops._apply_validation(image, {"os_hash_algo": "sha256"}, check_only=True)
    location_ops._apply_validation(image, {"checksum": "1" * 32, "os_hash_value": "de" * 64})


def test_patch_index():
    assert location_ops._index(("locations", "-"), 2, allow_end=True) == 2
    assert location_ops._index(("locations", "0"), 2, allow_end=False) == 0
    for path, allow_end in ((("locations", "2"), False), (("locations", "-"), False), (("locations", "x"), True),
                            (("locations",), True), (("locations", "3"), True)):  # fmt: skip
        with pytest.raises(BadRequest):
            location_ops._index(path, 2, allow_end=allow_end)


def test_locations_keep_first_in_step_and_order_by_weight():
    image = Image()
    locations.add(image, "swift", "swift://c/i")
    locations.add(image, "file", "file:///x/i")
    assert image.location == "swift://c/i" and image.store == "swift"
    assert locations.store_ids(image) == ["file", "swift"]
    assert locations.store_ids(image, {"swift": 10, "file": 1}) == ["swift", "file"]
    locations.add(image, "swift", "swift://c/i2")  # one copy per store: replaced
    assert [loc["url"] for loc in locations.get(image)] == ["file:///x/i", "swift://c/i2"]
    assert locations.in_store(image, "web") is None
    locations.set_all(image, [])
    assert image.location is None and image.store is None
