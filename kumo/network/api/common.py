"""Shared HTTP helpers: the service from the app state, list queries, links, If-Match."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from kumo.common.asgi import Call
from kumo.network.errors import bad
from kumo.network.service import NetworkService
from kumo.network.service.query import ListQuery, matches, page, select_fields, sort_items


def svc(call: Call) -> NetworkService:
    return call.request.app.state.network  # type: ignore[no-any-return]


def if_match(call: Call) -> str | None:
    return call.headers.get("if-match")


def list_response(call: Call, collection: str, kind: str, items: list[dict[str, Any]],
                  casefold: tuple[str, ...] = ()) -> dict[str, Any]:
    """Filter, sort, page and trim ``items`` as the query asks; add ``<collection>_links``.
    ``casefold`` attributes match case-insensitively (as upstream's MySQL collation does)."""
    qp = call.query
    q = ListQuery.parse(qp.getlist, list(qp.keys()))
    for key in casefold:
        if key in q.filters:
            wanted = {w.lower() for w in q.filters.pop(key)}
            items = [it for it in items if str(it.get(key, "")).lower() in wanted]
    items = [it for it in items if matches(it, q)]
    if q.sort or q.limit is not None or q.marker:
        items = sort_items(items, q)
    chunk, more_after, more_before = page(items, q, kind)
    body: dict[str, Any] = {collection: [select_fields(it, q.fields) for it in chunk]}
    if q.limit is not None:
        links = []
        base = str(call.request.url).split("?", 1)[0]
        params = [(k, v) for k, v in qp.multi_items() if k not in ("marker", "page_reverse")]
        if chunk and (more_after if not q.page_reverse else more_before):
            marker = chunk[-1]["id"] if not q.page_reverse else chunk[0]["id"]
            extra = [("marker", marker)] + ([("page_reverse", "True")] if q.page_reverse else [])
            links.append({"rel": "next", "href": f"{base}?{urlencode(params + extra)}"})
        if chunk and (more_before if not q.page_reverse else more_after) and q.marker:
            marker = chunk[0]["id"] if not q.page_reverse else chunk[-1]["id"]
            extra = [("marker", marker)] + ([] if q.page_reverse else [("page_reverse", "True")])
            links.append({"rel": "previous", "href": f"{base}?{urlencode(params + extra)}"})
        if links:
            body[f"{collection}_links"] = links
    return body


def show_response(call: Call, key: str, item: dict[str, Any]) -> dict[str, Any]:
    fields = [f for v in call.query.getlist("fields") for f in v.split(",") if f]
    return {key: select_fields(item, fields)}


def inner(call: Call, key: str) -> dict[str, Any]:
    body = call.body
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad(f"Resource body required: expected a JSON object with key '{key}'.")
    if len(body) != 1:
        raise bad(f"Only one key, '{key}', may be given in the request body.")
    return body[key]
