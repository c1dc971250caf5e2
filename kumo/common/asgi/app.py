"""The service app factory and the parse -> call -> render routing helper."""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import DataError, IntegrityError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from kumo.common.asgi.faults import Renderer
from kumo.common.asgi.middleware import AuthMiddleware, RequestIdMiddleware
from kumo.common.auth import TokenValidator
from kumo.common.context import RequestContext
from kumo.common.errors import APIError, BadRequest, Conflict, MethodNotAllowed, NotFound, Unauthorized

log = logging.getLogger("kumo.http")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@dataclass(slots=True)
class Call:
    """What a handler gets: the parsed request and who is asking."""

    request: Request
    ctx: RequestContext
    body: Any
    params: Mapping[str, str]

    @property
    def query(self) -> Any:
        return self.request.query_params

    @property
    def headers(self) -> Any:
        return self.request.headers

    @property
    def base_url(self) -> str:
        """The service's root URL as the client reached it (mount prefix included), no trailing slash."""
        url = self.request.url
        return f"{url.scheme}://{url.netloc}{self.request.scope.get('root_path', '')}".rstrip("/")

    def url(self, path: str) -> str:
        return self.base_url + path


Handler = Callable[[Call], Any]


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":"), default=str).encode(),
        status_code=status,
        headers=dict(headers or {}),
        media_type="application/json",
    )


def no_content(headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=dict(headers or {}))


class API:
    """A list of routes built with a decorator: ``@api.route("/v3/users", "GET")``."""

    def __init__(self) -> None:
        self.routes: list[BaseRoute] = []

    def route(
        self, path: str, *methods: str, public: bool = False, status: int = 200, raw: bool = False
    ) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            self.routes.append(
                Route(path, _endpoint(handler, public=public, status=status, raw=raw), methods=list(methods))
            )
            return handler

        return decorate

    def websocket(self, path: str) -> Callable[[Callable[[Any], Awaitable[None]]], Callable[[Any], Awaitable[None]]]:
        """A websocket route: the handler gets Starlette's ``WebSocket`` and authenticates the
        peer itself (no token middleware runs for websockets); it must accept or close."""

        def decorate(handler: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
            self.routes.append(WebSocketRoute(path, handler))
            return handler

        return decorate


def _endpoint(handler: Handler, *, public: bool, status: int, raw: bool) -> Callable[[Request], Awaitable[Response]]:
    is_async = inspect.iscoroutinefunction(handler)

    async def endpoint(request: Request) -> Response:
        renderer: Renderer = request.app.state.renderer
        try:
            state = request.scope.get("state", {})
            ctx: RequestContext = state.get("context") or RequestContext()
            if not public and not ctx.authenticated:
                if "auth_error" in state:
                    raise state["auth_error"]
                raise Unauthorized(
                    "The request you have made requires authentication.",
                    headers={"WWW-Authenticate": f'Keystone uri="{request.app.state.auth_uri}"'},
                )
            body = None
            if not raw and request.method in _BODY_METHODS:
                data = await request.body()
                if data.strip():
                    try:
                        body = json.loads(data)
                    except (ValueError, UnicodeDecodeError):
                        raise BadRequest("Malformed request body: the body is not valid JSON.") from None
            call = Call(request, ctx, body, request.path_params)
            if is_async:
                result = await handler(call)
            else:
                result = await anyio.to_thread.run_sync(handler, call)
        except APIError as err:
            return error_response(err, renderer)
        except DataError:
            # Input the database cannot store (e.g. NUL in PostgreSQL text): the client's fault.
            return error_response(BadRequest("The request contains a value that cannot be stored."), renderer)
        except IntegrityError:
            # A concurrent request won a uniqueness race that the service checked for beforehand.
            return error_response(Conflict("The request conflicts with the current state of the resource."), renderer)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return error_response(APIError("An unexpected error prevented the server from fulfilling your request."), renderer)
        if isinstance(result, Response):
            return result
        if result is None:
            return no_content()
        return json_response(result, status)

    return endpoint


def error_response(err: APIError, renderer: Renderer) -> Response:
    body, media_type = renderer(err)
    headers = dict(err.headers)
    return Response(body, status_code=err.status, headers=headers, media_type=media_type)


def create_service_app(
    *,
    api: API,
    renderer: Renderer,
    validator: TokenValidator,
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]] | None = None,
    request_id_header: str | None = None,
    auth_uri: str = "",
    state: Mapping[str, Any] | None = None,
) -> Any:
    """An ASGI app for one service: routes, fault wrapper, token auth and request ids.

    The returned object is the outermost middleware; the Starlette app (whose
    ``router.lifespan_context`` the launcher enters) is at ``.starlette``.
    """

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err: APIError = NotFound("The resource could not be found.")
        elif exc.status_code == 405:
            err = MethodNotAllowed("The method is not allowed for the requested URL.")
        else:
            err = APIError(str(exc.detail), status=exc.status_code)
        return error_response(err, renderer)

    @contextlib.asynccontextmanager
    async def _no_lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(
        routes=api.routes,
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan or _no_lifespan,
    )
    app.state.renderer = renderer
    app.state.auth_uri = auth_uri
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    outer = RequestIdMiddleware(AuthMiddleware(app, validator), extra_header=request_id_header)
    outer.starlette = app  # type: ignore[attr-defined]
    return outer
