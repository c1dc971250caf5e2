"""Personality files (``personality`` on server create and rebuild, before microversion 2.57).

Each entry is ``{"path": ..., "contents": <base64>}``. The project's quotas ``injected_files``,
``injected_file_path_bytes`` and ``injected_file_content_bytes`` bound them (the content is
measured as sent, base64-encoded, as Nova does); going over is 403. The files are kept in the
server's ``system_metadata["injected_files"]`` and reach the guest as Nova delivers them: listed
in ``openstack/<version>/meta_data.json`` (``files``: ``path`` and ``content_path``) with the
data at ``openstack/content/NNNN``, on the config drive and from the metadata service.
A rebuild replaces them (with none when it names none).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kumo.compute.errors import BadRequest, OverLimit
from kumo.compute.service import quotas
from kumo.compute.service.core import ComputeService

KEY = "injected_files"
CONTENT_DIR = "content"


def parse(svc: ComputeService, project_id: str | None, value: Any, mv: Any) -> list[dict[str, str]]:
    """The validated files of a request's ``personality`` (400 on a bad shape, 403 over quota)."""
    if mv.matches("2.57"):
        raise BadRequest("Additional properties are not allowed ('personality' was unexpected)")
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for field/attribute personality. Value: {value!r}. "
                         f"{value!r} is not of type 'array'")
    files: list[dict[str, str]] = []
    for item in value:
        if not isinstance(item, dict):
            raise BadRequest(f"Invalid input for field/attribute personality. Value: {item!r}. "
                             f"{item!r} is not of type 'object'")
        extra = sorted(set(item) - {"path", "contents"})
        if extra:
            raise BadRequest(f"Invalid input for field/attribute personality. Additional properties are not "
                             f"allowed ({', '.join(repr(e) for e in extra)} "
                             f"{'was' if len(extra) == 1 else 'were'} unexpected)")
        path, contents = item.get("path"), item.get("contents", "")
        if not isinstance(path, str):
            raise BadRequest(f"Invalid input for field/attribute path. Value: {path!r}. {path!r} is not of type 'string'")
        if not isinstance(contents, str):
            raise BadRequest(f"Invalid input for field/attribute contents. Value: {contents!r}. "
                             f"{contents!r} is not of type 'string'")
        try:
            base64.b64decode(contents, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"Invalid input for field/attribute contents. Value: {contents}. "
                             f"'{contents}' is not a 'base64'") from None
        files.append({"path": path, "contents": contents})
    check_quota(svc, project_id, files)
    return files


def check_quota(svc: ComputeService, project_id: str | None, files: list[dict[str, str]]) -> None:
    lim = quotas.limits(svc, project_id)

    def limit(name: str) -> int:
        return int(lim.get(name, -1))

    if 0 <= limit("injected_files") < len(files):
        raise OverLimit("Personality file limit exceeded")
    path_max, content_max = limit("injected_file_path_bytes"), limit("injected_file_content_bytes")
    for f in files:
        if 0 <= path_max < len(f["path"].encode()):
            raise OverLimit(f"Personality file path exceeds maximum {path_max}")
        if 0 <= content_max < len(f["contents"]):
            raise OverLimit(f"Personality file content exceeds maximum {content_max}")


def stored(system_metadata: dict[str, Any] | None, files: list[dict[str, str]] | None) -> dict[str, Any]:
    """``system_metadata`` with the server's files replaced by ``files`` (none: removed)."""
    meta = {k: v for k, v in (system_metadata or {}).items() if k != KEY}
    if files:
        meta[KEY] = list(files)
    return meta


def replace(svc: ComputeService, server_id: str, files: list[dict[str, str]] | None) -> list[dict[str, str]] | None:
    """Store ``files`` as the server's (None or empty: none); returns the ones it had."""
    from kumo.compute.models import Server

    with svc.db.session() as s:
        row = s.get(Server, server_id)
        if row is None:
            return None
        before = (row.system_metadata or {}).get(KEY)
        row.system_metadata = stored(row.system_metadata, files)
        return before


def contents(system_metadata: dict[str, Any] | None) -> list[tuple[str, bytes]]:
    """(path, data) of the server's files, in the order given."""
    out = []
    for f in (system_metadata or {}).get(KEY) or []:
        out.append((str(f["path"]), base64.b64decode(f.get("contents") or "")))
    return out
