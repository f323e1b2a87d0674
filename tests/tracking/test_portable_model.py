"""A logged model travels (issue 9, point 6): it loads and predicts in a fresh virtual
environment holding only the model's own ``requirements.txt``, outside the project folder.

One model per family is fitted (the first configuration of its grid, no search: the search is
not what travels), logged with :func:`training.runs.log_model.log_risk_model` to a file
store, copied to a folder outside the project, and loaded by a fresh ``python -m venv`` with only
the union of the models' requirements installed (pip's configured wheelhouse makes this work
offline). Its predictions must equal the in-project ones.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import check_patients
from features.records import contract_rows
from features.schema import PREDICTOR_COLUMNS
from tests.models.data import training_rows
from training.config import TrainConfig
from training.fitting.family_run import fit_risk_model
from training.models.catalog import FAMILIES
from training.runs.log_model import log_risk_model

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
import mlflow
import pandas as pd

rows = pd.read_json(sys.argv[2], orient="records", dtype=False)
out = {}
for family, path in json.loads(open(sys.argv[1]).read()).items():
    model = mlflow.pyfunc.load_model(path)
    frame = model.predict(rows)
    out[family] = frame.drop(columns=["warnings"]).to_dict(orient="list")
import training
out["_training_from"] = training.__file__
print(json.dumps(out))
"""


def _outside_env(tmp: Path) -> dict[str, str]:
    """The environment of a process that knows nothing of the project."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI", "BONEMET_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["HOME"] = os.environ.get("HOME", str(tmp))
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def test_every_family_loads_and_predicts_in_a_fresh_venv(tmp_path):
    import mlflow

    X, y, rows = training_rows(300, seed=5)
    example = contract_rows(rows.head(3))
    scoring = contract_rows(rows.head(25)[list(PREDICTOR_COLUMNS)])
    typed, violations = check_patients(scoring, table="input", allow_outcome=False)
    assert not violations
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment(
        "portable", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    paths, expected, requirements = {}, {}, set()
    for family in FAMILIES:
        model = fit_risk_model(family, FAMILIES[family].grid[0], TrainConfig(), X, y)
        with mlflow.start_run(experiment_id=experiment):
            info = log_risk_model(model, example, registered_model_name=None)
        download = tmp_path / "download" / family
        download.mkdir(parents=True)
        local = Path(mlflow.artifacts.download_artifacts(info.model_uri, dst_path=str(download)))
        target = outside / family
        shutil.copytree(local, target)
        reqs = (target / "requirements.txt").read_text().split()
        # XGBoost is required where the pickle holds it: the xgb_ families, and an ensemble
        # with an xgb_ member.
        members = getattr(model.estimator, "member_names_", ())
        holds_xgboost = any(name.startswith("xgb_") for name in (family, *members))
        assert any(r.startswith("xgboost") for r in reqs) == holds_xgboost, family
        assert (target / "code" / "training" / "risk_model.py").exists()
        requirements.update(reqs)
        paths[family] = str(target)
        expected[family] = model.predict_frame(typed).drop(columns=["warnings"])
    (outside / "requirements.txt").write_text("\n".join(sorted(requirements)) + "\n")
    (outside / "models.json").write_text(json.dumps(paths))
    scoring.to_json(outside / "rows.json", orient="records")
    (outside / "score.py").write_text(SCRIPT)

    env = _outside_env(tmp_path)
    venv = outside / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, cwd=outside)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", str(outside / "requirements.txt")],
        env=env,
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('training'))"],
        env=env,
        cwd=outside,
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "None"  # the project is not importable there
    run = subprocess.run(
        [python, "score.py", "models.json", "rows.json"],
        env=env,
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert str(outside) in got.pop("_training_from")  # the code that travelled with the model
    assert set(got) == set(FAMILIES)
    for family, frame in expected.items():
        answer = pd.DataFrame(got[family])
        assert answer["patient_id"].tolist() == frame["patient_id"].tolist(), family
        assert answer["risk_group"].tolist() == frame["risk_group"].tolist(), family
        numeric = [c for c in frame.columns if c.startswith(("risk_score", "p_bone_met"))]
        np.testing.assert_allclose(
            answer[numeric].to_numpy(dtype=float),
            frame[numeric].to_numpy(dtype=float),
            rtol=1e-9,
            atol=1e-12,
            err_msg=family,
        )
