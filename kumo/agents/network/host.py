"""Choosing the driver for this host, the one-agent-per-host lock, and teardown."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import IO

from kumo.agents.network.config import AgentSettings
from kumo.agents.network.driver import NetworkDriver

LOCK_FILE = Path("/run/kumo-network-agent.lock")
TOOLS = ("ip", "bridge", "iptables", "iptables-restore", "iptables-save", "dnsmasq")


def why_not_linux() -> str | None:
    """None if this host can run the Linux driver, else the reason."""
    if os.geteuid() != 0:
        return "not running as root"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install iproute2 iptables dnsmasq-base)"
    return None


def host_lock(path: Path = LOCK_FILE) -> IO[str] | None:
    """An exclusive lock: one kumo network agent per host (they share KUMO-* chains)."""
    fh = open(path, "a+")  # noqa: SIM115 - held for the agent's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


def make_driver(config: AgentSettings, choice: str, secret_file: Path | None) -> tuple[NetworkDriver | None, str]:
    """(driver or None, a sentence saying what was chosen and why)."""
    if choice == "none":
        return None, "network data plane disabled by configuration"
    if choice == "fake":
        from kumo.agents.network.fake import FakeDriver

        return FakeDriver(), "network agent: fake driver (in memory; nothing is wired)"
    reason = why_not_linux()
    if reason:
        if choice == "linux":
            raise RuntimeError(f"the linux network driver cannot run here: {reason}")
        return None, f"network data plane not started: {reason}; the Network API still works"
    from kumo.agents.network.linux import LinuxDriver

    return LinuxDriver(config, secret_file), "network agent: linux driver (bridges, namespaces, dnsmasq, iptables)"


def teardown(driver: NetworkDriver) -> None:
    """Remove every host object the driver finds of kumo's (all-in-one stop, tests)."""
    for key in driver.observe_routers():
        driver.remove_router(key)
    for key in driver.observe_dhcp():
        driver.remove_dhcp(key)
    driver.remove_firewall()
    for key in driver.observe_networks():
        driver.remove_network(key)
