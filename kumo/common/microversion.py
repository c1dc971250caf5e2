"""Microversion negotiation (``OpenStack-API-Version: <service> X.Y``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import total_ordering

from kumo.common.errors import BadRequest, NotAcceptable

_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
@dataclass(frozen=True, slots=True)
class APIVersion:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        m = _VERSION.match(text.strip())
        if not m:
            raise BadRequest(f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum.")
        return cls(int(m.group(1)), int(m.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, APIVersion):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    def matches(self, low: str | None = None, high: str | None = None) -> bool:
        return (low is None or self >= APIVersion.parse(low)) and (high is None or self <= APIVersion.parse(high))


def negotiate(
    headers: Mapping[str, str],
    service_type: str,
    minimum: str,
    maximum: str,
    legacy_header: str | None = None,
) -> APIVersion:
    """Return the version a request asks for; the minimum when it asks for none."""
    low, high = APIVersion.parse(minimum), APIVersion.parse(maximum)
    requested: str | None = None
    for value in headers.get("openstack-api-version", "").split(","):
        parts = value.strip().split(None, 1)
        if len(parts) == 2 and parts[0].lower() == service_type:
            requested = parts[1]
    if requested is None and legacy_header:
        requested = headers.get(legacy_header.lower())
    if not requested:
        return low
    if requested.strip().lower() == "latest":
        return high
    version = APIVersion.parse(requested)
    if not low <= version <= high:
        raise NotAcceptable(
            f"Version {version} is not supported by the API. Minimum is {low} and maximum is {high}."
        )
    return version


def response_headers(service_type: str, version: APIVersion, legacy_header: str | None = None) -> dict[str, str]:
    headers = {"OpenStack-API-Version": f"{service_type} {version}", "Vary": "OpenStack-API-Version"}
    if legacy_header:
        headers[legacy_header] = str(version)
        headers["Vary"] += f", {legacy_header}"
    return headers
