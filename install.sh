#!/usr/bin/env bash
# Install kumo into ./.venv (and the system packages it needs). Idempotent and quick when current.
#   ./install.sh          runtime only
#   ./install.sh --dev    plus test tools (pytest, ruff, import-linter, openstack CLI, SDK)
set -euo pipefail
cd "$(dirname "$0")"

DEV=0
[[ "${1:-}" == "--dev" ]] && DEV=1

source scripts/lib.sh

PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "kumo needs Python >= 3.11 (found: $("$PY" --version 2>&1))" >&2
    exit 1
fi
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
    apt_install python3-venv
fi

# The data plane runs when kumo runs as root: the network (bridges, namespaces, dnsmasq,
# iptables), real VMs (QEMU; the tiny image is built from Debian packages), volumes (qemu-img)
# and the browser console page (noVNC).
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    apt_install iproute2 dnsmasq-base iptables qemu-system-x86 qemu-utils \
        busybox-static syslinux syslinux-common mtools dosfstools fdisk novnc
fi

STAMP=.venv/.kumo-install
WANT="$(sha256sum pyproject.toml | cut -c1-16)-dev$DEV"
if [[ -x .venv/bin/python && -f $STAMP && "$(cat $STAMP)" == "$WANT" ]]; then
    exit 0
fi
if [[ ! -x .venv/bin/python ]]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
fi
echo "==> installing kumo into .venv"
.venv/bin/python -m pip install -q --upgrade pip
if [[ $DEV -eq 1 ]]; then
    .venv/bin/python -m pip install -q -e '.[dev]'
else
    .venv/bin/python -m pip install -q -e .
fi
echo "$WANT" > $STAMP
