"""Cox partial log-likelihood and the likelihood-ratio test.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests.evaluation.cohorts import simulate
from training.evaluation.likelihood import cox_partial_loglik, likelihood_ratio_test


def test_partial_loglik_at_zero_is_minus_sum_log_at_risk():
    # No ties, coef = 0: each event contributes -log(number still at risk).
    # Times 1..6, events at 1, 3, 4, 6: at risk 6, 4, 3, 1 -> -(log 6 + log 4 + log 3 + log 1).
    time = np.array([4.0, 1, 6, 2, 3, 5])
    event = np.array([1, 1, 1, 0, 1, 0])
    X = np.random.default_rng(0).normal(size=(6, 2))
    expected = -(np.log(6) + np.log(4) + np.log(3) + np.log(1))
    assert cox_partial_loglik(X, time, event, np.zeros(2)) == pytest.approx(expected)


def test_partial_loglik_breslow_ties_hand_calculation():
    # Times 1, 2, 2, 3; events 1, 1, 1, 0; x = 0, 1, 2, 1; b = log 2 so exp(x b) = 1, 2, 4, 2.
    # t=1: log 1 - log(1+2+4+2) = -log 9.  t=2 (tie, Breslow: both over the full risk set 2+4+2):
    # (log 2 - log 8) + (log 4 - log 8).  Total = -log 9 + 3 log 2 - 6 log 2 = -log 72.
    # b = 0: -log 4 - 2 log 3 = -log 36.
    time, event, x = np.array([1.0, 2, 2, 3]), np.array([1, 1, 1, 0]), np.array([0.0, 1, 2, 1])
    assert cox_partial_loglik(x, time, event, [np.log(2)]) == pytest.approx(-np.log(72))
    assert cox_partial_loglik(x, time, event, [0.0]) == pytest.approx(-np.log(36))


def test_partial_loglik_matches_sksurv_and_is_maximal_at_its_fit():
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.linear_model.coxph import CoxPHOptimizer
    from sksurv.util import Surv

    x, y, _ = simulate(400, seed=9)
    y["time"] = np.ceil(y["time"] / 30) * 30
    X = np.column_stack([x, np.random.default_rng(1).normal(size=400)])
    event, time = y["cause"] == 1, y["time"]
    coef = np.array([0.8, -0.3])
    # Reference: sksurv's Breslow negative partial log-likelihood, averaged over patients.
    opt = CoxPHOptimizer(X, event, time, alpha=np.zeros(2), ties="breslow")
    assert cox_partial_loglik(X, time, event, coef) == pytest.approx(
        -400 * opt.nlog_likelihood(coef), rel=1e-10
    )
    fit = CoxPHSurvivalAnalysis(alpha=0, ties="breslow").fit(X, Surv.from_arrays(event, time))
    ll_fit = cox_partial_loglik(X, time, event, fit.coef_)
    for step in np.eye(2) * 1e-3:
        assert ll_fit > cox_partial_loglik(X, time, event, fit.coef_ + step)
        assert ll_fit > cox_partial_loglik(X, time, event, fit.coef_ - step)


def test_likelihood_ratio_test_against_chi2():
    # 3.841458820694124 is the 95th percentile of chi2(1): p = 0.05.
    statistic, p_value = likelihood_ratio_test(-100.0, -100.0 - 3.841458820694124 / 2, 1)
    assert statistic == pytest.approx(3.841458820694124)
    assert p_value == pytest.approx(0.05, abs=1e-12)
    assert likelihood_ratio_test(-50.0, -56.0, 3).p_value == stats.chi2.sf(12.0, 3)
    with pytest.raises(ValueError, match="not nested"):
        likelihood_ratio_test(-60.0, -50.0, 1)
