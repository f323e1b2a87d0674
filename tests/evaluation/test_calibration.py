"""Calibration tables, logistic recalibration, smoothed calibration and ICI.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

from tests.evaluation.cohorts import target
from training.evaluation.calibration import (
    calibration_slope_intercept,
    calibration_table,
    ici,
    restricted_cubic_spline,
    smoothed_calibration,
)
from training.models.competing import DAYS_PER_MONTH, censoring_survival, ipcw_labels


def test_calibration_table_groups_are_deciles_with_aalen_johansen_observed(cohort):
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    _, y, true_cif = cohort
    p = true_cif(24)
    table = calibration_table(y, p, 24)
    assert list(table.columns) == [
        "group", "n", "events", "mean_predicted", "observed", "observed_lo", "observed_hi"
    ]  # fmt: skip
    assert table["n"].tolist() == [400] * 10  # distinct p: exact deciles
    assert table["mean_predicted"].is_monotonic_increasing
    # Reference: sksurv's Aalen-Johansen in the top decile (pd.qcut assigns the groups).
    top = pd.qcut(p, 10, labels=False) == 9
    t, cif = cumulative_incidence_competing_risks(y["cause"][top].astype(int), y["time"][top])
    ref = cif[1][np.searchsorted(t, 24 * DAYS_PER_MONTH, side="right") - 1]
    assert table["observed"].iloc[-1] == pytest.approx(ref, abs=1e-12)
    # True probabilities: the observed incidence is inside its 95 % interval in most groups.
    inside = (table["observed_lo"] <= table["mean_predicted"]) & (
        table["mean_predicted"] <= table["observed_hi"]
    )
    assert inside.sum() >= 8


def test_calibration_slope_and_intercept_of_true_probabilities(cohort):
    _, y, true_cif = cohort
    slope, intercept = calibration_slope_intercept(y, true_cif(24), 24)
    assert slope == pytest.approx(1.0, abs=0.1)
    assert intercept == pytest.approx(0.0, abs=0.1)


def test_calibration_slope_below_one_for_too_extreme_and_intercept_for_too_low(cohort):
    _, y, true_cif = cohort
    lp = logit(true_cif(24))
    slope_extreme, _ = calibration_slope_intercept(y, expit(2 * lp), 24)
    slope_low, intercept_low = calibration_slope_intercept(y, expit(lp - 0.7), 24)
    assert slope_extreme == pytest.approx(0.5, abs=0.07)  # logit doubled: slope halves
    assert intercept_low == pytest.approx(0.7, abs=0.1)  # log-odds 0.7 too low
    assert slope_low == pytest.approx(calibration_slope_intercept(y, true_cif(24), 24)[0])


def test_recalibration_fits_match_sklearn_and_scipy(cohort):
    from sklearn.linear_model import LogisticRegression

    _, y, true_cif = cohort
    p = np.clip(true_cif(24) * 1.3, 0, 0.99)
    slope, intercept = calibration_slope_intercept(y, p, 24)
    g_times, g_surv = censoring_survival(y)
    label, weight = ipcw_labels(y, 24 * DAYS_PER_MONTH, g_times, g_surv)
    known = weight > 0
    lp, lab, w = logit(p[known]), label[known], weight[known]
    # Reference 1: scikit-learn's unpenalised weighted logistic regression (C = inf).
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    ref.fit(lp[:, None], lab, sample_weight=w)
    assert slope == pytest.approx(ref.coef_[0, 0], abs=1e-5)

    # Reference 2: scipy's scalar minimiser of the weighted negative log-likelihood with
    # offset logit(p).
    def nll(a: float) -> float:
        eta = a + lp
        return -np.sum(w * (lab * eta - np.logaddexp(0, eta)))

    ref_a = minimize_scalar(nll, bounds=(-3, 3), method="bounded", options={"xatol": 1e-10}).x
    assert intercept == pytest.approx(ref_a, abs=1e-6)


def test_calibration_needs_events_and_non_events_with_known_status():
    y = target([2, 2, 0, 2], [100, 200, 300, 1000])
    with pytest.raises(ValueError, match="need patients with and without bone metastasis"):
        calibration_slope_intercept(y, np.full(4, 0.2), 12)


def test_restricted_cubic_spline_matches_hand_values_and_is_linear_in_tails():
    # Knots 0, 1, 2 (K = 3): one nonlinear term
    # [x^3 - (x-1)_+^3 * (2-0)/(2-1) + (x-2)_+^3 * (1-0)/(2-1)] / (2-0)^2.
    # x = 3: (27 - 16 + 1) / 4 = 3;  x = 4: (64 - 54 + 8) / 4 = 4.5;  x = 5: (125 - 128 + 27) / 4
    # = 6: linear beyond the last knot (slope 1.5); 0 below the first knot.
    basis = restricted_cubic_spline(np.array([-1.0, 0.5, 3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0]))
    assert np.allclose(basis[:, 0], [-1, 0.5, 3, 4, 5])
    assert np.allclose(basis[:, 1], [0, 0.125 / 4, 3, 4.5, 6])


def test_ici_near_zero_for_true_probabilities_and_larger_when_distorted(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    assert ici(y, p, 24) < 0.02
    assert ici(y, expit(2 * logit(p)), 24) > 0.05
    assert ici(y, expit(logit(p) - 0.7), 24) > 0.05
    # The smoothed curve of the true probabilities follows the identity.
    assert np.max(np.abs(smoothed_calibration(y, p, 24) - p)) < 0.06


def test_statsmodels_fits_give_the_numbers_of_the_newton_fit_they_replaced():
    # Reference: the hand-written Newton-Raphson logistic fit (step halving, tolerance 1e-9)
    # that training.evaluation.calibration used before issue 21, on this seeded cohort.
    from tests.evaluation.cohorts import simulate
    from training.evaluation.truth import truth_agreement

    _, y, true_cif = simulate(600, 5)
    p = true_cif(24)
    q = expit(2 * logit(p) + 0.3)
    fit = calibration_slope_intercept(y, q, 24)
    assert fit.slope == pytest.approx(0.46454541960604506, abs=1e-10)
    assert fit.intercept == pytest.approx(0.25207508938212864, abs=1e-10)
    assert ici(y, q, 24) == pytest.approx(0.11326234661003497, abs=1e-10)
    assert ici(y, p, 36, n_knots=3) == pytest.approx(0.08146234668638565, abs=1e-10)
    # Against the truth, q is p stretched: p = expit(-0.15 + 0.5 logit q) exactly.
    agreement = truth_agreement(q, p)
    assert agreement["calibration_slope"] == pytest.approx(0.5, abs=1e-10)
    assert agreement["calibration_intercept"] == pytest.approx(-0.15, abs=1e-10)


def test_a_logistic_fit_that_cannot_be_made_says_why():
    from training.evaluation.calibration import fit_logistic

    x = np.linspace(-1, 1, 40)
    label = (x > 0).astype(float)  # perfectly separated
    with pytest.raises(ValueError, match="^logistic fit did not converge in 100 iterations"):
        fit_logistic(np.column_stack([np.ones(40), x]), label, np.ones(40))
    with pytest.raises(ValueError, match="^logistic fit: singular information matrix"):
        fit_logistic(np.column_stack([np.ones(40), np.ones(40)]), label, np.ones(40))


def test_numpy_irls_gives_statsmodels_numbers_on_bootstrap_resamples():
    # The bootstraps fit the slope with engine="numpy" (statsmodels' IRLS iterations without its
    # per-call overhead): the same coefficients as statsmodels' GLM on every resample, with and
    # without an offset, and the same failures.
    from tests.evaluation.cohorts import simulate
    from training.evaluation.calibration import calibration_slope, fit_logistic
    from training.models.ipcw import status_at_horizon
    from training.models.link import logit as clipped_logit

    _, y, true_cif = simulate(1500, 7)
    rng = np.random.default_rng(0)
    for h in (12, 24, 36):
        p = true_cif(h)
        for q in (p, expit(2 * logit(p) + 0.3), expit(0.5 * logit(p) - 1.0)):
            for _ in range(15):
                idx = rng.integers(0, len(y), len(y))
                reference = calibration_slope_intercept(y[idx], q[idx], h)
                assert calibration_slope(y[idx], q[idx], h) == pytest.approx(
                    reference.slope, abs=1e-10
                )
                assert calibration_slope(y[idx], q[idx], h, engine="statsmodels") == (
                    reference.slope
                )
                known, label, weight = status_at_horizon(
                    y[idx], h * DAYS_PER_MONTH, require_both=True
                )
                lp = clipped_logit(q[idx][known])
                ones = np.ones((lp.size, 1))
                intercept = fit_logistic(
                    ones, label[known].astype(float), weight[known], offset=lp, engine="numpy"
                )[0]
                assert intercept == pytest.approx(reference.intercept, abs=1e-10)
    # Fractional labels (quasi-likelihood, as the truth agreement fits them).
    x = np.linspace(-2, 2, 200)
    design = np.column_stack([np.ones(200), x])
    frac = expit(0.3 + 0.8 * x + 0.2 * np.sin(5 * x))
    assert fit_logistic(design, frac, np.ones(200), engine="numpy") == pytest.approx(
        fit_logistic(design, frac, np.ones(200)), abs=1e-10
    )


@pytest.mark.parametrize("engine", ["statsmodels", "numpy"])
def test_both_engines_refuse_the_same_fits(engine):
    from training.evaluation.calibration import fit_logistic

    x = np.linspace(-1, 1, 40)
    label = (x > 0).astype(float)  # perfectly separated
    with pytest.raises(ValueError, match="^logistic fit did not converge in 100 iterations"):
        fit_logistic(np.column_stack([np.ones(40), x]), label, np.ones(40), engine=engine)
    with pytest.raises(ValueError, match="^logistic fit: singular information matrix"):
        fit_logistic(np.column_stack([np.ones(40), np.ones(40)]), label, np.ones(40), engine=engine)
    with pytest.raises(ValueError, match="^engine must be"):
        fit_logistic(np.ones((40, 1)), label, np.ones(40), engine="R")
