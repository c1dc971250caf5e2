"""Identity API: domains (``/v3/domains``)."""

from __future__ import annotations

from kumo.common.asgi import API, Call
from kumo.identity.api.common import collection, enforce, ident, query_bool
from kumo.identity.api.render import render_domain
from kumo.identity.errors import not_found
from kumo.identity.service import domains as svc

api = API()


@api.route("/v3/domains", "GET", "HEAD")
def list_domains(call: Call):
    only = call.ctx.domain_id
    enforce(call, "list_domains", {"domain_id": only} if only else None)
    q = call.query
    domains = svc.list_domains(ident(call), q.get("name"), query_bool(q.get("enabled")))
    if only:
        domains = [d for d in domains if d.id == only]
    return collection(call, "domains", domains, lambda d: render_domain(call, d))


@api.route("/v3/domains", "POST", status=201)
def create_domain(call: Call):
    enforce(call, "create_domain")
    return {"domain": render_domain(call, svc.create_domain(ident(call), call.body))}


@api.route("/v3/domains/{domain_id}", "GET", "HEAD")
def show_domain(call: Call):
    domain_id = call.params["domain_id"]
    enforce(call, "get_domain", {"domain_id": domain_id})
    return {"domain": render_domain(call, svc.show_domain(ident(call), domain_id))}


@api.route("/v3/domains/{domain_id}", "PATCH")
def update_domain(call: Call):
    domain_id = call.params["domain_id"]
    enforce(call, "update_domain", {"domain_id": domain_id})
    domain = svc.update_domain(ident(call), call.request.app.state.tokens, domain_id, call.body)
    return {"domain": render_domain(call, domain)}


@api.route("/v3/domains/{domain_id}", "DELETE")
def delete_domain(call: Call):
    domain_id = call.params["domain_id"]
    enforce(call, "delete_domain", {"domain_id": domain_id})
    if svc.find_domain(ident(call), domain_id) is None:
        raise not_found("domain", domain_id)
    svc.delete_domain(ident(call), call.request.app.state.tokens, domain_id)
    return None
