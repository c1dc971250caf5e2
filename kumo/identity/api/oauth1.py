"""``/v3/OS-OAUTH1/consumers``: OAuth 1.0a consumers (the token flow is not served)."""

from __future__ import annotations

from typing import Any

from kumo.common.asgi import API, Call
from kumo.identity import models as m
from kumo.identity.api.common import collection, enforce, ident
from kumo.identity.service import oauth1
from kumo.identity.service.core import require_object

api = API()
P = "/v3/OS-OAUTH1/consumers"


def render(call: Call, c: m.OAuthConsumer, *, secret: bool = False) -> dict[str, Any]:
    body = {
        **(c.extra or {}),
        "id": c.id,
        "description": c.description,
        "links": {"self": call.url(f"{P}/{c.id}")},
    }
    if secret:
        body["secret"] = c.secret
    return body


def _consumer_body(call: Call) -> dict[str, Any]:
    if call.body is None or (isinstance(call.body, dict) and "consumer" not in call.body):
        return {}
    return require_object(call.body, "consumer")


@api.route(P, "GET", "HEAD")
def list_consumers(call: Call):
    enforce(call, "list_consumers")
    return collection(call, "consumers", oauth1.list_all(ident(call)), lambda c: render(call, c))


@api.route(P, "POST", status=201)
def create_consumer(call: Call):
    enforce(call, "create_consumer")
    consumer = oauth1.create(ident(call), _consumer_body(call))
    return {"consumer": render(call, consumer, secret=True)}


@api.route(P + "/{consumer_id}", "GET", "HEAD")
def get_consumer(call: Call):
    enforce(call, "get_consumer")
    return {"consumer": render(call, oauth1.get(ident(call), call.params["consumer_id"]))}


@api.route(P + "/{consumer_id}", "PATCH")
def update_consumer(call: Call):
    enforce(call, "update_consumer")
    body = require_object(call.body, "consumer")
    return {"consumer": render(call, oauth1.update(ident(call), call.params["consumer_id"], body))}


@api.route(P + "/{consumer_id}", "DELETE", status=204)
def delete_consumer(call: Call):
    enforce(call, "delete_consumer")
    oauth1.delete(ident(call), call.params["consumer_id"])
