#!/usr/bin/env bash
# From a fresh clone: install, simulate a 2,000-patient demo cohort, train, register, promote a
# champion and serve it with BentoML on http://127.0.0.1:${PORT:-3000}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
export OMP_WAIT_POLICY=PASSIVE
N="${N_PATIENTS:-2000}"
PORT="${PORT:-3000}"
echo "== simulate a demo cohort of $N patients (data/demo)"
bonemet simulate --n-patients "$N" --seed 42 --out data/demo
echo "== validate it against data contract v1"
bonemet validate --patients data/demo/patients.csv --measurements data/demo/oc_measurements.csv
echo "== train, log to MLflow and register candidate versions"
bonemet train --patients data/demo/patients.csv --measurements data/demo/oc_measurements.csv
echo "== promote the challenger to champion (gates: docs/modeling.md)"
if ! bonemet promote; then
  echo "The challenger failed a promotion gate (above). On this simulated demo cohort it is"
  echo "promoted anyway, and the reason is recorded on the version:"
  bonemet promote --force --reason "demo on simulated data: first champion despite a failed gate"
fi
echo "== registered versions"
bonemet compare
echo
echo "MLflow UI on the same store:"
echo "  $PWD/.venv/bin/$(bonemet ui-command)"
echo "Prediction API: http://127.0.0.1:$PORT/predict  (health: /healthz, /readyz; try:)"
echo "  curl -s -X POST http://127.0.0.1:$PORT/predict -H 'Content-Type: application/json' \\"
echo "    -d '{\"patients\": [{\"patient_id\": \"P0001\", \"age_years\": 54, \"disease_setting\": \"metastatic\", \"bone_metastasis_at_enrollment\": false, \"er_status\": \"positive\", \"oc_positive_percent\": 0.061}]}'"
echo "== serving the champion (Ctrl-C stops)"
exec bonemet serve --port "$PORT"
