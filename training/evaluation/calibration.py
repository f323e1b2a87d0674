"""Calibration of predicted cumulative incidence of bone metastasis, death competing.

Observed against predicted by quantile group (Aalen-Johansen observed incidence), logistic
recalibration (slope and calibration-in-the-large), the smoothed calibration curve and the
integrated calibration index. The status at the horizon and its weights come from
:func:`training.evaluation.ipcw.ipcw_status`.

References
----------
Cox DR (1958). Two further applications of a model for binary regression. Biometrika 45:562-565.
Harrell FE (2015). Regression Modeling Strategies, 2nd ed. Springer.
Austin PC, Steyerberg EW (2019). The Integrated Calibration Index (ICI) and related metrics for
quantifying the calibration of logistic regression models. Stat Med 38:4051-4065.
Austin PC, Putter H, Giardiello D, van Klaveren D (2022). Graphical calibration curves and the
integrated calibration index (ICI) for competing risk models. Diagn Progn Res 6:2.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.special import expit

from features.transformers import HARRELL_KNOT_QUANTILES, rcs_basis
from training.evaluation.incidence import aalen_johansen_ci
from training.evaluation.inputs import check_months, check_prob, check_y, logit
from training.models.competing import BONE_METASTASIS, DAYS_PER_MONTH
from training.models.ipcw import status_at_horizon

__all__ = [
    "CalibrationFit",
    "calibration_table",
    "fit_logistic",
    "calibration_slope",
    "calibration_slope_intercept",
    "restricted_cubic_spline",
    "smoothed_calibration",
    "ici",
]


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
    y = check_y(y)
    p = check_prob(p, y.shape[0])
    h = check_months(months) * DAYS_PER_MONTH
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


def fit_logistic(
    X: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray | None = None,
    max_iter: int = 100,
    tol: float = 1e-10,
    engine: str = "statsmodels",
) -> np.ndarray:
    """Weighted maximum-likelihood logistic regression (statsmodels ``GLM``, binomial family,
    fitted by iteratively reweighted least squares).

    Maximises ``sum_i w_i [y_i eta_i - log(1 + exp(eta_i))]`` with ``eta = offset + X beta``
    (no intercept is added: include a column of ones); ``label`` may be a fraction in [0, 1]
    (quasi-likelihood). Raises ValueError when the design is rank-deficient (a constant
    predictor) or the fit does not converge (typically perfect separation).

    ``engine="numpy"`` runs statsmodels' own iterations (:func:`_glm_irls`: the same start,
    weighted least-squares steps, deviance stopping rule and failures) without its per-call
    overhead, about 10x faster on 2,000 rows; tested equal to statsmodels to 1e-10
    (``tests/evaluation/test_calibration.py``). The bootstraps use it (hundreds of fits).
    """
    if engine not in ("statsmodels", "numpy"):
        raise ValueError(f"engine must be 'statsmodels' or 'numpy', got {engine!r}")
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import (
        ConvergenceWarning,
        PerfectSeparationError,
        PerfectSeparationWarning,
    )

    X = np.asarray(X, dtype=float)
    if X.shape[1] and np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(
            "logistic fit: singular information matrix (constant predictor or separation)"
        )
    failed = ValueError(
        f"logistic fit did not converge in {max_iter} iterations "
        "(the status may be perfectly separated by the predictions)"
    )
    if engine == "numpy":
        return _glm_irls(
            X,
            np.asarray(label, dtype=float),
            np.asarray(weight, dtype=float),
            offset,
            max_iter,
            tol,
            failed,
        )
    model = GLM(label, X, family=Binomial(), var_weights=weight, offset=offset)
    # Separation drives the linear predictor to overflow before statsmodels says so.
    with warnings.catch_warnings(), np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        warnings.simplefilter("error", ConvergenceWarning)
        # With 0/1 labels, predictions equal to the labels mean separation (coefficients
        # running off); with fractional labels (quasi-likelihood) they are an exact fit.
        binary = bool(np.isin(label, (0.0, 1.0)).all())
        warnings.simplefilter("error" if binary else "ignore", PerfectSeparationWarning)
        try:
            fit = model.fit(maxiter=max_iter, tol=tol)
        except (
            ConvergenceWarning,
            PerfectSeparationWarning,
            PerfectSeparationError,
            np.linalg.LinAlgError,
        ) as err:
            raise failed from err
    beta = np.asarray(fit.params, dtype=float)
    if not (fit.converged and np.isfinite(beta).all()):
        raise failed
    return beta


_FLOAT_EPS = np.finfo(float).eps


def _binomial_deviance(label: np.ndarray, mu: np.ndarray, weight: np.ndarray) -> float:
    """statsmodels' ``Binomial().deviance`` with variance weights (its clipping included)."""
    endog_mu = np.clip(label / (mu + 1e-20), _FLOAT_EPS, np.inf)
    n_endog_mu = np.clip((1.0 - label) / (1.0 - mu + 1e-20), _FLOAT_EPS, np.inf)
    resid = 2 * (label * np.log(endog_mu) + (1 - label) * np.log(n_endog_mu))
    return float(np.sum(resid * weight))


