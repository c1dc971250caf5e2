"""``kumo node install-units``: systemd unit files for this node's roles.

One unit per role (``kumo-controller.service``, ``kumo-compute.service``, ...), each
``Restart=on-failure``, so systemd restarts a role that dies (a controller started with
``--isolated`` also restarts each API process on its own). The units are written, not enabled, unless ``--enable`` is given.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

UNIT_DIR = Path("/etc/systemd/system")


def unit_text(role: str, *, data_dir: Path, exe: str, description: str, user: str = "",
              after_network: bool = True) -> str:
    cmd = [exe, "-m", "kumo", "serve", role, "--data-dir", str(data_dir)]
    if role == "controller":
        cmd.append("--isolated")
    lines = [
        "[Unit]",
        f"Description={description}",
    ]
    if after_network:
        lines += ["Wants=network-online.target", "After=network-online.target"]
    lines += [
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={shlex.join(cmd)}",
        "Restart=on-failure",
        "RestartSec=2s",
        "TimeoutStopSec=20s",
        "KillMode=mixed",
        f"Environment=KUMO_DATA_DIR={data_dir}",
    ]
    if user:
        lines.append(f"User={user}")
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


DESCRIPTIONS = {
    "controller": "kumo controller (every API service and the node registry)",
    "compute": "kumo compute node (compute agent and network agent)",
    "network": "kumo network node (DHCP, routers, floating IPs, metadata proxy)",
    "storage": "kumo storage node (object-storage node)",
}


def units_for(roles: list[str], data_dir: Path, exe: str = sys.executable, user: str = "") -> dict[str, str]:
    """file name -> unit text, one unit per role."""
    return {
        f"kumo-{role}.service": unit_text(role, data_dir=data_dir, exe=exe, user=user,
                                          description=DESCRIPTIONS.get(role, f"kumo {role}"))
        for role in roles
    }


def install(units: dict[str, str], unit_dir: Path = UNIT_DIR, enable: bool = False) -> list[Path]:
    unit_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in units.items():
        path = unit_dir / name
        path.write_text(text)
        path.chmod(0o644)
        written.append(path)
    if enable:
        subprocess.run(["systemctl", "daemon-reload"], check=True)
        subprocess.run(["systemctl", "enable", "--now", *units], check=True)
    return written
