"""Identity: admin pages (domains, projects, users, groups, roles, assignments) and the current
user's application credentials (with a clouds.yaml snippet and an openrc to download)."""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass
from typing import Any

import yaml
from starlette.responses import Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError, Cloud
from kumo.dashboard.web import FormErrors, Page, field_errors, page


@dataclass(frozen=True, slots=True)
class Kind:
    """One identity collection: its URL, JSON keys, and the fields of its create form."""

    path: str  # "projects"
    one: str  # "project"
    title: str  # "Projects"
    fields: tuple[tuple[str, str, str], ...]  # (name, label, type)


KINDS = {
    "domains": Kind("domains", "domain", "Domains", (("name", "Name", "text"), ("description", "Description", "text"))),
    "projects": Kind("projects", "project", "Projects", (("name", "Name", "text"), ("description", "Description", "text"),
                                                         ("domain_id", "Domain", "domain"))),
    "users": Kind("users", "user", "Users", (("name", "Name", "text"), ("password", "Password", "password"),
                                             ("email", "Email", "email"), ("domain_id", "Domain", "domain"),
                                             ("default_project_id", "Primary project", "project"))),
    "groups": Kind("groups", "group", "Groups", (("name", "Name", "text"), ("description", "Description", "text"),
                                                 ("domain_id", "Domain", "domain"))),
    "roles": Kind("roles", "role", "Roles", (("name", "Name", "text"),)),
}


async def _rows(cloud: Cloud, kind: Kind) -> list[dict[str, Any]]:
    body = await cloud.get("identity", f"/{kind.path}")
    return sorted(body.get(kind.path, []), key=lambda r: (r.get("name") or "").lower())


async def _choices(cloud: Cloud, kind: Kind) -> dict[str, list[tuple[str, str]]]:
    wanted = {t for _, _, t in kind.fields if t in ("domain", "project")}
    out: dict[str, list[tuple[str, str]]] = {}
    if "domain" in wanted:
        out["domain"] = [(d["id"], d["name"]) for d in await _rows(cloud, KINDS["domains"])]
    if "project" in wanted:
        out["project"] = [(p["id"], p["name"]) for p in await _rows(cloud, KINDS["projects"])]
    return out


def _kind(p: Page) -> Kind:
    kind = KINDS.get(p.params["kind"])
    if kind is None:
        raise ApiError(404, "No such identity page.", "identity")
    return kind


async def _list_page(p: Page, kind: Kind, status: int = 200, errors: dict[str, str] | None = None,
                     values: dict[str, str] | None = None) -> Response:
    rows, choices = await asyncio.gather(_rows(p.cloud, kind), _choices(p.cloud, kind))
    domains = dict(choices.get("domain", []))
    return p.render("identity/list.html", status=status, kind=kind, rows=rows, choices=choices, domains=domains,
                    errors=errors or {}, values=values or {"domain_id": "default"})


@page(admin=True)
async def collection(p: Page) -> Response:
    return await _list_page(p, _kind(p))


@page(admin=True)
async def create(p: Page) -> Response:
    kind = _kind(p)
    form = await p.form()
    if not form["name"]:
        return await _list_page(p, kind, 400, {"name": "A name is required."}, form.values())
    body: dict[str, Any] = {}
    for name, _label, _type in kind.fields:
        if form[name]:
            body[name] = form.raw(name) if name == "password" else form[name]
    try:
        created = (await p.cloud.post("identity", f"/{kind.path}", {kind.one: body}))[kind.one]
    except ApiError as err:
        return await _list_page(p, kind, 400, field_errors(err, [f for f, _, _ in kind.fields]), form.values())
    return p.redirect(f"/identity/{kind.path}/{created['id']}", notice=f"Created {kind.one} {created.get('name')}")


async def _assignments(cloud: Cloud, **scope: str) -> list[dict[str, Any]]:
    params = {"include_names": "true", **scope}
    return (await cloud.get("identity", "/role_assignments", params=params)).get("role_assignments", [])


