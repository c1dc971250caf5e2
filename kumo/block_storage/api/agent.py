"""The internal agent API under ``/volume/v3/kumo-agent``; volume agents authenticate with a shared secret."""

from __future__ import annotations

import anyio.to_thread

from kumo.block_storage.api.common import svc
from kumo.block_storage.service import agents
from kumo.common import shared_secret
from kumo.common.asgi import API, Call

api = API()
HEADER = "x-kumo-agent-secret"


def _check(call: Call) -> None:
    shared_secret.require(call.headers.get(HEADER, ""), svc(call).agent_secret)


@api.route("/v3/kumo-agent/hosts", "POST", public=True)
def register(call: Call):
    _check(call)
    return agents.register(svc(call), call.body)


@api.route("/v3/kumo-agent/hosts/{host}/heartbeat", "POST", public=True)
def heartbeat(call: Call):
    _check(call)
    agents.heartbeat(svc(call), call.params["host"], call.body)
    return None


@api.route("/v3/kumo-agent/hosts/{host}/work", "GET", public=True)
async def work(call: Call):
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
    doc = await anyio.to_thread.run_sync(agents.desired, service, call.params["host"])
    return {"generation": generation, **doc}


@api.route("/v3/kumo-agent/report", "POST", public=True)
def report(call: Call):
    _check(call)
    agents.report(svc(call), call.body)
    return None
