"""Container ACLs (X-Container-Read / X-Container-Write) as Swift's keystoneauth reads them."""

from __future__ import annotations

from dataclasses import dataclass

from kumo.common.context import RequestContext


@dataclass(slots=True)
class ParsedACL:
    referrers: list[str]
    groups: list[str]  # "project:user" entries
    listings: bool


def parse(value: str | None) -> ParsedACL:
    referrers: list[str] = []
    groups: list[str] = []
    listings = False
    for raw in (value or "").split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith(".r:"):
            referrers.append(item[3:].strip())
        elif item.startswith((".ref:", ".referer:", ".referrer:")):
            referrers.append(item.split(":", 1)[1].strip())
        elif item in (".rlistings", ".rlisting"):
            listings = True
        else:
            groups.append(item)
    return ParsedACL(referrers, groups, listings)


def clean(value: str) -> str:
    """Validate and normalise an ACL header value; raises ValueError on nonsense."""
    out = []
    for raw in value.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith("."):
            kind, _, rest = item.partition(":")
            if kind in (".r", ".ref", ".referer", ".referrer"):
                if not rest.strip() or rest.strip() in ("-",):
                    raise ValueError(f"No host/domain value after referrer designation in ACL: {item!r}")
                out.append(".r:" + rest.strip())
            elif kind in (".rlistings", ".rlisting"):
                out.append(".rlistings")
            else:
                raise ValueError(f"Unknown designator {kind!r} in ACL: {item!r}")
        else:
            out.append(item)
    return ",".join(out)


def referrer_allowed(referer: str | None, referrers: list[str]) -> bool:
    host = ""
    if referer:
        rest = referer.split("//", 1)[-1]
        host = rest.split("/", 1)[0].split(":", 1)[0].lower()
    allowed = False
    for r in referrers:
        negate = r.startswith("-")
        pat = r[1:] if negate else r
        match = (
            pat == "*"
            or pat.lower() == host
            or (pat.startswith(".") and host.endswith(pat.lower()))
            or (pat.startswith("*.") and host.endswith(pat[1:].lower()))
        )
        if match:
            allowed = not negate
    return allowed


def group_allowed(ctx: RequestContext, groups: list[str]) -> bool:
    if not ctx.authenticated:
        return False
    projects = {p for p in (ctx.project_id, ctx.project_name) if p}
    users = {u for u in (ctx.user_id, ctx.user_name) if u}
    for g in groups:
        if ":" not in g:
            continue
        proj, _, user = g.partition(":")
        if (proj == "*" or proj in projects) and (user == "*" or user in users):
            return True
    return False