async def _detail(p: Page, kind: Kind, status: int = 200, errors: dict[str, str] | None = None) -> Response:
    cloud = p.cloud
    oid = p.params["id"]
    item = (await cloud.get("identity", f"/{kind.path}/{oid}"))[kind.one]
    extra: dict[str, Any] = {}
    if kind.path == "projects":
        extra["assignments"], users, groups, roles = await asyncio.gather(
            _assignments(cloud, **{"scope.project.id": oid}), _rows(cloud, KINDS["users"]),
            _rows(cloud, KINDS["groups"]), _rows(cloud, KINDS["roles"]))
        extra["actors"] = [(f"user:{u['id']}", f"user {u['name']}") for u in users] + \
                          [(f"group:{g['id']}", f"group {g['name']}") for g in groups]
        extra["roles"] = [(r["id"], r["name"]) for r in roles]
    elif kind.path == "users":
        extra["assignments"], extra["groups"] = await asyncio.gather(
            _assignments(cloud, **{"user.id": oid}),
            cloud.get("identity", f"/users/{oid}/groups"))
        extra["groups"] = extra["groups"].get("groups", [])
    elif kind.path == "groups":
        members, users = await asyncio.gather(cloud.get("identity", f"/groups/{oid}/users"), _rows(cloud, KINDS["users"]))
        extra["members"] = members.get("users", [])
        ids = {u["id"] for u in extra["members"]}
        extra["candidates"] = [(u["id"], u["name"]) for u in users if u["id"] not in ids]
    return p.render("identity/detail.html", status=status, kind=kind, item=item, errors=errors or {}, **extra)


@page(admin=True)
async def detail(p: Page) -> Response:
    return await _detail(p, _kind(p))


@page(admin=True)
async def update(p: Page) -> Response:
    kind = _kind(p)
    oid = p.params["id"]
    form = await p.form()
    cloud = p.cloud
    op = form["op"]
    try:
        if op == "delete":
            if kind.path == "domains":  # Keystone deletes only disabled domains
                await cloud.patch("identity", f"/domains/{oid}", {"domain": {"enabled": False}})
            await cloud.delete("identity", f"/{kind.path}/{oid}")
            return p.redirect(f"/identity/{kind.path}", notice=f"Deleted the {kind.one}")
        if op in ("enable", "disable"):
            await cloud.patch("identity", f"/{kind.path}/{oid}", {kind.one: {"enabled": op == "enable"}})
        elif op in ("grant", "revoke") and kind.path == "projects":
            actor, role = form["actor"], form["role"]
            if ":" not in actor or not role:
                raise FormErrors({"actor": "Choose a user or group and a role."})
            who, aid = actor.split(":", 1)
            path = f"/projects/{oid}/{'users' if who == 'user' else 'groups'}/{aid}/roles/{role}"
            await cloud.request("identity", "PUT" if op == "grant" else "DELETE", path)
        elif op in ("add-member", "remove-member") and kind.path == "groups":
            if not form["user_id"]:
                raise FormErrors({"user_id": "Choose a user."})
            await cloud.request("identity", "PUT" if op == "add-member" else "DELETE", f"/groups/{oid}/users/{form['user_id']}")
        elif op == "password" and kind.path == "users":
            if not form.raw("password"):
                raise FormErrors({"password": "Enter the new password."})
            await cloud.patch("identity", f"/users/{oid}", {"user": {"password": form.raw("password")}})
        else:
            raise FormErrors({"": f"Unknown operation {op!r}."})
    except FormErrors as err:
        return await _detail(p, kind, 400, err.errors)
    except ApiError as err:
        field = {"grant": "actor", "revoke": "actor", "add-member": "user_id", "password": "password"}.get(op, "")
        return await _detail(p, kind, 400, {field: err.message})
    return p.redirect(f"/identity/{kind.path}/{oid}", notice="Saved")


# -- application credentials ------------------------------------------------------------------


async def _app_creds(p: Page) -> list[dict[str, Any]]:
    uid = p.session.user["id"]  # type: ignore[union-attr]
    body = await p.cloud.get("identity", f"/users/{uid}/application_credentials")
    return sorted(body.get("application_credentials", []), key=lambda c: c.get("name", ""))


