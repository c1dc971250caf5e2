"""LVM thin provisioning: small functions around ``lvs``, ``lvcreate``, ``lvextend``, ``lvchange``,
``lvremove`` (and ``qemu-img`` writing into a logical volume).

Only logical volumes whose names carry a kumo prefix (``volume-``, ``snapshot-``, ``kumo-``) are
ever created, changed or removed; volume groups are never created or removed here (the operator
names one in the config). Every command is an argument list.
"""

from __future__ import annotations

import json
import re

from kumo.privileged.cmd import PrivilegedError, run

LV_PREFIXES = ("volume-", "snapshot-", "kumo-")
_NAME = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.\-]*$")


def check_vg(vg: str) -> str:
    if not vg or not _NAME.match(vg) or len(vg) > 120:
        raise PrivilegedError(f"refusing volume group name {vg!r}")
    return vg


def check_lv(lv: str) -> str:
    if not lv or not _NAME.match(lv) or len(lv) > 120 or not lv.startswith(LV_PREFIXES):
        raise PrivilegedError(f"refusing to touch logical volume {lv!r}: not a kumo-made name")
    return lv


def _lvm(*argv: str, timeout: float = 120.0) -> str:
    return run(list(argv), timeout=timeout)


def available() -> str | None:
    """None when LVM can work here, else why not (no tools, no device-mapper in the kernel)."""
    try:
        run(["lvm", "version"], timeout=15)
    except PrivilegedError as exc:
        return f"lvm tools are not usable: {exc}"
    try:
        run(["dmsetup", "version"], timeout=15)
    except PrivilegedError:
        return "the kernel has no device-mapper (dmsetup version failed)"
    return None


def vg_exists(vg: str) -> bool:
    try:
        _lvm("vgs", "--noheadings", "-o", "vg_name", check_vg(vg))
    except PrivilegedError:
        return False
    return True


def vg_free_bytes(vg: str) -> int:
    out = _lvm("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_free", check_vg(vg))
    return int(float(out.strip() or 0))


def list_lvs(vg: str) -> list[dict[str, str]]:
    """Every LV of the group: name, size (bytes), pool, origin, data_percent, attr, path."""
    out = _lvm(
        "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-a",
        "-o", "lv_name,lv_size,pool_lv,origin,data_percent,lv_attr,lv_path", check_vg(vg),
    )  # fmt: skip
    try:
        rows = json.loads(out)["report"][0]["lv"]
    except (ValueError, KeyError, IndexError) as exc:
        raise PrivilegedError(f"unreadable lvs output: {exc}") from None
    return [{k.removeprefix("lv_"): str(v) for k, v in row.items()} for row in rows]


def create_thin_pool(vg: str, pool: str, percent_free: int = 90) -> None:
    """A thin pool using ``percent_free`` % of the group's free space (the pool's name is the
    operator's choice, so only its format is checked)."""
    check_vg(vg)
    if not _NAME.match(pool):
        raise PrivilegedError(f"refusing thin pool name {pool!r}")
    _lvm("lvcreate", "--yes", "--type", "thin-pool", "-l", f"{int(percent_free)}%FREE", "-n", pool, vg)


def create_thin(vg: str, pool: str, lv: str, size_bytes: int) -> None:
    _lvm("lvcreate", "--yes", "-T", f"{check_vg(vg)}/{pool}", "-V", f"{int(size_bytes)}b", "-n", check_lv(lv))


def snapshot(vg: str, origin: str, lv: str, *, active: bool = False) -> None:
    """A thin snapshot ``lv`` of ``origin`` (activation-skipped unless ``active``)."""
    argv = ["lvcreate", "--yes", "-s", "-n", check_lv(lv)]
    if active:
        argv += ["-k", "n"]
    _lvm(*argv, f"{check_vg(vg)}/{check_lv(origin)}")


def activate(vg: str, lv: str) -> None:
    _lvm("lvchange", "-a", "y", "-K", f"{check_vg(vg)}/{check_lv(lv)}")


def set_activation_skip(vg: str, lv: str, skip: bool) -> None:
    _lvm("lvchange", "-k", "y" if skip else "n", f"{check_vg(vg)}/{check_lv(lv)}")


def extend(vg: str, lv: str, size_bytes: int) -> None:
    _lvm("lvextend", "-L", f"{int(size_bytes)}b", f"{check_vg(vg)}/{check_lv(lv)}")


def remove(vg: str, lv: str) -> None:
    _lvm("lvremove", "-f", f"{check_vg(vg)}/{check_lv(lv)}")


def image_into(image: str, image_format: str, vg: str, lv: str, target_is_zero: bool = True) -> None:
    """Write an image file's contents (converted to raw) into the LV."""
    device = f"/dev/{check_vg(vg)}/{check_lv(lv)}"
    argv = ["qemu-img", "convert", "-f", image_format, "-O", "raw", "-n"]
    if target_is_zero:
        argv.append("--target-is-zero")
    run([*argv, image, device], timeout=3600)


def image_virtual_size(image: str, image_format: str) -> int:
    out = run(["qemu-img", "info", "--output", "json", "-f", image_format, image], timeout=60)
    try:
        return int(json.loads(out)["virtual-size"])
    except (ValueError, KeyError) as exc:
        raise PrivilegedError(f"unreadable qemu-img info output: {exc}") from None
