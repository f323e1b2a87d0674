"""The registered stack (issue 19, item 2): its answers are the weighted sum of its members'
answers, through the RiskModel, the logged pyfunc and a landmark model's prediction_day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import check_patients
from tests.models.data import training_rows
from training.artifact.served import ServedModel
from training.artifact.stacked import StackedRiskModel, stacked_risk_model
from training.config import TrainConfig
from training.fitting.family_run import fit_risk_model
from training.models.catalog import FAMILIES
from training.models.link import logit
from training.models.names import STACK_FAMILY

HORIZONS = (12, 24, 36, 60)
WEIGHTS = (0.3, 0.7)


@pytest.fixture(scope="module")
def stack():
    X, y, rows = training_rows(400, seed=31)
    members = [
        fit_risk_model(f, FAMILIES[f].grid[0], TrainConfig(), X, y)
        for f in ("cox_ridge", "logistic_ipcw")
    ]
    return stacked_risk_model(members, WEIGHTS, X), members, rows


def _bone(frame: pd.DataFrame, suffix: str = "") -> np.ndarray:
    return frame[[f"p_bone_met_{h}m{suffix}" for h in HORIZONS]].to_numpy(dtype=float)


def _death(frame: pd.DataFrame, suffix: str = "") -> np.ndarray:
    return frame[[f"p_death_{h}m{suffix}" for h in HORIZONS]].to_numpy(dtype=float)


def test_the_stack_answers_the_weighted_sum_of_its_members(stack):
    model, members, rows = stack
    assert isinstance(model, StackedRiskModel) and isinstance(model, ServedModel)
    assert model.family == STACK_FAMILY and model.weights == WEIGHTS
    out = model.predict_frame(rows, HORIZONS)
    parts = [m.predict_frame(rows, HORIZONS) for m in members]
    free = np.isfinite(out["risk_score"].to_numpy(dtype=float))
    assert free.sum() > 300
    bone = sum(w * _bone(p) for w, p in zip(WEIGHTS, parts, strict=True))
    death = sum(w * _death(p) for w, p in zip(WEIGHTS, parts, strict=True))
    np.testing.assert_allclose(_bone(out)[free], bone[free], atol=1e-12)
    np.testing.assert_allclose(_death(out)[free], np.minimum(death, 1 - bone)[free], atol=1e-12)
    assert np.all(_bone(out)[free] + _death(out)[free] <= 1 + 1e-12)
    # Bounds: the same combination of the members' bounds, around the point.
    for suffix in ("_low", "_high"):
        expected = sum(w * _bone(p, suffix) for w, p in zip(WEIGHTS, parts, strict=True))
        np.testing.assert_allclose(_bone(out, suffix)[free], expected[free], atol=1e-12)
    assert np.all(_bone(out, "_low")[free] <= _bone(out)[free] + 1e-12)
    assert np.all(_bone(out, "_high")[free] >= _bone(out)[free] - 1e-12)
    # The score is the log-odds of the 24-month probability; the groups follow its cut-offs.
    score = out["risk_score"].to_numpy(dtype=float)[free]
    np.testing.assert_allclose(score, logit(out["p_bone_met_24m"].to_numpy(dtype=float)[free]))
    np.testing.assert_array_equal(out["risk_group"][free], model.risk_group(score))
    # predict_arrays (validation, evaluation, missing-input ranges) says the same.
    _, cif = model.predict_arrays(rows.loc[free], (36, 12))
    np.testing.assert_allclose(cif, _bone(out)[free][:, [2, 0]], atol=1e-12)


def test_members_below_the_minimum_weight_are_left_out(stack):
    _, members, _ = stack
    X, _, _ = training_rows(200, seed=32)
    model = stacked_risk_model(members, (1.0, 0.0), X)
    assert model.member_families == ("cox_ridge",) and model.weights == (1.0,)
    with pytest.raises(ValueError, match="simplex"):
        stacked_risk_model(members, (0.7, 0.7), X)


def test_the_logged_stack_answers_through_the_pyfunc(stack, tmp_path):
    import mlflow

    from training.runs.log_model import log_risk_model

    model, _, rows = stack
    typed, violations = check_patients(rows.head(20), table="input", allow_outcome=False)
    assert not violations
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = mlflow.create_experiment("stack", artifact_location=(tmp_path / "a").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_risk_model(model)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    got = loaded.predict(rows.head(20))
    expected = model.predict_frame(typed)
    pd.testing.assert_frame_equal(
        got.drop(columns=["warnings"]).reset_index(drop=True),
        expected.drop(columns=["warnings"]).reset_index(drop=True),
        check_dtype=False,
    )


def test_a_landmark_stack_answers_at_the_prediction_day():
    from features.contract import validate_cohort
    from features.simulate import simulate_cohort
    from training.fitting.data import time_to_event_rows
    from training.fitting.landmarks import landmark_rows

    landmarks = (0.0, 183.0)
    sim = simulate_cohort(400, seed=12)
    cohort = validate_cohort(sim.patients, sim.measurements)
    rows, _ = time_to_event_rows(cohort)
    X, y = landmark_rows(rows, cohort.measurements, landmarks)
    config = TrainConfig(landmark_days=landmarks)
    members = [
        fit_risk_model(f, FAMILIES[f].grid[0], config, X, y) for f in ("cox_ridge", "logistic_ipcw")
    ]
    model = stacked_risk_model(members, WEIGHTS, X)
    assert model.landmark_days == landmarks
    ask = X.loc[X["landmark_day"] == 183.0].head(15).reset_index(drop=True)
    out = model.predict_frame(ask, HORIZONS)
    parts = [m.predict_frame(ask, HORIZONS) for m in members]
    bone = sum(w * _bone(p) for w, p in zip(WEIGHTS, parts, strict=True))
    np.testing.assert_allclose(_bone(out), bone, atol=1e-12)
