#!/usr/bin/env bash
# What the R oracle tests of multi-site validation need (tests/validation): R with the Debian
# packages riskRegression (competing-risk AUC, Brier, Aalen-Johansen) and metafor (random-effects
# meta-analysis, REML with Hartung-Knapp). Debian's builds, no CRAN download (closed network).
# Idempotent: installs only what is missing. Run by scripts/test.sh. Without root it says what to
# install and the tests compare with the stored R answers only (tests/validation/fixtures).
set -euo pipefail
PACKAGES=(r-base-core r-cran-riskregression r-cran-metafor)
if Rscript -e 'quit(status = !all(c("riskRegression", "metafor") %in% rownames(installed.packages())))' \
  >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "R oracle tests: install as root: apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" \
  >/dev/null
