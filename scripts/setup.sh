#!/usr/bin/env bash
# Create .venv (Python 3.11) and install bonemet with pinned dependencies (constraints.txt).
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "bonemet needs Python 3.11, found " + sys.version.split()[0]'
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=24"
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
# sekmet-fhir: the FHIR R4 server the CDS Hooks tests start on loopback (tests/cds). Without its
# dependencies: it asks for uvicorn[standard], whose uvloop and httptools are the project's own
# (pinned above) but whose other extras the project does not want; its other dependencies are
# in the test extra.
.venv/bin/python -m pip install --quiet --no-deps -c constraints.txt "sekmet-fhir==0.1.1"
