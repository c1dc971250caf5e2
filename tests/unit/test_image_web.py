"""web-download URI filtering: scheme, port, allow/deny lists and non-public addresses."""

from __future__ import annotations

import pytest

from kumo.common.config import ImageSettings
from kumo.image.errors import BadRequest
from kumo.image.service.web import check_uri

PUBLIC = {"example.org": ["93.184.215.14"], "dual.example": ["2606:4700::1111", "93.184.215.14"]}


def resolver(table):  # type: ignore[no-untyped-def]
    return lambda host: table.get(host, [])


def check(uri, **settings):  # type: ignore[no-untyped-def]
    table = {
        **PUBLIC,
        "localhost": ["127.0.0.1", "::1"],
        "intranet.example": ["10.1.2.3"],
        "mixed.example": ["93.184.215.14", "192.168.1.5"],
        "metadata.example": ["169.254.169.254"],
        "mapped.example": ["::ffff:127.0.0.1"],
    }
    return check_uri(uri, ImageSettings(**settings), resolver=resolver(table))


@pytest.mark.parametrize(
    "uri", ["http://example.org/a.img", "https://example.org/a.img", "http://dual.example/x"]
)
def test_public_http_urls_pass(uri):
    assert check(uri) == uri


@pytest.mark.parametrize(
    "uri, why",
    [
        ("ftp://example.org/a.img", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://example.org/", "scheme"),
        ("http://example.org:8080/a.img", "port 8080"),
        ("http://localhost/a.img", "non-public"),
        ("http://127.0.0.1/a.img", "cannot be resolved"),  # not in the fake resolver
        ("http://intranet.example/a", "non-public"),
        ("http://mixed.example/a", "non-public"),
        ("http://metadata.example/latest", "non-public"),
        ("http://mapped.example/", "non-public"),
        ("http://user:pw@example.org/a", "credentials"),
        ("http:///nohost", "no host"),
        ("http://does-not.exist/no/possible/way", "cannot be resolved"),
        ("http://example.org:99999/", "not a valid URL"),
    ],
)
def test_refused(uri, why):
    with pytest.raises(BadRequest) as err:
        check(uri)
    assert "does not pass filtering" in err.value.message and why in err.value.message


def test_not_a_string():
    for bad in (None, 5, "", ["http://example.org"]):
        with pytest.raises(BadRequest):
            check(bad)


def test_allow_and_deny_lists():
    assert check("http://localhost:8123/a", web_download_allow_hosts=["localhost"])
    with pytest.raises(BadRequest):
        check("http://example.org/a", web_download_deny_hosts=["example.org"])
    with pytest.raises(BadRequest):
        check("http://example.org/a", web_download_deny_hosts=["93.184.215.14"])
    assert check("http://example.org:8080/a", web_download_allowed_ports=[8080])
