"""Evaluation metrics for bone metastasis with death as a competing event.

Pure functions: numpy arrays in, numbers or small DataFrames out. Targets ``y`` are structured
arrays with fields ``cause`` (0 censored, 1 bone metastasis, 2 death without bone metastasis) and
``time`` (days), as built by :func:`training.models.competing.make_target`. ``p`` is a predicted
cumulative incidence of bone metastasis by a horizon given in ``months`` (a month is
``DAYS_PER_MONTH`` = 365.25 / 12 days).

Conventions shared with :mod:`training.evaluation.scores` (see docs/modeling.md):

- The *status at horizon h* is "bone metastasis by h". Death before h is a non-event (label 0:
  the competing event), event-free follow-up beyond h is label 0, and censoring before h is
  unknown status, handled by inverse probability of censoring weights
  (:func:`training.models.competing.ipcw_labels`).
- Observed incidences are Aalen-Johansen estimates with death competing; 1 - Kaplan-Meier with
  death censored would overstate them.
- Harrell's C ranks patients by risk score for bone metastasis with death censored
  (cause-specific concordance), as ``training.evaluation.scores.harrell_c``.

References
----------
Aalen O (1978). Nonparametric estimation of partial transition probabilities in multiple
decrement models. Ann Stat 6:534-545.
Aalen O, Johansen S (1978). An empirical transition matrix for non-homogeneous Markov chains
based on censored observations. Scand J Stat 5:141-150.
Pintilie M (2006). Competing Risks: A Practical Perspective. Wiley.
Cox DR (1958). Two further applications of a model for binary regression. Biometrika 45:562-565.
Harrell FE (2015). Regression Modeling Strategies, 2nd ed. Springer.
Austin PC, Steyerberg EW (2019). The Integrated Calibration Index (ICI) and related metrics for
quantifying the calibration of logistic regression models. Stat Med 38:4051-4065.
Austin PC, Putter H, Giardiello D, van Klaveren D (2022). Graphical calibration curves and the
integrated calibration index (ICI) for competing risk models. Diagn Progn Res 6:2.
Graf E, Schmoor C, Sauerbrei W, Schumacher M (1999). Assessment and comparison of prognostic
classification schemes for survival data. Stat Med 18:2529-2545.
Vickers AJ, Elkin EB (2006). Decision curve analysis. Med Decis Making 26:565-574.
Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008). Extensions to decision curve analysis.
BMC Med Inform Decis Mak 8:53.
Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from features.transformers import HARRELL_KNOT_QUANTILES, rcs_basis
from training.evaluation.scores import ipcw_auc, ipcw_brier
from training.models.competing import (
    BONE_METASTASIS,
    CENSORED,
    DAYS_PER_MONTH,
    DEATH,
    censoring_survival,
    ipcw_labels,
)

__all__ = [
    "Interval",
    "CalibrationFit",
    "LikelihoodRatioTest",
    "aalen_johansen",
    "aalen_johansen_ci",
    "calibration_table",
    "calibration_slope_intercept",
    "smoothed_calibration",
    "ici",
    "brier_score",
    "integrated_brier_score",
    "scaled_brier",
    "decision_curve",
    "fast_harrell_c",
    "bootstrap_ci",
    "paired_bootstrap_difference",
    "default_metric_fns",
    "subgroup_metrics",
    "cox_partial_loglik",
    "likelihood_ratio_test",
    "truth_agreement",
]

#: Predicted probabilities are clipped to [_P_EPS, 1 - _P_EPS] before taking log-odds, so that a
#: prediction of exactly 0 or 1 has a finite (if large) leverage instead of an infinite one.
_P_EPS = 1e-6

#: Knot quantiles of restricted cubic splines by number of knots (Harrell 2015, Table 2.3).
_RCS_KNOT_QUANTILES = HARRELL_KNOT_QUANTILES


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _check_y(y: np.ndarray) -> np.ndarray:
    names = getattr(getattr(y, "dtype", None), "names", None)
    if not (isinstance(y, np.ndarray) and names and {"cause", "time"} <= set(names)):
        raise TypeError(
            "y must be a structured array with fields 'cause' and 'time' "
            "(training.models.competing.make_target)"
        )
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"y must be a non-empty 1-D structured array, got shape {y.shape}")
    bad = ~np.isin(y["cause"], (CENSORED, BONE_METASTASIS, DEATH))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y['cause'] must be 0, 1 or 2: y['cause'][{i}] = {y['cause'][i]}")
    return y


def _check_prob(p: np.ndarray, n: int, name: str = "p") -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or p.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one value per patient: shape {p.shape}, n={n}")
    bad = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be probabilities in [0, 1]: {name}[{i}] = {p[i]}")
    return p


def _check_months(months: float) -> float:
    months = float(months)
    if not (np.isfinite(months) and months > 0):
        raise ValueError(f"months must be a finite horizon > 0, got {months}")
    return months


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _P_EPS, 1.0 - _P_EPS)
    return np.log(q) - np.log1p(-q)


# --------------------------------------------------------------------------------------------
# Aalen-Johansen
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AJSteps:
    """Aalen-Johansen estimate on the grid of distinct observed times."""

    times: np.ndarray
    at_risk: np.ndarray
    d_bm: np.ndarray
    d_death: np.ndarray
    surv_before: np.ndarray  # S(t_{j-1}): free of both events just before t_j
    cif_bm: np.ndarray
    cif_death: np.ndarray

    def at(self, values: np.ndarray, times_days: np.ndarray) -> np.ndarray:
        """Right-continuous step function through ``values``, 0 before the first time."""
        idx = np.searchsorted(self.times, times_days, side="right") - 1
        return np.where(idx >= 0, values[np.clip(idx, 0, None)], 0.0)


def _aj_steps(y: np.ndarray) -> _AJSteps:
    t = y["time"].astype(float)
    cause = y["cause"].astype(np.int64)  # int8 would overflow in counts
    times, inv = np.unique(t, return_inverse=True)
    leaving = np.bincount(inv, minlength=times.size)
    d_bm = np.bincount(inv, weights=cause == BONE_METASTASIS, minlength=times.size)
    d_death = np.bincount(inv, weights=cause == DEATH, minlength=times.size)
    at_risk = (t.size - np.cumsum(leaving) + leaving).astype(float)
    surv = np.cumprod(1.0 - (d_bm + d_death) / at_risk)
    surv_before = np.concatenate([[1.0], surv[:-1]])
    return _AJSteps(
        times=times,
        at_risk=at_risk,
        d_bm=d_bm,
        d_death=d_death,
        surv_before=surv_before,
        cif_bm=np.cumsum(surv_before * d_bm / at_risk),
        cif_death=np.cumsum(surv_before * d_death / at_risk),
    )


def aalen_johansen(
    y: np.ndarray, times_days: float | Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Aalen-Johansen cumulative incidences of bone metastasis and of death.

    With distinct observed times ``t_j``, ``n_j`` patients at risk (time >= t_j), ``d1_j`` bone
    metastases and ``d2_j`` deaths at ``t_j``, and ``S`` the product-limit probability of being
    free of both events,

        S(t)  = prod_{t_j <= t} (1 - (d1_j + d2_j) / n_j)
        Fk(t) = sum_{t_j <= t} S(t_{j-1}) * dk_j / n_j,     k = 1 (bone metastasis), 2 (death)

    so that ``F1 + F2 = 1 - S`` (Aalen & Johansen 1978). Events at a censoring time are counted
    before the censoring (the censored patient is still at risk).

    Parameters
    ----------
    y : numpy.ndarray
        Structured target with fields ``cause`` and ``time`` (days).
    times_days : float or array-like
        Times (days) at which to evaluate the right-continuous step functions.

    Returns
    -------
    cif_bm, cif_death : numpy.ndarray
        Cumulative incidences at ``times_days`` (0 before the first observed time).
    """
    y = _check_y(y)
    at = np.atleast_1d(np.asarray(times_days, dtype=float))
    steps = _aj_steps(y)
    return steps.at(steps.cif_bm, at), steps.at(steps.cif_death, at)


