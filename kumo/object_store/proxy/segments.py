"""Serving an object made of segments (DLO and SLO): lengths, ranges, streaming."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from kumo.object_store import ranges
from kumo.object_store.errors import SwiftError
from kumo.object_store.proxy.types import Handler, Req, Resp


@dataclass(slots=True)
class Segment:
    container: str
    obj: str
    size: int  # bytes this segment contributes
    offset: int = 0  # where in the segment object they start (SLO range segments)
    account: str | None = None


async def stream(
    app: Handler, req: Req, segments: list[Segment], start: int, end: int
) -> AsyncIterator[bytes]:
    pos = 0
    for seg in segments:
        seg_start, seg_end = pos, pos + seg.size - 1
        pos += seg.size
        if seg.size == 0 or seg_end < start or seg_start > end:
            continue
        a = max(start, seg_start) - seg_start + seg.offset
        b = min(end, seg_end) - seg_start + seg.offset
        sub = req.sub(
            "GET",
            seg.container,
            seg.obj,
            account=seg.account,
            authorized=False,
            headers={"range": f"bytes={a}-{b}"},
        )
        resp = await app(sub)
        if resp.status not in (200, 206):
            await resp.close()
            raise SwiftError(409, f"Segment {seg.container}/{seg.obj} could not be read ({resp.status})")
        body = resp.body
        if isinstance(body, bytes):
            yield body if resp.status == 206 else body[a : b + 1]
            continue
        if resp.status == 200 and (a, b) != (0, seg.size - 1):
            data = await resp.read()
            yield data[a : b + 1]
            continue
        async for chunk in body:
            yield chunk


def respond(app: Handler, req: Req, segments: list[Segment], headers: dict[str, str]) -> Resp:
    """A 200/206/416 response over the segments, honouring the request's Range."""
    total = sum(s.size for s in segments)
    headers = dict(headers)
    headers["accept-ranges"] = "bytes"
    try:
        wanted = ranges.parse(req.headers.get("range"), total)
    except ranges.RangeNotSatisfiable as err:
        headers.pop("content-length", None)
        return Resp(416, {**headers, **err.headers, "content-type": "text/html; charset=UTF-8"}, err.body())
    head = req.method == "HEAD"
    if wanted is None:
        headers["content-length"] = str(total)
        return Resp(200, headers, b"" if head or total == 0 else stream(app, req, segments, 0, total - 1))
    if len(wanted) == 1:
        start, end = wanted[0]
        headers["content-length"] = str(end - start + 1)
        headers["content-range"] = f"bytes {start}-{end}/{total}"
        return Resp(206, headers, b"" if head else stream(app, req, segments, start, end))
    bound = ranges.boundary()
    ctype = headers.get("content-type", "application/octet-stream")
    headers["content-type"] = f"multipart/byteranges;boundary={bound}"
    headers["content-length"] = str(ranges.multipart_length(wanted, total, ctype, bound))

    def read(s: int, e: int) -> AsyncIterator[bytes]:
        return stream(app, req, segments, s, e)

    return Resp(206, headers, b"" if head else ranges.multipart(wanted, total, ctype, bound, read))
