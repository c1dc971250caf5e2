"""The metadata proxy: 169.254.169.254:80 inside a namespace -> the compute metadata API.

Started by the agent (``python -m kumo.agents.network.metadata_proxy --netns NS ...``). It
listens inside the namespace but lives in the host's, so it can reach the metadata API on
the host's loopback. Like Neutron's proxy it adds ``X-Forwarded-For``, ``X-Instance-ID``,
``X-Tenant-ID`` (resolved from the source IP through the agent's hosts file) and
``X-Instance-ID-Signature`` (HMAC-SHA256 of the instance id with the shared secret).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import signal
from pathlib import Path

import httpx

log = logging.getLogger("kumo.metadata_proxy")
MAX_HEADER = 65536
MAX_BODY = 1 << 20


def sign(secret: str, instance_id: str) -> str:
    return hmac.new(secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


class Hosts:
    """ip -> {device_id, project_id}, re-read when the agent rewrites the file."""

    def __init__(self, path: Path) -> None:
        self.path, self._mtime, self._map = path, -1.0, {}

    def lookup(self, address: str) -> dict | None:
        try:
            mtime = self.path.stat().st_mtime
            if mtime != self._mtime:
                self._map, self._mtime = json.loads(self.path.read_text() or "{}"), mtime
        except (OSError, ValueError):
            pass
        return self._map.get(address)


class Proxy:
    def __init__(self, upstream: str, hosts: Hosts, secret: str, network_id: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.hosts, self.secret, self.network_id = hosts, secret, network_id
        self.client = httpx.AsyncClient(timeout=30.0)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except Exception:
            log.exception("request failed")
            await self._respond(writer, 500, b"Internal Server Error\n")
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            await self._respond(writer, 400, b"Bad Request\n")
            return
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            await self._respond(writer, 413, b"Request Entity Too Large\n")
            return
        body = await reader.readexactly(length) if length else b""
        peer = writer.get_extra_info("peername")[0]
        host = self.hosts.lookup(peer)
        if host is None:
            await self._respond(writer, 404, b"Not Found\n")
            return
        out = {
            "X-Forwarded-For": peer,
            "X-Instance-ID": host["device_id"],
            "X-Tenant-ID": host["project_id"],
            "X-Instance-ID-Signature": sign(self.secret, host["device_id"]),
            "X-Neutron-Network-ID": self.network_id,
        }
        for name in ("accept", "content-type", "user-agent"):
            if name in headers:
                out[name] = headers[name]
        try:
            resp = await self.client.request(method, self.upstream + target, headers=out, content=body)
        except httpx.HTTPError as exc:
            log.warning("upstream %s: %s", self.upstream, exc)
            await self._respond(writer, 502, b"Bad Gateway\n")
            return
        await self._respond(writer, resp.status_code, resp.content, resp.headers.get("content-type"))

    async def _respond(self, writer: asyncio.StreamWriter, status: int, body: bytes, ctype: str | None = None) -> None:
        from http import HTTPStatus

        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
        head = f"HTTP/1.0 {status} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
        head += f"Content-Type: {ctype or 'text/plain; charset=UTF-8'}\r\n\r\n"
        try:
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except ConnectionError:
            pass


async def serve(args: argparse.Namespace) -> None:
    from kumo.privileged.netns import listen_in_netns

    secret = Path(args.secret_file).read_text().strip() if args.secret_file else ""
    proxy = Proxy(args.upstream, Hosts(Path(args.hosts_file)), secret, args.network_id)
    sock = listen_in_netns(args.netns, args.listen, args.port)
    server = await asyncio.start_server(proxy.handle, sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    await proxy.client.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--netns", required=True)
    parser.add_argument("--listen", default="169.254.169.254")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--hosts-file", required=True)
    parser.add_argument("--secret-file", default="")
    parser.add_argument("--network-id", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
