"""Errors every layer raises; each service renders them in its own wire format."""

from __future__ import annotations

from http import HTTPStatus


class APIError(Exception):
    """An error with an HTTP status and an OpenStack fault name.

    ``fault`` is the name upstream uses in the body: Nova/Cinder's ``itemNotFound``,
    Neutron's ``NetworkNotFound`` and so on. ``headers`` go out with the response.
    """

    status: int = 500
    fault: str = "computeFault"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        fault: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if status is not None:
            self.status = status
        if fault is not None:
            self.fault = fault
        self.message = message or HTTPStatus(self.status).phrase
        self.headers = headers or {}
        super().__init__(self.message)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase


class BadRequest(APIError):
    status, fault = 400, "badRequest"


class Unauthorized(APIError):
    status, fault = 401, "unauthorized"


class Forbidden(APIError):
    status, fault = 403, "forbidden"


class NotFound(APIError):
    status, fault = 404, "itemNotFound"


class MethodNotAllowed(APIError):
    status, fault = 405, "methodNotAllowed"


class NotAcceptable(APIError):
    status, fault = 406, "notAcceptable"


class Conflict(APIError):
    status, fault = 409, "conflictingRequest"


class Gone(APIError):
    status, fault = 410, "gone"


class PreconditionFailed(APIError):
    status, fault = 412, "preconditionFailed"


class PayloadTooLarge(APIError):
    status, fault = 413, "overLimit"


class UnsupportedMediaType(APIError):
    status, fault = 415, "unsupportedMediaType"


class NotImplementedYet(APIError):
    status, fault = 501, "notImplemented"


class ServiceUnavailable(APIError):
    status, fault = 503, "serviceUnavailable"
