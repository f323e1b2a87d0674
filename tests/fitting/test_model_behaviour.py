"""Behaviour of trained models: direction of effects, valid probabilities, round trips.

Trained for real on a small simulated cohort (the ``trained_store`` fixture runs ``bonemet
train`` and ``bonemet promote`` into a temporary SQLite MLflow store).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import load_cohort
from features.records import contract_rows
from features.schema import PREDICTOR_COLUMNS
from training.config import Settings, TrainConfig

pytestmark = pytest.mark.slow

PROB_COLUMNS = ["p_bone_met_12m", "p_bone_met_24m", "p_bone_met_36m", "p_bone_met_60m"]


@pytest.fixture(scope="module")
def store(trained_store, monkeypatch_module):
    monkeypatch_module.setenv(
        "MLFLOW_TRACKING_URI", f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}"
    )
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}")
    return trained_store


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def rows(store) -> pd.DataFrame:
    cohort = load_cohort(store["cohort"] / "patients.csv")
    return contract_rows(cohort.patients[list(PREDICTOR_COLUMNS)])


def versions() -> list[str]:
    from mlflow import MlflowClient

    found = MlflowClient().search_model_versions("name='bone-metastasis-risk'")
    return sorted(str(v.version) for v in found)


def test_every_family_is_a_version_and_one_is_champion(store):
    from training.registry import versions as registry

    # The two families, then the run's stack of them (issue 19).
    assert versions() == ["1", "2", "3"]
    champion = registry.alias_version("champion")
    assert champion == registry.alias_version("challenger")
    assert champion in {"1", "2", "3"}


@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_probabilities_are_valid_and_monotone_in_horizon(store, rows, version):
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/bone-metastasis-risk/{version}")
    out = model.predict(rows)
    free = rows["bone_metastasis_at_enrollment"] == False  # noqa: E712 - object column
    probs = out.loc[free.to_numpy(), PROB_COLUMNS].to_numpy(dtype=float)
    assert np.isfinite(probs).all()
    assert ((probs >= 0) & (probs <= 1)).all()
    assert (np.diff(probs, axis=1) >= 0).all()
    assert set(out.loc[free.to_numpy(), "risk_group"]) == {"low", "intermediate", "high"}
    # Bone metastasis at enrollment: no probabilities, a warning why.
    already = out.loc[(~free).to_numpy()]
    assert already[PROB_COLUMNS].isna().all().all()
    assert already["warnings"].str.contains("bone metastasis present at enrollment").all()


@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_risk_rises_with_the_marker_all_else_equal(store, rows, version):
    import mlflow

    model = mlflow.pyfunc.load_model(f"models:/bone-metastasis-risk/{version}")
    free = rows.loc[rows["bone_metastasis_at_enrollment"] == False].head(40)  # noqa: E712
    low, high = free.copy(), free.copy()
    for frame, percent in ((low, 0.02), (high, 0.08)):
        frame["oc_positive_percent"] = percent
        frame["oc_positive_events"] = None
        frame["pbmc_events"] = None
    p_low = model.predict(low)
    p_high = model.predict(high)
    assert (p_high["risk_score"].to_numpy() > p_low["risk_score"].to_numpy()).all()
    assert (p_high["p_bone_met_24m"].to_numpy() > p_low["p_bone_met_24m"].to_numpy()).all()


def test_predictions_identical_after_mlflow_and_bentoml_round_trip(store, tmp_path, monkeypatch):
    """A model fitted in memory answers exactly the same after logging and loading back."""
    import bentoml
    import mlflow

    from features.contract import check_patients
    from training.fitting.data import split, time_to_event_rows
    from training.fitting.family_run import fit_risk_model
    from training.runs.log_model import log_risk_model

    cohort = load_cohort(store["cohort"] / "patients.csv")
    config = TrainConfig(holdout=0.25)
    rows_tte, _ = time_to_event_rows(cohort)
    X_train, X_test, y_train, _ = split(rows_tte, config)
    model = fit_risk_model("cox_ridge", {"alpha": 3.0}, config, X_train, y_train)
    before = model.predict_frame(X_test)

    mlflow.set_experiment("round-trip")
    with mlflow.start_run():
        info = log_risk_model(
            model,
            contract_rows(X_train.head(3)[list(PREDICTOR_COLUMNS)]),
            registered_model_name=None,
        )
    test_rows = contract_rows(X_test[list(PREDICTOR_COLUMNS)])
    after = mlflow.pyfunc.load_model(info.model_uri).predict(test_rows)
    pd.testing.assert_frame_equal(before, after)

    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    bento_model = bentoml.mlflow.import_model("round-trip", info.model_uri)
    served = bentoml.mlflow.load_model(bento_model).predict(test_rows)
    pd.testing.assert_frame_equal(before, served)
    # The typed rows and the client-style rows give the same features.
    typed, violations = check_patients(test_rows, table="t", allow_outcome=False)
    assert violations == []
    pd.testing.assert_frame_equal(model.predict_frame(typed), before)


def test_horizons_parameter_and_contract_errors_through_pyfunc(store, rows):
    import mlflow
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model("models:/bone-metastasis-risk@champion")
    out = model.predict(rows.head(5), params={"horizons_months": [6.0, 18.0]})
    points = ["p_bone_met_6m", "p_bone_met_18m", "p_death_6m", "p_death_18m"]
    assert [c for c in out.columns if c.startswith("p_") and not c.endswith(("_low", "_high"))] == (
        points
    )
    # Contract 1.2: every probability with its interval's bounds.
    assert {f"{p}_{b}" for p in points for b in ("low", "high")} <= set(out.columns)
    bad = rows.head(2).copy()
    bad.loc[0, "age_years"] = 12
    with pytest.raises(MlflowException, match=r"column age_years, value 12(\.0)?: must be 18-100"):
        model.predict(bad)
    with pytest.raises(MlflowException, match="horizons_months: each must be 1-120 months"):
        model.predict(rows.head(1), params={"horizons_months": [0.0]})


def test_settings_default_store_is_project_local(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("BONEMET_DATA_DIR", str(tmp_path / "d"))
    s = Settings.from_env()
    assert s.tracking_uri == f"sqlite:///{tmp_path / 'd' / 'mlflow.db'}"
    assert s.artifact_root == tmp_path / "d" / "mlartifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert Settings.from_env().tracking_uri == "sqlite:////elsewhere/x.db"
