#!/usr/bin/env bash
# What the clinician page's browser tests need besides the Python packages (playwright comes
# with the test extra): Debian's chromium (Playwright's own browser download cannot work on a
# closed network) and axe-core from the npm registry, a test asset only (the page never loads it).
# Idempotent: installs only what is missing. Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
AXE_VERSION="4.14.1"
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "browser tests: '$*' missing; install it as root: apt-get install -y $*" >&2
    return 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v chromium >/dev/null 2>&1 || apt_install chromium
if [ ! -f ".cache/axe-core/node_modules/axe-core/axe.min.js" ]; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  npm install --silent --no-audit --no-fund --no-save --prefix .cache/axe-core \
    "axe-core@${AXE_VERSION}" >/dev/null
fi
