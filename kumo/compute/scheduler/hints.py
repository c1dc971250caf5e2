"""The ``same_host`` / ``different_host`` scheduler hints (Nova's SameHostFilter and DifferentHostFilter).

Each names one server uuid or a list of them; the new server goes to a host that runs one of
``same_host`` and none of ``different_host``. The hints are kept in the server's system metadata
so a later move (cold or live migration, unshelve) is scheduled with them too.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from kumo.compute.errors import BadRequest
from kumo.compute.models import Server, ServerGroup

KEYS = ("same_host", "different_host")


def _uuids(value: Any, key: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise BadRequest(f"Invalid input for field/attribute {key}.")
    out = []
    for item in items:
        try:
            out.append(str(uuid.UUID(str(item))) if isinstance(item, str) else "")
        except ValueError:
            out.append("")
        if not out[-1]:
            raise BadRequest(f"Invalid input for field/attribute {key}. Value: {item!r}. is not a 'uuid'")
    return list(dict.fromkeys(out))


def parse(hints: dict[str, Any]) -> dict[str, list[str]]:
    """The host hints of a create request's ``os:scheduler_hints`` (validated)."""
    return {key: _uuids(hints[key], key) for key in KEYS if key in hints}


def request_fields(session: Any, server: Server) -> dict[str, tuple[str, ...]]:
    """``same_host`` / ``different_host`` as the hosts the named servers run on now."""
    saved = (server.system_metadata or {}).get("scheduler_hints") or {}
    out: dict[str, tuple[str, ...]] = {}
    for key in KEYS:
        ids = [i for i in saved.get(key) or [] if i != server.id]
        if not ids:
            continue
        hosts = session.execute(
            select(Server.host).where(Server.id.in_(ids), Server.deleted.is_(False))
        ).scalars()
        out[key] = tuple(sorted({h for h in hosts if h})) or (("",) if key == "same_host" else ())
    return out


def group_fields(s: Any, server: Server) -> dict[str, Any]:
    """The server group's part of a scheduling request: its policy, the hosts its other members
    run on, and ``max_server_per_host``."""
    fields: dict[str, Any] = {"group_policy": None, "group_hosts": (), "max_server_per_host": None}
    g = s.get(ServerGroup, server.group_id) if server.group_id else None
    if g is None:
        return fields
    fields["group_policy"] = g.policy
    fields["max_server_per_host"] = (g.rules or {}).get("max_server_per_host")
    others = [m for m in (g.members or []) if m != server.id]
    if others:
        rows = s.execute(select(Server.host).where(Server.id.in_(others), Server.deleted.is_(False))).scalars()
        fields["group_hosts"] = tuple(h for h in rows if h)
    return fields
