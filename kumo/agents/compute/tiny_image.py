"""``kumo-tiny``: a CirrOS-like test image built from Debian packages (no host mounts, no root fs).

A Debian cloud kernel (downloaded with ``apt-get download`` and unpacked with ``dpkg -x``,
never installed), a busybox-static initramfs whose ``/init`` loads the virtio modules, starts
acpid (so ACPI power-off works), takes a DHCP lease on every NIC, reads the OpenStack metadata
(network, else a ``config-2`` config drive), runs ``user_data`` when it is a shell script and
prints markers on the serial console; syslinux makes the disk BIOS-bootable. The result is a
~12 MiB compressed qcow2, cached under a key of its inputs so a rebuild is instant.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BUILDER_VERSION = "3"
KERNEL_META_PACKAGE = "linux-image-cloud-amd64"
APT_PACKAGES = ("busybox-static", "syslinux", "syslinux-common", "mtools", "dosfstools", "fdisk", "qemu-utils")
TOOLS = {"busybox": "busybox-static", "syslinux": "syslinux", "mcopy": "mtools", "mkfs.vfat": "dosfstools",
         "sfdisk": "fdisk", "qemu-img": "qemu-utils"}
MODULES = ("virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "failover",
           "net_failover", "virtio_net", "virtio_blk", "evdev", "button", "cdrom", "isofs")
BOOT_MARKER = "=== kumo-tiny ready ==="  # printed on ttyS0 once networking and metadata are done
FIRST_MARKER = "kumo-tiny: booting"  # printed as soon as /init runs
DISK_MB = 32

INIT = r"""#!/bin/sh
export PATH=/bin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /mnt/config
mount -t devpts devpts /dev/pts
exec </dev/console >/dev/console 2>&1
echo "kumo-tiny: booting"
for m in @MODULES@; do insmod /lib/modules/$m.ko 2>/dev/null; done
acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid
ip link set lo up
hostname kumo-tiny
for d in /sys/class/net/eth*; do
  [ -e "$d" ] || continue
  n=${d##*/}
  ip link set "$n" up
  udhcpc -i "$n" -s /etc/udhcpc.sh -n -q -t 15 -T 2 -O staticroutes >/run/udhcpc.$n 2>&1 || echo "kumo-tiny: no DHCP lease on $n"
  echo "kumo-tiny: $n DHCP discovers sent: $(grep -c 'discover' /run/udhcpc.$n)"
done
for d in /sys/class/net/eth*; do
  [ -e "$d" ] || continue
  n=${d##*/}
  echo "kumo-tiny: $n $(cat $d/address) $(ip -4 -o addr show dev $n | awk '{print $4}')"
done
md=/run/meta_data.json
src=none
if [ -n "$(ip -4 -o addr show scope global)" ] && timeout 10 wget -q -O $md http://169.254.169.254/openstack/latest/meta_data.json 2>/dev/null && [ -s $md ]; then
  src=metadata
  timeout 10 wget -q -O /run/user_data http://169.254.169.254/openstack/latest/user_data 2>/dev/null || rm -f /run/user_data
else
  dev=$(findfs LABEL=config-2 2>/dev/null)
  if [ -n "$dev" ] && mount -t iso9660 -o ro "$dev" /mnt/config 2>/dev/null; then
    src=config-drive
    cp /mnt/config/openstack/latest/meta_data.json $md 2>/dev/null
    cp /mnt/config/openstack/latest/user_data /run/user_data 2>/dev/null
  fi
fi
field() { tr -d '\n' < $md | grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/.*: *"\(.*\)"/\1/'; }
if [ -s $md ]; then
  h=$(field hostname); u=$(field uuid)
  [ -n "$h" ] && hostname "${h%%.*}"
  echo "kumo-tiny: metadata from $src: instance $u hostname $h"
  mkdir -p /root/.ssh
  tr -d '\n' < $md | grep -o '"public_keys": *{[^}]*}' | grep -o 'ssh-[a-z0-9-]* [A-Za-z0-9+/=]*' > /root/.ssh/authorized_keys
else
  echo "kumo-tiny: no metadata"
fi
if [ -s /run/user_data ] && [ "$(head -c 2 /run/user_data)" = "#!" ]; then
  chmod +x /run/user_data
  echo "kumo-tiny: running user_data"
  /run/user_data
  echo "kumo-tiny: user_data exited $?"
fi
echo "=== kumo-tiny ready === hostname $(hostname) ips $(ip -4 -o addr show scope global | awk '{print $4}' | tr '\n' ' ')"
while :; do
  echo "kumo-tiny login: root (a shell on ttyS0)"
  setsid cttyhack sh -l
  sleep 1
done
"""

UDHCPC = r"""#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface"; ip link set "$interface" up ;;
bound|renew)
  ip -4 addr flush dev "$interface"
  ip addr add "$ip/${mask:-24}" dev "$interface"
  if [ -n "$staticroutes" ]; then
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      if [ "$2" = 0.0.0.0 ]; then ip route replace "$1" dev "$interface"
      else ip route replace "$1" via "$2" dev "$interface"; fi
      shift 2
    done
  elif [ -n "$router" ]; then
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
  fi
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done ;;
esac
exit 0
"""

POWER_OFF = "#!/bin/sh\nsync\npoweroff -f\n"
SYSLINUX_CFG = """SERIAL 0 115200
DEFAULT kumo
PROMPT 0
TIMEOUT 0
LABEL kumo
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=tty0 console=ttyS0,115200 quiet{extra}
"""


class BuildError(Exception):
    """The tiny image could not be built (missing tools, no apt, a failed step)."""


def cache_dir() -> Path:
    env = os.environ.get("KUMO_CACHE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0 and os.access("/var/cache", os.W_OK):
        return Path("/var/cache/kumo")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kumo"


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 300) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise BuildError(f"command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{' '.join(argv)} timed out") from exc
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(argv)} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout


_APT_UPDATED = False


def apt_install(packages: list[str] | tuple[str, ...]) -> None:
    """Install missing Debian packages when root (``apt-get update`` once per process)."""
    global _APT_UPDATED
    missing = [p for p in packages if not _dpkg_installed(p)]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BuildError(f"missing packages {' '.join(missing)}: install them (apt-get install {' '.join(missing)})")
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    if not _APT_UPDATED:
        _run([*env_cmd, "apt-get", "-o", "DPkg::Lock::Timeout=300", "update", "-qq"], timeout=600)
        _APT_UPDATED = True
    _run([*env_cmd, "apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "--no-install-recommends",
          *missing], timeout=900)


def _dpkg_installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True, check=False)
    return "install ok installed" in proc.stdout


def _package_version(package: str, installed: bool = False) -> str:
    if installed:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True,
                              check=False).stdout.strip()
    for line in _run(["apt-cache", "policy", package]).splitlines():
        if line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            if value and value != "(none)":
                return value
    raise BuildError(f"no installable version of {package} (is apt configured with Debian's main archive?)")


def host_tsc_khz() -> int | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return int(float(line.split(":", 1)[1]) * 1000)
    except (OSError, ValueError):
        pass
    return None


def _kernel_args() -> str:
    # no_timer_check: under TCG on a busy host the kernel's IO-APIC timer check can miss its ticks
    # and panic ("IO-APIC + timer doesn't work!"), as 20 guests started at once showed
    khz = host_tsc_khz()
    return " no_timer_check" + (f" tsc_early_khz={khz}" if khz else "")


def cache_key() -> str:
    """A digest of everything the image is made from (kernel, busybox, syslinux, scripts)."""
    parts = [BUILDER_VERSION, INIT, UDHCPC, POWER_OFF, SYSLINUX_CFG, _kernel_args(), " ".join(MODULES),
             _package_version(KERNEL_META_PACKAGE), _package_version("busybox-static", installed=True),
             _package_version("syslinux", installed=True)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def newc_archive(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A ``newc`` cpio archive of (path, mode, data) — device nodes need no privileges here."""
    out = io.BytesIO()

    def put(name: str, mode: int, data: bytes, ino: int, rdev: tuple[int, int] = (0, 0)) -> None:
        nameb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nameb), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(nameb)
        out.write(b"\0" * (-(110 + len(nameb)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))

    for ino, (name, mode, data) in enumerate(entries, start=1):
        rdev = (5, 1) if name == "dev/console" else (0, 0)
        put(name, mode, data, ino, rdev)
    put("TRAILER!!!", 0, b"", 0)
    return out.getvalue()


def initramfs(busybox: Path, modules: dict[str, Path]) -> bytes:
    """The gzipped initramfs: busybox and its applet links, the modules, /init and its scripts."""
    import gzip

    d, x, r = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, stat.S_IFREG | 0o644
    entries: list[tuple[str, int, bytes]] = [
        (p, d, b"") for p in ("bin", "sbin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF", "lib", "lib/modules",
                              "proc", "sys", "run", "tmp", "root", "mnt", "var", "var/log")
    ]
    entries.append(("dev/console", stat.S_IFCHR | 0o600, b""))
    entries.append(("var/run", stat.S_IFLNK | 0o777, b"/run"))
    entries.append(("bin/busybox", x, busybox.read_bytes()))
    applets = _run([str(busybox), "--list"]).split()
    for applet in sorted(set(applets) - {"busybox"}):
        entries.append((f"bin/{applet}", stat.S_IFLNK | 0o777, b"busybox"))
    for name, path in modules.items():
        entries.append((f"lib/modules/{name}.ko", r, path.read_bytes()))
    entries.append(("init", x, INIT.replace("@MODULES@", " ".join(MODULES)).encode()))
    entries.append(("etc/udhcpc.sh", x, UDHCPC.encode()))
    entries.append(("etc/acpi/PWRF/00000080", x, POWER_OFF.encode()))
    entries.append(("etc/passwd", r, b"root:x:0:0:root:/root:/bin/sh\n"))
    entries.append(("etc/group", r, b"root:x:0:\n"))
    entries.append(("etc/profile", r, b"export PATH=/bin:/sbin PS1='\\h# '\n"))
    return gzip.compress(newc_archive(entries), compresslevel=9, mtime=0)


def _fetch_kernel(work: Path, say: Callable[[str], None]) -> tuple[Path, dict[str, Path]]:
    say(f"downloading {KERNEL_META_PACKAGE} (apt-get download; not installed on this host)")
    _run(["apt-get", "download", KERNEL_META_PACKAGE], cwd=work)
    meta = next(work.glob(f"{KERNEL_META_PACKAGE}_*.deb"))
    depends = _run(["dpkg-deb", "-f", str(meta), "Depends"])
    versioned = next((d.split()[0] for d in depends.split(",") if d.strip().startswith("linux-image-")), None)
    if versioned is None:
        raise BuildError(f"{KERNEL_META_PACKAGE} depends on no kernel package ({depends.strip()})")
    say(f"downloading {versioned}")
    _run(["apt-get", "download", versioned], cwd=work)
    deb = next(work.glob(f"{versioned}_*.deb"))
    root = work / "kernel"
    _run(["dpkg", "-x", str(deb), str(root)])
    vmlinuz = next((root / "boot").glob("vmlinuz-*"))
    found: dict[str, Path] = {}
    for path in (root / "lib" / "modules").rglob("*.ko"):
        if path.stem in MODULES:
            found[path.stem] = path
    missing = [m for m in MODULES if m not in found]
    if missing:
        raise BuildError(f"kernel package {versioned} lacks modules {missing}")
    return vmlinuz, {m: found[m] for m in MODULES}


def _syslinux_file(name: str) -> Path:
    for base in ("/usr/lib/syslinux/mbr", "/usr/lib/SYSLINUX", "/usr/share/syslinux"):
        p = Path(base) / name
        if p.is_file():
            return p
    raise BuildError(f"syslinux's {name} not found (apt-get install syslinux-common)")


def _disk(work: Path, vmlinuz: Path, initrd: Path, out_raw: Path) -> None:
    with open(out_raw, "wb") as fh:
        fh.truncate(DISK_MB * 1024 * 1024)
    subprocess.run(["sfdisk", "--quiet", str(out_raw)], input="2048,,6,*\n", text=True, check=True,
                   capture_output=True)
    blocks = (DISK_MB - 1) * 1024  # 1 KiB blocks after the 1 MiB offset
    _run(["mkfs.vfat", "-F", "16", "-n", "KUMOTINY", "--offset", "2048", str(out_raw), str(blocks)])
    _run(["syslinux", "--install", "--offset", str(2048 * 512), str(out_raw)])
    mbr = _syslinux_file("mbr.bin").read_bytes()[:440]
    with open(out_raw, "r+b") as fh:
        fh.write(mbr)
    cfg = work / "syslinux.cfg"
    cfg.write_text(SYSLINUX_CFG.format(extra=_kernel_args()))
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    for src, dst in ((vmlinuz, "vmlinuz"), (initrd, "initrd.gz"), (cfg, "syslinux.cfg")):
        subprocess.run(["mcopy", "-o", "-i", f"{out_raw}@@1M", str(src), f"::{dst}"], check=True,
                       capture_output=True, env=env)


def ensure_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None and not _dpkg_installed(pkg)})
    if missing or not _syslinux_ok():
        apt_install(list(APT_PACKAGES))


