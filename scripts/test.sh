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

echo "==> ruff"
.venv/bin/ruff check kumo tests conformance bench
echo "==> import contracts"
.venv/bin/lint-imports

PGDIR=$(mktemp -d /tmp/kumo-test-pg.XXXXXX)
trap 'scripts/postgres.sh stop "$PGDIR"' EXIT
eval "$(scripts/postgres.sh start "$PGDIR")"

echo "==> pytest (unit + functional, SQLite and PostgreSQL)"
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider tests

echo "==> conformance: CLI smoke path and Tempest identity gate"
python3 conformance/run.py --services identity --gate --smoke

echo "==> all tests passed in $(( $(date +%s) - start ))s"
