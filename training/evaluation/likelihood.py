"""Cox partial log-likelihood and the likelihood-ratio test of nested models.

Used for the marker's likelihood-ratio test (an unpenalised Cox model with the marker against
one without, :func:`training.fitting.marker.marker_lr_test`) at the maximum-likelihood
coefficients fitted by scikit-survival's ``CoxPHSurvivalAnalysis`` (``alpha=0``), which does
not expose the log-likelihood of a fit; it agrees with statsmodels' ``PHReg`` to 1e-12
(``tests/study/test_study_stats.py``), which is several times slower on a training cohort.

References
----------
Cox DR (1972). Regression models and life-tables. J R Stat Soc B 34:187-220.
Breslow N (1974). Covariance analysis of censored survival data. Biometrics 30:89-99.
Wilks SS (1938). The large-sample distribution of the likelihood ratio for testing composite
hypotheses. Ann Math Stat 9:60-62.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["cox_partial_loglik", "LikelihoodRatioTest", "likelihood_ratio_test"]


def cox_partial_loglik(
    X: np.ndarray, y_time: np.ndarray, y_event: np.ndarray, coef: np.ndarray
) -> float:
    """Cox partial log-likelihood with Breslow's handling of tied event times.

        l(b) = sum_{i: event} [x_i b - log sum_{j: T_j >= T_i} exp(x_j b)]

    (Cox 1972; Breslow 1974: tied events share the full risk set). Computed with a reverse
    cumulative sum after subtracting the largest linear predictor, so large coefficients do not
    overflow.

    Parameters
    ----------
    X : numpy.ndarray
        ``(n, k)`` covariates (a 1-D array is one covariate).
    y_time : numpy.ndarray
        Event or censoring times.
    y_event : numpy.ndarray
        Event indicators (bool or 0/1). For bone metastasis with death censored:
        ``y["cause"] == 1``.
    coef : numpy.ndarray
        ``(k,)`` coefficients.

    Returns
    -------
    float
    """
    X = np.asarray(X, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    coef = np.atleast_1d(np.asarray(coef, dtype=float))
    time = np.asarray(y_time, dtype=float)
    event = np.asarray(y_event).astype(bool)
    n = time.shape[0]
    if X.ndim != 2 or X.shape[0] != n or event.shape != (n,) or coef.shape != (X.shape[1],):
        raise ValueError(
            f"shapes do not match: X {X.shape}, y_time {time.shape}, y_event {event.shape}, "
            f"coef {coef.shape}"
        )
    order = np.argsort(time, kind="mergesort")
    t, eta, ev = time[order], (X @ coef)[order], event[order]
    top = eta.max()
    tail = np.cumsum(np.exp(eta - top)[::-1])[::-1]  # sum over j at or after position k
    first = np.searchsorted(t, t, side="left")  # risk set of a tie starts at its first member
    log_risk = np.log(tail[first]) + top
    return float(np.sum(eta[ev] - log_risk[ev]))


class LikelihoodRatioTest(NamedTuple):
    """Likelihood ratio statistic and its chi-squared p-value."""

    statistic: float
    p_value: float


def likelihood_ratio_test(ll_full: float, ll_reduced: float, df: int) -> LikelihoodRatioTest:
    """Likelihood ratio test of nested models.

        LR = 2 (l_full - l_reduced) ~ chi2(df) under the reduced model (Wilks 1938).

    Parameters
    ----------
    ll_full, ll_reduced : float
        Maximised log-likelihoods of the full and the nested reduced model.
    df : int
        Number of parameters the full model adds.

    Returns
    -------
    LikelihoodRatioTest
        ``(statistic, p_value)``.

    Raises
    ------
    ValueError
        ``df`` not a positive integer, or ``ll_full`` clearly below ``ll_reduced`` (models not
        nested or not maximised).
    """
    if int(df) != df or df < 1:
        raise ValueError(f"df must be a positive integer, got {df}")
    statistic = 2.0 * (float(ll_full) - float(ll_reduced))
    if statistic < -1e-8 * (1.0 + abs(float(ll_full))):
        raise ValueError(
            f"ll_full ({ll_full}) < ll_reduced ({ll_reduced}): the models are not nested "
            "or a fit did not reach its maximum"
        )
    statistic = max(statistic, 0.0)
    return LikelihoodRatioTest(statistic, float(stats.chi2.sf(statistic, int(df))))
