"""StaticWeb: a public container served as a web site (index, listings, error pages)."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import quote

from kumo.object_store.proxy.backend import Backend
from kumo.object_store.proxy.types import Handler, Req, Resp
from kumo.object_store.utils import truthy


def staticweb_middleware(backend: Backend) -> object:
    def wrap(app: Handler) -> Handler:
        async def handle(req: Req) -> Resp:
            web_mode = truthy(req.headers.get("x-web-mode")) or not req.ctx.authenticated
            if not web_mode or req.method not in ("GET", "HEAD") or req.container is None:
                return await app(req)
            cont = await backend.info("container", (req.account, req.container))
            if cont.status >= 300:
                return await app(req)
            meta = cont.headers
            index = meta.get("x-container-meta-web-index")
            listings = truthy(meta.get("x-container-meta-web-listings"))
            error_page = meta.get("x-container-meta-web-error")
            if req.obj is None or req.obj.endswith("/"):
                prefix = req.obj or ""
                if index:
                    resp = await app(req.sub(req.method, req.container, prefix + index, authorized=False))
                    if resp.ok:
                        return resp
                    await resp.close()
                if listings:
                    return await _listing(app, req, prefix, meta.get("x-container-meta-web-listings-css"))
                if req.obj is None:
                    return await app(req)
            resp = await app(req)
            if resp.status in (401, 404) and error_page:
                await resp.close()
                page = await app(
                    req.sub("GET", req.container, f"{resp.status}{error_page}", authorized=False)
                )
                if page.ok:
                    return Resp(
                        resp.status,
                        {"content-type": page.headers.get("content-type", "text/html")},
                        await page.read(),
                    )
                await page.close()
                return Resp(resp.status, resp.headers, b"")
            return resp

        return handle

    return wrap


async def _listing(app: Handler, req: Req, prefix: str, css: str | None) -> Resp:
    sub = req.sub(
        "GET",
        req.container,
        None,
        authorized=False,
        query={"format": "json", "prefix": prefix, "delimiter": "/"},
    )
    resp = await app(sub)
    if resp.status == 204:
        rows = []
    elif not resp.ok:
        return resp
    else:
        rows = json.loads(await resp.read())
    title = f"Listing of /v1/{req.account}/{req.container}/{prefix}"
    style = (
        f'<link rel="stylesheet" type="text/css" href="{escape(css)}" />'
        if css
        else "<style>td { padding: 0px 1em 0px 1em; }</style>"
    )
    lines = [
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">',
        "<html>",
        "<head>",
        f"<title>{escape(title)}</title>",
        style,
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        '<table id="listing">',
        '<tr id="heading"><th class="colname">Name</th><th class="colsize">Size</th>'
        '<th class="coldate">Date</th></tr>',
    ]
    if prefix:
        lines.append(
            '<tr id="parent" class="item"><td class="colname"><a href="../">../</a></td>'
            '<td class="colsize">&nbsp;</td><td class="coldate">&nbsp;</td></tr>'
        )
    for row in rows:
        name = row.get("subdir") or row.get("name", "")
        short = name[len(prefix) :]
        if "subdir" in row:
            lines.append(
                f'<tr class="item subdir"><td class="colname"><a href="{quote(short)}">{escape(short)}'
                '</a></td><td class="colsize">&nbsp;</td><td class="coldate">&nbsp;</td></tr>'
            )
        else:
            lines.append(
                f'<tr class="item"><td class="colname"><a href="{quote(short)}">{escape(short)}</a></td>'
                f'<td class="colsize">{row.get("bytes")}</td>'
                f'<td class="coldate">{escape(row.get("last_modified", ""))}</td></tr>'
            )
    lines += ["</table>", "</body>", "</html>"]
    return Resp(200, {"content-type": "text/html; charset=UTF-8"}, "\n".join(lines).encode())
