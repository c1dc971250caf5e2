"""Image records: create, show, list, update (JSON patch), delete, deactivate, tags."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from kumo.common.context import RequestContext
from kumo.image.errors import BadRequest, Conflict, Forbidden, PayloadTooLarge, image_not_found
from kumo.image.models import Image, Member, Task
from kumo.image.service import location_ops, validate
from kumo.image.service.core import ImageService, is_admin, utcnow
from kumo.image.service.patch import Op

SETTABLE_ON_CREATE = (
    "name",
    "visibility",
    "protected",
    "os_hidden",
    "min_disk",
    "min_ram",
    "container_format",
    "disk_format",
    "tags",
    "owner",
    "id",
)


def create_image(svc: ImageService, ctx: RequestContext, body: Any) -> Image:
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object.")
    svc.enforce(ctx, "add_image")
    values: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for key, v in body.items():
        validate.check_writable(key)
        if key in SETTABLE_ON_CREATE:
            values[key] = validate.value(key, v)
        elif validate.is_core(key):
            validate.value(key, v)  # locations and the like: refused there
        else:
            props[key] = validate.prop(key, v)
    visibility = values.get("visibility", "shared")
    if visibility == "public":
        svc.enforce(ctx, "publicize_image")
    owner = values.get("owner", ctx.project_id)
    if owner != ctx.project_id and not is_admin(ctx):
        raise Forbidden(f"You are not permitted to create images owned by '{owner}'.")
    now = utcnow()
    image = Image(
        id=values.get("id") or str(uuid.uuid4()),
        name=values.get("name"),
        status="queued",
        visibility=visibility,
        protected=values.get("protected", False),
        os_hidden=values.get("os_hidden", False),
        owner=owner,
        container_format=values.get("container_format"),
        disk_format=values.get("disk_format"),
        min_disk=values.get("min_disk", 0),
        min_ram=values.get("min_ram", 0),
        tags=values.get("tags", []),
        properties=props,
        created_at=now,
        updated_at=now,
    )
    limit = svc.settings.image_count_total
    with svc.db.session() as s:
        if limit >= 0 and owner:
            count = s.scalar(select(func.count()).select_from(Image).where(Image.owner == owner)) or 0
            if count + 1 > limit:
                raise PayloadTooLarge(
                    f"Maximum number of images exceeded: quota image_count_total is {limit}, "
                    f"project {owner} has {count}."
                )
        if s.get(Image, image.id) is not None:
            raise Conflict(f"Image with identifier {image.id} already exists!")
        s.add(image)
        try:
            s.flush()
        except IntegrityError:
            raise Conflict(f"Image with identifier {image.id} already exists!") from None
    return image


def show_image(svc: ImageService, ctx: RequestContext, image_id: str) -> Image:
    svc.enforce(ctx, "get_image")
    with svc.reading() as s:
        return svc.get_visible(s, ctx, image_id)


def member_status(svc: ImageService, ctx: RequestContext, image_ids: list[str]) -> dict[str, str]:
    if not image_ids or not ctx.project_id:
        return {}
    with svc.reading() as s:
        rows = s.execute(
            select(Member.image_id, Member.status).where(
                Member.member_id == ctx.project_id, Member.image_id.in_(image_ids)
            )
        ).all()
    return dict(rows)


# -- list ---------------------------------------------------------------------

SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
    "virtual_size",
    "protected",
    "os_hidden",
)
_OPERATORS = ("gt", "gte", "lt", "lte", "eq", "neq")
_KNOWN = (
    "limit",
    "marker",
    "sort",
    "sort_key",
    "sort_dir",
    "member_status",
    "visibility",
    "tag",
    "size_min",
    "size_max",
    "created_at",
    "updated_at",
    "os_hidden",
    "id",
    "name",
    "status",
    "owner",
    "container_format",
    "disk_format",
    "protected",
    "checksum",
    "os_hash_value",
    "min_disk",
    "min_ram",
    "size",
    "virtual_size",
)


@dataclass
class ListQuery:
    limit: int
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)
    visibility: str | None = None
    member_status: str = "accepted"
    tags: list[str] = field(default_factory=list)
    os_hidden: bool | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)  # attr -> allowed values (in:)
    ranges: list[tuple[str, str, Any]] = field(default_factory=list)  # (attr, op, value)
    props: dict[str, str] = field(default_factory=dict)


def _bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid value {raw!r} for {name}: expected a boolean.")


def _time(name: str, raw: str) -> datetime:
    try:
        when = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Unable to filter on {name}: {raw!r} is not an ISO 8601 date and time.") from None
    if when.tzinfo is not None:
        from datetime import UTC

        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _split_operator(raw: str) -> tuple[str, str]:
    if ":" in raw:
        op, rest = raw.split(":", 1)
        if op in _OPERATORS or op == "in":
            return op, rest
    return "eq", raw


def parse_list_query(items: list[tuple[str, str]], default_limit: int, max_limit: int) -> ListQuery:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for k, v in items:
        multi.setdefault(k, []).append(v)
        single[k] = v
    limit = default_limit
    if "limit" in single:
        try:
            limit = int(single["limit"])
        except ValueError:
            raise BadRequest("limit param must be an integer") from None
        if limit < 0:
            raise BadRequest("limit param must be positive")
    q = ListQuery(limit=min(limit, max_limit), marker=single.get("marker"))
    # sorting: sort=key:dir,... or sort_key (repeatable) + sort_dir (repeatable)
    if "sort" in single:
        if "sort_key" in single or "sort_dir" in single:
            raise BadRequest("The 'sort' parameter can't be used with 'sort_key' or 'sort_dir'.")
        for part in single["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            q.sort.append((key.strip(), (direction or "desc").strip()))
    else:
        keys = multi.get("sort_key", [])
        dirs = multi.get("sort_dir", [])
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        for i, key in enumerate(keys):
            q.sort.append((key, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")))
        if not keys and dirs:
            q.sort.append(("created_at", dirs[0]))
    for key, direction in q.sort:
        if key not in SORT_KEYS:
            raise BadRequest(
                f"Invalid sort key: {key}. It should be one of the following: {', '.join(SORT_KEYS)}."
            )
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    if not any(k == "created_at" for k, _ in q.sort):
        q.sort.append(("created_at", "desc"))
    if not any(k == "id" for k, _ in q.sort):
        q.sort.append(("id", "desc"))
    if "visibility" in single:
        vis = single["visibility"]
        if vis not in ("public", "private", "shared", "community", "all"):
            raise BadRequest(f"Invalid visibility value: {vis}")
        q.visibility = vis
    if "member_status" in single:
        ms = single["member_status"]
        if ms not in ("pending", "accepted", "rejected", "all"):
            raise BadRequest(f"Invalid status value: {ms}")
        q.member_status = ms
    q.tags = multi.get("tag", [])
    if "os_hidden" in single:
        q.os_hidden = _bool("os_hidden", single["os_hidden"])
    for name in ("size_min", "size_max"):
        if name in single:
            try:
                n = int(single[name])
            except ValueError:
                raise BadRequest(f"{name} param must be an integer") from None
            q.ranges.append(("size", "gte" if name == "size_min" else "lte", n))
    for name in ("created_at", "updated_at"):
        for raw in multi.get(name, []):
            op, rest = _split_operator(raw)
            if op == "in":
                raise BadRequest(f"Invalid operator 'in' for {name}.")
            q.ranges.append((name, op, _time(name, rest)))
    for name in (
        "id",
        "name",
        "status",
        "owner",
        "container_format",
        "disk_format",
        "checksum",
        "os_hash_value",
    ):
        if name in single:
            op, rest = _split_operator(single[name])
            if op == "in":
                q.equals[name] = [v.strip().strip('"') for v in rest.split(",")]
            elif op == "eq":
                q.equals[name] = [rest]
            elif op == "neq":
                q.ranges.append((name, "neq", rest))
            else:
                raise BadRequest(f"Invalid operator '{op}' for {name}.")
    for name in ("min_disk", "min_ram", "size", "virtual_size"):
        if name in single:
            op, rest = _split_operator(single[name])
            try:
                nums = [int(x) for x in rest.split(",")]
            except ValueError:
                raise BadRequest(f"{name} param must be an integer") from None
            if op == "in":
                q.equals[name] = [str(n) for n in nums]
            else:
                q.ranges.append((name, op, nums[0]))
    if "protected" in single:
        q.equals["protected"] = [str(_bool("protected", single["protected"]))]
    for key, v in single.items():
        if key not in _KNOWN:
            q.props[key] = v
    return q


def _compare(actual: Any, op: str, want: Any) -> bool:
    if actual is None:
        return op == "neq"
    return {
        "gt": lambda: actual > want,
        "gte": lambda: actual >= want,
        "lt": lambda: actual < want,
        "lte": lambda: actual <= want,
        "eq": lambda: actual == want,
        "neq": lambda: actual != want,
    }[op]()


def list_images(svc: ImageService, ctx: RequestContext, q: ListQuery) -> tuple[list[Image], bool]:
    svc.enforce(ctx, "get_images")
    admin = is_admin(ctx)
    project = ctx.project_id
    with svc.reading() as s:
        stmt = select(Image)
        if not admin:
            stmt = stmt.where(svc.visible_filter(ctx))
        images = list(s.scalars(stmt))
        memberships = (
            dict(s.execute(select(Member.image_id, Member.status).where(Member.member_id == project)).all())
            if project
            else {}
        )

    def visible_in_list(img: Image) -> bool:
        mine = img.owner == project
        vis = q.visibility
        if vis is None:
            if img.visibility == "community":
                return mine
            if img.visibility == "private":
                return mine or admin
            if img.visibility == "shared":
                if mine or (admin and img.id not in memberships):
                    return True
                st = memberships.get(img.id)
                return st is not None and (q.member_status == "all" or st == q.member_status)
            return True
        if vis == "all":
            if img.visibility == "shared" and not mine and not admin:
                st = memberships.get(img.id)
                return st is not None and (q.member_status == "all" or st == q.member_status)
            return True
        if img.visibility != vis:
            return False
        if vis == "shared" and not mine:
            st = memberships.get(img.id)
            if st is None:
                return admin and q.member_status == "all"
            return q.member_status == "all" or st == q.member_status
        if vis == "private":
            return mine or admin
        return True

    def matches(img: Image) -> bool:
        hidden = q.os_hidden if q.os_hidden is not None else False
        if img.os_hidden != hidden:
            return False
        if not visible_in_list(img):
            return False
        if any(t not in (img.tags or []) for t in q.tags):
            return False
        for attr, allowed in q.equals.items():
            actual = getattr(img, attr)
            if str(actual) not in allowed:
                return False
        for attr, op, want in q.ranges:
            if not _compare(getattr(img, attr), op, want):
                return False
        return all((img.properties or {}).get(k) == v for k, v in q.props.items())

    found = [img for img in images if matches(img)]
    for key, direction in reversed(q.sort):
        found.sort(key=lambda i, k=key: _sort_value(getattr(i, k)), reverse=direction == "desc")
    start = 0
    if q.marker:
        for i, img in enumerate(found):
            if img.id == q.marker:
                start = i + 1
                break
        else:
            raise BadRequest(f"Invalid marker. Image {q.marker} could not be found.")
    page = found[start : start + q.limit]
    return page, start + q.limit < len(found) and q.limit > 0


def _sort_value(v: Any) -> tuple[int, Any]:
    # None sorts first ascending, like SQL's NULLS FIRST in Glance's MySQL
    return (0, 0) if v is None else (1, v)


# -- update ---------------------------------------------------------------------


def update_image(
    svc: ImageService, ctx: RequestContext, image_id: str, ops: list[Op]
) -> tuple[Image, list[tuple[str | None, str]]]:
    """The updated image and the (store, url) copies whose data must now be deleted."""
    removed: list[tuple[str | None, str]] = []
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.owns(ctx, image):
            raise Forbidden("You are not permitted to modify this image.")
        svc.enforce(ctx, "modify_image", image)
        props = dict(image.properties or {})
        for op in ops:
            if op.attr == "locations":
                removed += location_ops.patch(svc, ctx, image, op)
                continue
            _apply(svc, ctx, image, props, op)
        image.properties = props
        image.updated_at = utcnow()
        s.flush()
        return image, removed


def _apply(svc: ImageService, ctx: RequestContext, image: Image, props: dict[str, Any], op: Op) -> None:
    attr = op.attr
    validate.check_writable(attr)
    if validate.is_core(attr):
        if op.op == "remove":
            raise Forbidden(f"Attribute {attr} can't be removed.")
        new = validate.value(attr, op.value)
        if attr == "id":
            raise Forbidden("Attribute 'id' is read-only.")
        if attr == "visibility" and new == "public" and image.visibility != "public":
            svc.enforce(ctx, "publicize_image")
        if attr == "owner" and new != image.owner and not is_admin(ctx):
            raise Forbidden("Owner can't be updated by non admin.")
        if (
            attr in ("container_format", "disk_format")
            and image.status != "queued"
            and new != getattr(image, attr)
        ):
            raise Forbidden(f"Attribute {attr} can be only replaced for a queued image.")
        if attr == "visibility" and new != "shared" and image.visibility == "shared":
            pass  # Glance keeps the members; they only count while shared
        setattr(image, attr, new)
        return
    if op.op == "remove":
        if attr not in props:
            raise Conflict(f"Property {attr} does not exist.")
        del props[attr]
        return
    if op.op == "replace" and attr not in props:
        raise Conflict(f"Property {attr} does not exist.")
    props[attr] = validate.prop(attr, op.value)


# -- delete, deactivate, tags -----------------------------------------------------------


def delete_image(
    svc: ImageService, ctx: RequestContext, image_id: str
) -> list[tuple[str | None, str | None]]:
    """Delete the record; returns the (store, location) pairs whose data must go."""
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.fills(ctx, image):
            raise Forbidden("You are not permitted to delete this image.")
        svc.enforce(ctx, "delete_image", image)
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        data: list[tuple[str | None, str | None]] = [
            (loc.get("store"), loc.get("url")) for loc in (image.locations or [])
        ]
        if image.location and not image.locations:
            data.append((image.store, image.location))
        if image.staging and image.staging.get("location"):
            data.append(("staging", image.staging["location"]))
        s.execute(delete(Member).where(Member.image_id == image_id))
        s.execute(delete(Task).where(Task.image_id == image_id))
        s.delete(image)
    return data


def set_active(svc: ImageService, ctx: RequestContext, image_id: str, action: str) -> None:
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.owns(ctx, image):
            raise Forbidden(f"You are not authorized to {action} this image.")
        svc.enforce(ctx, action, image)
        if action == "deactivate":
            if image.status == "deactivated":
                return
            if image.status != "active":
                raise Forbidden(f"Not allowed to deactivate image in status '{image.status}'")
            new = "deactivated"
        else:
            if image.status == "active":
                return
            if image.status != "deactivated":
                raise Forbidden(f"Not allowed to reactivate image in status '{image.status}'")
            new = "active"
        s.execute(update(Image).where(Image.id == image_id).values(status=new, updated_at=utcnow()))


def add_tag(svc: ImageService, ctx: RequestContext, image_id: str, tag: str) -> None:
    validate.tag(tag)
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.owns(ctx, image):
            raise Forbidden("You are not permitted to modify tags on this image.")
        svc.enforce(ctx, "modify_image", image)
        tags = list(image.tags or [])
        if tag not in tags:
            if len(tags) >= 128:
                raise PayloadTooLarge("Maximum number of tags (128) exceeded.")
            tags.append(tag)
            image.tags = tags
            image.updated_at = utcnow()


def delete_tag(svc: ImageService, ctx: RequestContext, image_id: str, tag: str) -> None:
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.owns(ctx, image):
            raise Forbidden("You are not permitted to modify tags on this image.")
        svc.enforce(ctx, "modify_image", image)
        tags = list(image.tags or [])
        if tag not in tags:
            from kumo.image.errors import NotFound

            raise NotFound(f"Tag {tag} not found.")
        tags.remove(tag)
        image.tags = tags
        image.updated_at = utcnow()


def require(svc: ImageService, ctx: RequestContext, image_id: str) -> Image:
    with svc.reading() as s:
        img = s.get(Image, image_id)
    if img is None:
        raise image_not_found(image_id)
    return img
