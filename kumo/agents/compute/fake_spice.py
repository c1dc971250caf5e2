"""The fake driver's SPICE displays: a TCP listener per VM speaking the SPICE link handshake.

What a ``spice-direct`` console (compute 2.99) hands to a SPICE proxy is the hypervisor's
address and port of the VM's SPICE server, reached without a ticket (the proxy does the
authentication). Each fake VM gets such a server on 127.0.0.1: it answers a client's
SpiceLinkMess with a SpiceLinkReply (protocol 2.2, no error, a real RSA-1024 public key and
the common capabilities AuthSelection, AuthSpice and MiniHeader), accepts whatever ticket
follows (ticketing is off: any password, as long as the ticket decrypts with its key) with
SPICE_LINK_ERR_OK, then ignores the channel's traffic.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from typing import Any

from kumo.agents.compute.fake_console import _recv_exact

MAGIC = b"REDQ"
MAJOR, MINOR = 2, 2
PUBKEY_BYTES = 162  # a DER SubjectPublicKeyInfo of an RSA-1024 key
COMMON_CAPS = 0b1011  # AuthSelection | AuthSpice | MiniHeader
ERR_OK = 0
ERR_BAD_CONNECTION_ID = 8  # the fake has no session to join a sub-channel to
MAIN_CHANNEL = 1

ERR_PERMISSION_DENIED = 7  # a ticket that does not decrypt with our key

_key_lock = threading.Lock()
_key: Any = None


def _private_key() -> Any:
    """One RSA-1024 key per process (what a SPICE server makes at start)."""
    global _key
    with _key_lock:
        if _key is None:
            from cryptography.hazmat.primitives.asymmetric import rsa

            _key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        return _key


def _public_key() -> bytes:
    """The public key in the 162-byte form SPICE sends (DER SubjectPublicKeyInfo)."""
    from cryptography.hazmat.primitives import serialization

    der = _private_key().public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert len(der) == PUBKEY_BYTES
    return der


def ticket_ok(encrypted: bytes) -> bool:
    """Whether the client's ticket decrypts (RSA-OAEP, SHA-1) with our key. Ticketing is off, so any
    password does, but like a real SPICE server the fake refuses bytes that are not a ticket."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    try:
        _private_key().decrypt(encrypted, padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None))
    except ValueError:
        return False
    return True


def link_reply(error: int) -> bytes:
    """A SpiceLinkHeader + SpiceLinkReply with our capabilities (no channel capabilities)."""
    caps_offset = 4 + PUBKEY_BYTES + 12  # from the start of the reply, after the header
    body = struct.pack("<I", error) + _public_key() + struct.pack("<III", 1, 0, caps_offset)
    body += struct.pack("<I", COMMON_CAPS)
    return MAGIC + struct.pack("<III", MAJOR, MINOR, len(body)) + body


def serve(sock: socket.socket) -> None:
    magic, major, _minor, size = struct.unpack("<4sIII", _recv_exact(sock, 16))
    if magic != MAGIC:
        return
    if major != MAJOR:  # SPICE answers a version mismatch with a bare header carrying its version
        sock.sendall(MAGIC + struct.pack("<III", MAJOR, MINOR, 0))
        return
    if size < 18:
        return
    mess = _recv_exact(sock, size)
    connection_id, channel_type = struct.unpack_from("<IB", mess)
    num_common, _num_channel, caps_offset = struct.unpack_from("<III", mess, 6)
    client_caps = struct.unpack_from("<I", mess, caps_offset)[0] if num_common and caps_offset + 4 <= size else 0
    error = ERR_OK if channel_type == MAIN_CHANNEL or connection_id else ERR_BAD_CONNECTION_ID
    sock.sendall(link_reply(error))
    if error != ERR_OK:
        return
    if client_caps & 1:  # AuthSelection: the client names its mechanism first
        _recv_exact(sock, 4)
    ticket = _recv_exact(sock, 128)  # RSA-encrypted; ticketing is off: any password, but a real ticket
    if not ticket_ok(ticket):
        sock.sendall(struct.pack("<I", ERR_PERMISSION_DENIED))
        return
    sock.sendall(struct.pack("<I", ERR_OK))
    while sock.recv(4096):
        pass


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        with contextlib.suppress(OSError, ConnectionError, struct.error):
            serve(self.request)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeSpice:
    """One SPICE listener per running VM on ``host`` (an ephemeral port), started on first use."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._servers: dict[str, _Server] = {}

    def address(self, vm_id: str) -> tuple[str, int]:
        with self._lock:
            server = self._servers.get(vm_id)
            if server is None:
                server = _Server((self.host, 0), _Handler)
                threading.Thread(target=server.serve_forever, name=f"fake-spice-{vm_id[:8]}", daemon=True).start()
                self._servers[vm_id] = server
            return self.host, int(server.server_address[1])

    def stop(self, vm_id: str) -> None:
        with self._lock:
            server = self._servers.pop(vm_id, None)
        if server is not None:
            server.shutdown()
            server.server_close()

    def close(self) -> None:
        for vm_id in list(self._servers):
            self.stop(vm_id)