def _syslinux_ok() -> bool:
    try:
        _syslinux_file("mbr.bin")
        return True
    except BuildError:
        return False


def build(output: Path | None = None, say: Callable[[str], None] = lambda _m: None, force: bool = False) -> Path:
    """Build (or reuse from the cache) the tiny image; copy it to ``output`` when given."""
    ensure_tools()
    key = cache_key()
    cached = cache_dir() / f"kumo-tiny-{key}.qcow2"
    if cached.is_file() and not force:
        say(f"cached: {cached}")
    else:
        started = time.monotonic()
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="kumo-tiny-") as tmp:
            work = Path(tmp)
            vmlinuz, modules = _fetch_kernel(work, say)
            say("building the initramfs (busybox-static)")
            busybox = Path(shutil.which("busybox") or "/bin/busybox")
            initrd = work / "initrd.gz"
            initrd.write_bytes(initramfs(busybox, modules))
            say("making the BIOS-bootable disk (syslinux)")
            raw = work / "disk.raw"
            _disk(work, vmlinuz, initrd, raw)
            say("converting to compressed qcow2")
            part = cached.with_suffix(".part")
            _run(["qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", str(raw), str(part)])
            os.replace(part, cached)
        say(f"built {cached} ({cached.stat().st_size / 2**20:.1f} MiB) in {time.monotonic() - started:.1f}s")
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, output)
        return output
    return cached
