"""Which virt driver a compute host runs when the settings say ``auto`` (the default)."""

from __future__ import annotations

import os
import shutil

DRIVERS = ("qemu", "fake")


def why_not_qemu() -> str | None:
    """None when this host can run real VMs, else the reason it cannot."""
    if os.geteuid() != 0:
        return "not running as root (taps and bridges need it)"
    for tool in ("qemu-system-x86_64", "qemu-img"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install qemu-system-x86 qemu-utils)"
    return None


def choose_driver(name: str) -> str:
    """``auto`` → ``qemu`` when the host can run VMs, else the (always labelled) ``fake`` driver."""
    if name != "auto":
        if name not in DRIVERS:
            raise ValueError(f"unknown compute driver {name!r} (available: auto, {', '.join(DRIVERS)})")
        return name
    return "qemu" if why_not_qemu() is None else "fake"
