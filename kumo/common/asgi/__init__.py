"""HTTP plumbing every kumo service shares: app factory, routing, middleware, faults."""

from kumo.common.asgi.app import API, Call, create_service_app, json_response, no_content

__all__ = ["API", "Call", "create_service_app", "json_response", "no_content"]
