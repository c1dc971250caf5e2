"""The error body formats of the OpenStack services."""

from __future__ import annotations

import json
from collections.abc import Callable

from kumo.common.errors import APIError

Renderer = Callable[[APIError], tuple[bytes, str]]


def keystone(err: APIError) -> tuple[bytes, str]:
    body = {"error": {"code": err.status, "title": err.title, "message": err.message}}
    return json.dumps(body).encode(), "application/json"


def nova(err: APIError) -> tuple[bytes, str]:
    """Nova and Cinder: ``{"itemNotFound": {"code": 404, "message": "..."}}``."""
    return json.dumps({err.fault: {"code": err.status, "message": err.message}}).encode(), "application/json"


def neutron(err: APIError) -> tuple[bytes, str]:
    body = {"NeutronError": {"type": err.fault, "message": err.message, "detail": ""}}
    return json.dumps(body).encode(), "application/json"


def plain(err: APIError) -> tuple[bytes, str]:
    """Swift: a short text body."""
    return f"<html><h1>{err.title}</h1><p>{err.message}</p></html>".encode(), "text/html; charset=UTF-8"
