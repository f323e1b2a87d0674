#!/usr/bin/env bash
# From a fresh clone: install, simulate a 2,000-patient demo cohort, train, register, promote a
# champion and serve it with BentoML on http://127.0.0.1:${PORT:-3000}.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
STARTED=$SECONDS  # the demo's time is counted from here, after the install
export PATH="$PWD/.venv/bin:$PATH"
export OMP_WAIT_POLICY=PASSIVE
N="${N_PATIENTS:-2000}"
PORT="${PORT:-3000}"
# Landmark days (0 first): the models predict from any prediction_day with the draws known by
# then. LANDMARKS="" trains models that predict from enrollment only (about half the time).
LANDMARKS="${LANDMARKS-0,91,183,365}"
# Model families trained by the demo: three of different kinds (a Cox model, gradient-boosted
# trees, an IPCW classifier) so that it ends in about 5 minutes on 2 cores
# (docs/benchmarks.md). FAMILIES="" trains every default family (the full run: about 2 min 10 s
# of training on a quiet 2-core machine, docs/benchmarks.md "Training the demo").
FAMILIES="${FAMILIES-cox_ridge,xgb_cox,logistic_ipcw}"
# Patients whose draws are also written as FCS files (data/demo/fcs) and gated by FlowKit.
FCS_PATIENTS="${FCS_PATIENTS:-3}"
echo "== simulate a demo cohort of $N patients (data/demo), FCS files for $FCS_PATIENTS of them"
bonemet simulate --n-patients "$N" --seed 42 --out data/demo --fcs "$FCS_PATIENTS"
if [ "$FCS_PATIENTS" -gt 0 ]; then
  echo "== gate the FCS files with the GatingML strategy (FlowKit): counts must equal the simulated"
  bonemet cytometry --manifest data/demo/fcs/manifest.csv --gating data/demo/fcs/gating.xml \
    --pbmc-gate PBMC --oc-gate OC_pos --out data/demo/fcs/oc_measurements_from_fcs.csv \
    --expect data/demo/oc_measurements.csv
fi
echo "== validate it against data contract v1.2"
bonemet validate --patients data/demo/patients.csv --measurements data/demo/oc_measurements.csv
echo "== the study report (aims 1 and 2, monitoring): data/demo/study/report.html"
bonemet study --patients data/demo/patients.csv --measurements data/demo/oc_measurements.csv \
  --out data/demo/study
echo "== train, log to MLflow and register candidate versions (landmarks: ${LANDMARKS:-none};" \
  "families: ${FAMILIES:-all defaults})"
bonemet train --patients data/demo/patients.csv --measurements data/demo/oc_measurements.csv \
  ${LANDMARKS:+--landmarks "$LANDMARKS"} ${FAMILIES:+--families "$FAMILIES"}
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
echo "  then open http://127.0.0.1:5000 and click 'Model training' once at the top of the sidebar"
echo "  (MLflow 3.17 opens experiments on its GenAI view until then; docs/comparing-versions.md)"
echo "Prediction API: http://127.0.0.1:$PORT/predict  (health: /healthz, /readyz; try:)"
echo "  curl -s -X POST http://127.0.0.1:$PORT/predict -H 'Content-Type: application/json' \\"
echo "    -d '{\"patients\": [{\"patient_id\": \"P0001\", \"age_years\": 54, \"disease_setting\": \"metastatic\", \"bone_metastasis_at_enrollment\": false, \"er_status\": \"positive\", \"oc_positive_percent\": 0.061}]}'"
echo "With repeated draws, predicting from day 90 (only draws on or before prediction_day count):"
echo "  curl -s -X POST http://127.0.0.1:$PORT/predict -H 'Content-Type: application/json' \\"
echo "    -d '{\"patients\": [{\"patient_id\": \"P0001\", \"age_years\": 54, \"disease_setting\": \"metastatic\", \"bone_metastasis_at_enrollment\": false, \"er_status\": \"positive\", \"oc_positive_percent\": 0.061, \"oc_measurements\": [{\"day\": 0, \"oc_positive_percent\": 0.061}, {\"day\": 90, \"oc_positive_percent\": 0.074}], \"prediction_day\": 90}]}'"
if [ -n "${BONEMET_API_TOKEN:-}" ]; then
  echo "Bearer token required (BONEMET_API_TOKEN is set): clients add"
  echo "  -H \"Authorization: Bearer \$BONEMET_API_TOKEN\""
else
  echo "No bearer token configured: anyone on this machine can call the API. To require one,"
  echo "  BONEMET_API_TOKEN=<secret> bash scripts/demo.sh   (or: BONEMET_API_TOKEN=<secret> bonemet serve)"
  echo "and clients add -H 'Authorization: Bearer <secret>' (docs/serving.md, Security and audit)."
fi
echo "(the demo took $(( (SECONDS - STARTED) / 60 )) min $(( (SECONDS - STARTED) % 60 )) s after the install)"
echo "== serving the champion (Ctrl-C stops)"
exec bonemet serve --port "$PORT"
