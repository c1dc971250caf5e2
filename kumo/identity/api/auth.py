"""``/v3/auth/*``: tokens, and what a token may scope to."""

from __future__ import annotations

from starlette.responses import Response

from kumo.common.asgi import API, Call, json_response
from kumo.common.errors import Forbidden, NotFound
from kumo.identity.api.common import enforce, ident, query_bool
from kumo.identity.api.render import render_domain, render_project
from kumo.identity.service import grants

api = API()


def _tokens(call: Call):
    return call.request.app.state.tokens


def _nocatalog(call: Call) -> bool:
    return "nocatalog" in call.query and query_bool(call.query.get("nocatalog") or "true")


@api.route("/v3/auth/tokens", "POST", public=True)
def issue_token(call: Call):
    token, body = _tokens(call).authenticate(
        call.body, call.headers.get("x-auth-token"), catalog=not _nocatalog(call)
    )
    return json_response(body, 201, {"X-Subject-Token": token})


def _subject(call: Call) -> tuple[str, dict]:
    subject = call.headers.get("x-subject-token")
    if not subject:
        raise NotFound("Could not find token: X-Subject-Token header missing.")
    allow_expired = bool(query_bool(call.query.get("allow_expired")))
    body = _tokens(call).validate(subject, catalog=not _nocatalog(call), allow_expired=allow_expired)
    enforce(call, "validate_token", {"subject_user_id": body["token"]["user"]["id"]})
    return subject, body


@api.route("/v3/auth/tokens", "GET")
def validate_token(call: Call):
    subject, body = _subject(call)
    return json_response(body, 200, {"X-Subject-Token": subject})


@api.route("/v3/auth/tokens", "HEAD")
def check_token(call: Call):
    subject, _ = _subject(call)
    return Response(status_code=200, headers={"X-Subject-Token": subject})


@api.route("/v3/auth/tokens", "DELETE")
def revoke_token(call: Call):
    subject = call.headers.get("x-subject-token") or ""
    body = _tokens(call).validate(subject, catalog=False)
    enforce(call, "revoke_token", {"subject_user_id": body["token"]["user"]["id"]})
    _tokens(call).revoke_token(subject)
    return None


@api.route("/v3/auth/catalog", "GET")
def auth_catalog(call: Call):
    if call.ctx.scope == "unscoped":
        raise Forbidden("The service catalog is only available to scoped tokens.")
    with ident(call).db.reader() as s:
        catalog = _tokens(call).catalog(s, call.ctx.project_id)
    return {"catalog": catalog, "links": {"self": str(call.request.url)}}


@api.route("/v3/auth/projects", "GET")
def auth_projects(call: Call):
    with ident(call).db.reader() as s:
        # Rendered inside the session: the rows expire when the reader closes.
        rendered = [render_project(call, p) for p in grants.projects_for_user(s, call.ctx.user_id or "")]
    return {
        "projects": rendered,
        "links": {"self": str(call.request.url), "previous": None, "next": None},
    }


@api.route("/v3/auth/domains", "GET")
def auth_domains(call: Call):
    with ident(call).db.reader() as s:
        # Rendered inside the session: the rows expire when the reader closes.
        rendered = [render_domain(call, d) for d in grants.domains_for_user(s, call.ctx.user_id or "")]
    return {
        "domains": rendered,
        "links": {"self": str(call.request.url), "previous": None, "next": None},
    }


@api.route("/v3/auth/system", "GET")
def auth_system(call: Call):
    with ident(call).db.reader() as s:
        has = bool(grants.direct_role_ids(s, call.ctx.user_id or "", system=True))
    return {"system": [{"all": True}] if has else [], "links": {"self": str(call.request.url)}}