def aalen_johansen_ci(
    y: np.ndarray,
    times_days: float | Sequence[float] | np.ndarray,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Aalen-Johansen incidence of bone metastasis with a pointwise log-log confidence interval.

    The variance is Aalen's (1978) estimator in the form of Pintilie (2006, Eq. 4.5), with
    ``F = F1`` and the sums over ``t_j <= t``:

        Var F(t) = sum [F(t) - F(t_j)]^2 d_j / ((n_j - 1)(n_j - d_j))
                 + sum S(t_{j-1})^2 d1_j (n_j - d1_j) / (n_j^2 (n_j - 1))
                 - 2 sum [F(t) - F(t_j)] S(t_{j-1}) d1_j (n_j - d1_j) / (n_j (n_j - d_j)(n_j - 1))

    (``d_j = d1_j + d2_j``; terms with a zero denominator are 0). The interval is the log-log
    transform ``F ** exp(+-z se / (F log F))``, which stays inside [0, 1]. Both choices are
    those of scikit-survival's ``cumulative_incidence_competing_risks(conf_type="log-log",
    var_type="Aalen")``, against which it is tested. Where ``F = 0`` the interval is [0, 0].

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    times_days : float or array-like
        Evaluation times (days).
    conf_level : float, default=0.95
        Two-sided confidence level.

    Returns
    -------
    pandas.DataFrame
        Columns ``time_days, cif, se, lo, hi``, one row per evaluation time.
    """
    y = _check_y(y)
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    at = np.atleast_1d(np.asarray(times_days, dtype=float))
    s = _aj_steps(y)
    n, d, d1 = s.at_risk, s.d_bm + s.d_death, s.d_bm

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)

    va = ratio(d, (n - 1) * (n - d))
    vb = ratio((n - d1) * d1 * s.surv_before**2, (n - 1) * n**2)
    vc = ratio(s.surv_before * d1 * (n - d1), n * (n - d) * (n - 1))
    f_at = s.at(s.cif_bm, at)
    included = s.times[None, :] <= at[:, None]
    diff = f_at[:, None] - s.cif_bm[None, :]
    var = np.sum(included * (diff**2 * va + vb - 2.0 * diff * vc), axis=1)
    se = np.sqrt(np.clip(var, 0.0, None))

    z = stats.norm.isf((1.0 - conf_level) / 2.0)
    eps = np.finfo(float).eps
    log_f = np.log(np.where(f_at > eps, f_at, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where((f_at > eps) & (log_f < -eps) & (var > eps), z * se / (f_at * log_f), 0.0)
    lo = np.where(f_at > eps, np.exp(np.exp(-theta) * log_f), 0.0)
    hi = np.where(f_at > eps, np.exp(np.exp(theta) * log_f), 0.0)
    return pd.DataFrame({"time_days": at, "cif": f_at, "se": se, "lo": lo, "hi": hi})


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def _quantile_groups(p: np.ndarray, n_groups: int) -> np.ndarray:
    """Group index 0..G-1 by quantiles of p (intervals closed on the right, like pd.qcut)."""
    inner = np.unique(np.quantile(p, np.linspace(0.0, 1.0, n_groups + 1)[1:-1]))
    raw = np.searchsorted(inner, p, side="left")
    _, groups = np.unique(raw, return_inverse=True)  # renumber non-empty groups consecutively
    return groups


def calibration_table(
    y: np.ndarray, p: np.ndarray, months: float, n_groups: int = 10, conf_level: float = 0.95
) -> pd.DataFrame:
    """Observed against predicted incidence by quantile group of the prediction.

    Patients are split into ``n_groups`` groups by quantiles of ``p`` (deciles by default;
    tied quantiles merge groups). Within each group the observed incidence of bone metastasis
    by the horizon is the Aalen-Johansen estimate with death competing, with the log-log
    interval of :func:`aalen_johansen_ci`.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).
    n_groups : int, default=10
        Number of quantile groups.
    conf_level : float, default=0.95
        Level of the interval on the observed incidence.

    Returns
    -------
    pandas.DataFrame
        Columns ``group`` (1 = lowest predictions), ``n``, ``events`` (bone metastases by the
        horizon), ``mean_predicted``, ``observed``, ``observed_lo``, ``observed_hi``.
    """
    y = _check_y(y)
    p = _check_prob(p, y.shape[0])
    h = _check_months(months) * DAYS_PER_MONTH
    if int(n_groups) != n_groups or n_groups < 1:
        raise ValueError(f"n_groups must be a positive integer, got {n_groups}")
    groups = _quantile_groups(p, int(n_groups))
    rows = []
    for g in range(int(groups.max()) + 1):
        member = groups == g
        yg = y[member]
        ci = aalen_johansen_ci(yg, [h], conf_level).iloc[0]
        rows.append(
            {
                "group": g + 1,
                "n": int(member.sum()),
                "events": int(np.sum((yg["cause"] == BONE_METASTASIS) & (yg["time"] <= h))),
                "mean_predicted": float(np.mean(p[member])),
                "observed": float(ci["cif"]),
                "observed_lo": float(ci["lo"]),
                "observed_hi": float(ci["hi"]),
            }
        )
    return pd.DataFrame(rows)


def _fit_logistic(
    X: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> np.ndarray:
    """Weighted maximum-likelihood logistic regression by Newton-Raphson with step halving.

    Maximises ``sum_i w_i [y_i eta_i - log(1 + exp(eta_i))]`` with ``eta = offset + X beta``
    (no intercept is added: include a column of ones). Raises ValueError when the Hessian is
    singular or Newton does not converge (typically perfect separation).
    """
    off = np.zeros(X.shape[0]) if offset is None else offset

    def nll(beta: np.ndarray) -> float:
        eta = off + X @ beta
        return float(-np.sum(weight * (label * eta - np.logaddexp(0.0, eta))))

    beta = np.zeros(X.shape[1])
    current = nll(beta)
    for _ in range(max_iter):
        mu = expit(off + X @ beta)
        grad = X.T @ (weight * (label - mu))
        hess = (X * (weight * mu * (1.0 - mu))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as err:
            raise ValueError(
                "logistic fit: singular information matrix (constant predictor or separation)"
            ) from err
        scale = 1.0
        while True:
            candidate = beta + scale * step
            new = nll(candidate)
            if new <= current + 1e-12 * abs(current) or scale < 1e-8:
                break
            scale /= 2.0
        beta, current = candidate, new
        if np.max(np.abs(scale * step)) < tol:
            return beta
    raise ValueError(
        f"logistic fit did not converge in {max_iter} Newton steps "
        "(the status may be perfectly separated by the predictions)"
    )


def _known_status(y: np.ndarray, months: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IPCW status at the horizon: boolean mask of known patients, their labels and weights."""
    g_times, g_surv = censoring_survival(y)
    label, weight = ipcw_labels(y, months * DAYS_PER_MONTH, g_times, g_surv)
    known = weight > 0
    if np.unique(label[known]).size < 2:
        raise ValueError(
            f"horizon {months:g} months: need patients with and without bone metastasis among "
            "those with known status"
        )
    return known, label.astype(float), weight


