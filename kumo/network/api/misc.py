"""Availability zones, network IP availability, service providers."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.network.api.common import list_response, show_response, svc
from kumo.network.errors import not_found

router = API()


@router.route("/v2.0/availability_zones", "GET")
def availability_zones(call: Call) -> dict[str, Any]:
    return list_response(call, "availability_zones", "availability_zone", svc(call).availability_zones())


@router.route("/v2.0/network-ip-availabilities", "GET")
def ip_availabilities(call: Call) -> dict[str, Any]:
    items = svc(call).ip_availabilities(call.ctx)
    for it in items:
        it.setdefault("id", it["network_id"])
    body = list_response(call, "network_ip_availabilities", "network", items)
    for it in body["network_ip_availabilities"]:
        it.pop("id", None)
    return body


@router.route("/v2.0/network-ip-availabilities/{id}", "GET")
def ip_availability(call: Call) -> dict[str, Any]:
    for it in svc(call).ip_availabilities(call.ctx):
        if it["network_id"] == call.params["id"]:
            return show_response(call, "network_ip_availability", it)
    raise not_found("network", call.params["id"])


@router.route("/v2.0/service-providers", "GET")
def service_providers(call: Call) -> dict[str, Any]:
    return list_response(call, "service_providers", "service_provider", [
        {"service_type": "L3_ROUTER_NAT", "name": "default", "default": True}])
