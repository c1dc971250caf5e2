"""The metadata API guests reach through the network agent's proxy: ``/compute-metadata/...``.

All-in-one serves it at the host root (``http://HOST:PORT/compute-metadata``, the network
agent's default ``metadata_url``); a process serving only compute (``kumo serve compute``)
answers at the same path on its own port. No token: the proxy's signed ``X-Instance-ID``
identifies the guest (see kumo.compute.service.metadata).
"""

from __future__ import annotations

import anyio.to_thread
from starlette.responses import Response

from kumo.common.asgi import API, Call
from kumo.compute.api.common import svc
from kumo.compute.errors import APIError
from kumo.compute.metadata_net import NetworkFacts
from kumo.compute.service import metadata

api = API()
ROOT = "/compute-metadata"
ROOT_PATHS = (ROOT, ROOT + "/{path:path}")


def _secret(call: Call) -> str:
    service = svc(call)
    secret = service.extras.get("metadata_secret")
    if secret is None:
        runtime = call.request.app.state.runtime
        secret = metadata.secret_file(runtime.settings.data_dir).read_text().strip()
        service.extras["metadata_secret"] = secret
    return str(secret)


def _facts(call: Call) -> NetworkFacts:
    service = svc(call)
    facts = service.extras.get("metadata_net")
    if facts is None:
        facts = service.extras["metadata_net"] = NetworkFacts(call.request.app.state.runtime)
    return facts


async def serve(call: Call) -> Response:
    path = call.params.get("path", "")
    method = call.request.method
    body = await call.request.body() if method == "POST" else b""
    headers = {k.lower(): v for k, v in call.headers.items()}
    service = svc(call)
    try:
        secret = await anyio.to_thread.run_sync(_secret, call)
        server = await anyio.to_thread.run_sync(metadata.identify, service, secret, headers)
        net = await _facts(call).for_server(server.id) if metadata.needs_network(path) else None
        doc = await anyio.to_thread.run_sync(metadata.respond, service, server, method, path, body, net)
    except APIError as err:  # guests get plain text, as from Nova's metadata server
        return Response(f"{err.message}\n".encode(), status_code=err.status, media_type="text/plain")
    if method == "HEAD":
        return Response(status_code=200, media_type=doc.content_type, headers={"Content-Length": str(len(doc.body))})
    return Response(doc.body, status_code=200, media_type=doc.content_type)


for _path in ROOT_PATHS:
    api.route(_path, "GET", "HEAD", "POST", public=True, raw=True)(serve)
