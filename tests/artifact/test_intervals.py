"""Intervals, missing-input ranges and the trials' treatment benefit of a fitted RiskModel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.artifact.intervals import NO_INTERVAL_WARNING, marker_bounds
from training.artifact.treatment import ADJUVANT_BISPHOSPHONATE, applicable, treated_incidence


@pytest.fixture(scope="module")
def fitted():
    from features.contract import validate_cohort
    from features.simulate import simulate_cohort
    from training.config import TrainConfig
    from training.fitting.data import prepare_training_data
    from training.fitting.family_run import fit_risk_model
    from training.models.catalog import FAMILIES

    sim = simulate_cohort(500, seed=11)
    config = TrainConfig(holdout=0.25)
    data = prepare_training_data(validate_cohort(sim.patients, sim.measurements), config)
    model = fit_risk_model(
        "cox_ridge", FAMILIES["cox_ridge"].grid[0], config, data.X_train, data.y_train
    )
    return model, data.X_test.reset_index(drop=True)


def test_every_probability_has_an_interval_around_it(fitted):
    model, X = fitted
    batch = model.predict_batch(X, [6, 12, 24, 60])
    free = ~np.isnan(batch.probability[:, 0])
    for point, low, high in (
        (batch.probability, batch.low, batch.high),
        (batch.death_probability, batch.death_low, batch.death_high),
    ):
        p, lo, hi = point[free], low[free], high[free]
        assert (lo <= p).all() and (p <= hi).all() and (0 <= lo).all() and (hi <= 1).all()
        assert (hi - lo > 0).mean() > 0.9  # an interval, not a point
    # A horizon's interval does not depend on the other horizons asked for.
    alone = model.predict_batch(X, [24])
    assert alone.low[free, 0] == pytest.approx(batch.low[free, 2])
    assert alone.high[free, 0] == pytest.approx(batch.high[free, 2])
    frame = batch.frame()
    assert {"p_bone_met_24m_low", "p_bone_met_24m_high", "p_death_60m_high"} <= set(frame.columns)
    assert not any(NO_INTERVAL_WARNING in w for w in batch.warnings)


def test_counting_noise_widens_the_interval_of_a_small_draw(fitted):
    model, X = fitted
    row = X[X["bone_metastasis_at_enrollment"] != 1.0].head(1).copy()
    row["oc_positive_percent"] = np.nan
    wide, narrow = row.copy(), row.copy()
    wide[["oc_positive_events", "pbmc_events"]] = [3.0, 10_000.0]  # 0.03 %, 3 events
    narrow[["oc_positive_events", "pbmc_events"]] = [300.0, 1_000_000.0]  # 0.03 %, 300 events
    w, n = model.predict_batch(wide, [24]), model.predict_batch(narrow, [24])
    assert (w.high - w.low)[0, 0] > (n.high - n.low)[0, 0]
    lo, hi = marker_bounds(np.array([3.0, np.nan]), np.array([10_000.0, 5.0]))
    assert lo[0] < 0.03 < hi[0] and np.isnan(lo[1])


def test_a_version_without_interval_data_answers_without_bounds_and_says_so(fitted):
    model, X = fitted
    import dataclasses

    old = dataclasses.replace(model, uncertainty=None)
    batch = old.predict_batch(X.head(3), [24])
    assert batch.low is None and batch.high is None
    assert "p_bone_met_24m_low" not in batch.frame().columns
    scored = ~np.isnan(batch.probability[:, 0])
    assert all(NO_INTERVAL_WARNING in w for w, s in zip(batch.warnings, scored) if s)


def test_missing_inputs_ranked_and_reasons_never_imputed(fitted):
    model, X = fitted
    row = X[X["bone_metastasis_at_enrollment"] != 1.0].head(1).copy()
    keep = {"patient_id", "age_years", "disease_setting", "bone_metastasis_at_enrollment"}
    for column in row.columns:
        if column not in keep and column in model.plausible:
            row[column] = None if row[column].dtype == object else np.nan
    row[["oc_positive_events", "pbmc_events"]] = np.nan
    batch = model.predict_batch(row, [24], explain=True)
    (report,) = batch.missing
    assert report["too_uncertain"] is True
    widths = [e["high"] - e["low"] for e in report["ranges"]]
    assert widths == sorted(widths, reverse=True) and len(widths) >= 10
    assert all(e["value"] != "missing (imputed)" for e in batch.explanation[0])


def test_treatment_benefit_rule_and_effect():
    early_post = {"disease_setting": "early", "menopausal_status": "post",
                  "bone_targeted_therapy": "none", "bone_metastasis_at_enrollment": 0.0}
    assert applicable(early_post) == ([ADJUVANT_BISPHOSPHONATE], None)
    for change, words in (
        ({"menopausal_status": "pre"}, "not postmenopausal"),
        ({"menopausal_status": None}, "menopausal status is not given"),
        ({"disease_setting": "metastatic"}, "metastatic"),
        ({"bone_targeted_therapy": "denosumab"}, "already on a bone-targeted agent"),
        ({"bone_targeted_therapy": np.nan}, "bone-targeted therapy is not given"),
    ):
        effects, reason = applicable({**early_post, **change})
        assert effects == [] and words in reason
    bone = np.array([[0.05, 0.10, 0.20]])
    # Without a competing death the rate ratio gives 1 - (1 - F)^rr exactly.
    assert treated_incidence(bone, None, [12, 24, 36], 0.72) == pytest.approx(
        1 - (1 - bone) ** 0.72
    )
    death = np.array([[0.05, 0.12, 0.25]])
    treated = treated_incidence(bone, death, [12, 24, 36], 0.72)
    assert (treated < bone).all() and (np.diff(treated) > 0).all()
    # Horizons in any order give the same answer.
    shuffled = treated_incidence(bone[:, ::-1], death[:, ::-1], [36, 24, 12], 0.72)
    assert shuffled[:, ::-1] == pytest.approx(treated)
    assert treated_incidence(bone, death, [12, 24, 36], 1.0) == pytest.approx(bone)


def test_plausible_values_from_the_training_rows(fitted):
    model, X = fitted
    assert set(model.plausible["menopausal_status"]) <= {"pre", "peri", "post"}
    low, mid, high = model.plausible["tumor_size_mm"]
    assert low < mid < high
    assert "age_years" not in model.plausible  # required: never missing
    assert model.development["patients"] > 0 and model.development["bone_metastases"] > 0
    assert isinstance(pd.Series(model.development["disease_setting"]).sum(), float)
