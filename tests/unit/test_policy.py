"""Identity's access rules (kumo.common.policy + kumo.identity.policies)."""

from __future__ import annotations

import pytest

from kumo.common.context import RequestContext
from kumo.common.errors import Forbidden
from kumo.identity.policies import POLICY, RULES

ALL = frozenset({"admin", "member", "reader"})  # admin implies member implies reader
MEMBER = frozenset({"member", "reader"})
READER = frozenset({"reader"})


def project_ctx(roles, project="p1", user="u1", domain="d1") -> RequestContext:
    return RequestContext(
        user_id=user, user_domain_id=domain, project_id=project, project_domain_id=domain, roles=roles
    )


def domain_ctx(roles, domain="d1", user="u1") -> RequestContext:
    return RequestContext(user_id=user, user_domain_id=domain, domain_id=domain, roles=roles)


def system_ctx(roles, user="u1") -> RequestContext:
    return RequestContext(user_id=user, system_scope="all", roles=roles)


def check(ctx, action, **target) -> bool:
    return POLICY.check(ctx, action, target)


def test_scope():
    assert project_ctx(READER).scope == "project"
    assert domain_ctx(READER).scope == "domain"
    assert system_ctx(READER).scope == "system"
    assert RequestContext(user_id="u").scope == "unscoped"


@pytest.mark.parametrize(
    "action",
    ["create_project", "create_user", "create_group", "create_grant", "delete_project", "update_user"],
)
def test_reader_and_member_cannot_write(action):
    for roles in (READER, MEMBER):
        assert not check(project_ctx(roles), action, domain_id="d1", project_id="p1")
        assert not check(domain_ctx(roles), action, domain_id="d1", project_id="p1")
        assert not check(system_ctx(roles), action, domain_id="d1")


def test_enforce_raises_forbidden():
    with pytest.raises(Forbidden) as exc:
        POLICY.enforce(project_ctx(READER), "create_project", {"domain_id": "d1"})
    assert exc.value.status == 403
    assert "create_project" in exc.value.message
    POLICY.enforce(project_ctx(ALL), "create_project", {"domain_id": "d1"})  # no exception


def test_unknown_action_is_an_error():
    with pytest.raises(KeyError):
        POLICY.check(project_ctx(ALL), "no_such_rule")


@pytest.mark.parametrize("ctx", [project_ctx(ALL), system_ctx(ALL)], ids=["project-admin", "system-admin"])
@pytest.mark.parametrize(
    "action",
    [
        "create_domain",
        "create_project",
        "create_user",
        "create_role",
        "create_service",
        "list_domains",
        "delete_user",
    ],
)
def test_cloud_admin_may_do_anything(ctx, action):
    assert check(ctx, action, domain_id="elsewhere", project_id="other", user_id="someone")


@pytest.mark.parametrize(
    "action",
    [
        "create_project",
        "create_user",
        "update_user",
        "delete_project",
        "create_group",
        "create_grant",
        "list_users",
        "get_user",
    ],
)
def test_domain_admin_limited_to_its_domain(action):
    ctx = domain_ctx(ALL, domain="d1")
    assert check(ctx, action, domain_id="d1")
    assert not check(ctx, action, domain_id="d2")
    assert not check(ctx, action)  # a target without a domain is not its own


@pytest.mark.parametrize(
    "action",
    [
        "create_domain",
        "delete_domain",
        "create_role",
        "create_service",
        "create_endpoint",
        "create_region",
    ],
)
def test_domain_admin_cannot_do_cloud_things(action):
    assert not check(domain_ctx(ALL, domain="d1"), action, domain_id="d1")


def test_domain_reader_may_list_domains():
    """Keystone lets domain readers list domains (the API filters the list to their own)."""
    assert check(domain_ctx(READER, domain="d1"), "list_domains", domain_id="d1")
    assert not check(project_ctx(MEMBER), "list_domains", domain_id="d1")


def test_domain_reader_reads_only_its_domain():
    ctx = domain_ctx(READER, domain="d1")
    assert check(ctx, "list_users", domain_id="d1")
    assert check(ctx, "get_project", domain_id="d1")
    assert not check(ctx, "list_users", domain_id="d2")
    assert not check(ctx, "create_user", domain_id="d1")


def test_system_reader_reads_everything_writes_nothing():
    ctx = system_ctx(READER)
    for action in ("list_users", "get_project", "list_domains", "list_services", "list_role_assignments"):
        assert check(ctx, action, domain_id="any")
    for action in ("create_user", "create_domain", "delete_project", "create_grant"):
        assert not check(ctx, action, domain_id="any")


def test_project_admin_is_cloud_admin():
    """Without an admin_project configured, Keystone treats admin on any project as cloud admin."""
    assert check(project_ctx(ALL, project="p9"), "create_domain")


def test_owner_rules():
    me = project_ctx(READER, user="u1")
    assert check(me, "change_password", user_id="u1")
    assert not check(me, "change_password", user_id="u2")
    assert check(me, "get_user", user_id="u1", domain_id="d1")
    assert not check(me, "get_user", user_id="u2", domain_id="d1")
    assert check(me, "list_user_projects", user_id="u1")
    assert check(me, "get_application_credential", user_id="u1")
    assert not check(me, "get_application_credential", user_id="u2")
    assert check(me, "create_application_credential", user_id="u1")
    assert not check(me, "create_application_credential", user_id="u2")
    # even an admin changes only their own password through this API
    assert not check(project_ctx(ALL, user="admin"), "change_password", user_id="u1")


def test_restricted_application_credential_cannot_create_more():
    token = {"application_credential": {"id": "ac", "restricted": True}}
    restricted = RequestContext(user_id="u1", project_id="p1", roles=MEMBER, token=token)
    assert not check(restricted, "create_application_credential", user_id="u1")
    assert not check(restricted, "create_trust", user_id="u1")
    unrestricted = RequestContext(
        user_id="u1",
        project_id="p1",
        roles=MEMBER,
        token={"application_credential": {"id": "ac", "restricted": False}},
    )
    assert check(unrestricted, "create_application_credential", user_id="u1")


def test_token_subject_may_validate_and_revoke_own_token():
    me = project_ctx(READER, user="u1")
    assert check(me, "validate_token", subject_user_id="u1")
    assert check(me, "revoke_token", subject_user_id="u1")
    assert not check(me, "validate_token", subject_user_id="u2")
    assert not check(me, "revoke_token", subject_user_id="u2")
    service = project_ctx(frozenset({"service"}), user="svc")
    assert check(service, "validate_token", subject_user_id="u2")


def test_own_project_visible_to_member():
    assert check(project_ctx(READER, project="p1"), "get_project", project_id="p1", domain_id="d1")
    assert not check(project_ctx(READER, project="p1"), "get_project", project_id="p2", domain_id="d1")


def test_unscoped_token_can_do_little():
    ctx = RequestContext(user_id="u1")
    assert not check(ctx, "list_projects", domain_id="d1")
    assert not check(ctx, "create_project", domain_id="d1")
    assert check(ctx, "list_user_projects", user_id="u1")


def test_every_rule_callable_on_empty_target():
    """No rule may crash on a target missing keys (a handler bug would become a 500)."""
    for ctx in (project_ctx(ALL), domain_ctx(READER), system_ctx(READER), RequestContext()):
        for action in RULES:
            assert isinstance(POLICY.check(ctx, action, {}), bool)
