"""Token issue, validation and revocation against an in-memory identity database."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from kumo.common.config import IdentitySettings
from kumo.common.db import Database
from kumo.common.errors import NotFound
from kumo.identity import models as m
from kumo.identity.app import MIGRATIONS
from kumo.identity.bootstrap import Endpoint, bootstrap
from kumo.identity.errors import AuthFailed
from kumo.identity.service.core import DEFAULT_DOMAIN_ID, Identity, new_id, utcnow
from kumo.identity.service.tokens import Tokens
from kumo.identity.tokens import KeyRepository, TokenFormatter

ADMIN_PW, DEMO_PW = "admin-secret", "demo-secret"


@pytest.fixture
def tokens(tmp_path):
    db = Database("sqlite://")
    db.migrate("identity", MIGRATIONS)
    keys = KeyRepository(tmp_path / "keys")
    keys.setup()
    ident = Identity(db, IdentitySettings(password_hash_rounds=4), TokenFormatter(keys))
    bootstrap(
        ident,
        admin_password=ADMIN_PW,
        demo_password=DEMO_PW,
        region="RegionOne",
        endpoints=[Endpoint("identity", "keystone", "http://127.0.0.1:1/identity/v3")],
    )
    yield Tokens(ident)
    db.dispose()


def auth(user="admin", password=ADMIN_PW, project="admin", scope=None):
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "domain": {"id": "default"}, "password": password}},
            }
        }
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    elif project:
        body["auth"]["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return body


def issue(tokens: Tokens, **kw) -> tuple[str, dict]:
    token, body = tokens.authenticate(auth(**kw))
    time.sleep(0.002)  # issued_at and revocation times are floats: keep events strictly ordered
    return token, body["token"]


def revoke(tokens: Tokens, **match):
    with tokens.ident.db.session() as s:
        tokens.revoke(s, **match)
    time.sleep(0.002)


def test_issue_and_validate(tokens):
    token, body = issue(tokens)
    assert body["project"]["name"] == "admin"
    assert {r["name"] for r in body["roles"]} >= {"admin", "member", "reader"}  # implied roles expanded
    assert body["catalog"][0]["type"] == "identity"
    assert len({e["interface"] for e in body["catalog"][0]["endpoints"]}) == 3
    assert tokens.validate(token)["token"]["user"]["name"] == "admin"


def test_wrong_password_rejected(tokens):
    with pytest.raises(AuthFailed):
        tokens.authenticate(auth(password="wrong"))
    with pytest.raises(AuthFailed):
        tokens.authenticate(auth(user="nobody"))


def test_scopes(tokens):
    _, body = issue(tokens, scope={"system": {"all": True}})
    assert body["system"] == {"all": True}
    _, body = issue(tokens, scope={"domain": {"id": DEFAULT_DOMAIN_ID}})
    assert body["domain"]["id"] == DEFAULT_DOMAIN_ID
    with pytest.raises(AuthFailed):  # demo has no role on the admin project
        tokens.authenticate(auth(user="demo", password=DEMO_PW, project="admin"))


def test_revoke_by_audit_id(tokens):
    t1, b1 = issue(tokens)
    t2, _ = issue(tokens)
    revoke(tokens, audit_id=b1["audit_ids"][0])
    with pytest.raises(NotFound):
        tokens.validate(t1)
    tokens.validate(t2)  # another token of the same user is untouched


def test_revoke_token_helper(tokens):
    t1, _ = issue(tokens)
    tokens.revoke_token(t1)
    with pytest.raises(NotFound):
        tokens.validate(t1)
    with pytest.raises(NotFound):  # revoking an invalid token is itself a 404
        tokens.revoke_token(t1)


def test_revoke_by_user(tokens):
    admin_tok, body = issue(tokens)
    demo_tok, _ = issue(tokens, user="demo", password=DEMO_PW, project="demo")
    revoke(tokens, user_id=body["user"]["id"])
    with pytest.raises(NotFound):
        tokens.validate(admin_tok)
    tokens.validate(demo_tok)


def test_revoke_by_project(tokens):
    project_tok, body = issue(tokens)
    system_tok, _ = issue(tokens, scope={"system": {"all": True}})
    revoke(tokens, project_id=body["project"]["id"])
    with pytest.raises(NotFound):
        tokens.validate(project_tok)
    tokens.validate(system_tok)  # the same user's token on another scope stays valid


def test_revoke_by_user_and_project_needs_both(tokens):
    admin_tok, admin = issue(tokens)
    demo_tok, demo = issue(tokens, user="demo", password=DEMO_PW, project="demo")
    revoke(tokens, user_id=admin["user"]["id"], project_id=demo["project"]["id"])  # matches neither token
    tokens.validate(admin_tok)
    tokens.validate(demo_tok)


def test_token_issued_after_revocation_is_valid(tokens):
    _, body = issue(tokens)
    revoke(tokens, user_id=body["user"]["id"])
    later, _ = issue(tokens)
    assert tokens.validate(later)["token"]["user"]["id"] == body["user"]["id"]


def test_revoked_token_cannot_be_rescoped(tokens):
    tok, body = issue(tokens)
    revoke(tokens, audit_id=body["audit_ids"][0])
    with pytest.raises(NotFound):
        tokens.authenticate({"auth": {"identity": {"methods": ["token"], "token": {"id": tok}}}})


def test_rescoped_token_revoked_with_its_chain(tokens):
    parent, pbody = issue(tokens, project=None)  # unscoped (admin has a default project, so maybe scoped)
    child, cbody = tokens.authenticate(
        {
            "auth": {
                "identity": {"methods": ["token"], "token": {"id": parent}},
                "scope": {"system": {"all": True}},
            }
        }
    )
    assert cbody["token"]["audit_ids"][1] == pbody["audit_ids"][0]
    time.sleep(0.002)
    revoke(tokens, audit_chain_id=pbody["audit_ids"][0])
    for t in (parent, child):
        with pytest.raises(NotFound):
            tokens.validate(t)


def test_disabled_user_domain_invalidates_token(tokens):
    """As Keystone: validation checks the user's domain (disabling a *user* revokes through the API)."""
    tok, _ = issue(tokens, user="demo", password=DEMO_PW, project="demo")
    with tokens.ident.db.session() as s:
        s.get(m.Domain, DEFAULT_DOMAIN_ID).enabled = False
    with pytest.raises(NotFound):
        tokens.validate(tok)


