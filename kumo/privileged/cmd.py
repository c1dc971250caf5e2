"""Running commands, and the kumo-prefix guard every privileged function applies."""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Sequence

log = logging.getLogger(__name__)

# Names kumo gives host objects: links (bridges kbr-, taps ktap, veths/vxlan kv...),
# namespaces (kdhcp-, krouter-, the external test namespace kpub..., test guests ktest...),
# iptables chains (KUMO-...).
LINK_PREFIXES = ("kbr-", "ktap", "kv")
NETNS_PREFIXES = ("kdhcp-", "krouter-", "kpub", "ktest")
CHAIN_PREFIX = "KUMO-"
_VALID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class PrivilegedError(Exception):
    """A privileged operation was refused or failed."""


class CommandError(PrivilegedError):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(self.argv)} failed ({returncode}): {self.stderr}")


def check_name(name: str, kind: str = "link") -> str:
    """Return ``name`` if it is a kumo-made object of ``kind``; raise otherwise."""
    prefixes = {"link": LINK_PREFIXES, "netns": NETNS_PREFIXES, "chain": (CHAIN_PREFIX,)}[kind]
    limit = 15 if kind == "link" else 28 if kind == "chain" else 200
    if not name or not _VALID.match(name) or len(name) > limit or not name.startswith(prefixes):
        raise PrivilegedError(f"refusing to touch {kind} {name!r}: not a kumo-made name ({'/'.join(prefixes)})")
    return name


def in_netns(netns: str | None, argv: Sequence[str]) -> list[str]:
    if netns is None:
        return list(argv)
    return ["ip", "netns", "exec", check_name(netns, "netns"), *argv]


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    input: str | None = None,
    check: bool = True,
    timeout: float = 30.0,
) -> str:
    """Run ``argv`` (in ``netns`` when given); return stdout. Raise CommandError on failure."""
    full = in_netns(netns, argv)
    log.debug("run %s", full)
    try:
        proc = subprocess.run(full, input=input, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise CommandError(full, 127, f"command not found: {exc.filename}") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(full, -1, f"timed out after {timeout}s") from exc
    if check and proc.returncode != 0:
        raise CommandError(full, proc.returncode, proc.stderr or proc.stdout)
    return proc.stdout
