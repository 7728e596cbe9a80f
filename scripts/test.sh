#!/usr/bin/env bash
# Install with test extras and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
exec "${PYTHON:-python3}" -m pytest -ra --durations=15 "$@"
