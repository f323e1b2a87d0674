"""Observed cumulative incidence of bone metastasis with death competing (Aalen-Johansen).

The *observed incidence* is always the Aalen-Johansen estimate: its curves computed by
scikit-survival's
``sksurv.nonparametric.cumulative_incidence_competing_risks`` (Aalen-Johansen point estimate,
Aalen's variance in the form of Pintilie 2006 Eq. 4.5, log-log interval). 1 - Kaplan-Meier with
death censored would overstate it. scikit-survival needs every cause it counts to occur; in a
sample where only one of the two causes occurs (small subgroups, bootstrap resamples, the
treated patients of a decision curve) there is no competing event, the Aalen-Johansen estimate
of that cause is 1 - Kaplan-Meier (``sksurv.nonparametric.kaplan_meier_estimator``, log-log
interval of the survival with Greenwood's variance) and the other cause's incidence is 0.
:func:`observed_incidence` computes the same point estimate at one time with array operations.

References
----------
Aalen O (1978). Nonparametric estimation of partial transition probabilities in multiple
decrement models. Ann Stat 6:534-545.
Aalen O, Johansen S (1978). An empirical transition matrix for non-homogeneous Markov chains
based on censored observations. Scand J Stat 5:141-150.
Pintilie M (2006). Competing Risks: A Practical Perspective. Wiley.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from sksurv.nonparametric import cumulative_incidence_competing_risks, kaplan_meier_estimator

from training.evaluation.inputs import check_months, check_y
from training.models.competing import BONE_METASTASIS, DAYS_PER_MONTH, DEATH

__all__ = [
    "IncidenceCurves",
    "incidence_curves",
    "aalen_johansen",
    "aalen_johansen_ci",
    "observed_incidence",
]


class IncidenceCurves(NamedTuple):
    """Aalen-Johansen step functions on the distinct observed times (right-continuous).

    ``lo`` and ``hi`` bound the incidence of bone metastasis (``None`` unless asked for).
    """

    times: np.ndarray
    cif_bm: np.ndarray
    cif_death: np.ndarray
    lo: np.ndarray | None
    hi: np.ndarray | None

    def at(self, values: np.ndarray, times_days: np.ndarray) -> np.ndarray:
        """``values`` read as a right-continuous step function at ``times_days``, 0 before."""
        idx = np.searchsorted(self.times, times_days, side="right") - 1
        return np.where(idx >= 0, values[np.clip(idx, 0, None)], 0.0)


def incidence_curves(y: np.ndarray, conf_level: float | None = None) -> IncidenceCurves:
    """Aalen-Johansen incidences of both causes, with a log-log interval when ``conf_level``.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target.
    conf_level : float, optional
        Two-sided level of the pointwise interval on the incidence of bone metastasis.

    Returns
    -------
    IncidenceCurves
    """
    y = check_y(y)
    time = y["time"].astype(float)
    cause = y["cause"].astype(np.int64)  # int8 per-cause counts would overflow in sksurv
    conf = {} if conf_level is None else {"conf_type": "log-log", "conf_level": conf_level}
    has_bm, has_death = bool(np.any(cause == BONE_METASTASIS)), bool(np.any(cause == DEATH))
    if has_bm and has_death:
        # Aalen's variance can come out a rounding error below 0 (sksurv then takes the square
        # root of a negative number where it does not use it): silence that warning only.
        with np.errstate(invalid="ignore"):
            times, cif, *ci = cumulative_incidence_competing_risks(cause, time, **conf)
        bounds = (ci[0][BONE_METASTASIS, 0], ci[0][BONE_METASTASIS, 1]) if ci else (None, None)
        return IncidenceCurves(times, cif[BONE_METASTASIS], cif[DEATH], *bounds)
    times = np.unique(time)
    zero = np.zeros(times.size)
    if not (has_bm or has_death):
        return IncidenceCurves(times, zero, zero, *((zero, zero) if conf else (None, None)))
    # One cause only: no competing event, its incidence is 1 - Kaplan-Meier.
    with np.errstate(invalid="ignore", divide="ignore"):  # log-log at S = 0 or 1
        _, surv, *ci = kaplan_meier_estimator(cause > 0, time, **conf)
    if not has_bm:
        return IncidenceCurves(times, zero, 1.0 - surv, *((zero, zero) if conf else (None, None)))
    bounds = (1.0 - ci[0][1], 1.0 - ci[0][0]) if ci else (None, None)
    return IncidenceCurves(times, 1.0 - surv, zero, *bounds)


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
    curves = incidence_curves(y)
    at = np.atleast_1d(np.asarray(times_days, dtype=float))
    return curves.at(curves.cif_bm, at), curves.at(curves.cif_death, at)


def aalen_johansen_ci(
    y: np.ndarray,
    times_days: float | Sequence[float] | np.ndarray,
    conf_level: float = 0.95,
) -> pd.DataFrame:
    """Aalen-Johansen incidence of bone metastasis with a pointwise log-log confidence interval.

    The variance is Aalen's (1978) estimator in the form of Pintilie (2006, Eq. 4.5) and the
    interval the log-log transform ``F ** exp(+-z se / (F log F))``, which stays inside [0, 1]:
    scikit-survival's ``cumulative_incidence_competing_risks(conf_type="log-log",
    var_type="Aalen")``. Where ``F = 0`` the interval is [0, 0]; in a sample without deaths,
    the Kaplan-Meier log-log interval (module docstring).

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
        Columns ``time_days, cif, lo, hi``, one row per evaluation time.
    """
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must be in (0, 1), got {conf_level}")
    curves = incidence_curves(y, conf_level)
    at = np.atleast_1d(np.asarray(times_days, dtype=float))
    cif = curves.at(curves.cif_bm, at)
    # sksurv's interval is undefined (NaN) where F = 0: [0, 0] there.
    lo = np.where(cif > 0, curves.at(curves.lo, at), 0.0)
    hi = np.where(cif > 0, curves.at(curves.hi, at), 0.0)
    return pd.DataFrame({"time_days": at, "cif": cif, "lo": lo, "hi": hi})


def observed_incidence(y: np.ndarray, months: float) -> float:
    """Observed incidence of bone metastasis by ``months``: the Aalen-Johansen estimate.

    The one definition behind every ``observed_incidence_<h>m`` (split metrics, subgroups) and
    behind calibration-in-the-large (mean predicted minus this).

    The estimate of :func:`aalen_johansen` (the formula in its docstring) computed directly at
    one time, with array operations: the bootstrap intervals of calibration-in-the-large call it
    once per resample, where scikit-survival's per-patient loop dominated the evaluation's time
    (equal to :func:`aalen_johansen` to rounding, ``tests/evaluation/test_incidence_fast.py``).
    """
    y = check_y(y)
    horizon = check_months(months) * DAYS_PER_MONTH
    times, inverse, at_time = np.unique(
        y["time"].astype(float), return_inverse=True, return_counts=True
    )
    at_risk = np.cumsum(at_time[::-1])[::-1]  # patients with time >= t_j
    cause = y["cause"]
    bone = np.bincount(inverse, weights=cause == BONE_METASTASIS, minlength=times.size)
    death = np.bincount(inverse, weights=cause == DEATH, minlength=times.size)
    upto = int(np.searchsorted(times, horizon, side="right"))
    if upto == 0:
        return 0.0
    free = np.cumprod(1.0 - (bone[:upto] + death[:upto]) / at_risk[:upto])
    before = np.concatenate(([1.0], free[:-1]))  # S(t_{j-1})
    return float(np.sum(before * bone[:upto] / at_risk[:upto]))
