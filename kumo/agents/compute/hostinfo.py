"""What a compute host tells the control plane about itself beyond its inventory."""

from __future__ import annotations

import time
from pathlib import Path


def uptime(proc: Path = Path("/proc")) -> str | None:
    """This host's uptime in the ``uptime(1)`` form os-hypervisors shows, or None if unknown."""
    try:
        seconds = int(float((proc / "uptime").read_text().split()[0]))
        loads = (proc / "loadavg").read_text().split()[:3]
    except (OSError, ValueError, IndexError):
        return None
    days, rest = divmod(seconds, 86400)
    hours, minutes = divmod(rest // 60, 60)
    up = (f"{days} day{'s' if days != 1 else ''}, " if days else "") + f"{hours:2d}:{minutes:02d}"
    return f" {time.strftime('%H:%M:%S')} up {up},  load average: {', '.join(loads)}"
