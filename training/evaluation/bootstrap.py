"""Percentile bootstrap intervals of a statistic of patients, and of a paired difference.

The resampling is :func:`scipy.stats.bootstrap` over patient indices (one draw of indices is
applied to every array, so a patient's target, scores and predictions move as one: the paired
resampling scipy's ``paired=True`` does). The interval is the percentile interval (Efron &
Tibshirani 1993, ch. 13) over the resamples on which the statistic is defined: a resample where
it raises ValueError or is not finite (no comparable pairs, no events) is left out and counted
out of ``n_boot_used``, where scipy would return NaN. With every resample defined the bounds
are scipy's ``method="percentile"`` interval.

On large samples the cost of a resample grows with n while the interval's information does not:
with ``max_resample`` = m < n each resample draws m patients (with replacement) and the
deviations from the full-sample estimate are rescaled by sqrt(m / n), the m-out-of-n bootstrap
(Bickel, Goetze & van Zwet 1997; Politis, Romano & Wolf 1999, ch. 2):

    lo = estimate + sqrt(m/n) * (q_{alpha/2} - estimate)
    hi = estimate + sqrt(m/n) * (q_{1-alpha/2} - estimate)

with q the quantiles of the m-patient replicates. It is valid for statistics that are
asymptotically normal at rate sqrt(n) (concordance indices, AUC, Brier scores, calibration
slope and intercept: all of this project's) and costs m/n of a resample; with m = n it is the
percentile interval above.

References
----------
Efron B, Tibshirani RJ (1993). An Introduction to the Bootstrap. Chapman & Hall.
Bickel PJ, Goetze F, van Zwet WR (1997). Resampling fewer than n observations: gains, losses,
and remedies for losses. Statistica Sinica 7:1-31.
Politis DN, Romano JP, Wolf M (1999). Subsampling. Springer.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["Interval", "bootstrap_ci", "joint_bootstrap", "paired_bootstrap_difference"]


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
    resample_size : int or None
        Patients per resample when fewer than the sample's (the m-out-of-n bootstrap); None
        when each resample has as many patients as the sample.
    """

    estimate: float
    lo: float
    hi: float
    n_boot_used: int
    resample_size: int | None = None


def _defined(fn: Callable[..., float], args: Sequence[Any]) -> float:
    """fn(*args) as a float, NaN where the statistic is undefined (ValueError or NaN)."""
    try:
        value = float(fn(*args))
    except ValueError:
        return float("nan")
    return value if np.isfinite(value) else float("nan")


def _check_rows(arrays: Sequence[Any]) -> tuple[list[np.ndarray], int]:
    if not arrays:
        raise ValueError("at least one array is needed")
    arrs = [np.asarray(a) for a in arrays]
    lengths = {a.shape[0] if a.ndim else -1 for a in arrs}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(f"arrays must have the same number of rows, got {sorted(lengths)}")
    return arrs, lengths.pop()


def _resampled(
    statistic: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int, alpha: float
) -> tuple[float, float, int]:
    """Percentile bounds and resamples used of ``statistic(indices)`` over scipy's resamples.

    ``rng=seed`` gives ``numpy.random.default_rng(seed).integers(0, n, (n_boot, n))``: the
    resamples the hand-written bootstrap drew before scipy did it (same seed, same intervals).
    """
    result = _scipy_bootstrap(statistic, n, n_boot, seed, alpha)
    replicates = np.asarray(result.bootstrap_distribution, dtype=float)
    ci = result.confidence_interval
    return _percentile_bounds(replicates, ci.low, ci.high, alpha)


def _scipy_bootstrap(statistic, n: int, n_boot: int, seed: int, alpha: float):
    """scipy's percentile bootstrap of ``statistic(indices)`` (one or several values)."""
    _check_settings(n_boot, alpha)
    with warnings.catch_warnings():
        # scipy warns that its interval is NaN when a replicate is; the defined ones are used.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        return stats.bootstrap(
            (np.arange(n),),
            statistic,
            n_resamples=int(n_boot),
            confidence_level=1.0 - alpha,
            method="percentile",
            vectorized=False,
            rng=seed,
        )


def _percentile_bounds(
    replicates: np.ndarray, ci_low: float, ci_high: float, alpha: float
) -> tuple[float, float, int]:
    """scipy's bounds when every replicate is defined, else the quantiles of the defined ones."""
    used = replicates[np.isfinite(replicates)]
    if used.size == 0:
        return float("nan"), float("nan"), 0
    if used.size == replicates.size:
        return float(ci_low), float(ci_high), int(used.size)
    lo, hi = np.quantile(used, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi), int(used.size)


