"""Flavor extra spec validation (2.86): keys of known namespaces must be known and well-formed.

Keys without a namespace, or in a namespace kumo does not know (``foo:bar``), are accepted
as they are, as in Nova; a key in a known namespace (``hw:``, ``quota:``, ``resources:``,
``trait:`` ...) must be one that namespace defines, with a value of the right kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kumo.compute.errors import BadRequest

Check = Callable[[str], str | None]  # returns an error message, or None when the value is fine

_BOOL = {"true", "false", "1", "0", "yes", "no", "y", "n", "on", "off", "t", "f"}


def _enum(*values: str) -> Check:
    return lambda v: None if v in values else f"{v!r} is not one of {list(values)}"


def _int(minimum: int = 0) -> Check:
    def check(v: str) -> str | None:
        try:
            n = int(v)
        except ValueError:
            return f"{v!r} is not an integer"
        return None if n >= minimum else f"{v!r} is less than the minimum of {minimum}"

    return check


def _bool(v: str) -> str | None:
    return None if v.strip().lower() in _BOOL else f"{v!r} is not a boolean"


def _text(v: str) -> str | None:
    return None


def _pattern(regex: str, what: str) -> Check:
    return lambda v: None if re.fullmatch(regex, v) else f"{v!r} is not {what}"


_CPUSET = _pattern(r"\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*", "a CPU set such as 0-3,^2")
_GROUP = r"(?P<group>[a-zA-Z0-9_-]{1,64})?"
_RESOURCE_CLASSES = (
    "VCPU|MEMORY_MB|DISK_GB|PCI_DEVICE|SRIOV_NET_VF|NUMA_SOCKET|NUMA_CORE|NUMA_THREAD|NUMA_MEMORY_MB|"
    "IPV4_ADDRESS|VGPU|VGPU_DISPLAY_HEAD|NET_BW_EGR_KILOBIT_PER_SEC|NET_BW_IGR_KILOBIT_PER_SEC|"
    "PCPU|MEM_ENCRYPTION_CONTEXT|FPGA|PGPU|NET_PACKET_RATE_KILOPACKET_PER_SEC|"
    "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC|NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC|CUSTOM_[A-Z0-9_]+"
)

# (key regex, value check); the namespace of each is listed in NAMESPACES below
_REGISTRY: list[tuple[str, Check]] = [
    # hw: guest CPU, NUMA, memory and device topology
    (r"hw:cpu_policy", _enum("dedicated", "shared", "mixed")),
    (r"hw:cpu_thread_policy", _enum("prefer", "isolate", "require")),
    (r"hw:emulator_threads_policy", _enum("share", "isolate")),
    (r"hw:cpu_dedicated_mask", _CPUSET),
    (r"hw:cpu_realtime", _bool),
    (r"hw:cpu_realtime_mask", _CPUSET),
    (r"hw:cpu_(max_)?(sockets|cores|threads)", _int(1)),
    (r"hw:numa_nodes", _int(1)),
    (r"hw:numa_cpus\.\d+", _CPUSET),
    (r"hw:numa_mem\.\d+", _int(0)),
    (r"hw:mem_page_size", _pattern(r"small|large|any|\d+([kKmMgG][bB]?)?", "small, large, any or a size")),
    (r"hw:boot_menu", _bool),
    (r"hw:vif_multiqueue_enabled", _bool),
    (r"hw:watchdog_action", _enum("none", "pause", "poweroff", "reset", "disabled")),
    (r"hw:pci_numa_affinity_policy", _enum("required", "preferred", "legacy", "socket")),
    (r"hw:mem_encryption", _bool),
    (r"hw:pmem", _pattern(r"[A-Za-z0-9_]+(,[A-Za-z0-9_]+)*", "a comma separated list of namespace labels")),
    (r"hw:pmu", _bool),
    (r"hw:serial_port_count", _int(0)),
    (r"hw:tpm_version", _enum("1.2", "2.0")),
    (r"hw:tpm_model", _enum("tpm-tis", "tpm-crb")),
    (r"hw:locked_memory", _bool),
    (r"hw:virtio_packed_ring", _bool),
    (r"hw:viommu_model", _enum("intel", "smmuv3", "virtio", "auto")),
    (r"hw:maxphysaddr_mode", _enum("passthrough", "emulate")),
    (r"hw:maxphysaddr_bits", _int(1)),
    (r"hw:hide_hypervisor_id", _bool),
    (r"hw:ephemeral_encryption", _bool),
    (r"hw:ephemeral_encryption_format", _enum("luks", "plain")),
    (r"hw_rng:allowed", _bool),
    (r"hw_rng:rate_bytes", _int(0)),
    (r"hw_rng:rate_period", _int(0)),
    (r"hw_video:ram_max_mb", _int(0)),
    # os: guest firmware
    (r"os:secure_boot", _enum("required", "disabled", "optional")),
    # quota: CPU, disk and network I/O limits
    (r"quota:cpu_(quota|period|shares|limit|reservation|shares_share)", _int(0)),
    (r"quota:cpu_shares_level", _enum("custom", "high", "normal", "low")),
    (r"quota:memory_(limit|reservation|shares_share)", _int(0)),
    (r"quota:memory_shares_level", _enum("custom", "high", "normal", "low")),
    (r"quota:disk_(read|write|total)_(bytes|iops)_sec", _int(0)),
    (r"quota:disk_io_(limit|reservation|shares_share)", _int(0)),
    (r"quota:disk_io_shares_level", _enum("custom", "high", "normal", "low")),
    (r"quota:vif_(inbound|outbound)_(average|peak|burst)", _int(0)),
    (r"quota:vif_(limit|reservation|shares_share)", _int(0)),
    (r"quota:vif_shares_level", _enum("custom", "high", "normal", "low")),
    # placement: resource amounts and required/forbidden traits (optionally grouped)
    (rf"resources{_GROUP}:({_RESOURCE_CLASSES})", _int(0)),
    (rf"trait{_GROUP}:[A-Z0-9_]+", _enum("required", "forbidden")),
    (r"group_policy", _enum("none", "isolate")),
    (r"hide_hypervisor_id", _bool),
    # accelerators, PCI aliases, VMware
    (r"accel:device_profile", _text),
    (r"pci_passthrough:alias", _pattern(r"[^:,]+:\d+(,[^:,]+:\d+)*", "a list of alias:count")),
    (r"vmware:hw_version", _text),
    (r"vmware:storage_policy", _text),
    # scheduler filters match free-form keys in these namespaces
    (r"aggregate_instance_extra_specs:.+", _text),
    (r"capabilities:.+", _text),
]
NAMESPACES = (
    "hw", "hw_rng", "hw_video", "os", "quota", rf"resources{_GROUP}", rf"trait{_GROUP}", "accel",
    "pci_passthrough", "vmware", "aggregate_instance_extra_specs", "capabilities",
)  # fmt: skip


def validate(key: str, value: str) -> None:
    """400 unless ``key``/``value`` is a valid extra spec (unknown namespaces are accepted)."""
    for pattern, check in _REGISTRY:
        if re.fullmatch(pattern, key):
            problem = check(value)
            if problem:
                raise BadRequest(f"Validation failed; {problem} for extra spec '{key}'.")
            return
    if ":" not in key:
        return
    namespace = key.split(":", 1)[0]
    if any(re.fullmatch(ns, namespace) for ns in NAMESPACES):
        raise BadRequest(f"Validation failed; extra spec '{key}' does not appear to be a valid extra spec.")
