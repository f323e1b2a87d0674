"""IPCW Brier scores and decision curves.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.cohorts import target
from training.evaluation.accuracy import (
    brier_score,
    decision_curve,
    integrated_brier_score,
    ipcw_brier,
    scaled_brier,
)
from training.evaluation.incidence import aalen_johansen
from training.models.competing import DAYS_PER_MONTH


def test_brier_matches_evaluate_and_hand_calculation_without_censoring(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    assert brier_score(y, p, 24) == ipcw_brier(y, p, 24)
    # No censoring before 12 months: weights 1, Brier = mean (status - p)^2.
    # Status by 12 months (365.25 days): bm at 100 -> 1, death at 200 -> 0, bm at 400 -> 0,
    # censored at 500 -> 0.  ((1-.5)^2 + .2^2 + .1^2 + .3^2) / 4 = (.25+.04+.01+.09)/4 = 0.0975.
    y4 = target([1, 2, 1, 0], [100, 200, 400, 500])
    assert brier_score(y4, np.array([0.5, 0.2, 0.1, 0.3]), 12) == pytest.approx(0.0975)


def test_true_model_beats_a_constant_and_scaled_brier(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    constant = np.full(len(y), np.mean(p))
    assert brier_score(y, p, 24) < brier_score(y, constant, 24)
    assert scaled_brier(y, p, 24) > 0.05
    # The null model itself (Aalen-Johansen incidence for everyone) scores exactly 0.
    incidence = aalen_johansen(y, 24 * DAYS_PER_MONTH)[0][0]
    assert scaled_brier(y, np.full(len(y), incidence), 24) == pytest.approx(0.0, abs=1e-12)


def test_integrated_brier_hand_calculation():
    # Nobody has an event before 36 months and nobody is censored before: status 0, weight 1.
    # Everyone predicted 0.1, 0.2, 0.3 at 12, 24, 36 months -> Brier 0.01, 0.04, 0.09.
    # Trapezoid: (0.01 + 0.04) / 2 * 12 + (0.04 + 0.09) / 2 * 12 = 1.08; / 24 months = 0.045.
    y = target([0, 1, 2], [2000, 1500, 1200])
    cif = np.tile([0.1, 0.2, 0.3], (3, 1))
    assert integrated_brier_score(y, cif, [12, 24, 36]) == pytest.approx(0.045)
    with pytest.raises(ValueError, match="at least 2 strictly increasing horizons"):
        integrated_brier_score(y, cif[:, :1], [12])


def test_decision_curve_hand_calculation_without_censoring():
    # Horizon 12 months = 365.25 days; nobody censored before it.
    #   p:       .9   .7     .6   .4    .3   .2    .1     .05
    #   (time, cause): (100,bm) (200,death) (300,bm) (500,cens) (50,bm) (400,cens) (100,death)
    #   (700,bm): status by 12 months 1 0 1 0 1 0 0 0 -> incidence 3/8.
    # t = 0.5: treat p >= .5 = first three: TP 2, FP 1 -> 2/8 - 1/8 * 1 = 0.125;
    #          treat all: 3/8 - 5/8 * 1 = -0.25.
    # t = 0.25: treat first five: TP 3, FP 2 -> 3/8 - 2/8 * (1/3) = 0.291667;
    #           treat all: 3/8 - 5/8 * (1/3) = 0.166667.
    # t = 0: everyone treated: model = all = incidence 3/8.
    y = target([1, 2, 1, 0, 1, 0, 2, 1], [100, 200, 300, 500, 50, 400, 100, 700])
    p = np.array([0.9, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05])
    dc = decision_curve(y, p, 12, thresholds=[0.0, 0.25, 0.5])
    assert list(dc.columns) == [
        "threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none"
    ]  # fmt: skip
    assert np.allclose(dc["net_benefit_model"], [3 / 8, 3 / 8 - 2 / 8 / 3, 0.125])
    assert np.allclose(dc["net_benefit_all"], [3 / 8, 3 / 8 - 5 / 8 / 3, -0.25])
    assert np.all(dc["net_benefit_none"] == 0)


def test_decision_curve_with_censoring_uses_aalen_johansen(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    dc = decision_curve(y, p, 24)
    assert len(dc) == 50 and dc["threshold"].iloc[0] == 0.01 and dc["threshold"].iloc[-1] == 0.5
    incidence = aalen_johansen(y, 24 * DAYS_PER_MONTH)[0][0]
    low = decision_curve(y, p, 24, thresholds=[0.0, p.min() / 2])
    assert np.allclose(low["net_benefit_all"].iloc[0], incidence)  # treat all at 0 = incidence
    assert np.allclose(low["net_benefit_model"], low["net_benefit_all"])  # all treated anyway
    # The true model is useful: above both default strategies at a mid threshold.
    mid = dc.loc[np.isclose(dc["threshold"], 0.3)].iloc[0]
    assert mid["net_benefit_model"] > max(mid["net_benefit_all"], 0)


@pytest.mark.parametrize("seed", range(25))
def test_cumulative_dynamic_auc_equals_sksurv_with_ties_and_reused_censoring(seed):
    # Reference: scikit-survival's cumulative_dynamic_auc at one time point (refits the
    # censoring on every call); the project's version takes the fitted censoring once.
    from sksurv.metrics import cumulative_dynamic_auc as sksurv_auc

    from tests.evaluation.cohorts import tied_split
    from training.evaluation.accuracy import cumulative_dynamic_auc
    from training.evaluation.concordance import censoring_estimator, death_censored
    from training.models.competing import DAYS_PER_MONTH

    rng, y_train, y_test, risk = tied_split(seed)
    months = float(rng.uniform(1, 30))
    days = [months * DAYS_PER_MONTH]
    try:
        ref = sksurv_auc(death_censored(y_train), death_censored(y_test), risk, days)[0][0]
    except ValueError:
        with pytest.raises(ValueError):
            cumulative_dynamic_auc(y_train, y_test, risk, months)
        return
    got = cumulative_dynamic_auc(y_train, y_test, risk, months)
    again = cumulative_dynamic_auc(y_train, y_test, risk, months, censoring_estimator(y_train))
    if np.isnan(ref):
        assert np.isnan(got) and np.isnan(again)
    else:
        assert got == pytest.approx(ref, abs=1e-12)
        assert again == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_ipcw_auc_equals_scikit_learn_weighted_roc_auc_with_ties(seed):
    # Reference: scikit-learn's roc_auc_score with sample weights, on the known statuses;
    # scores rounded so that cases and controls tie.
    from sklearn.metrics import roc_auc_score

    from training.evaluation.accuracy import ipcw_auc, weighted_auc
    from training.evaluation.ipcw import ipcw_status

    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 600))
    time = rng.exponential(900, n)
    cause = rng.choice([0, 1, 2], n, p=[0.6, 0.25, 0.15])
    y = target(cause, time)
    p = np.round(rng.uniform(size=n) * (1 + cause), 1) / 3
    label, weight = ipcw_status(y, 24)
    known = weight > 0
    expected = roc_auc_score(label[known], p[known], sample_weight=weight[known])
    assert ipcw_auc(y, p, 24) == pytest.approx(expected, rel=1e-12)
    w = rng.uniform(0.5, 2, n)
    lab = rng.integers(0, 2, n)
    assert weighted_auc(lab, p, w) == pytest.approx(roc_auc_score(lab, p, sample_weight=w))
