"""Image policy: Glance's secure-RBAC defaults.

Readers of a project read, members of the project write what their project
owns, admins act everywhere. Making an image public ("publicize_image") is for
admins only; deactivating is for the owner's members and admins, as Glance's
defaults allow.
"""

from __future__ import annotations

from kumo.common.context import RequestContext
from kumo.common.policy import (
    ADMIN,
    Policy,
    any_of,
    cloud_admin,
    project_member,
    project_reader,
    system_reader,
)

READ = any_of(cloud_admin, system_reader, project_reader)


def service(ctx: RequestContext, _t: object) -> bool:
    """A service user (the ``service`` role), as Glance's ``fetch_image_location`` wants."""
    return "service" in (ctx.roles or ())


WRITE = any_of(cloud_admin, project_member)

POLICY = Policy(
    {
        "get_images": READ,
        "get_image": any_of(READ, service),
        "download_image": any_of(READ, service),
        "add_image": WRITE,
        "modify_image": WRITE,
        "delete_image": any_of(WRITE, service),  # service: only images without data (ImageService.fills)
        "upload_image": any_of(WRITE, service),
        "publicize_image": ADMIN,
        "communitize_image": WRITE,
        "deactivate": WRITE,
        "reactivate": WRITE,
        "add_member": WRITE,
        "delete_member": WRITE,
        "get_member": READ,
        "get_members": READ,
        "modify_member": WRITE,
        "get_tasks": READ,
        "get_usage": READ,
        "set_owner": ADMIN,
        "download_deactivated": ADMIN,
        "copy_image": ADMIN,
        "delete_image_location": ADMIN,
        "get_image_location": READ,
        "set_image_location": WRITE,
        "add_image_location": WRITE,
        "fetch_image_location": any_of(cloud_admin, service),
        "stores_info_detail": ADMIN,
        "cache_list": ADMIN,
        "cache_image": ADMIN,
        "cache_delete": ADMIN,
    }
)
