"""Logistic recalibration: cross-fitted (never fitted on the patients it is scored on),
adopted only on evidence, and applied by the served RiskModel (``docs/modeling.md``,
"Recalibration")."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.special import expit, logit

from tests.models.data import known_cohort
from training.artifact.recalibration import Recalibration, fit_recalibration
from training.evaluation.recalibration import choose_recalibration, cross_fitted, fit_on

MONTHS = (12, 24, 36)


def oof(truth: dict, squash: float = 1.0, shift: float = 0.0) -> np.ndarray:
    """``(n, 3)`` incidences ``expit(shift + squash * logit(truth))`` at 12, 24, 36 months."""
    return np.column_stack([expit(shift + squash * logit(truth[h])) for h in MONTHS])


def test_the_fit_recovers_a_known_distortion():
    y, truth = known_cohort(3000, seed=11)
    distorted = oof(truth, squash=2.0, shift=0.5)  # too extreme, too high
    fit = fit_on(y, distorted, MONTHS)
    # logit truth = (logit p - 0.5) / 2: intercept -0.25, slope 0.5 (IPCW noise on 3,000 rows).
    assert fit.slope == pytest.approx(0.5, abs=0.08)
    assert fit.intercept == pytest.approx(-0.25, abs=0.25)
    truth_cols = oof(truth)
    assert np.abs(fit.apply(distorted) - truth_cols).mean() < 0.3 * np.abs(distorted - truth_cols).mean()


def test_recalibration_never_sees_the_patients_it_scores():
    # Each fold's recalibrated predictions depend only on the other folds' outcomes: changing
    # every outcome of fold 0 leaves fold 0's answers unchanged and moves the others'.
    y, truth = known_cohort(1200, seed=12)
    cif = oof(truth, squash=1.6)
    fold = np.arange(len(y)) % 3
    before, _ = cross_fitted(y, cif, fold, MONTHS)
    flipped = y.copy()
    in0 = fold == 0
    flipped["cause"][in0] = np.where(y["cause"][in0] == 1, 0, 1)  # events <-> censored
    after, _ = cross_fitted(flipped, cif, fold, MONTHS)
    np.testing.assert_array_equal(after[in0], before[in0])
    assert np.abs(after[~in0] - before[~in0]).max() > 1e-3
    # Without cross-fitting (one fit on every row) fold 0's answers would move: the check bites.
    moved = fit_on(flipped, cif, MONTHS).apply(cif[in0]) - fit_on(y, cif, MONTHS).apply(cif[in0])
    assert np.abs(moved).max() > 1e-3


def test_adopted_for_a_systematic_error_not_for_a_calibrated_model():
    y, truth = known_cohort(2000, seed=13)
    fold = np.random.default_rng(0).integers(0, 3, len(y))
    # (repeats, n, horizons) as a training run passes them.
    bad = choose_recalibration(y, oof(truth, squash=2.2, shift=0.6)[None], fold[None], MONTHS)
    assert bad.applied and bad.gain > bad.se > 0
    assert bad.fit.slope < 0.7
    # The evaluation reads the cross-fitted predictions, not the all-rows fit's.
    assert not np.allclose(bad.cif, bad.fit.apply(oof(truth, squash=2.2, shift=0.6)))
    good = choose_recalibration(y, oof(truth)[None], fold[None], MONTHS)
    assert not good.applied
    np.testing.assert_array_equal(good.cif, oof(truth))  # the evaluation reads them as they are
    assert good.summary()["recalibration_applied"] == 0.0


def test_unidentified_or_invalid_recalibrations_are_refused():
    p = np.full(50, 0.1)
    assert fit_recalibration(p, np.zeros(50), np.ones(50)) is None  # no events
    with pytest.raises(ValueError, match="positive slope"):
        Recalibration(0.0, -1.0)
    with pytest.raises(ValueError, match="same shape"):
        fit_recalibration(p, np.zeros(49), np.ones(50))


def test_the_served_model_applies_its_recalibration(fitted):
    models, rows = fitted
    raw = models["cox_ridge"]
    recal = copy.copy(raw)
    recal.recalibration = Recalibration(-0.3, 0.7)
    batch_raw = raw.predict_batch(rows, MONTHS)
    batch = recal.predict_batch(rows, MONTHS)
    free = ~np.isnan(batch.risk_score)
    expected = expit(-0.3 + 0.7 * logit(batch_raw.probability[free]))
    death = batch.death_probability[free]
    capped = (expected > 1 - death).any(axis=1)
    assert capped.any()  # patients whose death leaves less room than the recalibration asks
    np.testing.assert_allclose(batch.probability[free][~capped], expected[~capped], rtol=1e-10)
    assert np.all(batch.probability[free] <= expected + 1e-12)
    np.testing.assert_array_equal(batch.risk_score, batch_raw.risk_score)  # order unchanged
    assert np.all(np.diff(batch.probability[free], axis=1) >= 0)  # still non-decreasing
    assert np.all(batch.low[free] <= batch.probability[free] + 1e-12)
    assert np.all(batch.high[free] >= batch.probability[free] - 1e-12)
    assert np.all(batch.probability[free] + batch.death_probability[free] <= 1 + 1e-12)
    _, arrays = recal.predict_arrays(rows, MONTHS)
    np.testing.assert_allclose(arrays[free], batch.probability[free], rtol=1e-10)


@pytest.fixture(scope="module")
def fitted():
    from tests.models.data import training_rows
    from training.config import TrainConfig
    from training.fitting.family_run import fit_risk_model
    from training.models.catalog import FAMILIES

    X, y, rows = training_rows(400, seed=21)
    return {"cox_ridge": fit_risk_model("cox_ridge", FAMILIES["cox_ridge"].grid[0], TrainConfig(), X, y)}, rows
