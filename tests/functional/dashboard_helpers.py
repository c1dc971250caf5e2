"""Helpers for the dashboard tests: an httpx browser-like session and the Chromium launcher."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
]
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


class Web:
    """A cookie-keeping client on ``<cloud>/dashboard`` that logs in like a browser."""

    def __init__(self, cloud_url: str) -> None:
        self.base = cloud_url + "/dashboard"
        self.http = httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)
        self.csrf = ""

    def close(self) -> None:
        self.http.close()

    def login(self, username: str, password: str, domain: str = "Default", expect: int = 303) -> httpx.Response:
        page = self.http.get("/login")
        assert page.status_code == 200, page.text
        token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
        r = self.http.post("/login", data={"csrf_token": token, "domain": domain, "username": username,
                                           "password": password, "next": ""})
        assert r.status_code == expect, r.text[-2000:]
        if expect == 303:
            self.refresh_csrf()
        return r

    def refresh_csrf(self) -> None:
        page = self.http.get("/")
        m = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
        assert m, page.text[-2000:]
        self.csrf = m.group(1)

    def get(self, path: str, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
        return self.http.get(path, **kw)

    def post(self, path: str, data: dict | None = None, csrf: bool = True) -> httpx.Response:
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.csrf
        return self.http.post(path, data=body)


def chromium_or_skip() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e .[dev])")
    return CHROMIUM
