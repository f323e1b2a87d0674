"""Aim 1's comparisons: a marker between two groups, and a marker for a binary status.

Methods and their sources
-------------------------
- Group difference: Mann-Whitney U (scipy), Hodges-Lehmann shift with the distribution-free
  interval from the ordered pairwise differences (Hollander, Wolfe & Chicken 2014, ch. 4.3; the
  normal approximation of the critical value), probability of superiority = AUC with DeLong's
  variance (DeLong, DeLong & Clarke-Pearson 1988).
- ROC (scikit-learn), Youden's J cut-off (Youden 1950) with a percentile bootstrap interval
  (:func:`training.evaluation.bootstrap.bootstrap_ci`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_curve

from training.evaluation.bootstrap import bootstrap_ci
from training.study.stats.common import StudyError, finite_values, normal_quantile

__all__ = [
    "RankComparison",
    "RocAnalysis",
    "Cutoff",
    "rank_comparison",
    "hodges_lehmann",
    "delong_auc",
    "roc_analysis",
    "youden_cutoff",
]


@dataclass(frozen=True)
class RankComparison:
    """Two groups compared by ranks (``a`` minus ``b``), on the scale of the values given.

    Attributes
    ----------
    n_a, n_b : int
        Finite values used in each group.
    median_a, median_b : float
        Group medians.
    u_statistic, p_value : float
        Mann-Whitney U of ``a`` and its two-sided p value (scipy, tie-corrected).
    shift, shift_lo, shift_hi : float
        Hodges-Lehmann shift ``a - b`` (median of pairwise differences) with its interval.
    auc, auc_lo, auc_hi : float
        Probability of superiority P(a > b) + P(a = b) / 2 (= U / (n_a n_b)) with DeLong's
        interval.
    conf_level : float
    """

    n_a: int
    n_b: int
    median_a: float
    median_b: float
    u_statistic: float
    p_value: float
    shift: float
    shift_lo: float
    shift_hi: float
    auc: float
    auc_lo: float
    auc_hi: float
    conf_level: float


def hodges_lehmann(
    a: np.ndarray, b: np.ndarray, conf_level: float = 0.95
) -> tuple[float, float, float]:
    """Hodges-Lehmann shift ``a - b`` with its distribution-free confidence interval.

    With the ``N = n_a n_b`` pairwise differences sorted, ``D_(1) <= ... <= D_(N)``, the interval
    is ``[D_(m_lo), D_(m_hi + 1)]`` with ``m_lo = ceil(N / 2 - z s)``, ``m_hi = floor(N / 2 + z
    s)`` and ``s = sqrt(n_a n_b (n_a + n_b + 1) / 12)``: the shifts ``d`` that a two-sided
    Mann-Whitney test (normal approximation, no continuity correction) of ``a - d`` against
    ``b`` does not reject (Hollander, Wolfe & Chicken 2014, section 4.3).

    Returns
    -------
    shift, lo, hi : float
    """
    a = finite_values(a, "a")
    b = finite_values(b, "b")
    if a.size < 2 or b.size < 2:
        raise StudyError(
            f"a rank comparison needs at least 2 values per group, got {a.size}, {b.size}"
        )
    z = normal_quantile(conf_level)
    diffs = np.sort(np.subtract.outer(a, b).ravel())
    n = diffs.size
    s = math.sqrt(a.size * b.size * (a.size + b.size + 1) / 12.0)
    m_lo = max(math.ceil(n / 2.0 - z * s), 1)
    m_hi = min(math.floor(n / 2.0 + z * s), n - 1)
    return float(np.median(diffs)), float(diffs[m_lo - 1]), float(diffs[m_hi])


def delong_auc(
    scores_pos: np.ndarray, scores_neg: np.ndarray, conf_level: float = 0.95
) -> tuple[float, float, float, float]:
    """AUC (probability of superiority) with DeLong's standard error and a Wald interval.

    ``psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise``; ``V10_i`` is the mean of
    ``psi(x_i, .)`` over negatives, ``V01_j`` the mean of ``psi(., y_j)`` over positives;
    ``Var(AUC) = var(V10) / n_pos + var(V01) / n_neg`` (sample variances; DeLong et al. 1988).
    The interval is ``AUC +- z se`` clipped to [0, 1], as R's pROC reports it (tested against
    pROC's published variances and interval on its aSAH data).

    Returns
    -------
    auc, se, lo, hi : float
    """
    x = finite_values(scores_pos, "scores_pos")
    y = finite_values(scores_neg, "scores_neg")
    if x.size < 2 or y.size < 2:
        raise StudyError(f"an AUC interval needs at least 2 per class, got {x.size}, {y.size}")
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10 = psi.mean(axis=1)
    v01 = psi.mean(axis=0)
    auc = float(psi.mean())
    se = math.sqrt(v10.var(ddof=1) / x.size + v01.var(ddof=1) / y.size)
    z = normal_quantile(conf_level)
    return auc, se, max(auc - z * se, 0.0), min(auc + z * se, 1.0)


def rank_comparison(a: np.ndarray, b: np.ndarray, conf_level: float = 0.95) -> RankComparison:
    """Mann-Whitney U test with Hodges-Lehmann shift and probability of superiority.

    Parameters
    ----------
    a, b : numpy.ndarray
        Values of the two groups (NaN dropped). Pass log2 values to get the shift in doublings.
    conf_level : float, default=0.95

    Returns
    -------
    RankComparison
    """
    a = finite_values(a, "a")
    b = finite_values(b, "b")
    shift, lo, hi = hodges_lehmann(a, b, conf_level)
    test = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    auc, _, auc_lo, auc_hi = delong_auc(a, b, conf_level)
    return RankComparison(
        n_a=int(a.size),
        n_b=int(b.size),
        median_a=float(np.median(a)),
        median_b=float(np.median(b)),
        u_statistic=float(test.statistic),
        p_value=float(test.pvalue),
        shift=shift,
        shift_lo=lo,
        shift_hi=hi,
        auc=auc,
        auc_lo=auc_lo,
        auc_hi=auc_hi,
        conf_level=conf_level,
    )


@dataclass(frozen=True)
class RocAnalysis:
    """ROC curve of a marker for a binary status (higher marker = positive)."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    auc_lo: float
    auc_hi: float
    n_pos: int
    n_neg: int


