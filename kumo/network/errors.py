"""Neutron's faults: the exception type name goes into ``NeutronError.type``."""

from __future__ import annotations

from kumo.common.errors import APIError


def _make(name: str, status: int) -> type[APIError]:
    return type(name, (APIError,), {"status": status, "fault": name})


BadRequest = _make("HTTPBadRequest", 400)
InvalidInput = _make("InvalidInput", 400)
Forbidden = _make("HTTPForbidden", 403)
PolicyNotAuthorized = _make("PolicyNotAuthorized", 403)
NotFound = _make("HTTPNotFound", 404)
Conflict = _make("HTTPConflict", 409)
PreconditionFailed = _make("PreconditionFailed", 412)


def not_found(kind: str, ident: str) -> APIError:
    """``NetworkNotFound`` etc. with upstream's messages."""
    names = {
        "network": ("NetworkNotFound", f"Network {ident} could not be found."),
        "subnet": ("SubnetNotFound", f"Subnet {ident} could not be found."),
        "port": ("PortNotFound", f"Port {ident} could not be found."),
        "router": ("RouterNotFound", f"Router {ident} could not be found."),
        "floatingip": ("FloatingIPNotFound", f"Floating IP {ident} could not be found"),
        "security_group": ("SecurityGroupNotFound", f"Security group {ident} does not exist"),
        "security_group_rule": ("SecurityGroupRuleNotFound", f"Security group rule {ident} does not exist"),
        "subnetpool": ("SubnetPoolNotFound", f"Subnet pool {ident} could not be found."),
        "agent": ("AgentNotFound", f"Agent {ident} could not be found."),
        "address_scope": ("AddressScopeNotFound", f"Address scope {ident} could not be found."),
        "metering_label": ("MeteringLabelNotFound", f"Metering label {ident} does not exist."),
        "metering_label_rule": ("MeteringLabelRuleNotFound", f"Metering label rule {ident} does not exist."),
    }
    fault, msg = names.get(kind, ("HTTPNotFound", f"{kind} {ident} could not be found."))
    return APIError(msg, status=404, fault=fault)


def conflict(fault: str, message: str) -> APIError:
    return APIError(message, status=409, fault=fault)


def bad(message: str, fault: str = "HTTPBadRequest") -> APIError:
    return APIError(message, status=400, fault=fault)


def forbidden(message: str, fault: str = "HTTPForbidden") -> APIError:
    return APIError(message, status=403, fault=fault)
