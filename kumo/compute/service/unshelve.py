"""Where an unshelved server may go: its zone (2.77), no zone (2.91 ``null``), a host (2.91, admin)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.compute.errors import BadRequest
from kumo.compute.models import ComputeService, Server
from kumo.compute.service import validate as v

UNPIN = object()  # "availability_zone": null -- the server is no longer pinned to a zone


def parse(args: Any, mv: Any) -> tuple[Any, str | None]:
    """``(zone, host)`` of an unshelve body; ``zone`` is None (unchanged), a name, or UNPIN."""
    if args is None or not mv.matches("2.77"):  # before 2.77 the body is not looked at
        return None, None
    if not isinstance(args, dict):
        raise BadRequest(f"Invalid input for field/attribute unshelve. Value: {args!r}.")
    allowed = {"availability_zone"} | ({"host"} if mv.matches("2.91") else set())
    v.only_keys(args, allowed)
    zone: Any = None
    if "availability_zone" in args:
        az = args["availability_zone"]
        if az is None and mv.matches("2.91"):
            zone = UNPIN
        else:
            zone = v.string(az, "availability_zone", 255, 1)
    host = v.string(args["host"], "host", 255, 1) if "host" in args else None
    return zone, host


def check_destination(s: Any, server: Server, zone: Any, host: str | None) -> None:
    """400 unless the zone exists and the host is a compute host in the zone the server will have."""
    zones = {
        row.host: row.zone
        for row in s.execute(select(ComputeService).where(ComputeService.binary == "nova-compute")).scalars()
    }
    if isinstance(zone, str) and zone not in set(zones.values()):
        raise BadRequest(f"The requested availability zone is not available: {zone}")
    if host is None:
        return
    if host not in zones:
        raise BadRequest(f"Compute host {host} could not be found.")
    wanted = zone if isinstance(zone, str) else (None if zone is UNPIN else server.availability_zone)
    if wanted and zones[host] != wanted:
        raise BadRequest(f"Host '{host}' is not in availability zone '{wanted}'.")
