#!/usr/bin/env bash
# Thin wrapper: run the Tempest conformance harness with the system python3.
#   conformance/run.sh --services identity [--gate] ...   (see conformance/README.md)
set -euo pipefail
exec python3 "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/run.py" "$@"
