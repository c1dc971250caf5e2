"""Image members: sharing an image with other projects.

Only the image's owner adds and removes members, and only while the image is
``shared``; only the member project itself accepts or rejects.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from kumo.common.context import RequestContext
from kumo.image.errors import BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge
from kumo.image.models import Member
from kumo.image.schemas import MEMBER_STATUSES
from kumo.image.service.core import ImageService, is_admin, utcnow

MAX_MEMBERS = 128


def _member_not_found(image_id: str, member_id: str) -> NotFound:
    return NotFound(f"Member {member_id} not found for image {image_id}.")


def create_member(svc: ImageService, ctx: RequestContext, image_id: str, body: Any) -> Member:
    if not isinstance(body, dict) or not isinstance(body.get("member"), str) or not body["member"]:
        raise BadRequest('Member to be added not specified: the body must be {"member": "<project id>"}.')
    member_id = body["member"]
    if len(member_id) > 255:
        raise BadRequest("Member id is too long.")
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        if not svc.owns(ctx, image):
            raise Forbidden("You are not permitted to add members to this image.")
        svc.enforce(ctx, "add_member", image)
        if image.visibility != "shared":
            raise Forbidden(f"Only shared images have members: image {image_id} is {image.visibility}.")
        if s.get(Member, (image_id, member_id)) is not None:
            raise Conflict(f"Member {member_id} already exists for image {image_id}.")
        count = s.scalar(select(func.count()).select_from(Member).where(Member.image_id == image_id)) or 0
        if count >= MAX_MEMBERS:
            raise PayloadTooLarge(f"Maximum number of image members ({MAX_MEMBERS}) exceeded.")
        now = utcnow()
        member = Member(
            image_id=image_id, member_id=member_id, status="pending", created_at=now, updated_at=now
        )
        s.add(member)
        return member


def list_members(svc: ImageService, ctx: RequestContext, image_id: str) -> list[Member]:
    with svc.reading() as s:
        image = svc.get_visible(s, ctx, image_id)
        svc.enforce(ctx, "get_members")
        if image.visibility != "shared":
            raise Forbidden(f"Only shared images have members: image {image_id} is {image.visibility}.")
        stmt = select(Member).where(Member.image_id == image_id).order_by(Member.created_at)
        if not svc.owns(ctx, image):  # a member sees only its own membership
            stmt = stmt.where(Member.member_id == ctx.project_id)
        return list(s.scalars(stmt))


def show_member(svc: ImageService, ctx: RequestContext, image_id: str, member_id: str) -> Member:
    with svc.reading() as s:
        image = svc.get_visible(s, ctx, image_id)
        svc.enforce(ctx, "get_member")
        member = s.get(Member, (image_id, member_id))
        if member is None or (not svc.owns(ctx, image) and member_id != ctx.project_id):
            raise _member_not_found(image_id, member_id)
        return member


def update_member(svc: ImageService, ctx: RequestContext, image_id: str, member_id: str, body: Any) -> Member:
    if not isinstance(body, dict) or "status" not in body:
        raise BadRequest('Status not specified: the body must be {"status": "accepted|rejected|pending"}.')
    status = body["status"]
    if status not in MEMBER_STATUSES:
        raise BadRequest(f"Invalid status: {status!r}; expected one of {', '.join(MEMBER_STATUSES)}.")
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        member = s.get(Member, (image_id, member_id))
        if member is None:
            raise _member_not_found(image_id, member_id)
        if member_id != ctx.project_id and not (is_admin(ctx) and image.owner != ctx.project_id):
            raise Forbidden("Only the member project can change the status of its membership.")
        svc.enforce(ctx, "modify_member")
        member.status = status
        member.updated_at = utcnow()
        return member


def delete_member(svc: ImageService, ctx: RequestContext, image_id: str, member_id: str) -> None:
    with svc.db.session() as s:
        image = svc.get_visible(s, ctx, image_id)
        member = s.get(Member, (image_id, member_id))
        if not svc.owns(ctx, image):
            if member is None or member_id != ctx.project_id:
                raise _member_not_found(image_id, member_id)
            raise Forbidden("Only the image owner can remove members.")
        svc.enforce(ctx, "delete_member", image)
        if member is None:
            raise _member_not_found(image_id, member_id)
        s.delete(member)
