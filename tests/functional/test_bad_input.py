"""Bad input gets a 4xx in Keystone's error format, never a 500, on both backends.

Each case is (method, path, body, expected statuses). ``path`` and ``body`` may use
``{project}``, ``{user}``, ``{role}``, ``{domain}``, ``{group}``, ``{service}``, ``{admin}``,
``{dup_project}``, ``{dup_user}``, ``{dup_role}``, ``{dup_domain}``, ``{dup_group}``, ``{dup_ac}``:
ids and names of things created once per cloud. A ``str`` body is sent raw as JSON.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.support import KumoCloud, assert_keystone_error, unique

MISSING = "0" * 32  # a well-formed id of nothing

CASES: list[tuple[str, str, str, Any, tuple[int, ...]]] = [
    # id, method, path, body, expected
    # -- malformed bodies, on every create -------------------------------------------------
    *[
        (f"{name}-{kind}", "POST", path, body, (400,))
        for name, path in [
            ("project", "/projects"),
            ("user", "/users"),
            ("domain", "/domains"),
            ("group", "/groups"),
            ("role", "/roles"),
            ("service", "/services"),
            ("endpoint", "/endpoints"),
            ("region", "/regions"),
            ("credential", "/credentials"),
            ("trust", "/OS-TRUST/trusts"),
            ("app-cred", "/users/{admin}/application_credentials"),
            ("auth", "/auth/tokens"),
        ]
        for kind, body in [
            ("malformed-json", '{"x": '),
            ("empty-body", ""),
            ("list-body", "[]"),
            ("null-body", "null"),
            ("string-body", '"text"'),
            ("empty-object", "{}"),
        ]
    ],  # fmt: skip
    ("project-wrapper-string", "POST", "/projects", {"project": "x"}, (400,)),
    ("project-wrapper-list", "POST", "/projects", {"project": []}, (400,)),
    # -- projects -------------------------------------------------------------------------
    ("project-no-name", "POST", "/projects", {"project": {"description": "x"}}, (400,)),
    ("project-empty-name", "POST", "/projects", {"project": {"name": ""}}, (400,)),
    ("project-name-int", "POST", "/projects", {"project": {"name": 5}}, (400,)),
    ("project-name-null", "POST", "/projects", {"project": {"name": None}}, (400,)),
    ("project-name-65", "POST", "/projects", {"project": {"name": "a" * 65}}, (400,)),
    ("project-enabled-str", "POST", "/projects", {"project": {"name": "n1", "enabled": "yes"}}, (400,)),
    ("project-is-domain-str", "POST", "/projects", {"project": {"name": "n2", "is_domain": "no"}}, (400,)),
    ("project-desc-int", "POST", "/projects", {"project": {"name": "n3", "description": 7}}, (400,)),
    ("project-domain-int", "POST", "/projects", {"project": {"name": "n4", "domain_id": 7}}, (400,)),
    ("project-tags-str", "POST", "/projects", {"project": {"name": "n5", "tags": "a,b"}}, (400,)),
    (
        "project-unknown-domain",
        "POST",
        "/projects",
        {"project": {"name": "n6", "domain_id": MISSING}},
        (400, 404),
    ),
    (
        "project-unknown-parent",
        "POST",
        "/projects",
        {"project": {"name": "n7", "parent_id": MISSING}},
        (400, 404),
    ),
    ("project-duplicate", "POST", "/projects", {"project": {"name": "{dup_project}"}}, (409,)),
    ("project-get-unknown", "GET", f"/projects/{MISSING}", None, (404,)),
    ("project-get-long-id", "GET", "/projects/" + "x" * 300, None, (404,)),
    ("project-patch-unknown", "PATCH", f"/projects/{MISSING}", {"project": {"name": "x"}}, (404,)),
    ("project-patch-name-int", "PATCH", "/projects/{project}", {"project": {"name": 5}}, (400,)),
    ("project-patch-enabled-str", "PATCH", "/projects/{project}", {"project": {"enabled": "false"}}, (400,)),
    ("project-patch-domain", "PATCH", "/projects/{project}", {"project": {"domain_id": "{domain}"}}, (400,)),
    (
        "project-patch-dup-name",
        "PATCH",
        "/projects/{project}",
        {"project": {"name": "{dup_project}"}},
        (409,),
    ),
    ("project-patch-malformed", "PATCH", "/projects/{project}", '{"project": {', (400,)),
    ("project-delete-unknown", "DELETE", f"/projects/{MISSING}", None, (404,)),
    # -- users ----------------------------------------------------------------------------
    ("user-no-name", "POST", "/users", {"user": {"password": "x"}}, (400,)),
    ("user-name-int", "POST", "/users", {"user": {"name": 1}}, (400,)),
    ("user-name-256", "POST", "/users", {"user": {"name": "u" * 256}}, (400,)),
    ("user-enabled-str", "POST", "/users", {"user": {"name": "u1", "enabled": "no"}}, (400,)),
    ("user-password-int", "POST", "/users", {"user": {"name": "u2", "password": 12345}}, (400,)),
    (
        "user-unknown-domain",
        "POST",
        "/users",
        {"user": {"name": "u3", "domain_id": MISSING}},
        (404,),
    ),
    ("user-duplicate", "POST", "/users", {"user": {"name": "{dup_user}"}}, (409,)),
    ("user-get-unknown", "GET", f"/users/{MISSING}", None, (404,)),
    ("user-patch-unknown", "PATCH", f"/users/{MISSING}", {"user": {"name": "x"}}, (404,)),
    ("user-patch-enabled-str", "PATCH", "/users/{user}", {"user": {"enabled": "true"}}, (400,)),
    ("user-patch-dup-name", "PATCH", "/users/{user}", {"user": {"name": "{dup_user}"}}, (409,)),
    ("user-delete-unknown", "DELETE", f"/users/{MISSING}", None, (404,)),
    ("user-projects-unknown", "GET", f"/users/{MISSING}/projects", None, (404,)),
    ("user-groups-unknown", "GET", f"/users/{MISSING}/groups", None, (404,)),
    ("password-missing-fields", "POST", "/users/{admin}/password", {"user": {}}, (400,)),
    (
        "password-wrong-types",
        "POST",
        "/users/{admin}/password",
        {"user": {"password": 1, "original_password": 2}},
        (400,),
    ),
    # -- domains --------------------------------------------------------------------------
    ("domain-no-name", "POST", "/domains", {"domain": {}}, (400,)),
    ("domain-empty-name", "POST", "/domains", {"domain": {"name": ""}}, (400,)),
    ("domain-name-65", "POST", "/domains", {"domain": {"name": "d" * 65}}, (400,)),
    ("domain-enabled-str", "POST", "/domains", {"domain": {"name": "d1", "enabled": "true"}}, (400,)),
    ("domain-duplicate", "POST", "/domains", {"domain": {"name": "{dup_domain}"}}, (409,)),
    ("domain-get-unknown", "GET", f"/domains/{MISSING}", None, (404,)),
    ("domain-delete-unknown", "DELETE", f"/domains/{MISSING}", None, (404,)),
    ("domain-delete-enabled", "DELETE", "/domains/{domain}", None, (403,)),
    # -- groups ---------------------------------------------------------------------------
    ("group-no-name", "POST", "/groups", {"group": {}}, (400,)),
    ("group-name-int", "POST", "/groups", {"group": {"name": 3}}, (400,)),
    ("group-duplicate", "POST", "/groups", {"group": {"name": "{dup_group}"}}, (409,)),
    ("group-get-unknown", "GET", f"/groups/{MISSING}", None, (404,)),
    ("group-add-unknown-user", "PUT", "/groups/{group}/users/" + MISSING, None, (404,)),
    ("group-add-to-unknown", "PUT", f"/groups/{MISSING}/users/{{user}}", None, (404,)),
    ("group-check-nonmember", "HEAD", "/groups/{group}/users/{admin}", None, (404,)),
    # -- roles and grants -----------------------------------------------------------------
    ("role-no-name", "POST", "/roles", {"role": {}}, (400,)),
    ("role-empty-name", "POST", "/roles", {"role": {"name": ""}}, (400,)),
    ("role-name-int", "POST", "/roles", {"role": {"name": 9}}, (400,)),
    ("role-duplicate", "POST", "/roles", {"role": {"name": "{dup_role}"}}, (409,)),
    ("role-get-unknown", "GET", f"/roles/{MISSING}", None, (404,)),
    ("role-delete-unknown", "DELETE", f"/roles/{MISSING}", None, (404,)),
    ("grant-unknown-user", "PUT", f"/projects/{{project}}/users/{MISSING}/roles/{{role}}", None, (404,)),
    ("grant-unknown-role", "PUT", f"/projects/{{project}}/users/{{user}}/roles/{MISSING}", None, (404,)),
    ("grant-unknown-project", "PUT", f"/projects/{MISSING}/users/{{user}}/roles/{{role}}", None, (404,)),
    ("grant-unknown-domain", "PUT", f"/domains/{MISSING}/users/{{user}}/roles/{{role}}", None, (404,)),
    ("grant-check-missing", "HEAD", "/projects/{project}/users/{user}/roles/{role}", None, (404,)),
    ("grant-revoke-missing", "DELETE", "/projects/{project}/users/{user}/roles/{role}", None, (404,)),
    (
        "assignments-two-scopes",
        "GET",
        "/role_assignments?scope.project.id={project}&scope.domain.id=default",
        None,
        (400,),
    ),
    ("assignments-user-and-group", "GET", "/role_assignments?user.id={user}&group.id={group}", None, (400,)),
    ("implied-unknown", "PUT", f"/roles/{{role}}/implies/{MISSING}", None, (404,)),
    # -- catalog --------------------------------------------------------------------------
    ("service-no-type", "POST", "/services", {"service": {"name": "s"}}, (400,)),
    ("service-type-int", "POST", "/services", {"service": {"type": 1}}, (400,)),
    ("service-enabled-str", "POST", "/services", {"service": {"type": "t", "enabled": "x"}}, (400,)),
    ("service-get-unknown", "GET", f"/services/{MISSING}", None, (404,)),
    (
        "endpoint-bad-interface",
        "POST",
        "/endpoints",
        {"endpoint": {"service_id": "{service}", "interface": "bogus", "url": "http://x"}},
        (400,),
    ),
    (
        "endpoint-no-url",
        "POST",
        "/endpoints",
        {"endpoint": {"service_id": "{service}", "interface": "public"}},
        (400,),
    ),
    (
        "endpoint-enabled-str",
        "POST",
        "/endpoints",
        {
            "endpoint": {
                "service_id": "{service}",
                "interface": "public",
                "url": "http://x",
                "enabled": "False",
            }
        },
        (400,),
    ),
    (
        "endpoint-unknown-service",
        "POST",
        "/endpoints",
        {"endpoint": {"service_id": MISSING, "interface": "public", "url": "http://x"}},
        (400, 404),
    ),
    ("endpoint-get-unknown", "GET", f"/endpoints/{MISSING}", None, (404,)),
    ("region-unknown-parent", "POST", "/regions", {"region": {"parent_region_id": MISSING}}, (400, 404)),
    ("region-get-unknown", "GET", f"/regions/{MISSING}", None, (404,)),
    # -- credentials, application credentials, trusts ---------------------------------------
    ("credential-missing", "POST", "/credentials", {"credential": {"type": "ec2"}}, (400,)),
    (
        "credential-blob-int",
        "POST",
        "/credentials",
        {"credential": {"type": "cert", "user_id": "{admin}", "blob": 5}},
        (400,),
    ),
    ("credential-get-unknown", "GET", f"/credentials/{MISSING}", None, (404,)),
    (
        "app-cred-name-int",
        "POST",
        "/users/{admin}/application_credentials",
        {"application_credential": {"name": 1}},
        (400,),
    ),
    (
        "app-cred-bad-expiry",
        "POST",
        "/users/{admin}/application_credentials",
        {"application_credential": {"name": "x1", "expires_at": "tomorrow"}},
        (400,),
    ),
    (
        "app-cred-unrestricted-str",
        "POST",
        "/users/{admin}/application_credentials",
        {"application_credential": {"name": "x2", "unrestricted": "yes"}},
        (400,),
    ),
    (
        "app-cred-duplicate",
        "POST",
        "/users/{admin}/application_credentials",
        {"application_credential": {"name": "{dup_ac}"}},
        (409,),
    ),
    ("app-cred-get-unknown", "GET", f"/users/{{admin}}/application_credentials/{MISSING}", None, (404,)),
    ("trust-missing-fields", "POST", "/OS-TRUST/trusts", {"trust": {}}, (400,)),
    (
        "trust-impersonation-str",
        "POST",
        "/OS-TRUST/trusts",
        {
            "trust": {
                "trustor_user_id": "{admin}",
                "trustee_user_id": "{user}",
                "impersonation": "no",
                "project_id": "{project}",
            }
        },
        (400,),
    ),
    (
        "trust-unknown-trustee",
        "POST",
        "/OS-TRUST/trusts",
        {"trust": {"trustor_user_id": "{admin}", "trustee_user_id": MISSING, "impersonation": False}},
        (404,),
    ),
    ("trust-get-unknown", "GET", f"/OS-TRUST/trusts/{MISSING}", None, (404,)),
    # -- tokens ---------------------------------------------------------------------------
    ("auth-methods-str", "POST", "/auth/tokens", {"auth": {"identity": {"methods": "password"}}}, (400,)),
    (
        "auth-no-password-block",
        "POST",
        "/auth/tokens",
        {"auth": {"identity": {"methods": ["password"]}}},
        (400,),
    ),
    (
        "auth-unknown-method",
        "POST",
        "/auth/tokens",
        {"auth": {"identity": {"methods": ["bogus"], "bogus": {}}}},
        (400, 401),
    ),
    (
        "auth-wrong-password",
        "POST",
        "/auth/tokens",
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": "{admin}", "password": "wrong"}},
                }
            }
        },
        (401,),
    ),
    (
        "auth-unknown-user",
        "POST",
        "/auth/tokens",
        {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": {"id": MISSING, "password": "x"}}}
            }
        },
        (401,),
    ),
    (
        "auth-password-int",
        "POST",
        "/auth/tokens",
        {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": {"id": "{admin}", "password": 5}}}
            }
        },
        (400, 401),
    ),
    (
        "auth-unknown-project",
        "POST",
        "/auth/tokens",
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": "{admin}", "password": "{admin_password}"}},
                },
                "scope": {"project": {"id": MISSING}},
            }
        },
        (401,),
    ),
    (
        "auth-bad-scope",
        "POST",
        "/auth/tokens",
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {"id": "{admin}", "password": "{admin_password}"}},
                },
                "scope": "everything",
            }
        },
        (400,),
    ),
    (
        "auth-bad-token",
        "POST",
        "/auth/tokens",
        {"auth": {"identity": {"methods": ["token"], "token": {"id": "garbage"}}}},
        (401, 404),
    ),
    ("validate-garbage", "GET", "/auth/tokens", "HEADER:garbage", (404,)),
    ("validate-missing-header", "GET", "/auth/tokens", None, (400, 401, 404)),
    # -- routing --------------------------------------------------------------------------
    ("unknown-path", "GET", "/no-such-thing", None, (404,)),
    ("wrong-method", "PUT", "/projects", {"project": {}}, (405,)),
]

_SETUP: dict[int, dict[str, str]] = {}


def _setup(cloud: KumoCloud) -> dict[str, str]:
    """Things to point the cases at, created once per cloud."""
    if id(cloud) in _SETUP:
        return _SETUP[id(cloud)]
    with cloud.admin() as c:
        me = c.get("/auth/tokens", headers={"X-Subject-Token": cloud.admin_token}).json()["token"]["user"][
            "id"
        ]
    ids = {"admin": me, "admin_password": cloud.admin_password}
    ids["project"] = cloud.new_project()["id"]
    ids["dup_project"] = cloud.new_project()["name"]
    ids["user"] = cloud.new_user()["id"]
    ids["dup_user"] = cloud.new_user()["name"]
    ids["domain"] = cloud.new_domain()["id"]
    ids["dup_domain"] = cloud.new_domain()["name"]
    ids["group"] = cloud.create("groups", "group", {"name": unique("grp")})["id"]
    ids["dup_group"] = cloud.create("groups", "group", {"name": unique("grp")})["name"]
    ids["role"] = cloud.create("roles", "role", {"name": unique("role")})["id"]
    ids["dup_role"] = cloud.create("roles", "role", {"name": unique("role")})["name"]
    ids["service"] = cloud.create("services", "service", {"type": unique("svc"), "name": "svc"})["id"]
    ids["dup_ac"] = cloud.create(
        f"users/{me}/application_credentials", "application_credential", {"name": unique("ac")}
    )["name"]
    _SETUP[id(cloud)] = ids
    return ids


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in ids.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(any_cloud: KumoCloud, method, path, body, expected):
    ids = _setup(any_cloud)
    path = _fill(path, ids)
    headers = {}
    content = None
    if isinstance(body, str) and body.startswith("HEADER:"):
        headers["X-Subject-Token"] = body.split(":", 1)[1]
    elif isinstance(body, str):
        content = body.encode()
        headers["Content-Type"] = "application/json"
    elif body is not None:
        content = json.dumps(_fill(body, ids)).encode()
        headers["Content-Type"] = "application/json"
    with any_cloud.admin() as c:
        r = c.request(method, path.lstrip("/"), content=content, headers=headers)
    assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text[:500]}"
    if method == "HEAD":
        assert r.status_code in expected, f"{method} {path}: {r.status_code}"
    else:
        assert_keystone_error(r, expected)


@pytest.mark.parametrize(
    "text",
    ["nul\x00byte", "ünïcødé-名前", "x" * 64, "  spaces  ", "emoji-\U0001f600", "quote'\"", "100%_like"],
    ids=["nul", "unicode", "max-len", "spaces", "emoji", "quotes", "sql-wildcards"],
)
def test_odd_strings_never_500(any_cloud: KumoCloud, text):
    """Names and filters with odd characters are stored, rejected or matched, never a 500."""
    with any_cloud.admin() as c:
        r = c.post(
            "/projects",
            json={
                "project": {"name": text + unique("")[-8:] if len(text) < 56 else text, "description": text}
            },
        )
        assert r.status_code in (201, 400), f"{r.status_code} {r.text[:300]}"
        if r.status_code == 400:
            assert_keystone_error(r, 400)
        else:
            assert r.json()["project"]["description"] == text
        for path in ("/projects", "/users", "/groups", "/domains", "/roles"):
            r = c.get(path, params={"name": text})
            assert r.status_code in (200, 400), f"GET {path}?name={text!r}: {r.status_code} {r.text[:300]}"
        r = c.get("/projects/" + quote(text, safe=""))
        assert r.status_code in (400, 404), f"{r.status_code} {r.text[:300]}"
