"""Random-effects meta-analysis of per-site performance: REML with Hartung-Knapp, or DL.

Each site contributes an estimate ``y_i`` on a scale where it is roughly normal (the C-index on
the logit scale, the O/E ratio on the log scale; Debray et al. 2017, 2019) with its within-site
variance ``v_i``. The random-effects model ``y_i ~ N(mu, v_i + tau^2)`` is fitted as R's
``metafor::rma(yi, vi, method = "REML", test = "knha")`` fits it (Viechtbauer 2010), checked
against metafor to 1e-4 in ``tests/validation``:

* ``tau^2`` by restricted maximum likelihood (Fisher scoring from the DerSimonian-Laird value,
  truncated at 0, to a change below 1e-10) or by DerSimonian-Laird (``method="DL"``);
* ``mu`` the inverse-variance weighted mean with weights ``1 / (v_i + tau^2)``;
* its interval with the Hartung-Knapp(-Sidik-Jonkman) adjustment: variance
  ``sum w_i (y_i - mu)^2 / ((k - 1) sum w_i)`` and Student's t with ``k - 1`` degrees of freedom
  (without it: ``1 / sum w_i`` and the normal);
* the prediction interval for a new site ``mu +- t_{k-1} sqrt(tau^2 + se(mu)^2)`` (normal
  quantile without Hartung-Knapp), metafor's ``predict.rma``;
* ``I^2 = 100 tau^2 / (tau^2 + s^2)`` with ``s^2`` the typical within-site variance
  ``(k - 1) sum w / ((sum w)^2 - sum w^2)``, ``w = 1 / v_i`` (Higgins & Thompson 2002), and
  Cochran's ``Q`` with its p-value.

References
----------
DerSimonian R, Laird N (1986). Meta-analysis in clinical trials. Control Clin Trials 7:177-188.
Hartung J, Knapp G (2001). A refined method for the meta-analysis of controlled clinical trials
with binary outcome. Stat Med 20:3875-3889.
Higgins JPT, Thompson SG, Spiegelhalter DJ (2009). A re-evaluation of random-effects
meta-analysis. J R Stat Soc A 172:137-159.
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package. J Stat Softw 36(3).
Debray TPA, Damen JAAG, Snell KIE, et al. (2017). A guide to systematic review and
meta-analysis of prediction model performance. BMJ 356:i6460.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

__all__ = ["METHODS", "Pooled", "random_effects"]

METHODS = ("REML", "DL")
_TOL = 1e-10
_MAX_ITER = 1000


@dataclass(frozen=True)
class Pooled:
    """A random-effects summary on the analysis scale (logit C, log O/E).

    ``estimate``, ``ci_low``/``ci_high`` (the mean's interval), ``pi_low``/``pi_high`` (the
    prediction interval for a new site), ``se`` (of the mean), ``tau2``, ``i2_percent``, ``q``
    and ``q_p`` (Cochran's test of heterogeneity), ``k`` (sites pooled), ``method``,
    ``hartung_knapp``, ``level``. With one site: its estimate, no interval beyond its own and
    NaN heterogeneity (``note`` says why).
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    i2_percent: float
    q: float
    q_p: float
    k: int
    method: str
    hartung_knapp: bool
    level: float
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}


def _dl_tau2(y: np.ndarray, v: np.ndarray) -> float:
    w = 1.0 / v
    mu = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - mu) ** 2))
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    return max(0.0, (q - (len(y) - 1)) / c) if c > 0 else 0.0


def _reml_tau2(y: np.ndarray, v: np.ndarray) -> float:
    """REML tau^2 by Fisher scoring (metafor's algorithm), from the DL value."""
    tau2 = _dl_tau2(y, v)
    for _ in range(_MAX_ITER):
        w = 1.0 / (v + tau2)
        sw = np.sum(w)
        # P = W - w w' / sum(w); score and information of the restricted likelihood.
        p_y = w * y - w * np.sum(w * y) / sw
        tr_p = sw - np.sum(w**2) / sw
        tr_pp = np.sum(w**2) - 2 * np.sum(w**3) / sw + (np.sum(w**2) / sw) ** 2
        step = (np.sum(p_y**2) - tr_p) / tr_pp
        new = max(0.0, tau2 + step)
        if abs(new - tau2) < _TOL:
            return float(new)
        tau2 = new
    raise ValueError("REML estimate of tau^2 did not converge")


def random_effects(
    y: Sequence[float] | np.ndarray,
    v: Sequence[float] | np.ndarray,
    *,
    method: str = "REML",
    hartung_knapp: bool = True,
    level: float = 0.95,
) -> Pooled:
    """Pool site estimates ``y`` with within-site variances ``v`` (module docstring).

    Parameters
    ----------
    y, v : array-like
        Estimates and their variances (finite, ``v > 0``), one per site.
    method : {"REML", "DL"}
        Estimator of tau^2.
    hartung_knapp : bool, default True
        Hartung-Knapp adjustment of the mean's interval (and t quantiles).
    level : float, default 0.95
        Level of both intervals.

    Raises
    ------
    ValueError
        No site, lengths that differ, a non-finite estimate or a variance that is not positive,
        an unknown method or a level outside (0, 1).
    """
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if y.shape != v.shape or y.ndim != 1:
        raise ValueError("y and v must be 1-d arrays of the same length")
    if y.size == 0:
        raise ValueError("no site to pool")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("every estimate must be finite and every variance finite and > 0")
    k = int(y.size)
    z = float(stats.norm.ppf(0.5 + level / 2))
    if k == 1:
        se = math.sqrt(float(v[0]))
        return Pooled(
            float(y[0]), se, y[0] - z * se, y[0] + z * se, math.nan, math.nan, math.nan,
            math.nan, math.nan, math.nan, 1, method, hartung_knapp, level,
            note="one site: nothing to pool, no heterogeneity and no prediction interval",
        )
    tau2 = _reml_tau2(y, v) if method == "REML" else _dl_tau2(y, v)
    w = 1.0 / (v + tau2)
    mu = float(np.sum(w * y) / np.sum(w))
    if hartung_knapp:
        se = math.sqrt(float(np.sum(w * (y - mu) ** 2) / ((k - 1) * np.sum(w))))
        crit = float(stats.t.ppf(0.5 + level / 2, k - 1))
    else:
        se = math.sqrt(1.0 / float(np.sum(w)))
        crit = z
    w0 = 1.0 / v
    mu0 = float(np.sum(w0 * y) / np.sum(w0))
    q = float(np.sum(w0 * (y - mu0) ** 2))
    s2 = (k - 1) * np.sum(w0) / (np.sum(w0) ** 2 - np.sum(w0**2))
    pi_half = crit * math.sqrt(tau2 + se**2)
    return Pooled(
        estimate=mu,
        se=se,
        ci_low=mu - crit * se,
        ci_high=mu + crit * se,
        pi_low=mu - pi_half,
        pi_high=mu + pi_half,
        tau2=float(tau2),
        i2_percent=float(100.0 * tau2 / (tau2 + s2)),
        q=q,
        q_p=float(stats.chi2.sf(q, k - 1)),
        k=k,
        method=method,
        hartung_knapp=hartung_knapp,
        level=level,
    )
