"""Object storage: containers, a folder-style object browser, streamed upload/download, TempURLs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import quote, urlparse

from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kumo.dashboard.client import ApiError, Cloud
from kumo.dashboard.web import FormErrors, Page, page

PUBLIC_READ = ".r:*,.rlistings"
SVC = "object-store"


def _q(name: str) -> str:
    return quote(name, safe="")


def _obj(name: str) -> str:
    return quote(name, safe="/")


def _valid_container(name: str) -> str | None:
    if not name:
        return "Give the container a name."
    if "/" in name:
        return "A container name cannot contain “/”."
    if len(name.encode()) > 256:
        return "A container name is at most 256 bytes."
    return None


async def _containers(cloud: Cloud) -> list[dict[str, Any]]:
    return (await cloud.request(SVC, "GET", "", params={"format": "json", "limit": 10000})).json()


@page()
async def containers(p: Page) -> Response:
    return p.render("storage/containers.html", containers=await _containers(p.cloud), errors={}, values={})


@page()
async def container_create(p: Page) -> Response:
    form = await p.form()
    name = form["name"]
    problem = _valid_container(name)
    if problem is None:
        headers = {"X-Container-Read": PUBLIC_READ} if form["public"] else {}
        try:
            await p.cloud.request(SVC, "PUT", f"/{_q(name)}", headers=headers)
            return p.redirect(f"/storage/containers/{_q(name)}", notice=f"Created container {name}")
        except ApiError as err:
            problem = err.message
    return p.render("storage/containers.html", status=400, containers=await _containers(p.cloud),
                    errors={"name": problem}, values=form.values())


async def _browse(cloud: Cloud, container: str, prefix: str) -> dict[str, Any]:
    head = await cloud.request(SVC, "HEAD", f"/{_q(container)}")
    listing = (await cloud.request(SVC, "GET", f"/{_q(container)}",
                                   params={"format": "json", "prefix": prefix, "delimiter": "/", "limit": 10000})).json()
    folders = [e["subdir"] for e in listing if "subdir" in e]
    objects = [e for e in listing if "name" in e and e["name"] != prefix]
    read_acl = head.headers.get("x-container-read", "")
    crumbs = []
    acc = ""
    for part in [x for x in prefix.split("/") if x]:
        acc += part + "/"
        crumbs.append((part, acc))
    return {"container": container, "prefix": prefix, "folders": folders, "objects": objects, "crumbs": crumbs,
            "public": ".r:*" in read_acl, "read_acl": read_acl,
            "count": head.headers.get("x-container-object-count", "0"),
            "bytes": head.headers.get("x-container-bytes-used", "0")}


@page()
async def container(p: Page) -> Response:
    data = await _browse(p.cloud, p.params["container"], p.query.get("prefix", ""))
    return p.render("storage/container.html", **data, errors={}, tempurl="",
                    public_url=p.cloud.url(SVC, f"/{_q(data['container'])}/"))


@page()
async def container_update(p: Page) -> Response:
    name = p.params["container"]
    form = await p.form()
    cloud = p.cloud
    op = form["op"]
    prefix = form["prefix"]
    errors: dict[str, str] = {}
    tempurl = ""
    try:
        if op == "make-public":
            await cloud.request(SVC, "POST", f"/{_q(name)}", headers={"X-Container-Read": PUBLIC_READ})
        elif op == "make-private":
            await cloud.request(SVC, "POST", f"/{_q(name)}", headers={"X-Remove-Container-Read": "1"})
        elif op == "create-folder":
            folder = form["folder"].strip("/")
            if not folder:
                raise FormErrors({"folder": "Give the folder a name."})
            await cloud.request(SVC, "PUT", f"/{_q(name)}/{_obj(prefix + folder + '/')}", content=b"",
                                headers={"Content-Type": "application/directory"})
        elif op == "delete-object":
            await cloud.request(SVC, "DELETE", f"/{_q(name)}/{_obj(form['object'])}")
        elif op == "tempurl":
            try:
                seconds = int(form["expires"] or "3600")
                if not 1 <= seconds <= 30 * 86400:
                    raise ValueError
            except ValueError:
                raise FormErrors({"expires": "Enter a lifetime from 1 second to 30 days."}) from None
            tempurl = await _tempurl(cloud, name, form["object"], seconds)
        elif op == "delete":
            await cloud.request(SVC, "DELETE", f"/{_q(name)}")
            return p.redirect("/storage/containers", notice=f"Deleted container {name}")
        else:
            raise FormErrors({"": f"Unknown operation {op!r}."})
    except FormErrors as err:
        errors = err.errors
    except ApiError as err:
        errors = {"folder" if op == "create-folder" else "": err.message}
    if errors or tempurl:
        data = await _browse(cloud, name, prefix)
        return p.render("storage/container.html", status=400 if errors else 200, **data, errors=errors,
                        tempurl=tempurl, tempurl_object=form["object"],
                        public_url=cloud.url(SVC, f"/{_q(name)}/"))
    target = f"/storage/containers/{_q(name)}" + (f"?prefix={quote(prefix)}" if prefix else "")
    return p.redirect(target, notice="Done")


async def _tempurl(cloud: Cloud, container: str, obj: str, seconds: int) -> str:
    """A GET TempURL signed with the account's key (one is set on first use)."""
    head = await cloud.request(SVC, "HEAD", "")
    key = head.headers.get("x-account-meta-temp-url-key")
    if not key:
        key = secrets.token_urlsafe(24)
        await cloud.request(SVC, "POST", "", headers={"X-Account-Meta-Temp-URL-Key": key})
    url = cloud.url(SVC, f"/{_q(container)}/{_obj(obj)}")
    path = urlparse(url).path
    expires = int(time.time()) + seconds
    sig = hmac.new(key.encode(), f"GET\n{expires}\n{path}".encode(), hashlib.sha256).hexdigest()
    return f"{url}?temp_url_sig={sig}&temp_url_expires={expires}"


