#!/usr/bin/env bash
# Install (if needed) and start the all-in-one cloud. Extra arguments go to `kumo up`.
set -euo pipefail
cd "$(dirname "$0")/.."
./install.sh
exec .venv/bin/kumo up "$@"
