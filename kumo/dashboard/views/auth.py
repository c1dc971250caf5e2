"""Log in (domain, user, password), switch project (a rescoped token), log out (token revoked)."""

from __future__ import annotations

import hmac
from typing import Any

import httpx
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError, error_message
from kumo.dashboard.sessions import COOKIE, LOGIN_CSRF_COOKIE
from kumo.dashboard.web import Page, is_https, login_csrf, page, run_sync, set_session_cookie


async def _issue(http: httpx.AsyncClient, identity_url: str, auth: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    r = await http.post(identity_url + "/v3/auth/tokens", json={"auth": auth})
    if r.status_code != 201:
        raise ApiError(r.status_code, error_message(r), "identity")
    return r.headers["X-Subject-Token"], r.json()["token"]


async def _revoke(http: httpx.AsyncClient, identity_url: str, token: str) -> None:
    r = await http.delete(identity_url + "/v3/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    if r.status_code not in (204, 404, 401):
        raise ApiError(r.status_code, error_message(r), "identity")


async def user_projects(http: httpx.AsyncClient, identity_url: str, token: str) -> list[dict[str, Any]]:
    r = await http.get(identity_url + "/v3/auth/projects", headers={"X-Auth-Token": token})
    if r.status_code != 200:
        return []
    projects = [p for p in r.json().get("projects", []) if p.get("enabled", True)]
    return sorted(projects, key=lambda p: p.get("name", ""))


def _safe_next(p: Page, nxt: str) -> str:
    # only paths inside the dashboard: never an open redirect
    if nxt.startswith(p.base + "/") and not nxt.startswith("//") and "\\" not in nxt:
        return nxt
    return p.base + "/"


def _login_page(p: Page, status: int = 200, **values: Any) -> Response:
    token = login_csrf(p.request)
    response = p.render("login.html", status=status, login_csrf=token, next=p.query.get("next", ""), **values)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=is_https(p.request), path=p.base or "/")
    return response


@page(login=False)
async def login_form(p: Page) -> Response:
    return _login_page(p)


@page(login=False)
async def login(p: Page) -> Response:
    form = await p.form()
    cookie = p.request.cookies.get(LOGIN_CSRF_COOKIE, "")
    values = {"domain": form["domain"] or "Default", "username": form["username"]}
    if not cookie or not hmac.compare_digest(cookie, form["csrf_token"]):
        return _login_page(p, status=403, values=values,
                           errors={"": "The form's CSRF token is missing or invalid. Reload the page and try again."})
    errors = {k: "This field is required." for k in ("username", "password") if not form[k]}
    if errors:
        return _login_page(p, status=400, values=values, errors=errors)
    domain = values["domain"]
    user: dict[str, Any] = {"name": values["username"], "password": form.raw("password")}
    user["domain"] = {"id": domain} if domain == "default" else {"name": domain}
    try:
        token, body = await _issue(p.http, p.identity_url, {"identity": {"methods": ["password"], "password": {"user": user}}})
    except ApiError as err:
        msg = "Invalid domain, user name or password." if err.status == 401 else err.message
        return _login_page(p, status=401 if err.status == 401 else 400, values=values, errors={"password": msg})
    projects = await user_projects(p.http, p.identity_url, token)
    if projects:  # scope to the first project, then drop the unscoped token
        scoped, body = await _issue(p.http, p.identity_url, {
            "identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": {"id": projects[0]["id"]}},
        })
        await _revoke(p.http, p.identity_url, token)
        token = scoped
    sid, _session = await run_sync(p.store.create, token, body)
    response = RedirectResponse(_safe_next(p, form["next"]), status_code=303)
    set_session_cookie(response, p.request, sid, p.base)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=p.base or "/")
    return response


@page()
async def logout(p: Page) -> Response:
    assert p.session is not None
    await _revoke(p.http, p.identity_url, p.session.token)
    await run_sync(p.store.delete, p.session)
    response = RedirectResponse(p.base + "/login?notice=Logged+out", status_code=303)
    response.delete_cookie(COOKIE, path=p.base or "/")
    return response


@page()
async def projects_menu(p: Page) -> Response:
    assert p.session is not None
    projects = await user_projects(p.http, p.identity_url, p.session.token)
    return p.render("_projects.html", projects=projects)


@page()
async def switch_project(p: Page) -> Response:
    assert p.session is not None
    form = await p.form()
    old = p.session.token
    token, body = await _issue(p.http, p.identity_url, {
        "identity": {"methods": ["token"], "token": {"id": old}},
        "scope": {"project": {"id": form["project_id"]}},
    })
    await run_sync(p.store.replace_token, p.session, token, body)
    await _revoke(p.http, p.identity_url, old)
    return p.redirect("/", notice=f"Switched to project {body.get('project', {}).get('name', '')}")


ROUTES = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/projects", projects_menu, methods=["GET"]),
    Route("/switch-project", switch_project, methods=["POST"]),
]
