"""``/v2/images/{id}/file`` and ``/stage`` (streamed both ways) and ``/import``."""

from __future__ import annotations

import asyncio

import anyio.to_thread
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from kumo.common.asgi import API, Call
from kumo.image.api.render import svc
from kumo.image.errors import BadRequest, UnsupportedMediaType
from kumo.image.service import data, imports

api = API()

BUFFER = 1024 * 1024  # gather the request's small chunks into 1 MiB writes


def _content_length(call: Call) -> int | None:
    raw = call.headers.get("content-length")
    if raw is None:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise BadRequest("Invalid Content-Length.") from None
    if n < 0:
        raise BadRequest("Invalid Content-Length.")
    return n


async def _receive(call: Call, staged: bool) -> Response:
    media = (call.headers.get("content-type") or "application/octet-stream").split(";", 1)[0].strip().lower()
    if media != "application/octet-stream":
        raise UnsupportedMediaType(f"Content-Type must be application/octet-stream, not {media}.")
    service = svc(call)
    image_id = call.params["image_id"]
    length = _content_length(call)
    store_id = (call.headers.get("x-image-meta-store") or "").strip() or None
    if store_id and staged:
        raise BadRequest("X-Image-Meta-Store applies to uploads, not to staging.")
    upload = await anyio.to_thread.run_sync(
        lambda: data.begin_upload(service, call.ctx, image_id, length, staged=staged, store_id=store_id)
    )
    # One block in flight: the event loop gathers block n+1 from the socket while a worker
    # thread hashes, inspects and writes block n (writes stay in order).
    pending: asyncio.Future[None] | None = None
    try:
        parts: list[bytes] = []
        gathered = 0
        async for chunk in call.request.stream():
            parts.append(chunk)
            gathered += len(chunk)
            if gathered >= BUFFER:
                block = b"".join(parts)
                parts, gathered = [], 0
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(anyio.to_thread.run_sync(upload.write, block))
        if pending is not None:
            await pending
            pending = None
        if parts:
            await anyio.to_thread.run_sync(upload.write, b"".join(parts))
        if length is not None and upload.size != length:
            raise BadRequest(f"Received {upload.size} bytes, but Content-Length said {length}.")
    except BaseException as err:
        if pending is not None:  # let the block in flight finish before the data is removed
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the error being handled is the one that counts
        await anyio.to_thread.run_sync(data.fail_upload, upload, err)
        if isinstance(err, ClientDisconnect):
            raise BadRequest("The client disconnected during the upload.") from None
        raise
    await anyio.to_thread.run_sync(data.finish_upload, upload)
    return Response(status_code=204)


@api.route("/v2/images/{image_id}/file", "PUT", raw=True)
async def upload_image(call: Call):
    return await _receive(call, staged=False)


@api.route("/v2/images/{image_id}/stage", "PUT", raw=True)
async def stage_image(call: Call):
    return await _receive(call, staged=True)


@api.route("/v2/images/{image_id}/import", "POST")
def import_image(call: Call):
    imports.import_image(svc(call), call.ctx, call.params["image_id"], call.body)
    return Response(status_code=202)


@api.route("/v2/stores/{store_id}/{image_id}", "DELETE")
def delete_from_store(call: Call):
    service = svc(call)
    url = imports.delete_from_store(service, call.ctx, call.params["store_id"], call.params["image_id"])
    data.delete_data(service, [(call.params["store_id"], url)])
    return Response(status_code=204)


@api.route("/v2/images/{image_id}/file", "GET")
async def download_image(call: Call):
    service = svc(call)
    image_id = call.params["image_id"]
    dl = await anyio.to_thread.run_sync(lambda: data.begin_download(service, call.ctx, image_id))
    if dl.location is None:
        return Response(status_code=204)
    rng = data.parse_range(call.headers.get("range"), dl.size)
    start, end = rng if rng else (0, dl.size - 1)
    headers = {"Content-Length": str(end - start + 1 if dl.size else 0)}
    status = 200
    if rng:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{dl.size}"
    elif dl.checksum:
        headers["Content-MD5"] = dl.checksum
    store = service.read_store(dl.store or service.default_store)
    chunks = store.read(dl.location, start, end) if dl.size else iter(())

    async def body():  # type: ignore[no-untyped-def]
        # read the next chunk on a worker thread while this one is being sent
        ahead = asyncio.ensure_future(anyio.to_thread.run_sync(next, chunks, None))
        try:
            while True:
                chunk = await ahead
                if chunk is None:
                    return
                ahead = asyncio.ensure_future(anyio.to_thread.run_sync(next, chunks, None))
                yield chunk
        finally:
            if not ahead.done():
                await asyncio.wait([ahead])
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    return StreamingResponse(
        body(), status_code=status, headers=headers, media_type="application/octet-stream"
    )
