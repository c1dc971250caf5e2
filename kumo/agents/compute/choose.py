"""Which virt driver a compute host runs when the settings say ``auto`` (the default)."""

from __future__ import annotations

import os
import shutil
from typing import Any

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


def build_driver(settings: Any, cloud: str | None = None) -> Any:
    """The driver object a compute agent runs with (``cloud``: the clouds.yaml entry a joined
    node's qemu driver fetches images with; the all-in-one default otherwise)."""
    name = choose_driver(settings.compute.driver)
    if name == "qemu":
        from kumo.agents.compute.qemu.driver import from_settings

        return from_settings(settings) if cloud is None else from_settings(settings, cloud=cloud)
    from kumo.agents.compute.fake import make_driver

    return make_driver(name, settings.data_dir / "compute",
                       plugs_vifs=bool(getattr(settings.compute, "fake_vif_plugging", False)))
