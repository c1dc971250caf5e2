"""Who may do what (Neutron's default policies, condensed to admin / member / reader)."""

from __future__ import annotations

from kumo.common.context import RequestContext
from kumo.network.errors import forbidden


def is_admin(ctx: RequestContext) -> bool:
    return "admin" in ctx.roles and ctx.scope in ("project", "system")


def is_service(ctx: RequestContext) -> bool:
    return is_admin(ctx) or "service" in ctx.roles


def can_read(ctx: RequestContext, project_id: str | None) -> bool:
    if is_admin(ctx) or (ctx.scope == "system" and "reader" in ctx.roles):
        return True
    return ctx.scope == "project" and project_id == ctx.project_id


def can_write(ctx: RequestContext, project_id: str | None) -> bool:
    if is_admin(ctx):
        return True
    return ctx.scope == "project" and "member" in ctx.roles and project_id == ctx.project_id


def enforce_write(ctx: RequestContext, project_id: str | None, action: str) -> None:
    if not can_write(ctx, project_id):
        raise forbidden(f"(rule:{action}) is disallowed by policy", "PolicyNotAuthorized")


def enforce_admin(ctx: RequestContext, action: str) -> None:
    if not is_admin(ctx):
        raise forbidden(f"(rule:{action}) is disallowed by policy", "PolicyNotAuthorized")


def enforce_member(ctx: RequestContext, action: str) -> None:
    """Creating anything at all needs the member role (readers only read)."""
    if not is_admin(ctx) and "member" not in ctx.roles:
        raise forbidden(f"(rule:{action}) is disallowed by policy", "PolicyNotAuthorized")
