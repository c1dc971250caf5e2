"""Role-based access control with the default roles admin / member / reader.

A policy is a mapping of action name -> rule; a rule is a predicate over the
request context and the target (the attributes of the thing acted on). Tokens
carry implied roles already expanded (admin implies member implies reader), so
``reader`` also matches members and admins.

Scopes follow Keystone's: a *system* token acts on the whole cloud; a
*domain* token on one domain; a *project* token on one project. As in Keystone
without an ``admin_project`` configured, the ``admin`` role on a project token is
cloud-wide; on a domain token it is limited to that domain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kumo.common.context import RequestContext
from kumo.common.errors import Forbidden

Target = Mapping[str, Any]
Rule = Callable[[RequestContext, Target], bool]


def always(_ctx: RequestContext, _t: Target) -> bool:
    return True


def cloud_admin(ctx: RequestContext, _t: Target) -> bool:
    return "admin" in ctx.roles and ctx.scope in ("system", "project")


def system_reader(ctx: RequestContext, _t: Target) -> bool:
    return ctx.scope == "system" and "reader" in ctx.roles


def domain_admin(ctx: RequestContext, t: Target) -> bool:
    return ctx.scope == "domain" and "admin" in ctx.roles and t.get("domain_id") == ctx.domain_id


def domain_reader(ctx: RequestContext, t: Target) -> bool:
    return ctx.scope == "domain" and "reader" in ctx.roles and t.get("domain_id") == ctx.domain_id


def project_member(ctx: RequestContext, t: Target) -> bool:
    return ctx.scope == "project" and "member" in ctx.roles and t.get("project_id") == ctx.project_id


def project_reader(ctx: RequestContext, t: Target) -> bool:
    return ctx.scope == "project" and "reader" in ctx.roles and t.get("project_id") == ctx.project_id


def owner(ctx: RequestContext, t: Target) -> bool:
    return ctx.user_id is not None and t.get("user_id") == ctx.user_id


def any_of(*rules: Rule) -> Rule:
    def rule(ctx: RequestContext, t: Target) -> bool:
        return any(r(ctx, t) for r in rules)

    return rule


def all_of(*rules: Rule) -> Rule:
    def rule(ctx: RequestContext, t: Target) -> bool:
        return all(r(ctx, t) for r in rules)

    return rule


# The usual combinations, named as Keystone's default policies name them.
ADMIN = cloud_admin
ADMIN_OR_SYSTEM_READER = any_of(cloud_admin, system_reader)
ADMIN_OR_DOMAIN_ADMIN = any_of(cloud_admin, domain_admin)
ADMIN_OR_READER_IN_DOMAIN = any_of(cloud_admin, system_reader, domain_reader)
ADMIN_OR_OWNER = any_of(cloud_admin, owner)
ADMIN_OR_PROJECT_MEMBER = any_of(cloud_admin, project_member)
ADMIN_OR_PROJECT_READER = any_of(cloud_admin, system_reader, project_reader)


class Policy:
    def __init__(self, rules: Mapping[str, Rule]) -> None:
        self.rules = dict(rules)

    def check(self, ctx: RequestContext, action: str, target: Target | None = None) -> bool:
        rule = self.rules.get(action)
        if rule is None:
            raise KeyError(f"no policy rule for {action!r}")
        return rule(ctx, target or {})

    def enforce(self, ctx: RequestContext, action: str, target: Target | None = None) -> None:
        if not self.check(ctx, action, target):
            raise Forbidden(f"You are not authorized to perform the requested action: {action}.")