@page()
async def upload(p: Page) -> Response:
    """PUT body = the file, streamed straight on to the object API."""
    name = p.params["container"]
    prefix = p.query.get("prefix", "")
    filename = (p.query.get("object") or p.query.get("filename") or "").strip().lstrip("/")
    if not filename:
        return JSONResponse({"error": "Choose a file.", "field": "file"}, status_code=400)
    headers = {"Content-Type": p.request.headers.get("content-type") or "application/octet-stream"}
    if p.request.headers.get("content-length"):
        headers["Content-Length"] = p.request.headers["content-length"]
    try:
        await p.cloud.request(SVC, "PUT", f"/{_q(name)}/{_obj(prefix + filename)}", content=p.request.stream(),
                              headers=headers)
    except ApiError as err:
        return JSONResponse({"error": err.message}, status_code=err.status)
    target = f"{p.base}/storage/containers/{_q(name)}?prefix={quote(prefix)}&notice=" + quote(f"Uploaded {filename}")
    return JSONResponse({"location": target}, status_code=201)


@page()
async def download(p: Page) -> Response:
    name, obj = p.params["container"], p.params["object"]
    response, body = await p.cloud.stream(SVC, f"/{_q(name)}/{_obj(obj)}")
    filename = obj.rsplit("/", 1)[-1] or "download"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}
    for h in ("content-length", "etag", "last-modified"):
        if h in response.headers:
            headers[h] = response.headers[h]
    return StreamingResponse(body, headers=headers, media_type=response.headers.get("content-type"),
                             background=BackgroundTask(response.aclose))


ROUTES = [
    Route("/storage/containers", containers, methods=["GET"]),
    Route("/storage/containers", container_create, methods=["POST"]),
    Route("/storage/containers/{container}", container, methods=["GET"]),
    Route("/storage/containers/{container}", container_update, methods=["POST"]),
    Route("/storage/containers/{container}/upload", upload, methods=["PUT"]),
    Route("/storage/containers/{container}/objects/{object:path}", download, methods=["GET"]),
]
