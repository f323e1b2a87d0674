#!/usr/bin/env bash
# same_behaviour.sh REPO OUT: with the code of REPO (a checkout of any commit, e.g. a git
# worktree; this project's venv), the demo cohort (2,000 patients, seed 42), a light training of
# every default family and a landmark training; every run's metrics and every version's
# predictions (at enrollment and at day 200) land in OUT. Compare two such folders with
# scripts/compare_behaviour.py BEFORE AFTER (docs/benchmarks.md, "Same seed, same answers").
set -euo pipefail
REPO=$1; OUT=$2
rm -rf "$OUT"; mkdir -p "$OUT"
export PYTHONPATH=$REPO OMP_WAIT_POLICY=PASSIVE MLFLOW_TRACKING_URI=sqlite:///$OUT/mlflow.db BONEMET_DATA_DIR=$OUT/data
PY=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
cd "$OUT"
B="$PY -m training.cli"
$B simulate --n-patients 2000 --seed 42 --out $OUT/demo >/dev/null
cat > cfg.yaml <<'Y'
outer_folds: 2
inner_folds: 2
max_grid: 2
n_bootstrap: 20
n_jobs: 1
Y
$B train --patients demo/patients.csv --measurements demo/oc_measurements.csv --config cfg.yaml --json > train.json
$B train --patients demo/patients.csv --measurements demo/oc_measurements.csv --config cfg.yaml --families cox_ridge,logistic_ipcw --landmarks 0,183,365 --experiment lm --json > train_lm.json
$PY - <<'P'
import json, mlflow
from mlflow import MlflowClient
c = MlflowClient()
out = {}
for e in c.search_experiments():
    for r in c.search_runs([e.experiment_id], max_results=1000):
        key = f"{e.name}/{r.data.tags.get('mlflow.runName')}"
        out[key] = {k: v for k, v in sorted(r.data.metrics.items())}
json.dump(out, open("metrics.json", "w"), indent=1, sort_keys=True)
vs = sorted(int(v.version) for v in c.search_model_versions("name='bone-metastasis-risk'"))
json.dump(vs, open("versions.json", "w"))
P
for v in $(cat versions.json | tr -d '[],'); do
  $B predict --patients demo/patients.csv --measurements demo/oc_measurements.csv --model-uri models:/bone-metastasis-risk/$v --out pred_v${v}_day0.csv >/dev/null
  $B predict --patients demo/patients.csv --measurements demo/oc_measurements.csv --model-uri models:/bone-metastasis-risk/$v --prediction-day 200 --out pred_v${v}_day200.csv >/dev/null
done
echo done