def _check_settings(n_boot: int, alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")


def _m_out_of_n(
    statistic: Callable[[np.ndarray], float],
    estimate: float,
    n: int,
    m: int,
    n_boot: int,
    seed: int,
    alpha: float,
) -> tuple[float, float, int]:
    """Rescaled m-out-of-n percentile bounds (module docstring) and resamples used."""
    _check_settings(n_boot, alpha)
    rng = np.random.default_rng(seed)
    replicates = np.array(
        [statistic(rng.integers(0, n, m)) for _ in range(int(n_boot))], dtype=float
    )
    return _rescaled_bounds(replicates, estimate, n, m, alpha)


def _rescaled_bounds(
    replicates: np.ndarray, estimate: float, n: int, m: int, alpha: float
) -> tuple[float, float, int]:
    """The m-out-of-n bounds (module docstring) from the replicates of m-patient resamples."""
    used = replicates[np.isfinite(replicates)]
    if used.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan"), int(used.size)
    q_lo, q_hi = np.quantile(used, [alpha / 2.0, 1.0 - alpha / 2.0])
    scale = np.sqrt(m / n)
    return (
        float(estimate + scale * (q_lo - estimate)),
        float(estimate + scale * (q_hi - estimate)),
        int(used.size),
    )


def _interval(
    statistic: Callable[[np.ndarray], float],
    estimate: float,
    n: int,
    n_boot: int,
    seed: int,
    alpha: float,
    max_resample: int | None,
) -> Interval:
    """The percentile interval, or the m-out-of-n one when ``max_resample`` < n."""
    if max_resample is not None and max_resample < 2:
        raise ValueError(f"max_resample must be at least 2, got {max_resample}")
    if max_resample is None or n <= max_resample:
        return Interval(estimate, *_resampled(statistic, n, n_boot, seed, alpha))
    bounds = _m_out_of_n(statistic, estimate, n, int(max_resample), n_boot, seed, alpha)
    return Interval(estimate, *bounds, resample_size=int(max_resample))


def bootstrap_ci(
    fn: Callable[..., float],
    *arrays: Any,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    max_resample: int | None = None,
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
        Arrays with one row per patient (structured targets included), at least 2 rows.
    n_boot : int, default=200
        Number of resamples.
    seed : int, default=0
        Seed of the resampling (``rng`` of :func:`scipy.stats.bootstrap`).
    alpha : float, default=0.05
        1 - confidence level.
    max_resample : int, optional
        At most this many patients per resample: on larger samples the m-out-of-n bootstrap
        with m = ``max_resample`` (module docstring). None: every resample has n patients.

    Returns
    -------
    Interval
        The estimate on the original data, the bounds and the number of resamples used.
    """
    arrs, n = _check_rows(arrays)
    estimate = float(fn(*arrs))

    def statistic(idx: np.ndarray) -> float:
        return _defined(fn, [a[idx] for a in arrs])

    return _interval(statistic, estimate, n, n_boot, seed, alpha, max_resample)


def paired_bootstrap_difference(
    fn: Callable[[np.ndarray, np.ndarray], float],
    y: np.ndarray,
    score_a: np.ndarray,
    score_b: np.ndarray,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    max_resample: int | None = None,
) -> Interval:
    """Paired percentile bootstrap of ``fn(y, score_a) - fn(y, score_b)``.

    Both statistics are computed on the same resampled patients, so the interval reflects the
    correlation between the two scores (the incremental value of the marker: a model with it
    against one without it, on the same test patients). A resample is skipped when either
    statistic is undefined.

    Parameters
    ----------
    fn : callable
        ``fn(y, score) -> float``, e.g.
        :func:`training.evaluation.concordance.fast_harrell_c`, or
        ``lambda y, p: training.evaluation.accuracy.ipcw_auc(y, p, 24)``.
    y : numpy.ndarray
        Structured target.
    score_a, score_b : numpy.ndarray
        Scores or predictions of the two models, one row per patient.
    n_boot, seed, alpha, max_resample
        As in :func:`bootstrap_ci`.

    Returns
    -------
    Interval
        Difference a - b on the original data and its interval.
    """
    (y, a, b), n = _check_rows([y, score_a, score_b])
    estimate = float(fn(y, a)) - float(fn(y, b))

    def statistic(idx: np.ndarray) -> float:
        return _defined(fn, [y[idx], a[idx]]) - _defined(fn, [y[idx], b[idx]])

    return _interval(statistic, estimate, n, n_boot, seed, alpha, max_resample)


def joint_bootstrap(
    statistic: Callable[[np.ndarray], Sequence[float]],
    estimates: Sequence[float],
    n: int,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    max_resample: int | None = None,
) -> list[Interval]:
    """Intervals of several statistics of the same patients from one set of resamples.

    ``statistic(indices)`` returns one value per statistic on the patients ``indices`` (NaN
    where a statistic is undefined), so that what the statistics share (a resample, counts of
    pairs, censoring weights) is drawn and computed once per resample. Statistic ``j`` gets
    the interval :func:`bootstrap_ci` (or :func:`paired_bootstrap_difference`) gives it alone
    with the same ``n``, ``n_boot``, ``seed``, ``alpha`` and ``max_resample``: the resamples
    depend on those only, and the bounds are taken statistic by statistic.

    Parameters
    ----------
    statistic : callable
        ``statistic(indices) -> values``, one value per estimate.
    estimates : sequence of float
        The statistics on all ``n`` patients.
    n : int
        Number of patients.
    n_boot, seed, alpha, max_resample
        As in :func:`bootstrap_ci`.

    Returns
    -------
    list of Interval
        One per estimate, in order.
    """
    estimates = [float(e) for e in estimates]
    k = len(estimates)
    if max_resample is not None and max_resample < 2:
        raise ValueError(f"max_resample must be at least 2, got {max_resample}")

    def values(idx: np.ndarray) -> np.ndarray:
        found = np.asarray(statistic(idx), dtype=float).reshape(k)
        return np.where(np.isfinite(found), found, np.nan)

    if max_resample is None or n <= max_resample:
        result = _scipy_bootstrap(values, n, n_boot, seed, alpha)
        replicates = np.asarray(result.bootstrap_distribution, dtype=float).reshape(k, -1)
        low = np.broadcast_to(result.confidence_interval.low, (k,))
        high = np.broadcast_to(result.confidence_interval.high, (k,))
        return [
            Interval(estimates[j], *_percentile_bounds(replicates[j], low[j], high[j], alpha))
            for j in range(k)
        ]
    _check_settings(n_boot, alpha)
    m = int(max_resample)
    rng = np.random.default_rng(seed)
    replicates = np.array([values(rng.integers(0, n, m)) for _ in range(int(n_boot))])
    return [
        Interval(
            estimates[j],
            *_rescaled_bounds(replicates[:, j], estimates[j], n, m, alpha),
            resample_size=m,
        )
        for j in range(k)
    ]
