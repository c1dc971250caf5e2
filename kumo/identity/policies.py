"""Identity's access rules, after Keystone's defaults (see kumo.common.policy)."""

from __future__ import annotations

from kumo.common.context import RequestContext
from kumo.common.policy import (
    ADMIN,
    ADMIN_OR_DOMAIN_ADMIN,
    ADMIN_OR_READER_IN_DOMAIN,
    ADMIN_OR_SYSTEM_READER,
    Policy,
    Target,
    always,
    any_of,
    cloud_admin,
    owner,
    system_reader,
)


def token_subject(ctx: RequestContext, t: Target) -> bool:
    return ctx.user_id is not None and ctx.user_id == t.get("subject_user_id")


def own_project(ctx: RequestContext, t: Target) -> bool:
    return ctx.project_id is not None and ctx.project_id == t.get("project_id")


def service_role(ctx: RequestContext, _t: Target) -> bool:
    return "service" in ctx.roles


def unrestricted(ctx: RequestContext, _t: Target) -> bool:
    """Restricted application credentials may not create credentials or trusts."""
    tok = ctx.token or {}
    cred = tok.get("application_credential")
    return not (cred and cred.get("restricted", True))


def _and(a, b):  # type: ignore[no-untyped-def]
    return lambda ctx, t: a(ctx, t) and b(ctx, t)


OWNER_OR_ADMIN_READ = any_of(cloud_admin, system_reader, owner)