class CalibrationFit(NamedTuple):
    """Logistic recalibration: slope (ideal 1) and calibration-in-the-large (ideal 0)."""

    slope: float
    intercept: float


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray, months: float) -> CalibrationFit:
    """Calibration slope and calibration-in-the-large by IPCW-weighted logistic recalibration.

    With ``Y`` the status "bone metastasis by h" (death before h = 0) and ``w`` its inverse
    probability of censoring weight (0 when censored before h; :func:`ipcw_labels`), two
    weighted logistic models are fitted on the patients of known status (Cox 1958; Van
    Calster et al. 2016, "A calibration hierarchy for risk models", J Clin Epidemiol 74:167):

        logit P(Y = 1) = a + b * logit(p)          -> slope b (ideal 1; < 1: too extreme)
        logit P(Y = 1) = a' + logit(p)  (offset)   -> intercept a' (ideal 0; > 0: p too low)

    Both are fitted by Newton-Raphson. ``p`` is clipped to [1e-6, 1 - 1e-6] before the logit.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).

    Returns
    -------
    CalibrationFit
        ``(slope, intercept)``.

    Raises
    ------
    ValueError
        No events or no non-events among the known statuses, or a fit that does not converge.
    """
    y = _check_y(y)
    p = _check_prob(p, y.shape[0])
    months = _check_months(months)
    known, label, weight = _known_status(y, months)
    lp, lab, w = _logit(p[known]), label[known], weight[known]
    ones = np.ones((lp.size, 1))
    slope = _fit_logistic(np.column_stack([ones, lp]), lab, w)[1]
    intercept = _fit_logistic(ones, lab, w, offset=lp)[0]
    return CalibrationFit(float(slope), float(intercept))


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline basis (Harrell 2015, ch. 2): x and K - 2 nonlinear terms
    (:func:`features.transformers.rcs_basis`), linear beyond the outer knots."""
    return np.column_stack([x, rcs_basis(x, knots)])


def smoothed_calibration(
    y: np.ndarray, p: np.ndarray, months: float, n_knots: int = 4
) -> np.ndarray:
    """Smoothed observed incidence of bone metastasis as a function of the prediction.

    A flexible calibration curve: IPCW-weighted logistic regression of the status "bone
    metastasis by h" (death before h = 0, censored before h weighted out) on a restricted cubic
    spline of ``logit(p)`` with ``n_knots`` knots at Harrell's (2015) default quantiles of
    ``logit(p)``. This is Austin & Steyerberg's (2019) logistic calibration curve made valid
    under censoring with death competing: with inverse probability of censoring weights the
    weighted regression estimates ``P(T <= h, cause = 1 | p)``, the cumulative incidence given
    the prediction. (Austin et al. 2022 fit a Fine-Gray model on the complementary log-log of
    p instead; both target the same curve.) With fewer distinct knot values than asked, fewer
    knots (then a line in ``logit(p)``; then a constant) are used.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).
    n_knots : {3, 4, 5}, default=4
        Knots of the restricted cubic spline.

    Returns
    -------
    numpy.ndarray
        The smoothed observed incidence at each patient's prediction.
    """
    y = _check_y(y)
    p = _check_prob(p, y.shape[0])
    months = _check_months(months)
    if n_knots not in _RCS_KNOT_QUANTILES:
        raise ValueError(f"n_knots must be 3, 4 or 5, got {n_knots}")
    known, label, weight = _known_status(y, months)
    lp = _logit(p)
    knots = np.unique(np.quantile(lp, _RCS_KNOT_QUANTILES[n_knots]))
    if knots.size >= 3:
        design = _rcs_basis(lp, knots)
    elif np.ptp(lp) > 0:
        design = lp[:, None]
    else:
        design = np.empty((lp.size, 0))
    design = np.column_stack([np.ones(lp.size), design])
    beta = _fit_logistic(design[known], label[known], weight[known])
    return expit(design @ beta)


def ici(y: np.ndarray, p: np.ndarray, months: float, n_knots: int = 4) -> float:
    """Integrated calibration index: mean absolute distance to the smoothed calibration curve.

        ICI = (1 / n) sum_i |p_i - p_smooth(p_i)|

    (Austin & Steyerberg 2019; for competing risks, Austin et al. 2022), averaged over all
    patients' predictions, with ``p_smooth`` from :func:`smoothed_calibration` (IPCW-weighted
    logistic regression on a restricted cubic spline of logit(p)). 0 for a perfectly
    calibrated model; in probability units.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).
    n_knots : {3, 4, 5}, default=4
        Knots of the spline.

    Returns
    -------
    float
    """
    p_smooth = smoothed_calibration(y, p, months, n_knots=n_knots)
    return float(np.mean(np.abs(np.asarray(p, dtype=float) - p_smooth)))


# --------------------------------------------------------------------------------------------
# Brier scores
# --------------------------------------------------------------------------------------------


def brier_score(y: np.ndarray, p: np.ndarray, months: float) -> float:
    """IPCW Brier score for bone metastasis by the horizon, death competing.

        BS(h) = (1 / n) sum_i w_i (Y_i - p_i)^2

    with ``Y_i`` the status "bone metastasis by h" (death before h = 0) and ``w_i`` the inverse
    probability of censoring weight (``1 / G(T_i-)`` for an event by h, ``1 / G(h)`` beyond h,
    0 when censored before h; Graf et al. 1999, extended to competing risks). Identical to
    ``training.evaluation.scores.ipcw_brier``, which it calls.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).

    Returns
    -------
    float
    """
    y = _check_y(y)
    p = _check_prob(p, y.shape[0])
    return ipcw_brier(y, p, _check_months(months))


def integrated_brier_score(
    y: np.ndarray, cif_matrix: np.ndarray, times_months: Sequence[float] | np.ndarray
) -> float:
    """Brier score integrated over horizons by the trapezoid rule, per unit time.

        IBS = [1 / (t_K - t_1)] * integral_{t_1}^{t_K} BS(t) dt

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    cif_matrix : numpy.ndarray
        ``(n, K)`` predicted cumulative incidences of bone metastasis at ``times_months``.
    times_months : array-like
        ``K >= 2`` strictly increasing horizons (months).

    Returns
    -------
    float
    """
    y = _check_y(y)
    times = np.asarray(times_months, dtype=float)
    cif = np.asarray(cif_matrix, dtype=float)
    if times.ndim != 1 or times.size < 2 or np.any(np.diff(times) <= 0):
        raise ValueError("times_months must hold at least 2 strictly increasing horizons")
    if cif.shape != (y.shape[0], times.size):
        raise ValueError(
            f"cif_matrix must have shape (n, len(times_months)) = {(y.shape[0], times.size)}, "
            f"got {cif.shape}"
        )
    scores = np.array([brier_score(y, cif[:, k], t) for k, t in enumerate(times)])
    return float(np.trapezoid(scores, times) / (times[-1] - times[0]))


def scaled_brier(y: np.ndarray, p: np.ndarray, months: float) -> float:
    """Scaled Brier score (index of prediction accuracy): 1 - BS(model) / BS(null).

    The null model predicts, for everyone, the Aalen-Johansen incidence of bone metastasis by
    the horizon in the same data (Kattan & Gerds 2018, "The index of prediction accuracy",
    Diagn Progn Res 2:7). 1 is perfect, 0 no better than the overall incidence, < 0 worse.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).

    Returns
    -------
    float
    """
    y = _check_y(y)
    months = _check_months(months)
    incidence = float(aalen_johansen(y, months * DAYS_PER_MONTH)[0][0])
    null = brier_score(y, np.full(y.shape[0], incidence), months)
    if null <= 0:
        raise ValueError(f"horizon {months:g} months: the null model's Brier score is 0")
    return 1.0 - brier_score(y, p, months) / null


# --------------------------------------------------------------------------------------------
# Decision curve
# --------------------------------------------------------------------------------------------


def decision_curve(
    y: np.ndarray,
    p: np.ndarray,
    months: float,
    thresholds: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Net benefit of treating patients whose predicted incidence reaches a threshold.

    For threshold probability ``t`` (Vickers & Elkin 2006), with ``n`` patients,

        NB(t) = TP / n - FP / n * t / (1 - t).

    With censoring and death competing (Vickers et al. 2008, censored-data extension), the
    true/false positive rates are estimated with the Aalen-Johansen incidence ``F_+(h)`` of
    bone metastasis by h among the patients with ``p >= t``, whose share is ``s``:

        TP / n = F_+(h) * s,     FP / n = (1 - F_+(h)) * s.

    Treat-all uses the overall incidence ``F(h)``: ``F(h) - (1 - F(h)) t / (1 - t)``;
    treat-none is 0.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    p : numpy.ndarray
        Predicted cumulative incidence of bone metastasis by ``months``.
    months : float
        Horizon (months).
    thresholds : array-like, optional
        Threshold probabilities in [0, 1); default 0.01, 0.02, ..., 0.50.

    Returns
    -------
    pandas.DataFrame
        Columns ``threshold, net_benefit_model, net_benefit_all, net_benefit_none``.
    """
    y = _check_y(y)
    p = _check_prob(p, y.shape[0])
    h = _check_months(months) * DAYS_PER_MONTH
    if thresholds is None:
        thresholds = np.round(np.linspace(0.01, 0.50, 50), 2)
    thr = np.atleast_1d(np.asarray(thresholds, dtype=float))
    if np.any(~np.isfinite(thr) | (thr < 0) | (thr >= 1)):
        raise ValueError("thresholds must be probabilities in [0, 1)")
    incidence = float(aalen_johansen(y, h)[0][0])
    odds = thr / (1.0 - thr)
    nb_model = np.empty(thr.size)
    for k, t in enumerate(thr):
        treated = p >= t
        share = float(np.mean(treated))
        f_treated = float(aalen_johansen(y[treated], h)[0][0]) if share > 0 else 0.0
        nb_model[k] = f_treated * share - (1.0 - f_treated) * share * odds[k]
    return pd.DataFrame(
        {
            "threshold": thr,
            "net_benefit_model": nb_model,
            "net_benefit_all": incidence - (1.0 - incidence) * odds,
            "net_benefit_none": np.zeros(thr.size),
        }
    )


