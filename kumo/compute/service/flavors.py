"""Flavors: CRUD, access lists, extra specs, the DevStack defaults."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from kumo.common.context import RequestContext
from kumo.compute.errors import BadRequest, Conflict, NotFound
from kumo.compute.models import Flavor
from kumo.compute.service import validate as v
from kumo.compute.service.core import ComputeService, new_uuid, now

DEFAULTS = [
    ("1", "m1.tiny", 512, 1, 1),
    ("2", "m1.small", 2048, 1, 20),
    ("3", "m1.medium", 4096, 2, 40),
    ("4", "m1.large", 8192, 4, 80),
    ("5", "m1.xlarge", 16384, 8, 160),
    ("42", "m1.nano", 128, 1, 1),
    ("84", "m1.micro", 192, 1, 1),
]

_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_SPEC_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")


def bootstrap(svc: ComputeService) -> None:
    """Create the default flavors on the very first start (never again, even if deleted)."""
    from kumo.compute.models import Counter

    with svc.db.session() as s:
        if s.get(Counter, "flavor_bootstrap") is not None:
            return
        s.add(Counter(name="flavor_bootstrap", value=1))
        for i, (fid, name, ram, vcpus, disk) in enumerate(DEFAULTS):
            if (
                s.get(Flavor, fid) is None
                and s.execute(select(Flavor).where(Flavor.name == name)).first() is None
            ):
                s.add(
                    Flavor(
                        id=fid,
                        name=name,
                        ram=ram,
                        vcpus=vcpus,
                        disk=disk,
                        seq=i + 1,
                        created_at=now(),
                        extra_specs={},
                        access=[],
                    )
                )


def visible(svc: ComputeService, ctx: RequestContext, f: Flavor) -> bool:
    return f.is_public or svc.is_admin(ctx) or (ctx.project_id in (f.access or []))


def get_flavor(svc: ComputeService, ctx: RequestContext, flavor_id: str) -> Flavor:
    with svc.db.reader() as s:
        f = s.get(Flavor, str(flavor_id))
    if f is None or not visible(svc, ctx, f):
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return f


def parse_is_public(raw: str | None) -> bool | None:
    if raw is None:
        return True
    if raw.strip().lower() == "none":
        return None
    try:
        return v.boolean(raw, "is_public")
    except BadRequest:
        raise BadRequest(f"Invalid is_public filter [{raw}]") from None


def list_flavors(svc: ComputeService, ctx: RequestContext, query: Any) -> list[Flavor]:
    admin = svc.is_admin(ctx)
    is_public = parse_is_public(query.get("is_public")) if admin else True
    filters = {}
    for key in ("minRam", "minDisk"):
        if query.get(key) not in (None, ""):
            try:
                filters[key] = int(query.get(key))
            except ValueError:
                raise BadRequest(f"Invalid {key} filter [{query.get(key)}]") from None
    sort_key = query.get("sort_key", "flavorid")
    sort_dir = query.get("sort_dir", "asc")
    keys = {
        "flavorid": "id",
        "id": "id",
        "name": "name",
        "memory_mb": "ram",
        "ram": "ram",
        "vcpus": "vcpus",
        "root_gb": "disk",
        "disk": "disk",
        "swap": "swap",
        "rxtx_factor": "rxtx_factor",
        "created_at": "seq",
        "ephemeral_gb": "ephemeral",
        "is_public": "is_public",
        "flavor": "id",
    }
    if sort_key not in keys:
        raise BadRequest(f"Invalid sort_key {sort_key}")
    if sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir {sort_dir}")
    with svc.db.reader() as s:
        rows = list(s.execute(select(Flavor)).scalars())
    out = []
    for f in rows:
        if f.disabled:
            continue
        if is_public is True and not f.is_public and ctx.project_id not in (f.access or []):
            continue
        if is_public is False and f.is_public:
            continue
        if not admin and not visible(svc, ctx, f):
            continue
        if "minRam" in filters and f.ram < filters["minRam"]:
            continue
        if "minDisk" in filters and f.disk < filters["minDisk"]:
            continue
        out.append(f)
    attr = keys[sort_key]
    out.sort(key=lambda f: (getattr(f, attr), f.id), reverse=sort_dir == "desc")
    return out


def create_flavor(svc: ComputeService, ctx: RequestContext, body: Any, mv: Any) -> Flavor:
    svc.enforce(ctx, "flavor:manage")
    data = v.body_key(body, "flavor")
    allowed = {
        "name",
        "ram",
        "vcpus",
        "disk",
        "id",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    }
    if mv.matches("2.55"):
        allowed.add("description")
    v.only_keys(data, allowed)
    for req in ("name", "ram", "vcpus", "disk"):
        if req not in data:
            raise BadRequest(f"Invalid input for field/attribute flavor. '{req}' is a required property")
    name = v.name(data["name"])
    fid = data.get("id")
    if fid is None or (isinstance(fid, str) and fid.strip().lower() == "auto"):
        fid = new_uuid()
    elif isinstance(fid, int) and not isinstance(fid, bool):
        fid = str(fid)
    if not isinstance(fid, str) or not 1 <= len(fid) <= 255 or not _ID.match(fid):
        raise BadRequest(
            f"Invalid input for field/attribute id. Value: {fid!r}. does not match the flavor id format"
        )
    ram = v.integer(data["ram"], "ram", 1, 2**31 - 1)
    vcpus = v.integer(data["vcpus"], "vcpus", 1, 2**31 - 1)
    disk = v.integer(data["disk"], "disk", 0, 2**31 - 1)
    eph = v.integer(data.get("OS-FLV-EXT-DATA:ephemeral", 0), "OS-FLV-EXT-DATA:ephemeral", 0, 2**31 - 1)
    swap = v.integer(data.get("swap", 0) if data.get("swap") != "" else 0, "swap", 0, 2**31 - 1)
    rx = data.get("rxtx_factor", 1.0)
    if isinstance(rx, bool) or not isinstance(rx, int | float | str):
        raise BadRequest("Invalid input for field/attribute rxtx_factor.")
    try:
        rx = float(rx)
    except ValueError:
        raise BadRequest("Invalid input for field/attribute rxtx_factor.") from None
    if not 0 < rx <= 3.40282e38:
        raise BadRequest("Invalid input for field/attribute rxtx_factor. must be positive")
    is_public = v.boolean(data.get("os-flavor-access:is_public", True), "os-flavor-access:is_public")
    desc = v.string(data.get("description"), "description", 65535, nullable=True)
    with svc.db.session() as s:
        if s.execute(select(Flavor).where(Flavor.name == name)).first() is not None:
            raise Conflict(f"Flavor with name {name} already exists.")
        if s.get(Flavor, fid) is not None:
            raise Conflict(f"Flavor with ID {fid} already exists.")
        f = Flavor(
            id=fid,
            name=name,
            ram=ram,
            vcpus=vcpus,
            disk=disk,
            ephemeral=eph,
            swap=swap,
            rxtx_factor=rx,
            is_public=is_public,
            description=desc,
            extra_specs={},
            access=[],
            seq=svc.next_value(s, "flavor"),
            created_at=now(),
        )
        s.add(f)
    return f


def update_flavor(svc: ComputeService, ctx: RequestContext, flavor_id: str, body: Any) -> Flavor:
    svc.enforce(ctx, "flavor:manage")
    data = v.body_key(body, "flavor")
    v.only_keys(data, {"description"})
    if "description" not in data:
        raise BadRequest("'description' is a required property")
    desc = v.string(data["description"], "description", 65535, nullable=True)
    with svc.db.session() as s:
        f = s.get(Flavor, flavor_id)
        if f is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        f.description = desc
    return f


def delete_flavor(svc: ComputeService, ctx: RequestContext, flavor_id: str) -> None:
    svc.enforce(ctx, "flavor:manage")
    with svc.db.session() as s:
        f = s.get(Flavor, flavor_id)
        if f is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        s.delete(f)


# -- access ---------------------------------------------------------------------------------


def list_access(svc: ComputeService, ctx: RequestContext, flavor_id: str) -> list[str]:
    svc.enforce(ctx, "flavor:manage")
    with svc.db.reader() as s:
        f = s.get(Flavor, flavor_id)
    if f is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    if f.is_public:
        raise NotFound("Access list not available for public flavors.")
    return list(f.access or [])


def change_access(
    svc: ComputeService, ctx: RequestContext, flavor_id: str, tenant: Any, add: bool
) -> list[str]:
    svc.enforce(ctx, "flavor:manage")
    if not isinstance(tenant, str) or not tenant or len(tenant) > 255:
        raise BadRequest("Invalid input for field/attribute tenant.")
    with svc.db.session() as s:
        f = s.get(Flavor, flavor_id)
        if f is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        if f.is_public:
            raise Conflict(
                "Can not add access to a public flavor."
                if add
                else "Can not remove access from a public flavor."
            )
        access = list(f.access or [])
        if add:
            if tenant in access:
                raise Conflict(
                    f"Flavor access already exists for flavor {flavor_id} and project {tenant} combination."
                )
            access.append(tenant)
        else:
            if tenant not in access:
                raise NotFound(f"Flavor access not found for {flavor_id} / {tenant} combination.")
            access.remove(tenant)
        f.access = access
    return access


# -- extra specs ----------------------------------------------------------------------------


def _spec_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str) or len(value) > 255:
        raise BadRequest(
            f"Invalid input for field/attribute extra_specs. Value: {value!r}. must be a string of at most 255 characters"
        )
    return value


def set_extra_specs(
    svc: ComputeService, ctx: RequestContext, flavor_id: str, specs: Any, key: str | None = None,
    validate: bool = False,
) -> dict[str, str]:
    """Set extra specs; ``validate`` (2.86) checks keys of known namespaces and their values."""
    svc.enforce(ctx, "flavor:manage")
    if not isinstance(specs, dict) or (key is None and not specs):
        raise BadRequest("Invalid input for field/attribute extra_specs.")
    if key is not None:
        if len(specs) != 1:
            raise BadRequest("Request body contains too many items.")
        if key not in specs:
            raise BadRequest("Request body and URI mismatch")
    clean = {}
    for k, val in specs.items():
        if not isinstance(k, str) or not _SPEC_KEY.match(k):
            raise BadRequest(f"Invalid input for field/attribute extra_specs. Key {k!r} is invalid")
        clean[k] = _spec_value(k, val)
        if validate:
            from kumo.compute.service.extra_specs import validate as check_spec

            check_spec(k, clean[k])
    with svc.db.session() as s:
        f = s.get(Flavor, flavor_id)
        if f is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        f.extra_specs = {**(f.extra_specs or {}), **clean}
    return clean


def get_extra_specs(svc: ComputeService, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
    f = get_flavor(svc, ctx, flavor_id)
    return dict(f.extra_specs or {})


def delete_extra_spec(svc: ComputeService, ctx: RequestContext, flavor_id: str, key: str) -> None:
    svc.enforce(ctx, "flavor:manage")
    with svc.db.session() as s:
        f = s.get(Flavor, flavor_id)
        if f is None:
            raise NotFound(f"Flavor {flavor_id} could not be found.")
        specs = dict(f.extra_specs or {})
        if key not in specs:
            raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
        del specs[key]
        f.extra_specs = specs


def snapshot(f: Flavor) -> dict[str, Any]:
    """What a server keeps of its flavor (the flavor may be deleted later)."""
    return {
        "id": f.id,
        "name": f.name,
        "ram": f.ram,
        "vcpus": f.vcpus,
        "disk": f.disk,
        "ephemeral": f.ephemeral,
        "swap": f.swap,
        "extra_specs": dict(f.extra_specs or {}),
    }
