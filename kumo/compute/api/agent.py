"""The internal agent API under ``/compute/v2.1/kumo-agent``; agents authenticate with a shared secret."""

from __future__ import annotations

import anyio.to_thread

from kumo.common import shared_secret
from kumo.common.asgi import API, Call
from kumo.compute.api.common import svc
from kumo.compute.errors import NotFound
from kumo.compute.service import agents, evacuate, hypervisors, image_cache, migrate

api = API()
HEADER = "x-kumo-agent-secret"


def _check(call: Call) -> None:
    shared_secret.require(call.headers.get(HEADER, ""), svc(call).agent_secret)


@api.route("/v2.1/kumo-agent/hosts", "POST", public=True)
def register(call: Call):
    _check(call)
    out = agents.register(svc(call), call.body)
    hypervisors.record_uptime(svc(call), call.body["host"], call.body.get("uptime"))
    return out


@api.route("/v2.1/kumo-agent/hosts/{host}/heartbeat", "POST", public=True)
def heartbeat(call: Call):
    _check(call)
    agents.heartbeat(svc(call), call.params["host"])
    if isinstance(call.body, dict):
        hypervisors.record_uptime(svc(call), call.params["host"], call.body.get("uptime"))
    return None


@api.route("/v2.1/kumo-agent/hosts/{host}/servers", "GET", public=True)
async def desired(call: Call):
    """Long-poll: waits up to ``wait`` seconds for a change after ``generation``."""
    _check(call)
    service = svc(call)
    try:
        seen = int(call.query.get("generation", "-1"))
        wait = min(float(call.query.get("wait", "0")), 30.0)
    except ValueError:
        seen, wait = -1, 0.0
    generation = service.notifier.generation
    if seen == generation and wait > 0:
        generation = await service.notifier.wait(seen, wait)
    servers = await anyio.to_thread.run_sync(agents.desired, service, call.params["host"])
    stale = await anyio.to_thread.run_sync(evacuate.stale_on, service, call.params["host"])
    # copies left on a migration's source host (kumo.compute.service.migrate): dropped the same way
    stale += await anyio.to_thread.run_sync(migrate.stale_on, service, call.params["host"])
    cache = await anyio.to_thread.run_sync(image_cache.pending, service, call.params["host"])
    return {"generation": generation, "servers": servers, "evacuated": stale, "image_cache": cache}


@api.route("/v2.1/kumo-agent/hosts/{host}/evacuated/{server_id}", "POST", public=True)
def evacuated_cleaned(call: Call):
    """The agent destroyed its copy of a server evacuated away from its host."""
    _check(call)
    try:
        evacuate.cleaned(svc(call), call.params["host"], call.params["server_id"])
    except NotFound:  # not an evacuation: a migration's source copy
        migrate.cleaned(svc(call), call.params["host"], call.params["server_id"])
    return None


@api.route("/v2.1/kumo-agent/hosts/{host}/image-cache/{image_id}", "POST", public=True)
def image_cached(call: Call):
    """The agent fetched (``cached``) or could not fetch (``error``) an image it was asked to pre-cache."""
    _check(call)
    image_cache.report(svc(call), call.params["host"], call.params["image_id"], call.body)
    return None


@api.route("/v2.1/kumo-agent/image-cache", "GET", public=True)
def image_cache_status(call: Call):
    """Every pre-cache request and its state per host (operators, tests)."""
    _check(call)
    return {"image_cache": image_cache.entries(svc(call), call.query.get("host"))}


@api.route("/v2.1/kumo-agent/servers/{server_id}/report", "POST", public=True)
def report(call: Call):
    _check(call)
    agents.report(svc(call), call.params["server_id"], call.body)
    return None
