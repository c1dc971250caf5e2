"""iptables/ip6tables: kumo's own chains on the host, whole tables inside kumo namespaces.

On the host kumo only ever writes chains named ``KUMO-*`` plus one jump rule per hook it
uses (e.g. ``FORWARD -m physdev --physdev-is-bridged -j KUMO-FORWARD``). Rule text comes
from pure functions elsewhere; this module only applies it.
"""

from __future__ import annotations

import re

from kumo.privileged.cmd import CHAIN_PREFIX, CommandError, PrivilegedError, check_name, run

_TOOLS = {4: ("iptables", "iptables-save", "iptables-restore"), 6: ("ip6tables", "ip6tables-save", "ip6tables-restore")}
_CHAIN_DECL = re.compile(r"^:(\S+) ")
# What follows the prefix in a chain kumo makes: its FORWARD chain, or I/O/S + a port id's first
# 10 characters (kumo.agents.network.names.chain). Another kumo on the host may use a longer prefix
# ("KUMO-T1ea2-"): its chains also start with "KUMO-" but are not ours to flush or delete.
_OWN_SUFFIX = re.compile(r"FORWARD|[IOS][0-9A-Za-z_-]{10}")


def kumo_chains(family: int, table: str = "filter", prefix: str = CHAIN_PREFIX) -> set[str]:
    """The chains named ``prefix*`` (kumo's) present in the host's ``table``."""
    check_name(prefix, "chain")
    out = run([_TOOLS[family][1], "-t", table])
    return {m.group(1) for line in out.splitlines() if (m := _CHAIN_DECL.match(line))
            and m.group(1).startswith(prefix) and _OWN_SUFFIX.fullmatch(m.group(1)[len(prefix):])}


def replace_kumo_chains(family: int, table: str, chains: dict[str, list[str]], prefix: str = CHAIN_PREFIX) -> None:
    """Atomically make the host's KUMO-* chains in ``table`` exactly ``chains``.

    ``chains`` maps chain name -> rule specs (without ``-A CHAIN``). Chains named ``prefix*``
    that are not wanted any more are flushed and deleted in the same transaction. Nothing
    else changes.
    """
    for name in chains:
        if not check_name(name, "chain").startswith(prefix):
            raise PrivilegedError(f"chain {name} outside prefix {prefix}")
    stale = kumo_chains(family, table, prefix) - set(chains)
    lines = [f"*{table}"]
    lines += [f":{name} - [0:0]" for name in [*chains, *sorted(stale)]]
    for name, rules in chains.items():
        lines += [f"-A {name} {rule}" for rule in rules]
    lines += [f"-X {name}" for name in sorted(stale)]
    lines.append("COMMIT")
    run([_TOOLS[family][2], "-w", "--noflush"], input="\n".join(lines) + "\n")


def ensure_jump(family: int, table: str, hook: str, match: list[str], chain: str) -> None:
    """Ensure one rule ``hook <match> -j chain`` at the top of a built-in chain (idempotent)."""
    check_name(chain, "chain")
    if hook not in ("FORWARD", "INPUT", "OUTPUT", "PREROUTING", "POSTROUTING"):
        raise PrivilegedError(f"refusing to hook {hook}")
    tool = _TOOLS[family][0]
    rule = [*match, "-j", chain]
    if _has_rule(tool, table, hook, rule):
        return
    run([tool, "-w", "-t", table, "-I", hook, "1", *rule])


def _has_rule(tool: str, table: str, hook: str, rule: list[str]) -> bool:
    try:
        run([tool, "-w", "-t", table, "-C", hook, *rule])
        return True
    except CommandError:
        return False


def remove_jump(family: int, table: str, hook: str, match: list[str], chain: str) -> None:
    check_name(chain, "chain")
    tool = _TOOLS[family][0]
    rule = [*match, "-j", chain]
    while _has_rule(tool, table, hook, rule):
        run([tool, "-w", "-t", table, "-D", hook, *rule])


def restore_netns(family: int, netns: str, text: str) -> None:
    """Replace the tables named in ``text`` wholesale inside a kumo namespace (kumo owns them)."""
    run([_TOOLS[family][2], "-w"], netns=check_name(netns, "netns"), input=text)


def save_netns(family: int, netns: str, table: str) -> str:
    return run([_TOOLS[family][1], "-t", table], netns=check_name(netns, "netns"))
