"""The network bridges the QEMU driver had to make itself, and their removal once empty.

A guest's tap goes on its network's bridge, which the host's network agent normally builds. When
the agent has not (yet) built it — it is behind, or the network was deleted while the server
booted — the driver makes the bridge so the guest can start. Such a bridge is recorded here and
removed when the last tap leaves it, unless the network agent has taken it over meanwhile (its
own ledger lists it): then it is the agent's to keep or remove.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from kumo.privileged import ip


def ports_of(bridge: str) -> list[str]:
    """The interfaces enslaved to ``bridge`` (none when it does not exist)."""
    try:
        return sorted(p.name for p in Path("/sys/class/net", bridge, "brif").iterdir())
    except OSError:
        return []


class BridgeLedger:
    def __init__(self, path: Path, network_ledger: Path | None = None) -> None:
        self.path = path
        self.network_ledger = network_ledger
        self.lock = threading.RLock()  # held around plugging and releasing: no bridge vanishes under a new tap

    def _load(self) -> set[str]:
        try:
            return set(json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return set()

    def _save(self, made: set[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(made)))
        tmp.replace(self.path)

    def made(self) -> set[str]:
        with self.lock:
            return self._load()

    def ensure(self, bridge: str, mtu: int | None = None) -> None:
        """The bridge exists; when this call had to create it, it is recorded as the driver's."""
        with self.lock:
            if ip.link_exists(bridge):
                return
            ip.bridge_add(bridge, mtu)
            self._save(self._load() | {bridge})

    def _agent_owns(self, bridge: str) -> bool:
        if self.network_ledger is None:
            return False
        try:
            return bridge in json.loads(self.network_ledger.read_text()).get("network", [])
        except (OSError, ValueError, AttributeError):
            return False

    def release(self, bridges: set[str]) -> list[str]:
        """Forget or remove the driver's bridges among ``bridges`` that no tap uses any more;
        return the ones deleted."""
        deleted = []
        with self.lock:
            made = self._load()
            keep = set(made)
            for bridge in sorted(bridges & made):
                if self._agent_owns(bridge) or not ip.link_exists(bridge):
                    keep.discard(bridge)
                elif not ports_of(bridge):
                    ip.link_delete(bridge)
                    keep.discard(bridge)
                    deleted.append(bridge)
            if keep != made:
                self._save(keep)
        return deleted
