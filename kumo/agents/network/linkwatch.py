"""Wake the network agent when a network link appears or goes (rtnetlink RTMGRP_LINK).

The compute side plugs a VM's tap into the bridge; waiting for a poll to notice it delays the
port's ACTIVE status (and so the guest's start) by up to the poll interval. A netlink socket
subscribed to link notifications turns that into an event. No message parsing is needed: any
link notification just triggers a (cheap, coalesced) re-observation of the ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

NETLINK_ROUTE = 0
RTMGRP_LINK = 0x1


def open_socket() -> socket.socket | None:
    """A non-blocking rtnetlink socket subscribed to link events, or None where unsupported."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    except (AttributeError, OSError) as exc:
        log.info("network agent: no rtnetlink link monitor (%s); polling for taps", exc)
        return None
    try:
        sock.bind((0, RTMGRP_LINK))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        log.info("network agent: no rtnetlink link monitor (%s); polling for taps", exc)
        return None
    return sock


async def watch(on_event: Callable[[], None]) -> None:
    """Call ``on_event`` on every batch of link notifications until cancelled."""
    sock = open_socket()
    if sock is None:
        return
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(sock.fileno(), ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            drained = False
            while True:  # drain everything queued; an overrun (ENOBUFS) still means "something changed"
                try:
                    sock.recv(65536)
                    drained = True
                except BlockingIOError:
                    break
                except OSError:
                    drained = True
                    break
            if drained:
                on_event()
    finally:
        loop.remove_reader(sock.fileno())
        with contextlib.suppress(OSError):
            sock.close()
