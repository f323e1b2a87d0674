"""A real public cohort trains (issue 9, point 1): GBSG2 records one event type and no marker.

German Breast Cancer Study Group 2 as shipped by scikit-survival, mapped to the contract by
:mod:`features.public`: the death hazard is taken as zero (incidence 1 - S(t)), the model is
clinical-only, a family that cannot be fitted is skipped with its reason and the others go
on; the run, the model card, the served model's metadata (``GET /model``), evaluation and
batch scoring all say or handle so.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.public import gbsg2_cohort
from training.config import MODEL_NAME, Settings, TrainConfig
from training.models.bases import RSF_LIMITS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from training.runs.train import train

    data = tmp_path_factory.mktemp("gbsg2") / "data"
    config = TrainConfig(
        experiment="gbsg2",
        families=("cox_ridge", "logistic_ipcw", "rsf"),
        outer_folds=2,
        inner_folds=2,
        max_grid=1,
        n_bootstrap=20,
        n_jobs=1,
    )
    # The forest's size bound, lowered so that rsf genuinely cannot be fitted on these data.
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(RSF_LIMITS, "max_bytes_per_cause", 1.0)
        result = train(gbsg2_cohort(), config, Settings(data_dir=data), source="sksurv gbsg2")
    return result, Settings(data_dir=data)


def test_the_run_says_how_the_cohort_was_modelled(trained):
    import mlflow

    result, _ = trained
    # The two fitted families, then the run's stack of them (issue 19).
    assert [c.family for c in result.candidates] == ["cox_ridge", "logistic_ipcw", "stacked_oof"]
    assert [s.family for s in result.skipped] == ["rsf"]
    assert "rsf" in result.skipped[0].reason
    assert any("1 - S(t)" in n for n in result.notes)
    assert any("clinical-only" in n for n in result.notes)
    client = mlflow.MlflowClient()
    parent = client.get_run(result.parent_run_id)
    assert parent.data.tags["competing_death"].startswith("zero hazard")
    assert parent.data.tags["marker"].startswith("none")
    assert "rsf" in parent.data.tags["skipped_families"]
    notes = mlflow.artifacts.load_text(f"runs:/{result.parent_run_id}/notes.txt")
    assert "death hazard is taken as zero" in notes
    children = client.search_runs(
        [result.experiment_id], f"tags.mlflow.parentRunId = '{result.parent_run_id}'"
    )
    skipped = [r for r in children if r.data.tags.get("skipped") == "true"]
    assert [r.data.tags["family"] for r in skipped] == ["rsf"]
    name = skipped[0].info.run_name
    assert name.startswith("rsf · ") and " patients · data " in name
    assert "rsf" in skipped[0].data.tags["skip_reason"]
    for c in result.candidates:
        assert np.isfinite(c.metrics["test_uno_c"]) and c.metrics["test_uno_c"] > 0.55
        assert "delta_uno_c_marker" not in c.metrics  # no marker: no increment to measure


def test_card_and_served_metadata_say_the_death_hazard_is_zero(trained):
    import mlflow

    from training.scoring.predict import load_model

    result, _ = trained
    version = result.challenger_version
    mv = mlflow.MlflowClient().get_model_version(MODEL_NAME, version)
    assert "not modelled" in mv.description and "1 - S(t)" in mv.description
    assert "clinical-only" in mv.description
    model = load_model(f"models:/{MODEL_NAME}/{version}")
    risk_model = model.unwrap_python_model().risk_model
    assert risk_model.competing_death is False and risk_model.include_marker is False
    # What GET /model serves as ``competing_risk`` (tests/serving/test_operations.py).
    assert "1 - S(t)" in risk_model.competing_risk


def test_evaluate_and_predict_work_on_the_real_cohort(trained):
    from training.runs.evaluate import evaluate_model
    from training.scoring.predict import score_cohort

    result, settings = trained
    uri = f"models:/{MODEL_NAME}/{result.challenger_version}"
    cohort = gbsg2_cohort()
    evaluation = evaluate_model(cohort, uri, settings, n_bootstrap=0)
    assert 0.55 < evaluation.metrics["eval_uno_c"] < 1
    frame = score_cohort(cohort, uri)
    assert len(frame) == 686 and frame["p_bone_met_60m"].between(0, 1).all()
