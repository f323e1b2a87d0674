#!/usr/bin/env bash
# Set up the same environment as the demo and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/browser-test-deps.sh  # chromium and axe-core for the clinician page's tests
bash scripts/r-test-deps.sh  # R, riskRegression and metafor: the oracles of tests/validation
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest "$@"
