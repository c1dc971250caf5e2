"""HTTP byte ranges as Swift serves them: single ranges and multipart/byteranges."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable

from kumo.object_store.errors import SwiftError

MAX_RANGES = 50
_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(SwiftError):
    def __init__(self, size: int) -> None:
        super().__init__(416, headers={"Content-Range": f"bytes */{size}"})


def parse(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """Inclusive (start, end) pairs; None means "ignore the header and send everything".

    Raises :class:`RangeNotSatisfiable` when the header is valid but no range fits.
    """
    if not header:
        return None
    unit, _, specs = header.partition("=")
    if unit.strip().lower() != "bytes" or not specs.strip():
        return None
    raw: list[tuple[str, str]] = []
    for spec in specs.split(","):
        if not spec.strip():
            continue
        m = _SPEC.match(spec)
        if not m or (not m.group(1) and not m.group(2)):
            return None
        if m.group(1) and m.group(2) and int(m.group(2)) < int(m.group(1)):
            return None
        raw.append((m.group(1), m.group(2)))
    if not raw or len(raw) > MAX_RANGES:
        return None
    out: list[tuple[int, int]] = []
    for first, last in raw:
        if not first:  # suffix: the last N bytes
            n = int(last)
            if n == 0 or size == 0:
                continue
            out.append((max(0, size - n), size - 1))
            continue
        start = int(first)
        if start >= size:
            continue
        end = min(int(last), size - 1) if last else size - 1
        out.append((start, end))
    if not out:
        raise RangeNotSatisfiable(size)
    return out


def boundary() -> str:
    return uuid.uuid4().hex


async def multipart(
    ranges: list[tuple[int, int]],
    size: int,
    content_type: str,
    bound: str,
    read: Callable[[int, int], AsyncIterator[bytes]],
) -> AsyncIterator[bytes]:
    for start, end in ranges:
        yield (
            f"--{bound}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
        ).encode()
        async for chunk in read(start, end):
            yield chunk
        yield b"\r\n"
    yield f"--{bound}--".encode()


def multipart_length(ranges: list[tuple[int, int]], size: int, content_type: str, bound: str) -> int:
    total = 0
    for start, end in ranges:
        total += (
            len(
                f"--{bound}\r\nContent-Type: {content_type}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
            )
            + (end - start + 1)
            + 2
        )
    return total + len(f"--{bound}--")
