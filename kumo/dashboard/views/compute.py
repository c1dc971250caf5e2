"""Compute: instances (live status, launch, actions, console), key pairs."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from kumo.dashboard.client import ApiError, Cloud
from kumo.dashboard.web import FormErrors, Page, field_errors, page

STEADY = {"ACTIVE", "SHUTOFF", "PAUSED", "SUSPENDED", "ERROR", "SHELVED_OFFLOADED", "VERIFY_RESIZE", "RESCUE"}
ACTIONS: dict[str, Any] = {
    "start": {"os-start": None},
    "stop": {"os-stop": None},
    "reboot": {"reboot": {"type": "SOFT"}},
    "hard-reboot": {"reboot": {"type": "HARD"}},
    "pause": {"pause": None},
    "unpause": {"unpause": None},
    "confirm-resize": {"confirmResize": None},
    "revert-resize": {"revertResize": None},
}
PAGE_SIZE = 50  # servers per page (Horizon pages at 20)


def _addresses(server: dict[str, Any]) -> list[str]:
    out = []
    for net, addrs in (server.get("addresses") or {}).items():
        for a in addrs:
            kind = " (floating)" if a.get("OS-EXT-IPS:type") == "floating" else ""
            out.append(f"{net}: {a.get('addr')}{kind}")
    return out


async def _servers(cloud: Cloud, marker: str = "") -> tuple[list[dict[str, Any]], str]:
    """One page of servers (newest first, as the API orders them) and the marker of the next page."""
    params: dict[str, Any] = {"limit": PAGE_SIZE + 1}
    if marker:
        params["marker"] = marker
    servers = (await cloud.get("compute", "/servers/detail", params=params)).get("servers", [])
    more = len(servers) > PAGE_SIZE
    servers = servers[:PAGE_SIZE]
    for s in servers:
        s["_addresses"] = _addresses(s)
        s["_flavor"] = (s.get("flavor") or {}).get("original_name") or (s.get("flavor") or {}).get("id", "")
    return servers, (servers[-1]["id"] if more else "")


def _marker(p: Page) -> str:
    marker = p.query.get("marker", "")
    return marker if re.fullmatch(r"[0-9a-fA-F-]{1,64}", marker) else ""


@page()
async def instances(p: Page) -> Response:
    """The page shell at once; the rows (one compute API call, the slow part) follow through htmx."""
    return p.render("compute/instances.html", marker=_marker(p))


@page()
async def instance_rows(p: Page) -> Response:
    """The table body and pager: htmx loads it, then polls it while an instance is in a transitional state."""
    marker = _marker(p)
    servers, next_marker = await _servers(p.cloud, marker)
    busy = any(s.get("status") not in STEADY for s in servers)
    return p.render("compute/_rows.html", servers=servers, busy=busy, marker=marker, next_marker=next_marker)


async def _launch_choices(p: Page) -> dict[str, Any]:
    cloud = p.cloud

    async def images() -> list[tuple[str, str]]:
        body = await cloud.get("image", "/images", params={"status": "active", "limit": 500})
        return [(i["id"], i.get("name") or i["id"]) for i in body.get("images", [])]

    async def flavors() -> list[tuple[str, str]]:
        body = await cloud.get("compute", "/flavors/detail")
        return [(f["id"], f"{f['name']} ({f['vcpus']} vCPU, {f['ram']} MiB, {f['disk']} GB)") for f in body.get("flavors", [])]

    async def networks() -> list[tuple[str, str]]:
        body = await cloud.get("network", "/networks")
        return [(n["id"], n.get("name") or n["id"]) for n in body.get("networks", []) if not n.get("router:external")]

    async def keypairs() -> list[tuple[str, str]]:
        body = await cloud.get("compute", "/os-keypairs")
        return [(k["keypair"]["name"], k["keypair"]["name"]) for k in body.get("keypairs", [])]

    async def groups() -> list[tuple[str, str]]:
        body = await cloud.get("network", "/security-groups", params={"project_id": p.session.project_id})  # type: ignore[union-attr]
        return [(g["name"], g["name"]) for g in body.get("security_groups", [])]

    names = ["images", "flavors", "networks", "keypairs", "groups"]
    results = await asyncio.gather(images(), flavors(), networks(), keypairs(), groups())
    return dict(zip(names, results, strict=True))


@page()
async def launch_form(p: Page) -> Response:
    choices = await _launch_choices(p)
    return p.render("compute/launch.html", errors={}, values={"count": "1"}, **choices,
                    has_bfv=p.cloud.has("block-storage", "volumev3", "volume"))


@page()
async def launch(p: Page) -> Response:
    form = await p.form()
    values = form.values()
    errors: dict[str, str] = {}
    for key, msg in (("name", "Give the instance a name."), ("image", "Choose an image."),
                     ("flavor", "Choose a flavor.")):
        if not form[key]:
            errors[key] = msg
    try:
        count = int(form["count"] or "1")
        if not 1 <= count <= 100:
            raise ValueError
    except ValueError:
        errors["count"] = "Enter a whole number from 1 to 100."
        count = 1
    body: dict[str, Any] = {"name": form["name"], "flavorRef": form["flavor"], "min_count": count, "max_count": count}
    nets = form.all("networks")
    body["networks"] = [{"uuid": n} for n in nets] if nets else "auto"
    if form["key_name"]:
        body["key_name"] = form["key_name"]
    groups = form.all("security_groups")
    if groups:
        body["security_groups"] = [{"name": g} for g in groups]
    if form.raw("user_data").strip():
        body["user_data"] = base64.b64encode(form.raw("user_data").encode()).decode()
    if form["boot_from_volume"]:
        try:
            size = int(form["volume_size"])
            if size < 1:
                raise ValueError
        except ValueError:
            errors["volume_size"] = "Enter the volume size in GB (1 or more)."
            size = 1
        body["block_device_mapping_v2"] = [{
            "boot_index": 0, "uuid": form["image"], "source_type": "image", "destination_type": "volume",
            "volume_size": size, "delete_on_termination": True,
        }]
    else:
        body["imageRef"] = form["image"]
    if not errors:
        try:
            await p.cloud.post("compute", "/servers", {"server": body})
            return p.redirect("/compute/instances", notice=f"Launching {form['name']}")
        except ApiError as err:
            errors = field_errors(err, ["name", "image", "flavor", "networks", "key_name", "security_groups",
                                        "user_data", "volume_size"])
            if "flavorref" in err.message.lower():
                errors = {"flavor": err.message}
            elif "imageref" in err.message.lower():
                errors = {"image": err.message}
    choices = await _launch_choices(p)
    values["networks"] = nets[0] if nets else ""
    return p.render("compute/launch.html", status=400, errors=errors, values=values, **choices,
                    has_bfv=p.cloud.has("block-storage", "volumev3", "volume"))


@page()
async def instance(p: Page) -> Response:
    cloud = p.cloud
    sid = p.params["id"]
    server = (await cloud.get("compute", f"/servers/{sid}"))["server"]
    server["_addresses"] = _addresses(server)
    flavors = (await cloud.get("compute", "/flavors")).get("flavors", [])
    return p.render("compute/instance.html", server=server, flavors=flavors)


@page()
async def console_log(p: Page) -> Response:
    sid = p.params["id"]
    try:
        out = await p.cloud.post("compute", f"/servers/{sid}/action", {"os-getConsoleOutput": {"length": 500}})
        text, problem = out.get("output", ""), ""
    except ApiError as err:
        text, problem = "", err.message
    return p.render("compute/_console.html", text=text, problem=problem)


@page()
async def console_link(p: Page) -> Response:
    sid = p.params["id"]
    for protocol, kind in (("vnc", "novnc"), ("serial", "serial")):
        try:
            out = await p.cloud.post("compute", f"/servers/{sid}/remote-consoles",
                                     {"remote_console": {"protocol": protocol, "type": kind}})
            url = out.get("remote_console", {}).get("url")
            if url:
                return p.render("compute/_console_link.html", url=url, kind=kind, problem="")
        except ApiError as err:
            problem = err.message
    return p.render("compute/_console_link.html", url="", kind="", problem=problem)


@page()
async def action(p: Page) -> Response:
    form = await p.form()
    sid = p.params["id"]
    name = form["action"]
    cloud = p.cloud
    if name == "delete":
        await cloud.delete("compute", f"/servers/{sid}")
        return p.redirect("/compute/instances", notice="Deleting the instance")
    if name == "resize":
        if not form["flavor"]:
            raise FormErrors({"flavor": "Choose the new flavor."})
        body: Any = {"resize": {"flavorRef": form["flavor"]}}
    elif name == "snapshot":
        if not form["snapshot_name"]:
            raise FormErrors({"snapshot_name": "Give the snapshot a name."})
        body = {"createImage": {"name": form["snapshot_name"]}}
    elif name in ACTIONS:
        body = ACTIONS[name]
    else:
        raise FormErrors({"action": f"Unknown action {name!r}."})
    await cloud.post("compute", f"/servers/{sid}/action", body)
    back = form["back"] if form["back"] in ("list", "detail") else "list"
    target = "/compute/instances" if back == "list" else f"/compute/instances/{sid}"
    return p.redirect(target, notice=f"{name.replace('-', ' ').capitalize()} requested")


# -- key pairs -------------------------------------------------------------------------------


async def _keypairs(cloud: Cloud) -> list[dict[str, Any]]:
    body = await cloud.get("compute", "/os-keypairs")
    return [k["keypair"] for k in body.get("keypairs", [])]


@page()
async def keypairs(p: Page) -> Response:
    return p.render("compute/keypairs.html", keypairs=await _keypairs(p.cloud), errors={}, values={}, private_key="")


@page()
async def keypair_create(p: Page) -> Response:
    form = await p.form()
    body: dict[str, Any] = {"name": form["name"]}
    if form.raw("public_key").strip():
        body["public_key"] = form.raw("public_key").strip()
    errors: dict[str, str] = {} if form["name"] else {"name": "Give the key pair a name."}
    private_key = ""
    if not errors:
        try:
            created = (await p.cloud.post("compute", "/os-keypairs", {"keypair": body}))["keypair"]
            private_key = created.get("private_key", "")
            if not private_key:
                return p.redirect("/compute/keypairs", notice=f"Imported key pair {form['name']}")
        except ApiError as err:
            errors = field_errors(err, ["public_key", "name"])
            if "" in errors and "public_key" in body:  # Nova: "Keypair data is invalid: ..."
                errors = {"public_key": errors[""]}
    return p.render("compute/keypairs.html", status=400 if errors else 201, keypairs=await _keypairs(p.cloud),
                    errors=errors, values=form.values(), private_key=private_key, created=form["name"])


@page()
async def keypair_delete(p: Page) -> Response:
    name = p.params["name"]
    await p.cloud.delete("compute", f"/os-keypairs/{name}")
    return p.redirect("/compute/keypairs", notice=f"Deleted key pair {name}")


ROUTES = [
    Route("/compute/instances", instances, methods=["GET"]),
    Route("/compute/instances/rows", instance_rows, methods=["GET"]),
    Route("/compute/instances/launch", launch_form, methods=["GET"]),
    Route("/compute/instances/launch", launch, methods=["POST"]),
    Route("/compute/instances/{id}", instance, methods=["GET"]),
    Route("/compute/instances/{id}/console-log", console_log, methods=["GET"]),
    Route("/compute/instances/{id}/console-link", console_link, methods=["GET"]),
    Route("/compute/instances/{id}/action", action, methods=["POST"]),
    Route("/compute/keypairs", keypairs, methods=["GET"]),
    Route("/compute/keypairs", keypair_create, methods=["POST"]),
    Route("/compute/keypairs/{name}/delete", keypair_delete, methods=["POST"]),
]