def _xy(status: np.ndarray, marker: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(status, dtype=float)
    m = np.asarray(marker, dtype=float)
    if s.shape != m.shape or s.ndim != 1:
        raise ValueError(f"status and marker must be 1-D of one length, got {s.shape}, {m.shape}")
    keep = np.isfinite(s) & np.isfinite(m)
    s, m = s[keep], m[keep]
    if not np.isin(s, (0.0, 1.0)).all():
        raise ValueError("status must be 0/1")
    return s.astype(bool), m


def roc_analysis(status: np.ndarray, marker: np.ndarray, conf_level: float = 0.95) -> RocAnalysis:
    """ROC curve (scikit-learn) and AUC with DeLong's interval; NaN pairs dropped."""
    s, m = _xy(status, marker)
    if s.sum() < 2 or (~s).sum() < 2:
        raise StudyError(
            f"an ROC curve needs at least 2 patients per status, got {int(s.sum())} with and "
            f"{int((~s).sum())} without"
        )
    fpr, tpr, thr = roc_curve(s, m, drop_intermediate=False)
    auc, _, lo, hi = delong_auc(m[s], m[~s], conf_level)
    return RocAnalysis(fpr, tpr, thr, auc, lo, hi, int(s.sum()), int((~s).sum()))


@dataclass(frozen=True)
class Cutoff:
    """Youden cut-off (positive when marker >= cutoff) with a percentile bootstrap interval."""

    cutoff: float
    lo: float
    hi: float
    sensitivity: float
    specificity: float
    youden_j: float
    n_boot: int
    n_boot_used: int
    n: int


def _youden(status: np.ndarray, marker: np.ndarray) -> tuple[float, float, float]:
    s = status.astype(bool)
    if s.all() or not s.any():
        raise ValueError("both classes are needed for a cut-off")
    fpr, tpr, thr = roc_curve(s, marker, drop_intermediate=False)
    j = tpr[1:] - fpr[1:]  # thresholds[0] is +inf: everyone negative
    best = int(np.argmax(j)) + 1
    return float(thr[best]), float(tpr[best]), float(1.0 - fpr[best])


def youden_cutoff(
    status: np.ndarray,
    marker: np.ndarray,
    n_boot: int = 500,
    seed: int = 0,
    conf_level: float = 0.95,
) -> Cutoff:
    """The marker value maximising sensitivity + specificity - 1, with a bootstrap interval.

    The cut-off is an observed marker value; ties in J go to the highest cut-off. The interval
    resamples patients (:func:`training.evaluation.bootstrap.bootstrap_ci`) and shows how unstable a
    data-driven cut-off is; it does not remove its optimism.
    """
    s, m = _xy(status, marker)
    if s.sum() < 2 or (~s).sum() < 2:
        raise StudyError("a cut-off needs at least 2 patients per status")
    cut, sens, spec = _youden(s, m)
    boot = bootstrap_ci(
        lambda ss, mm: _youden(ss, mm)[0],
        s,
        m,
        n_boot=n_boot,
        seed=seed,
        alpha=1.0 - conf_level,
    )
    return Cutoff(
        cut, boot.lo, boot.hi, sens, spec, sens + spec - 1.0, n_boot, boot.n_boot_used, int(s.size)
    )
