"""Rendering helpers the identity routers share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kumo.common.asgi import Call
from kumo.common.context import RequestContext
from kumo.identity.policies import POLICY
from kumo.identity.service.core import Identity


def ident(call: Call) -> Identity:
    return call.request.app.state.identity


def enforce(call: Call, action: str, target: dict[str, Any] | None = None) -> RequestContext:
    POLICY.enforce(call.ctx, f"{action}", target)
    return call.ctx


def self_link(call: Call, path: str) -> dict[str, str]:
    return {"self": call.url(path)}


def collection(call: Call, key: str, items: Iterable[Any], render: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    return {
        key: [render(i) for i in items],
        "links": {"self": str(call.request.url), "previous": None, "next": None},
    }


def query_bool(value: str | None) -> bool | None:
    """Keystone's truthiness for filters: anything but 0/false/no/off is true."""
    if value is None:
        return None
    return value.strip().lower() not in ("0", "false", "no", "off", "")
