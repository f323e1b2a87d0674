"""Regression models of the study: ordinary least squares and the cause-specific Cox model.

Both are fitted by statsmodels (``statsmodels.api.OLS``; ``PHReg`` with Breslow ties); this
module drops incomplete rows (complete-case analysis, counted), refuses designs the data cannot
support with :class:`~training.study.stats.common.StudyError`, and adds what statsmodels does
not provide: the Grambsch & Therneau (1994) proportional hazards test on the Schoenfeld
residuals against the rank of event time (R's ``survival::cox.zph(fit, transform = "rank")``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning

from training.study.stats.common import StudyError, normal_quantile

__all__ = ["Regression", "CoxFit", "linear_regression", "cox_fit", "grambsch_therneau"]


@dataclass(frozen=True)
class Regression:
    """Coefficients with standard errors, intervals and p values, one entry per term.

    For :func:`linear_regression` ``n_events`` is None; for :func:`cox_fit` it counts the
    events. ``n_dropped`` rows had a missing value in a term (complete-case analysis).
    """

    terms: list[str]
    coef: np.ndarray
    se: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    p_value: np.ndarray
    n: int
    n_dropped: int
    n_events: int | None = None
    loglik: float = float("nan")
    conf_level: float = 0.95
    extra: dict[str, object] = field(default_factory=dict)

    def term(self, name: str) -> dict[str, float]:
        """One term's numbers as a dictionary (``coef, se, lo, hi, p_value``)."""
        i = self.terms.index(name)
        return {
            "coef": float(self.coef[i]),
            "se": float(self.se[i]),
            "lo": float(self.lo[i]),
            "hi": float(self.hi[i]),
            "p_value": float(self.p_value[i]),
        }


@dataclass(frozen=True)
class CoxFit(Regression):
    """A Cox fit; ``coef`` are log hazard ratios. ``extra`` holds the proportional hazards test:
    ``ph_p_value`` (per term), ``ph_global_p_value``, ``ph_global_statistic``."""

    @property
    def hazard_ratio(self) -> np.ndarray:
        return np.exp(self.coef)


def _design(
    X: np.ndarray | pd.DataFrame, terms: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns] if terms is None else list(terms)
        arr = X.to_numpy(dtype=float)
    else:
        arr = np.asarray(X, dtype=float)
        arr = arr[:, None] if arr.ndim == 1 else arr
        names = list(terms) if terms is not None else [f"x{j}" for j in range(arr.shape[1])]
    if arr.ndim != 2 or len(names) != arr.shape[1]:
        raise ValueError(f"{len(names)} term names for a design of shape {arr.shape}")
    return arr, names


def linear_regression(
    y: np.ndarray,
    X: np.ndarray | pd.DataFrame,
    terms: Sequence[str] | None = None,
    conf_level: float = 0.95,
) -> Regression:
    """Ordinary least squares with an intercept (first term ``intercept``), t intervals.

    Fitted by ``statsmodels.api.OLS``. Rows with a missing value in ``y`` or ``X`` are dropped
    and counted.
    """
    X, names = _design(X, terms)
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y) & np.isfinite(X).all(axis=1)
    X1 = np.column_stack([np.ones(int(keep.sum())), X[keep]])
    n, p = X1.shape
    if n <= p + 1:
        raise StudyError(
            f"a regression on {p} terms needs more than {p + 1} complete rows, got {n}"
        )
    if np.linalg.matrix_rank(X1) < p:
        raise StudyError(
            "the regression terms are collinear (a covariate is constant or redundant)"
        )
    fit = sm.OLS(y[keep], X1).fit()
    ci = fit.conf_int(alpha=1.0 - conf_level)
    return Regression(
        terms=["intercept", *names],
        coef=fit.params,
        se=fit.bse,
        lo=ci[:, 0],
        hi=ci[:, 1],
        p_value=fit.pvalues,
        n=n,
        n_dropped=int((~keep).sum()),
        conf_level=conf_level,
    )


