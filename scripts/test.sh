#!/usr/bin/env bash
# The whole test suite: lint, import contracts, unit + functional tests (SQLite and
# PostgreSQL), the CLI smoke path and the Tempest conformance gate.
# Installs what it needs (Debian packages, .venv, the conformance venv).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

./install.sh --dev
source scripts/lib.sh
apt_install postgresql
apt_install dnsmasq-base iproute2 iptables busybox-static conntrack  # network data-plane e2e tests
apt_install lvm2 thin-provisioning-tools qemu-utils  # LVM volume back-end e2e test
apt_install qemu-system-x86 qemu-utils syslinux syslinux-common mtools dosfstools fdisk  # QEMU driver e2e, kumo-tiny
apt_install novnc  # noVNC's web page for VNC console URLs (Tempest's test_novnc, console tests)
apt_install chromium  # the dashboard's browser tests (Playwright drives Debian's Chromium, never a download)

echo "==> ruff"
.venv/bin/ruff check kumo tests conformance bench
echo "==> import contracts"
.venv/bin/lint-imports

PGDIR=$(mktemp -d /tmp/kumo-test-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$PGDIR"' EXIT
eval "$(scripts/postgres.sh start "$PGDIR")"

echo "==> pytest (unit + functional, SQLite and PostgreSQL)"
.venv/bin/python -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider tests

echo "==> conformance: CLI smoke path and the Tempest gate (baseline: conformance/baseline.json)"
python3 conformance/run.py --services "${KUMO_GATE_SERVICES:-identity,image,network,object_storage,compute,volume}" --gate --smoke \
    --results-dir "${KUMO_RESULTS_DIR:-conformance/results}"
echo "==> conformance harness tests"
conformance/.venv/bin/python -m pytest -q -p no:cacheprovider conformance

echo "==> all tests passed in $(( $(date +%s) - start ))s"
