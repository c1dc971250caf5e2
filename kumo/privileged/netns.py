"""Open a listening socket inside a kumo namespace while the process stays in the host's.

The metadata proxy listens on 169.254.169.254:80 inside a DHCP/router namespace but must
reach the metadata API on the host's loopback: it creates its socket in the namespace
(setns on this thread only), then returns to its own namespace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket

from kumo.privileged.cmd import PrivilegedError, check_name
from kumo.privileged.ip import NETNS_DIR

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise PrivilegedError(f"setns failed: {os.strerror(err)}")


def listen_in_netns(netns: str, host: str, port: int, backlog: int = 128) -> socket.socket:
    """A bound, listening TCP socket created inside ``netns``."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(NETNS_DIR / check_name(netns, "netns"), os.O_RDONLY)
    try:
        _setns(target)
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(backlog)
            sock.setblocking(False)
        finally:
            _setns(own)
    finally:
        os.close(own)
        os.close(target)
    return sock