def grambsch_therneau(
    event_time: np.ndarray, schoenfeld: np.ndarray, cov: np.ndarray
) -> dict[str, object]:
    """Grambsch & Therneau's (1994) approximate score test of proportional hazards.

    Tests a linear trend of each coefficient in ``g(t)``, the rank of the event time: with
    ``r_k`` the Schoenfeld residuals at the ``d`` events, ``U = sum_k (g_k - mean g) r_k`` and
    ``V`` the covariance of the coefficients, ``T_j = d (V U)_j^2 / (V_jj sum (g_k - mean g)^2)``
    on 1 degree of freedom, and the global ``T = d U' V U / sum (g_k - mean g)^2`` on ``p``.

    Parameters
    ----------
    event_time : numpy.ndarray
        ``(d,)`` times of the events.
    schoenfeld : numpy.ndarray
        ``(d, p)`` Schoenfeld residuals at those events.
    cov : numpy.ndarray
        ``(p, p)`` covariance of the coefficients.

    Returns
    -------
    dict
        ``ph_p_value`` (per term), ``ph_global_statistic``, ``ph_global_p_value`` (NaN when all
        events share one time) and ``ph_transform``.
    """
    d, p = schoenfeld.shape
    g = stats.rankdata(event_time)
    gc = g - g.mean()
    sgg = float(gc @ gc)
    ph_p = np.full(p, np.nan)
    ph_global = ph_stat = float("nan")
    if sgg > 0:
        u = gc @ schoenfeld
        vu = cov @ u
        ph_p = stats.chi2.sf(d * vu**2 / (np.diag(cov) * sgg), 1)
        ph_stat = float(d * u @ cov @ u / sgg)
        ph_global = float(stats.chi2.sf(ph_stat, p))
    return {
        "ph_p_value": ph_p,
        "ph_global_statistic": ph_stat,
        "ph_global_p_value": ph_global,
        "ph_transform": "rank of event time",
    }


def cox_fit(
    time: np.ndarray,
    event: np.ndarray,
    X: np.ndarray | pd.DataFrame,
    terms: Sequence[str] | None = None,
    conf_level: float = 0.95,
) -> CoxFit:
    """Cox proportional hazards fit (Breslow ties) with Wald intervals and a PH check.

    Fitted by statsmodels' ``PHReg`` (Newton-Raphson from 0); the standard errors are the
    square roots of the diagonal of the inverse observed information at the maximum. Rows with
    a missing value are dropped and counted (complete-case analysis). The proportional hazards
    check is :func:`grambsch_therneau` on statsmodels' Schoenfeld residuals.

    Parameters
    ----------
    time : numpy.ndarray
        Follow-up times.
    event : numpy.ndarray
        1 for the event of interest (bone metastasis), 0 otherwise (censored, or death for a
        cause-specific model).
    X : numpy.ndarray or pandas.DataFrame
        Covariates, one column per term.
    terms : sequence of str, optional
        Term names (default: DataFrame columns or x0, x1, ...).
    conf_level : float, default=0.95

    Returns
    -------
    CoxFit
    """
    X, names = _design(X, terms)
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    keep = np.isfinite(time) & np.isfinite(event) & np.isfinite(X).all(axis=1)
    t, ev, Xk = time[keep], event[keep].astype(bool), X[keep]
    n, p = Xk.shape
    d = int(ev.sum())
    if d < max(2 * p, 5):
        raise StudyError(
            f"a Cox model with {p} term(s) needs at least {max(2 * p, 5)} events, got {d}"
        )
    if np.linalg.matrix_rank(Xk - Xk.mean(axis=0)) < p:
        raise StudyError("the Cox model terms are collinear or constant")
    not_converged = StudyError(
        "the Cox fit did not converge (a covariate may separate the events: too few events "
        "in a category)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", HessianInversionWarning)
        try:
            fit = PHReg(t, Xk, status=ev.astype(float), ties="breslow").fit()
        except (ConvergenceWarning, HessianInversionWarning, np.linalg.LinAlgError) as err:
            raise not_converged from err
    beta = np.asarray(fit.params, dtype=float)
    cov = np.asarray(fit.cov_params(), dtype=float)
    if not np.isfinite(beta).all() or np.abs(beta).max() > 20 or not np.isfinite(cov).all():
        raise not_converged
    se = np.sqrt(np.diag(cov))
    z = normal_quantile(conf_level)
    return CoxFit(
        terms=names,
        coef=beta,
        se=se,
        lo=beta - z * se,
        hi=beta + z * se,
        p_value=2.0 * stats.norm.sf(np.abs(beta / se)),
        n=n,
        n_dropped=int((~keep).sum()),
        n_events=d,
        loglik=float(fit.llf),
        conf_level=conf_level,
        extra=grambsch_therneau(t[ev], fit.schoenfeld_residuals[ev], cov),
    )
