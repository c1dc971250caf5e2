"""Config drive ISOs: the metadata a guest reads from a cdrom labelled ``config-2``.

The control plane sends the content (``VmSpec.config_drive_doc``, built by
kumo.compute.service.metadata.config_drive_doc): ``{"label": "config-2", "files": [{"path":
"openstack/latest/meta_data.json", "content": <base64>}, ...]}``. This module lays those files
out as an ISO 9660 image with Rock Ridge and Joliet names (what cloud-init and Nova's
genisoimage ``-J -r -V config-2`` produce), written atomically so a half-built ISO is never
attached.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import pycdlib

LABEL = "config-2"
_NOT_D_CHARS = re.compile(r"[^A-Z0-9_]")


class ConfigDriveError(ValueError):
    """The document cannot become a config drive (bad paths or content)."""


def _files(doc: Mapping[str, Any]) -> list[tuple[PurePosixPath, bytes]]:
    out = []
    for entry in doc.get("files") or []:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("path"), str):
            raise ConfigDriveError("every file needs a path")
        path = PurePosixPath(entry["path"])
        if path.is_absolute() or not path.parts or any(p in ("", ".", "..") for p in path.parts):
            raise ConfigDriveError(f"unsafe path in config drive: {entry['path']!r}")
        try:
            data = base64.b64decode(entry.get("content") or "", validate=True)
        except (binascii.Error, ValueError):
            raise ConfigDriveError(f"content of {entry['path']} is not base64") from None
        out.append((path, data))
    return out


class _Names:
    """Unique ISO 9660 level-3 names (d-characters, at most 30) per directory."""

    def __init__(self) -> None:
        self.taken: dict[str, set[str]] = {}

    def pick(self, parent: str, name: str, is_dir: bool) -> str:
        stem, dot, ext = name.rpartition(".") if not is_dir and "." in name else (name, "", "")
        stem = _NOT_D_CHARS.sub("_", stem.upper()) or "_"
        ext = _NOT_D_CHARS.sub("_", ext.upper())[:3] if dot else ""
        taken = self.taken.setdefault(parent, set())
        for n in range(10000):
            suffix = "" if n == 0 else f"_{n}"
            base = stem[: (30 if is_dir else 26) - len(suffix)] + suffix
            candidate = base if is_dir else f"{base}.{ext}"
            if candidate not in taken:
                taken.add(candidate)
                return candidate
        raise ConfigDriveError(f"too many names like {name} in one directory")


def build_config_drive(doc: Mapping[str, Any], path: Path) -> Path:
    """Write the ISO for ``doc`` to ``path`` (replaced atomically) and return ``path``."""
    files = _files(doc)
    label = str(doc.get("label") or LABEL)
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label, sys_ident="LINUX")
    names = _Names()
    dirs: dict[PurePosixPath, str] = {PurePosixPath("."): ""}  # real dir -> its ISO path
    try:
        for rel, data in sorted(files):
            parent = PurePosixPath(".")
            for part in rel.parts[:-1]:
                here = parent / part
                if here not in dirs:
                    iso_dir = f"{dirs[parent]}/{names.pick(dirs[parent], part, True)}"
                    iso.add_directory(iso_dir, rr_name=part, joliet_path="/" + here.as_posix())
                    dirs[here] = iso_dir
                parent = here
            iso_name = names.pick(dirs[parent], rel.name, False)
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                f"{dirs[parent]}/{iso_name};1",
                rr_name=rel.name,
                joliet_path="/" + rel.as_posix(),
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        iso.write(str(tmp))
    finally:
        iso.close()
    os.replace(tmp, path)
    return path


def read_config_drive(path: Path) -> dict[str, bytes]:
    """``relative path -> content`` of an ISO built here, by its Rock Ridge names (for tests and checks)."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    out: dict[str, bytes] = {}
    try:
        for dirname, _dirs, filenames in iso.walk(rr_path="/"):
            for name in filenames:
                full = f"{dirname.rstrip('/')}/{name}"
                buf = io.BytesIO()
                iso.get_file_from_iso_fp(buf, rr_path=full)
                out[full.lstrip("/")] = buf.getvalue()
    finally:
        iso.close()
    return out
