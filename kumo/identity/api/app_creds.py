"""Identity API: app_creds."""

from __future__ import annotations

from kumo.common.asgi import API

api = API()
