"""Swift's error responses: a status and a short HTML body."""

from __future__ import annotations

from http import HTTPStatus

DEFAULT_MESSAGES = {
    400: "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method is not allowed for this resource.",
    408: "The server has waited too long for the request to be sent by the client.",
    409: "There was a conflict when trying to complete your request.",
    411: "Length Required",
    412: "A precondition for this request was not met.",
    413: "The body of your request was too large for this server.",
    416: "The Range requested is not available.",
    422: "The entity could not be processed.",
    499: "The client disconnected during request.",
    500: "An error occurred while processing the request.",
    501: "The server does not implement the request method.",
    503: "The server is currently unavailable. Please try again at a later time.",
}


def reason(status: int) -> str:
    if status == 499:
        return "Client Disconnect"
    if status == 422:
        return "Unprocessable Entity"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class SwiftError(Exception):
    """Raised anywhere in the proxy or a node; rendered as Swift renders errors."""

    def __init__(
        self, status: int, message: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.message = message
        self.headers = headers or {}
        super().__init__(message or reason(status))

    def body(self) -> bytes:
        if self.message is not None:
            return self.message.encode()
        text = DEFAULT_MESSAGES.get(self.status, reason(self.status))
        return f"<html><h1>{reason(self.status)}</h1><p>{text}</p></html>".encode()