def test_disabled_user_cannot_authenticate(tokens):
    _, body = issue(tokens, user="demo", password=DEMO_PW, project="demo")
    with tokens.ident.db.session() as s:
        s.get(m.User, body["user"]["id"]).enabled = False
    with pytest.raises(AuthFailed):
        tokens.authenticate(auth(user="demo", password=DEMO_PW, project="demo"))


def test_removed_role_invalidates_project_token(tokens):
    tok, body = issue(tokens, user="demo", password=DEMO_PW, project="demo")
    with tokens.ident.db.session() as s:
        for a in s.scalars(select(m.Assignment).where(m.Assignment.actor_id == body["user"]["id"])):
            s.delete(a)
    with pytest.raises(NotFound):
        tokens.validate(tok)


def test_expired_token_invalid(tokens, monkeypatch):
    tok, _ = issue(tokens)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3601)
    with pytest.raises(NotFound):
        tokens.validate(tok)
    assert tokens.validate(tok, allow_expired=True)["token"]["user"]["name"] == "admin"


def test_deleted_project_invalidates_token(tokens):
    with tokens.ident.db.session() as s:
        admin = s.scalar(select(m.User).where(m.User.name == "admin"))
        role = s.scalar(select(m.Role).where(m.Role.name == "member"))
        project = m.Project(
            id=new_id(), name="tmp", domain_id=DEFAULT_DOMAIN_ID, description="", enabled=True,
            tags=[], options={}, extra={}, created_at=utcnow(),
        )  # fmt: skip
        s.add(project)
        s.flush()
        s.add(
            m.Assignment(
                type="UserProject", actor_id=admin.id, target_id=project.id, role_id=role.id, inherited=False
            )
        )
        pid = project.id
    tok, _ = issue(tokens, scope={"project": {"id": pid}})
    with tokens.ident.db.session() as s:
        s.get(m.Project, pid).enabled = False
    with pytest.raises(NotFound):
        tokens.validate(tok)


def test_prune_drops_only_expired_events(tokens):
    _, body = issue(tokens)
    revoke(tokens, audit_id=body["audit_ids"][0])
    assert tokens.prune() == 0
    with tokens.ident.db.session() as s:
        for e in s.scalars(select(m.RevocationEvent)):
            e.expires_at = time.time() - 1
    assert tokens.prune() == 1