@page()
async def app_creds(p: Page) -> Response:
    return p.render("identity/app_creds.html", creds=await _app_creds(p), errors={}, values={}, created=None)


@page()
async def app_cred_create(p: Page) -> Response:
    assert p.session is not None
    form = await p.form()
    errors: dict[str, str] = {}
    if not form["name"]:
        errors["name"] = "Give the credential a name."
    body: dict[str, Any] = {"name": form["name"]}
    if form["description"]:
        body["description"] = form["description"]
    if form["expires_at"]:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?)?", form["expires_at"]):
            errors["expires_at"] = "Use the form YYYY-MM-DD or YYYY-MM-DDTHH:MM."
        body["expires_at"] = form["expires_at"] if "T" in form["expires_at"] else form["expires_at"] + "T23:59:59"
    created = None
    if not errors:
        try:
            created = (await p.cloud.post("identity", f"/users/{p.session.user['id']}/application_credentials",
                                          {"application_credential": body}))["application_credential"]
        except ApiError as err:
            errors = field_errors(err, ["name", "description", "expires_at"])
    return p.render("identity/app_creds.html", status=400 if errors else 201, creds=await _app_creds(p),
                    errors=errors, values=form.values(), created=created)


@page()
async def app_cred_delete(p: Page) -> Response:
    assert p.session is not None
    await p.cloud.delete("identity", f"/users/{p.session.user['id']}/application_credentials/{p.params['id']}")
    return p.redirect("/identity/application-credentials", notice="Deleted the application credential")


def _auth_url(p: Page) -> tuple[str, str]:
    assert p.session is not None
    for entry in p.session.catalog:
        if entry.get("type") == "identity":
            for ep in entry.get("endpoints", []):
                if ep.get("interface") == "public":
                    return str(ep["url"]).rstrip("/"), ep.get("region_id") or ep.get("region") or "RegionOne"
    return p.identity_url.rstrip("/") + "/v3", "RegionOne"


def clouds_yaml(name: str, auth_url: str, region: str, cred_id: str, secret: str) -> str:
    return yaml.safe_dump({"clouds": {name: {
        "auth_type": "v3applicationcredential",
        "auth": {"auth_url": auth_url, "application_credential_id": cred_id,
                 "application_credential_secret": secret},
        "region_name": region, "interface": "public", "identity_api_version": 3,
    }}}, sort_keys=False)


def openrc(auth_url: str, region: str, cred_id: str, secret: str) -> str:
    lines = {"OS_AUTH_TYPE": "v3applicationcredential", "OS_AUTH_URL": auth_url,
             "OS_APPLICATION_CREDENTIAL_ID": cred_id, "OS_APPLICATION_CREDENTIAL_SECRET": secret,
             "OS_REGION_NAME": region, "OS_INTERFACE": "public", "OS_IDENTITY_API_VERSION": "3"}
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in lines.items())


@page()
async def app_cred_download(p: Page) -> Response:
    """The secret is shown once; the browser posts it back to turn it into a file."""
    form = await p.form()
    cred_id, secret, fmt = form["id"], form.raw("secret"), form["format"]
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", cred_id) or not secret:
        raise FormErrors({"": "The credential id or secret is missing."})
    auth_url, region = _auth_url(p)
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", form["name"] or "appcred")
    if fmt == "openrc":
        text, filename = openrc(auth_url, region, cred_id, secret), f"{name}-openrc.sh"
    else:
        text, filename = clouds_yaml(f"kumo-{name}", auth_url, region, cred_id, secret), "clouds.yaml"
    return Response(text, media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"})


ROUTES = [
    Route("/identity/application-credentials", app_creds, methods=["GET"]),
    Route("/identity/application-credentials", app_cred_create, methods=["POST"]),
    Route("/identity/application-credentials/download", app_cred_download, methods=["POST"]),
    Route("/identity/application-credentials/{id}/delete", app_cred_delete, methods=["POST"]),
    Route("/identity/{kind}", collection, methods=["GET"]),
    Route("/identity/{kind}", create, methods=["POST"]),
    Route("/identity/{kind}/{id}", detail, methods=["GET"]),
    Route("/identity/{kind}/{id}", update, methods=["POST"]),
]