# --------------------------------------------------------------------------------------------
# Concordance and bootstrap
# --------------------------------------------------------------------------------------------


def _prefix_counts(
    pos: np.ndarray,
    rank: np.ndarray,
    width: int,
    queries: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[np.ndarray]:
    """For each query (stop, below) and each k: #{points j : pos_j < stop_k, rank_j < below_k}.

    Offline 2-D dominance counting: the prefix [0, stop) is the union of one dyadic block per
    set bit L of ``stop`` (block index ``(stop >> L) - 1`` at level L, blocks of 2^L
    positions). Per level the points are sorted once by (block, rank) as one integer key, and
    every query is answered by two binary searches: O(n log^2 n) in vectorised numpy.
    ``width`` must exceed every rank and every ``below``.
    """
    stops = np.concatenate([stop for stop, _ in queries])
    belows = np.concatenate([below for _, below in queries])
    counts = np.zeros(stops.size, dtype=np.int64)
    level = 0
    while (1 << level) <= int(stops.max(initial=0)):
        keys = np.sort((pos >> level) * width + rank)
        use = ((stops >> level) & 1).astype(bool)
        base = ((stops[use] >> level) - 1) * width
        found = np.searchsorted(keys, np.concatenate([base + belows[use], base]))
        counts[use] += found[: base.size] - found[base.size :]
        level += 1
    return np.split(counts, np.cumsum([stop.size for stop, _ in queries])[:-1])


def fast_harrell_c(y: np.ndarray, risk: np.ndarray, tied_tol: float = 1e-8) -> float:
    """Harrell's C for bone metastasis (death censored), in O(n log^2 n) vectorised numpy.

    A pair (i, j) is comparable when i has bone metastasis at ``T_i`` and ``T_j > T_i``, or
    ``T_j = T_i`` and j had no bone metastasis then (censored or dead). It is concordant when
    ``risk_i - risk_j > tied_tol``; risk ties (``|risk_i - risk_j| <= tied_tol``) count one
    half (Harrell et al. 1982, JAMA 247:2543):

        C = (concordant + ties / 2) / comparable.

    Same definition and value as scikit-survival's ``concordance_index_censored``
    (``training.evaluation.scores.harrell_c``), which loops over events in Python and compares each
    with
    all patients (O(n^2)). Here, with patients sorted by time, each count is a count of points
    in a suffix of positions with risk below a threshold, answered for all events at once by
    dominance counting. Use it inside bootstraps.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    risk : numpy.ndarray
        Risk scores, higher meaning bone metastasis sooner.
    tied_tol : float, default=1e-8
        Risk differences up to this are ties.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        No comparable pairs (for example no bone metastasis event).
    """
    y = _check_y(y)
    risk = np.asarray(risk, dtype=float)
    if risk.shape != y.shape or not np.all(np.isfinite(risk)):
        raise ValueError(f"risk must be finite with one value per patient: shape {risk.shape}")
    order = np.argsort(y["time"], kind="mergesort")
    t = y["time"][order].astype(float)
    r = risk[order]
    event = y["cause"][order] == BONE_METASTASIS
    n = t.size
    values = np.unique(r)
    rank = np.searchsorted(values, r)
    width = values.size + 1
    pos = np.arange(n)
    cases = np.flatnonzero(event)
    tie_start = np.searchsorted(t, t[cases], side="left")  # first patient with the same time
    later = np.searchsorted(t, t[cases], side="right")  # first patient with a later time
    below = np.searchsorted(values, r[cases] - tied_tol, side="left")  # rank < : r_j < r_i - tol
    upto = np.searchsorted(values, r[cases] + tied_tol, side="right")  # rank < : r_j <= r_i + tol
    non_event = ~event
    ne_pos, ne_rank = pos[non_event], rank[non_event]
    # Same-time patients without bone metastasis (censored or dead) are comparable too.
    n_ne_tied = np.searchsorted(ne_pos, later) - np.searchsorted(ne_pos, tie_start)
    comparable = (n - later) + n_ne_tied
    all_later = _prefix_counts(pos, rank, width, [(later, below), (later, upto)])
    ne_tied = _prefix_counts(
        ne_pos,
        ne_rank,
        width,
        [(later, below), (later, upto), (tie_start, below), (tie_start, upto)],
    )
    sorted_rank = np.sort(rank)
    counts = [
        np.searchsorted(sorted_rank, threshold) - all_later[k] + ne_tied[k] - ne_tied[k + 2]
        for k, threshold in enumerate((below, upto))
    ]
    concordant, at_most_tied = counts
    total = int(comparable.sum())
    if total == 0:
        raise ValueError("no comparable pairs: Harrell's C is undefined")
    ties = at_most_tied - concordant
    return float((concordant.sum() + 0.5 * ties.sum()) / total)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval.

    Attributes
    ----------
    estimate : float
        The statistic on the original data.
    lo, hi : float
        Percentile bootstrap bounds (NaN when no resample was usable).
    n_boot_used : int
        Resamples on which the statistic was defined (finite, no ValueError).
    """

    estimate: float
    lo: float
    hi: float
    n_boot_used: int


def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n, size=(int(n_boot), n))


def _defined(fn: Callable[..., float], args: Sequence[Any]) -> float:
    """fn(*args) as a float, NaN where the statistic is undefined (ValueError or NaN)."""
    try:
        value = float(fn(*args))
    except ValueError:
        return float("nan")
    return value if np.isfinite(value) else float("nan")


def _percentile_interval(estimate: float, replicates: np.ndarray, alpha: float) -> Interval:
    used = replicates[np.isfinite(replicates)]
    if used.size == 0:
        return Interval(estimate, float("nan"), float("nan"), 0)
    lo, hi = np.quantile(used, [alpha / 2.0, 1.0 - alpha / 2.0])
    return Interval(estimate, float(lo), float(hi), int(used.size))


def _check_rows(arrays: Sequence[Any]) -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise ValueError("at least one array is needed")
    arrs = [np.asarray(a) for a in arrays]
    lengths = {a.shape[0] if a.ndim else -1 for a in arrs}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(f"arrays must have the same number of rows, got {sorted(lengths)}")
    return arrs, lengths.pop()


def bootstrap_ci(
    fn: Callable[..., float],
    *arrays: Any,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """Percentile bootstrap interval of ``fn(*arrays)``, resampling patients.

    Each resample draws n row indices with replacement and applies them to every array
    together (patients stay whole: target, scores and predictions move as one); the interval is
    the ``alpha / 2`` and ``1 - alpha / 2`` quantiles of the replicates (Efron & Tibshirani
    1993, ch. 13). Resamples on which ``fn`` raises ValueError or returns NaN (no comparable
    pairs, no events in a subset) are skipped and counted out of ``n_boot_used``.

    Parameters
    ----------
    fn : callable
        ``fn(*arrays) -> float``.
    *arrays : array-like
        Arrays with one row per patient (structured targets included).
    n_boot : int, default=200
        Number of resamples.
    seed : int, default=0
        Seed of the resampling (``numpy.random.default_rng``).
    alpha : float, default=0.05
        1 - confidence level.

    Returns
    -------
    Interval
        The estimate on the original data, the bounds and the number of resamples used.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    arrs, n = _check_rows(arrays)
    estimate = float(fn(*arrs))
    replicates = np.array(
        [_defined(fn, [a[idx] for a in arrs]) for idx in _resample_indices(n, n_boot, seed)]
    )
    return _percentile_interval(estimate, replicates, alpha)


def paired_bootstrap_difference(
    fn: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """Paired percentile bootstrap of ``fn(y, score_a) - fn(y, score_b)``.

    Both statistics are computed on the same resampled patients, so the interval reflects the
    correlation between the two scores (the incremental value of the marker: a model with it
    against one without it, on the same test patients). A resample is skipped when either
    statistic is undefined.

    Parameters
    ----------
    fn : callable
        ``fn(y, score) -> float``, e.g. :func:`fast_harrell_c`, or
        ``lambda y, p: training.evaluation.scores.ipcw_auc(y, p, 24)``.
    y : numpy.ndarray
        Structured target.
    score_a, score_b : numpy.ndarray
        Scores or predictions of the two models, one row per patient.
    n_boot, seed, alpha
        As in :func:`bootstrap_ci`.

    Returns
    -------
    Interval
        Difference a - b on the original data and its interval.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    (y, a, b), n = _check_rows([y, score_a, score_b])
    estimate = float(fn(y, a)) - float(fn(y, b))
    replicates = np.array(
        [
            _defined(fn, [y[idx], a[idx]]) - _defined(fn, [y[idx], b[idx]])
            for idx in _resample_indices(n, n_boot, seed)
        ]
    )
    return _percentile_interval(estimate, replicates, alpha)


# --------------------------------------------------------------------------------------------
# Subgroups
# --------------------------------------------------------------------------------------------

#: A subgroup metric: ``fn(y, risk, p_by_horizon) -> float``.
MetricFn = Callable[[np.ndarray, np.ndarray, Mapping[float, np.ndarray]], float]


def _c_metric(y: np.ndarray, risk: np.ndarray, p: Mapping[float, np.ndarray]) -> float:
    return fast_harrell_c(y, risk)


@dataclass(frozen=True)
class _AtHorizon:
    """A metric of the predicted incidence at one horizon, as a picklable callable."""

    fn: Callable[[np.ndarray, np.ndarray, float], float]
    months: float

    def __call__(self, y: np.ndarray, risk: np.ndarray, p: Mapping[float, np.ndarray]) -> float:
        return self.fn(y, p[self.months], self.months)


def _observed(y: np.ndarray, p: np.ndarray, months: float) -> float:
    return float(aalen_johansen(y, months * DAYS_PER_MONTH)[0][0])


def _mean_predicted(y: np.ndarray, p: np.ndarray, months: float) -> float:
    return float(np.mean(p))


def default_metric_fns(horizons_months: Sequence[float]) -> dict[str, MetricFn]:
    """Harrell's C and, per horizon, IPCW AUC, Brier score, observed and mean predicted incidence.

    Names follow :func:`training.evaluation.scores.evaluate` (``ipcw_auc_24m``, ``brier_24m``, ...);
    ``observed_incidence_<h>m`` is the Aalen-Johansen estimate.

    Parameters
    ----------
    horizons_months : sequence of float
        Keys of the ``p_by_horizon`` mapping given to :func:`subgroup_metrics`.

    Returns
    -------
    dict
        Metric name to ``fn(y, risk, p_by_horizon) -> float``.
    """
    fns: dict[str, MetricFn] = {"harrell_c": _c_metric}
    for h in horizons_months:
        fns[f"ipcw_auc_{h}m"] = _AtHorizon(ipcw_auc, h)
        fns[f"brier_{h}m"] = _AtHorizon(brier_score, h)
        fns[f"observed_incidence_{h}m"] = _AtHorizon(_observed, h)
        fns[f"mean_predicted_{h}m"] = _AtHorizon(_mean_predicted, h)
    return fns


def subgroup_metrics(
    y: np.ndarray,
    risk: np.ndarray,
    p_by_horizon: Mapping[float, np.ndarray],
    groups: Mapping[str, np.ndarray],
    metric_fns: Mapping[str, MetricFn] | None = None,
    min_events: int = 5,
    include_overall: bool = True,
) -> pd.DataFrame:
    """Metrics within the levels of subgroup variables, in long format.

    Each level of each variable is evaluated on its own patients. A level with fewer than
    ``min_events`` bone metastasis events (at any time) gets NaN values with its counts, since
    discrimination and calibration are not estimable from a handful of events. A metric
    undefined in a level (ValueError, e.g. no comparable pairs) is NaN with the reason in
    ``note``. Missing labels (None/NaN) belong to no level.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    risk : numpy.ndarray
        Risk scores (higher = bone metastasis sooner).
    p_by_horizon : mapping
        Predicted cumulative incidence of bone metastasis by horizon (months), one value per
        patient each.
    groups : mapping
        Subgroup variable name to an array of level labels, one per patient.
    metric_fns : mapping, optional
        Metric name to ``fn(y, risk, p_by_horizon) -> float``; default
        :func:`default_metric_fns` over the keys of ``p_by_horizon``.
    min_events : int, default=5
        Fewest bone metastasis events for a level to be evaluated.
    include_overall : bool, default=True
        Prepend the whole sample as variable ``all``, level ``all``.

    Returns
    -------
    pandas.DataFrame
        Columns ``variable, level, n, events, metric, value, note``.
    """
    y = _check_y(y)
    n = y.shape[0]
    risk = np.asarray(risk, dtype=float)
    if risk.shape != (n,):
        raise ValueError(f"risk must have one value per patient: shape {risk.shape}, n={n}")
    p_by_horizon = {h: _check_prob(p, n, f"p_by_horizon[{h}]") for h, p in p_by_horizon.items()}
    fns = default_metric_fns(list(p_by_horizon)) if metric_fns is None else dict(metric_fns)

    subsets: list[tuple[str, Any, np.ndarray]] = []
    if include_overall:
        subsets.append(("all", "all", np.ones(n, dtype=bool)))
    for variable, labels in groups.items():
        labels = pd.Series(np.asarray(labels, dtype=object))
        if labels.shape[0] != n:
            raise ValueError(f"groups[{variable!r}] has {labels.shape[0]} labels for {n} patients")
        present = labels.notna().to_numpy()
        for level in sorted(pd.unique(labels[present]), key=str):
            subsets.append((variable, level, present & (labels == level).to_numpy()))

    rows = []
    for variable, level, member in subsets:
        ys = y[member]
        events = int(np.sum(ys["cause"] == BONE_METASTASIS))
        base = {"variable": variable, "level": level, "n": int(member.sum()), "events": events}
        for name, fn in fns.items():
            value, note = float("nan"), ""
            if events < min_events:
                note = f"fewer than {min_events} bone metastasis events"
            else:
                try:
                    value = float(
                        fn(ys, risk[member], {h: p[member] for h, p in p_by_horizon.items()})
                    )
                except ValueError as err:
                    note = str(err)
            rows.append({**base, "metric": name, "value": value, "note": note})
    return pd.DataFrame(
        rows, columns=["variable", "level", "n", "events", "metric", "value", "note"]
    )


# --------------------------------------------------------------------------------------------
# Cox partial likelihood
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Agreement with a known true risk (simulated cohorts)
# --------------------------------------------------------------------------------------------


def truth_agreement(p: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How far predicted probabilities are from the true risk of the same patients.

    For simulated cohorts, whose true cumulative incidence is known (``truth.csv``):

    - ``mae``: mean absolute error ``mean |p - truth|``;
    - ``calibration_slope``, ``calibration_intercept``: ``b`` and ``a`` of
      ``truth = expit(a + b logit(p))`` fitted by logistic quasi-likelihood with the true
      probability as a fractional outcome (the calibration slope against the truth instead of
      against observed events: 1 and 0 for a perfect model; ``b < 1``: predictions too spread,
      ``b > 1``: too compressed).

    Parameters
    ----------
    p, truth : numpy.ndarray
        Predicted and true probabilities of the same patients at one horizon, in [0, 1].

    Returns
    -------
    dict of str to float

    Raises
    ------
    ValueError
        When the arrays differ in length, hold values outside [0, 1] or NaN, or the
        predictions are constant.
    """
    truth = np.asarray(truth, dtype=float)
    p = _check_prob(p, truth.shape[0])
    truth = _check_prob(truth, p.shape[0], "truth")
    lp = _logit(p)
    if np.ptp(lp) == 0:
        raise ValueError("truth_agreement needs predictions that vary")
    design = np.column_stack([np.ones(lp.size), lp])
    a, b = _fit_logistic(design, truth, np.ones(lp.size))
    return {
        "mae": float(np.mean(np.abs(p - truth))),
        "calibration_slope": float(b),
        "calibration_intercept": float(a),
    }