RULES = {
    # tokens
    "validate_token": any_of(cloud_admin, system_reader, service_role, token_subject),
    "revoke_token": any_of(cloud_admin, token_subject),
    # domains
    "get_domain": any_of(
        ADMIN_OR_READER_IN_DOMAIN,
        lambda c, t: c.project_domain_id == t.get("domain_id") or c.user_domain_id == t.get("domain_id"),
    ),
    "list_domains": ADMIN_OR_READER_IN_DOMAIN,  # domain readers see their own (filtered)
    "create_domain": ADMIN,
    "update_domain": ADMIN,
    "delete_domain": ADMIN,
    # projects
    "get_project": any_of(ADMIN_OR_READER_IN_DOMAIN, own_project),
    "list_projects": ADMIN_OR_READER_IN_DOMAIN,
    "list_user_projects": any_of(ADMIN_OR_READER_IN_DOMAIN, owner),
    "create_project": ADMIN_OR_DOMAIN_ADMIN,
    "update_project": ADMIN_OR_DOMAIN_ADMIN,
    "delete_project": ADMIN_OR_DOMAIN_ADMIN,
    "project_tags": ADMIN_OR_DOMAIN_ADMIN,
    "get_project_tags": any_of(ADMIN_OR_READER_IN_DOMAIN, own_project),
    # users
    "get_user": any_of(ADMIN_OR_READER_IN_DOMAIN, owner),
    "list_users": ADMIN_OR_READER_IN_DOMAIN,
    "create_user": ADMIN_OR_DOMAIN_ADMIN,
    "update_user": ADMIN_OR_DOMAIN_ADMIN,
    "delete_user": ADMIN_OR_DOMAIN_ADMIN,
    "change_password": owner,
    # groups
    "get_group": ADMIN_OR_READER_IN_DOMAIN,
    "list_groups": ADMIN_OR_READER_IN_DOMAIN,
    "list_groups_for_user": any_of(ADMIN_OR_READER_IN_DOMAIN, owner),
    "list_users_in_group": ADMIN_OR_READER_IN_DOMAIN,
    "create_group": ADMIN_OR_DOMAIN_ADMIN,
    "update_group": ADMIN_OR_DOMAIN_ADMIN,
    "delete_group": ADMIN_OR_DOMAIN_ADMIN,
    "add_user_to_group": ADMIN_OR_DOMAIN_ADMIN,
    "remove_user_from_group": ADMIN_OR_DOMAIN_ADMIN,
    "check_user_in_group": ADMIN_OR_READER_IN_DOMAIN,
    # roles (global roles are readable by any domain reader, as Keystone allows)
    "get_role": any_of(ADMIN_OR_SYSTEM_READER, lambda c, t: c.scope == "domain" and "reader" in c.roles),
    "list_roles": any_of(ADMIN_OR_SYSTEM_READER, lambda c, t: c.scope == "domain" and "reader" in c.roles),
    "create_role": ADMIN,
    "update_role": ADMIN,
    "delete_role": ADMIN,
    "get_domain_role": ADMIN_OR_READER_IN_DOMAIN,
    "list_domain_roles": ADMIN_OR_READER_IN_DOMAIN,
    "create_domain_role": ADMIN,
    "update_domain_role": ADMIN,
    "delete_domain_role": ADMIN,
    "implied_roles": ADMIN,
    "list_implied_roles": ADMIN_OR_SYSTEM_READER,
    # grants and assignments
    "check_grant": ADMIN_OR_READER_IN_DOMAIN,
    "list_grants": ADMIN_OR_READER_IN_DOMAIN,
    "create_grant": ADMIN_OR_DOMAIN_ADMIN,
    "revoke_grant": ADMIN_OR_DOMAIN_ADMIN,
    "list_role_assignments": ADMIN_OR_READER_IN_DOMAIN,
    "list_role_assignments_for_tree": ADMIN_OR_READER_IN_DOMAIN,
    "system_grants": ADMIN,
    "list_system_grants": any_of(ADMIN_OR_SYSTEM_READER, owner),
    # catalog
    "get_region": always,
    "list_regions": always,
    "create_region": ADMIN,
    "update_region": ADMIN,
    "delete_region": ADMIN,
    "get_service": ADMIN_OR_SYSTEM_READER,
    "list_services": ADMIN_OR_SYSTEM_READER,
    "create_service": ADMIN,
    "update_service": ADMIN,
    "delete_service": ADMIN,
    "get_endpoint": ADMIN_OR_SYSTEM_READER,
    "list_endpoints": ADMIN_OR_SYSTEM_READER,
    "create_endpoint": ADMIN,
    "update_endpoint": ADMIN,
    "delete_endpoint": ADMIN,
    # application credentials, credentials, trusts
    "get_application_credential": OWNER_OR_ADMIN_READ,
    "list_application_credentials": OWNER_OR_ADMIN_READ,
    "create_application_credential": _and(owner, unrestricted),
    "delete_application_credential": any_of(cloud_admin, owner),
    "get_access_rule": OWNER_OR_ADMIN_READ,
    "list_access_rules": OWNER_OR_ADMIN_READ,
    "delete_access_rule": any_of(cloud_admin, owner),
    "get_credential": OWNER_OR_ADMIN_READ,
    "list_credentials": always,  # filtered to the caller's own unless admin
    "create_credential": any_of(cloud_admin, owner),
    "update_credential": any_of(cloud_admin, owner),
    "delete_credential": any_of(cloud_admin, owner),
    "create_trust": _and(owner, unrestricted),
    "get_trust": any_of(cloud_admin, system_reader, lambda c, t: c.user_id in (t.get("trustor_user_id"), t.get("trustee_user_id"))),
    "list_trusts": always,
    "delete_trust": any_of(cloud_admin, lambda c, t: c.user_id == t.get("trustor_user_id")),
    # policies (deprecated Keystone API, still served)
    "get_policy": ADMIN_OR_SYSTEM_READER,
    "list_policies": ADMIN_OR_SYSTEM_READER,
    "create_policy": ADMIN,
    "update_policy": ADMIN,
    "delete_policy": ADMIN,
    # OS-EP-FILTER
    "get_endpoint_group": ADMIN_OR_SYSTEM_READER,
    "list_endpoint_groups": ADMIN_OR_SYSTEM_READER,
    "create_endpoint_group": ADMIN,
    "update_endpoint_group": ADMIN,
    "delete_endpoint_group": ADMIN,
    "list_projects_for_endpoint": ADMIN_OR_SYSTEM_READER,
    "list_endpoints_for_project": ADMIN_OR_SYSTEM_READER,
    "check_endpoint_in_project": ADMIN_OR_SYSTEM_READER,
    "add_endpoint_to_project": ADMIN,
    "remove_endpoint_from_project": ADMIN,
    "list_endpoint_groups_for_project": ADMIN_OR_SYSTEM_READER,
    "list_projects_associated_with_endpoint_group": ADMIN_OR_SYSTEM_READER,
    "list_endpoints_associated_with_endpoint_group": ADMIN_OR_SYSTEM_READER,
    "get_endpoint_group_in_project": ADMIN_OR_SYSTEM_READER,
    "add_endpoint_group_to_project": ADMIN,
    "remove_endpoint_group_from_project": ADMIN,
    # domain configuration
    "get_domain_config": ADMIN_OR_SYSTEM_READER,
    "get_domain_config_default": ADMIN_OR_SYSTEM_READER,
    "get_security_compliance_domain_config": always,
    "create_domain_config": ADMIN,
    "update_domain_config": ADMIN,
    "delete_domain_config": ADMIN,
    # OS-OAUTH1 consumers
    "get_consumer": ADMIN_OR_SYSTEM_READER,
    "list_consumers": ADMIN_OR_SYSTEM_READER,
    "create_consumer": ADMIN,
    "update_consumer": ADMIN,
    "delete_consumer": ADMIN,
}

POLICY = Policy(RULES)
