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


def test_half_widths_equal_the_reference_einsum(fitted):
    """The matrix-product form of the interval's variance gives the same half-widths as the
    direct sum over the coefficients' covariance (the reference, written out here)."""
    from scipy.special import ndtri

    from features.transformers import transform_rows
    from training.artifact.intervals import INTERVAL_LEVEL, logit

    model, X = fitted
    rows = X[X["bone_metastasis_at_enrollment"] != 1.0]
    Z = np.asarray(transform_rows(model.pipeline[:-1], rows), dtype=float)
    batch = model.predict_batch(rows, [6, 12, 24, 60])
    L = logit(np.stack([batch.probability, batch.death_probability]))
    unc = model.uncertainty
    cov = np.stack([unc.cov["bone"], unc.cov["death"]])
    found = unc.stacked_half_widths(cov, L, Z, [6, 12, 24, 60])

    fixed = cov[:, :, 0, 0, None] + 2 * np.einsum("ekp,np->ekn", cov[:, :, 0, 2:], Z)
    fixed += np.einsum("np,ekpr,nr->ekn", Z, cov[:, :, 2:, 2:], Z)
    linear = cov[:, :, 0, 1, None] + np.einsum("ekp,np->ekn", cov[:, :, 1, 2:], Z)
    lo, hi, w = unc._interpolation((6.0, 12.0, 24.0, 60.0))

    def sd(k):
        var = fixed[:, k].transpose(0, 2, 1) + 2 * L * linear[:, k].transpose(0, 2, 1)
        var += L * L * cov[:, k, 1, 1][:, None, :]
        return np.sqrt(np.maximum(var, 0.0))

    z = ndtri((1 + INTERVAL_LEVEL) / 2)
    reference = z * (w * sd(lo) + (1.0 - w) * sd(hi))
    assert found.shape == (2, len(rows), 4)
    np.testing.assert_allclose(found, reference, rtol=1e-12, atol=1e-15)


def test_each_row_is_answered_alike_alone_and_in_a_batch(fitted):
    """The batch's stacked passes (marker percentiles, both events' intervals at once) give
    each row what the row gets alone, counted draws included."""
    model, X = fitted
    rows = X.head(12).copy()
    rows.loc[rows.index[:4], ["oc_positive_events", "pbmc_events"]] = [[5.0, 9000.0]] * 4
    rows.loc[rows.index[:4], "oc_positive_percent"] = np.nan
    together = model.predict_batch(rows, [6, 24, 60])
    names = ("risk_score", "probability", "low", "high", "death_probability", "death_low",
             "death_high")  # fmt: skip
    for i in range(len(rows)):
        alone = model.predict_batch(rows.iloc[[i]], [6, 24, 60])
        for name in names:
            np.testing.assert_allclose(
                getattr(alone, name)[0], getattr(together, name)[i], rtol=1e-12, atol=1e-15,
                err_msg=name,
            )  # fmt: skip
        assert alone.warnings[0] == together.warnings[i]
