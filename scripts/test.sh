#!/usr/bin/env bash
# Set up the same environment as the demo and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest "$@"
