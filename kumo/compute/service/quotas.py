"""Quota sets, defaults and usage (Nova's os-quota-sets, limits)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kumo.compute.models import Quota, QuotaClass
from kumo.compute.service.core import ComputeService

DEFAULTS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "metadata_items": 128,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
    "key_pairs": 100,
    "server_groups": 10,
    "server_group_members": 10,
}
# Shown (not enforced) before 2.36 / 2.57, as Nova does
LEGACY_NETWORK = {"fixed_ips": -1, "floating_ips": -1, "security_groups": -1, "security_group_rules": -1}


def defaults(svc: ComputeService) -> dict[str, int]:
    out = dict(DEFAULTS)
    with svc.db.reader() as s:
        for row in s.execute(select(QuotaClass).where(QuotaClass.name == "default")).scalars():
            out[row.resource] = row.hard_limit
    return out


def limits(svc: ComputeService, project_id: str | None, user_id: str | None = None) -> dict[str, int]:
    out = defaults(svc)
    with svc.db.reader() as s:
        rows = list(s.execute(select(Quota).where(Quota.project_id == (project_id or ""))).scalars())
    for row in rows:
        if row.user_id == "":
            out[row.resource] = row.hard_limit
    if user_id:
        for row in rows:
            if row.user_id == user_id:
                out[row.resource] = row.hard_limit
    return out


def limit_for(svc: ComputeService, project_id: str | None, resource: str) -> int:
    return limits(svc, project_id).get(resource, -1)


def set_limits(svc: ComputeService, project_id: str, values: dict[str, int], user_id: str = "") -> None:
    with svc.db.session() as s:
        for resource, value in values.items():
            row = s.get(Quota, (project_id, user_id, resource))
            if row is None:
                s.add(Quota(project_id=project_id, user_id=user_id, resource=resource, hard_limit=value))
            else:
                row.hard_limit = value


def delete_limits(svc: ComputeService, project_id: str) -> None:
    with svc.db.session() as s:
        for row in s.execute(select(Quota).where(Quota.project_id == project_id)).scalars():
            s.delete(row)


def set_class(svc: ComputeService, name: str, values: dict[str, Any]) -> None:
    with svc.db.session() as s:
        for resource, value in values.items():
            row = s.get(QuotaClass, (name, resource))
            if row is None:
                s.add(QuotaClass(name=name, resource=resource, hard_limit=value))
            else:
                row.hard_limit = value
