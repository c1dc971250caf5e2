"""Identity API: catalog."""

from __future__ import annotations

from kumo.common.asgi import API

api = API()
