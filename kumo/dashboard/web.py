"""Request plumbing shared by every view: sessions, CSRF, forms, templates, errors.

A view is ``async def view(req: Page) -> Response`` registered with :func:`page`; the
wrapper loads the session (or redirects to the login page), checks the CSRF token on
every state-changing request, and turns API errors into pages.
"""

from __future__ import annotations

import functools
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import httpx
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from kumo.dashboard.client import ApiError, Cloud, ServiceUnavailable
from kumo.dashboard.sessions import COOKIE, LOGIN_CSRF_COOKIE, Session, SessionStore

log = logging.getLogger("kumo.dashboard")

TEMPLATES = Path(__file__).parent / "templates"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES = 1 << 20  # forms carry names and user data, never files (uploads are streamed)


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["filesize"] = filesize
    env.filters["q"] = lambda s: quote(str(s), safe="")
    return env


def filesize(n: Any) -> str:
    try:
        size = float(n)
    except (TypeError, ValueError):
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


class Form:
    """An urlencoded form: ``form["name"]`` (stripped, "" when absent), ``form.all("k")``."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self.data = data

    def __getitem__(self, key: str) -> str:
        values = self.data.get(key) or [""]
        return values[0].strip()

    def raw(self, key: str) -> str:
        return (self.data.get(key) or [""])[0]

    def all(self, key: str) -> list[str]:
        return [v for v in self.data.get(key, []) if v.strip()]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def values(self) -> dict[str, str]:
        return {k: v[0] for k, v in self.data.items() if v and k != "csrf_token"}


class FormErrors(Exception):
    """Validation failed before (or after) calling the API: re-render the form with these."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def field_errors(err: ApiError, fields: Iterable[str]) -> dict[str, str]:
    """Put an API error next to the field it names (else at the top of the form, key "")."""
    text = err.message.lower().replace("-", "_")
    for name in fields:
        aliases = {name, name.replace("-", "_"), name.replace("_", " ")}
        if any(a and a in text for a in aliases):
            return {name: err.message}
    return {"": err.message}


@dataclass
class Page:
    """What a view gets: the request, the session, an API client and a renderer."""

    request: Request
    session: Session | None
    http: httpx.AsyncClient
    templates: Environment
    store: SessionStore
    settings: Any
    identity_url: str
    _form: Form | None = None
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def cloud(self) -> Cloud:
        assert self.session is not None
        return Cloud(self.http, self.session, self.identity_url)

    @property
    def base(self) -> str:
        return str(self.request.scope.get("root_path", "")).rstrip("/")

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    @property
    def params(self) -> Any:
        return self.request.path_params

    @property
    def query(self) -> Any:
        return self.request.query_params

    async def form(self) -> Form:
        if self._form is None:
            data = b""
            async for chunk in self.request.stream():
                data += chunk
                if len(data) > MAX_FORM_BYTES:
                    raise FormErrors({"": "The form is too large."})
            self._form = Form(parse_qs(data.decode("utf-8", "replace"), keep_blank_values=True))
        return self._form

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(**self.template_globals(), **values)
        return HTMLResponse(html, status_code=status)

    def template_globals(self) -> dict[str, Any]:
        s = self.session
        return {
            "base": self.base,
            "session": s,
            "csrf": s.csrf if s else "",
            "path": self.request.url.path,
            "notice": self.query.get("notice", ""),
            "has_volume": bool(s and s.endpoint("block-storage", "volumev3", "volume")),
            "has_object": bool(s and s.endpoint("object-store")),
            **self.context,
        }

    def redirect(self, path: str, notice: str = "") -> Response:
        url = self.base + path
        if notice:
            url += ("&" if "?" in url else "?") + urlencode({"notice": notice})
        if self.is_htmx:
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)


View = Callable[[Page], Awaitable[Response]]


def page(*, login: bool = True, admin: bool = False) -> Callable[[View], Callable[[Request], Awaitable[Response]]]:
    def decorate(view: View) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(view)
        async def endpoint(request: Request) -> Response:
            st = request.app.state
            p = Page(request, None, st.http, st.templates, st.store, st.settings, st.identity_url)
            if login:
                p.session = await _session(request, st.store)
                if p.session is None:
                    return _to_login(p)
                if request.method in UNSAFE and not await _csrf_ok(p):
                    return p.render("error.html", status=403, title="Forbidden",
                                    message="The form's CSRF token is missing or invalid. Reload the page and try again.")
                if admin and not p.session.is_admin:
                    return p.render("error.html", status=403, title="Forbidden",
                                    message="This page is for administrators only.")
            try:
                return await view(p)
            except FormErrors as err:
                return p.render("error.html", status=400, title="Bad request", message=str(err))
            except ServiceUnavailable as err:
                return p.render("error.html", status=503, title="Not available", message=err.message)
            except ApiError as err:
                if err.status == 401 and login:
                    if p.session is not None:
                        await _run(st.store.delete, p.session)
                    return _to_login(p)
                status = err.status if 400 <= err.status < 600 else 502
                return p.render("error.html", status=status, title=f"Error {err.status}", message=err.message)
            except httpx.HTTPError as err:
                log.warning("dashboard: API unreachable: %s", err)
                return p.render("error.html", status=502, title="API unreachable",
                                message="The cloud's API did not answer; try again shortly.")

        return endpoint

    return decorate


async def _run(fn: Callable[..., Any], *args: Any) -> Any:
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args))


async def _session(request: Request, store: SessionStore) -> Session | None:
    sid = request.cookies.get(COOKIE)
    if not sid:
        return None
    return await _run(store.load, sid)


async def _csrf_ok(p: Page) -> bool:
    assert p.session is not None
    presented = p.request.headers.get("x-csrf-token")
    ctype = p.request.headers.get("content-type", "")
    if not presented and ctype.startswith("application/x-www-form-urlencoded"):
        try:
            presented = (await p.form())["csrf_token"]
        except FormErrors:
            return False
    return p.session.csrf_ok(presented)


def _to_login(p: Page) -> Response:
    nxt = p.request.url.path
    if p.request.url.query:
        nxt += "?" + p.request.url.query
    url = p.base + "/login?" + urlencode({"next": nxt})
    if p.is_htmx:
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def set_session_cookie(response: Response, request: Request, sid: str, path: str) -> None:
    response.set_cookie(
        COOKIE, sid, httponly=True, samesite="lax", secure=is_https(request), path=path or "/"
    )


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def login_csrf(request: Request) -> str:
    return request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)


def run_sync(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    return _run(fn, *args)