def _glm_irls(
    X: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray | None,
    max_iter: int,
    tol: float,
    failed: ValueError,
) -> np.ndarray:
    """statsmodels' ``GLM(..., family=Binomial(), var_weights=weight).fit()`` (IRLS), step by
    step: start at ``mu = (y + 1/2) / 2``, weighted least-squares steps (``lstsq``) with the
    logit link's clipped derivative, stop when two successive deviances differ by at most
    ``tol``, the final coefficients from the last step's system by pseudo-inverse (as
    statsmodels' final ``WLS(method="pinv")``); separation (fitted equal to 0/1 labels) and
    non-convergence raise ``failed``. statsmodels 0.14-0.15, ``GLM._fit_irls``."""
    off = 0.0 if offset is None else np.asarray(offset, dtype=float)
    binary = bool(np.isin(label, (0.0, 1.0)).all())
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        mu = (label + 0.5) / 2
        clipped = np.clip(mu, _FLOAT_EPS, 1.0 - _FLOAT_EPS)
        lin_pred = np.log(clipped / (1.0 - clipped))
        deviance = _binomial_deviance(label, mu, weight)
        for _ in range(max_iter):
            clipped = np.clip(mu, _FLOAT_EPS, 1.0 - _FLOAT_EPS)
            deriv = 1.0 / (clipped * (1 - clipped))
            w = weight * (1.0 / (deriv**2 * (clipped * (1 - clipped))))
            z = lin_pred + deriv * (label - mu) - off
            w_half = np.sqrt(w)
            if not (np.all(np.isfinite(w_half)) and np.all(np.isfinite(z))):
                raise failed
            wx, wz = w_half[:, None] * X, w_half * z
            try:
                beta = np.linalg.lstsq(wx, wz, rcond=-1)[0]
            except np.linalg.LinAlgError as err:
                raise failed from err
            lin_pred = X @ beta + off
            mu = 1.0 / (1.0 + np.exp(-lin_pred))
            previous, deviance = deviance, _binomial_deviance(label, mu, weight)
            if binary and np.allclose(mu - label, 0):
                raise failed  # statsmodels' PerfectSeparationWarning
            if np.allclose(previous, deviance, atol=tol, rtol=0.0):
                break
        else:
            raise failed
        try:
            beta = np.linalg.pinv(wx).dot(wz)
        except np.linalg.LinAlgError as err:
            raise failed from err
    if not np.isfinite(beta).all():
        raise failed
    return beta


def _known_status(y: np.ndarray, months: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IPCW status at the horizon: boolean mask of known patients, their labels and weights.

    Raises ValueError unless both statuses occur among the known ones (a fit needs both).
    """
    known, label, weight = status_at_horizon(y, months * DAYS_PER_MONTH, require_both=True)
    return known, label.astype(float), weight


class CalibrationFit(NamedTuple):
    """Logistic recalibration: slope (ideal 1) and calibration-in-the-large (ideal 0)."""

    slope: float
    intercept: float


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray, months: float) -> CalibrationFit:
    """Calibration slope and calibration-in-the-large by IPCW-weighted logistic recalibration.

    With ``Y`` the status "bone metastasis by h" (death before h = 0) and ``w`` its inverse
    probability of censoring weight (0 when censored before h;
    :func:`training.evaluation.ipcw.ipcw_status`), two
    weighted logistic models are fitted on the patients of known status (Cox 1958; Van
    Calster et al. 2016, "A calibration hierarchy for risk models", J Clin Epidemiol 74:167):

        logit P(Y = 1) = a + b * logit(p)          -> slope b (ideal 1; < 1: too extreme)
        logit P(Y = 1) = a' + logit(p)  (offset)   -> intercept a' (ideal 0; > 0: p too low)

    Both are fitted by :func:`fit_logistic` (statsmodels). ``p`` is clipped to [1e-6, 1 - 1e-6]
    before the logit.

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
    lp, lab, w = _recalibration_data(y, p, months)
    ones = np.ones((lp.size, 1))
    slope = fit_logistic(np.column_stack([ones, lp]), lab, w)[1]
    intercept = fit_logistic(ones, lab, w, offset=lp)[0]
    return CalibrationFit(float(slope), float(intercept))


def _recalibration_data(
    y: np.ndarray, p: np.ndarray, months: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """logit(p), status and IPCW weight of the patients of known status at the horizon."""
    y = check_y(y)
    p = check_prob(p, y.shape[0])
    months = check_months(months)
    known, label, weight = _known_status(y, months)
    return logit(p[known]), label[known], weight[known]


def calibration_slope(y: np.ndarray, p: np.ndarray, months: float, engine: str = "numpy") -> float:
    """The calibration slope of :func:`calibration_slope_intercept` alone (one logistic fit,
    not two): what the bootstrap intervals resample.

    ``engine`` as in :func:`fit_logistic`: by default statsmodels' iterations without its
    per-call overhead (equal to ``calibration_slope_intercept(y, p, months).slope`` to 1e-10).

    Raises
    ------
    ValueError
        As :func:`calibration_slope_intercept`.
    """
    lp, lab, w = _recalibration_data(y, p, months)
    design = np.column_stack([np.ones(lp.size), lp])
    return float(fit_logistic(design, lab, w, engine=engine)[1])


def restricted_cubic_spline(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
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
    y = check_y(y)
    p = check_prob(p, y.shape[0])
    months = check_months(months)
    if n_knots not in HARRELL_KNOT_QUANTILES:
        raise ValueError(f"n_knots must be 3, 4 or 5, got {n_knots}")
    known, label, weight = _known_status(y, months)
    lp = logit(p)
    knots = np.unique(np.quantile(lp, HARRELL_KNOT_QUANTILES[n_knots]))
    if knots.size >= 3:
        design = restricted_cubic_spline(lp, knots)
    elif np.ptp(lp) > 0:
        design = lp[:, None]
    else:
        design = np.empty((lp.size, 0))
    design = np.column_stack([np.ones(lp.size), design])
    beta = fit_logistic(design[known], label[known], weight[known])
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
