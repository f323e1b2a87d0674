"""Aim 2's incidence by group: Aalen-Johansen curves and Gray's test, death competing.

Methods and their sources
-------------------------
- Cumulative incidence by group: Aalen-Johansen
  (:func:`training.evaluation.incidence.aalen_johansen_ci`).
- K-sample comparison with Gray's (1988) score (observed minus expected bone metastases on the
  subdistribution risk sets) and a Monte Carlo permutation p value. No maintained Python library
  provides Gray's test (scikit-survival, statsmodels and lifelines do not; R's
  ``cmprsk::cuminc`` does), so it is written here, and tested against a hand calculation, Gray's
  formula fed with scikit-survival's Kaplan-Meier and Aalen-Johansen estimates, and the log-rank
  test it reduces to without competing events (tests/study/test_study_stats.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.evaluation.incidence import aalen_johansen_ci
from training.models.competing import BONE_METASTASIS, CAUSE_CODES, CENSORED, DEATH, make_target
from training.study.stats.common import StudyError

__all__ = [
    "GrayTest",
    "IncidenceCurves",
    "cause_codes",
    "gray_scores",
    "gray_test",
    "incidence_by_group",
]


@dataclass(frozen=True)
class GrayTest:
    """K-sample comparison of the cumulative incidence of bone metastasis.

    ``score`` is Gray's (1988) score (rho = 0) of each group: observed bone metastases minus
    those expected on the subdistribution risk sets. ``statistic`` is the quadratic form of the
    score in its permutation covariance; ``p_value`` its Monte Carlo permutation p value
    ``(1 + #{T* >= T}) / (1 + n_perm)``.
    """

    groups: list[str]
    n: list[int]
    n_events: list[int]
    n_competing: list[int]
    score: np.ndarray
    statistic: float
    p_value: float
    df: int
    n_perm: int


def cause_codes(cause: np.ndarray) -> np.ndarray:
    """Integer cause codes 0 (censored), 1 (bone metastasis), 2 (death) from codes or names."""
    c = np.asarray(cause)
    if c.dtype.kind in "OUS":
        try:
            return np.array([CAUSE_CODES[str(v)] for v in c], dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"unknown cause {err.args[0]!r}") from err
    c = c.astype(np.int64)
    if not np.isin(c, (CENSORED, BONE_METASTASIS, DEATH)).all():
        raise ValueError("cause codes must be 0 (censored), 1 (bone metastasis), 2 (death)")
    return c


def gray_scores(
    time: np.ndarray, cause: np.ndarray, group: np.ndarray, n_groups: int
) -> np.ndarray:
    """Gray's score of every group for bone metastasis, each column of ``group`` a labelling.

    With ``Y_k`` at risk (time >= t) in group k, ``S_k`` its Kaplan-Meier probability of being
    free of both events and ``F_k`` its Aalen-Johansen incidence of bone metastasis (both just
    before t), the subdistribution risk set is ``R_k = Y_k (1 - F_k) / S_k`` and the score is
    ``sum_t [d1_k(t) - d1(t) R_k(t) / sum_l R_l(t)]`` (Gray 1988, rho = 0). Without competing
    events ``R_k = Y_k`` and this is the log-rank observed minus expected.

    Parameters
    ----------
    time, cause : numpy.ndarray
        Sorted by time (ascending); cause codes 0/1/2.
    group : numpy.ndarray
        ``(n,)`` or ``(n, B)`` integer labels 0..K-1 (several labellings at once, e.g.
        permutations).
    n_groups : int

    Returns
    -------
    numpy.ndarray
        ``(K,)`` or ``(B, K)`` scores.
    """
    g = np.asarray(group)
    single = g.ndim == 1
    g = g[:, None] if single else g
    times, start = np.unique(time, return_index=True)
    n_t = times.size
    tidx = np.searchsorted(times, time)
    b = g.shape[1]
    # Per time and group: leaving (all), bone metastases, deaths. Shape (n_t, B, K).
    onehot = np.zeros((time.size, b, n_groups))
    np.put_along_axis(onehot, g[:, :, None], 1.0, axis=2)
    leaving = np.zeros((n_t, b, n_groups))
    np.add.at(leaving, tidx, onehot)
    d1 = np.zeros_like(leaving)
    np.add.at(d1, tidx[cause == BONE_METASTASIS], onehot[cause == BONE_METASTASIS])
    d2 = np.zeros_like(leaving)
    np.add.at(d2, tidx[cause == DEATH], onehot[cause == DEATH])
    at_risk = onehot.sum(axis=0)[None] - np.cumsum(leaving, axis=0) + leaving
    with np.errstate(divide="ignore", invalid="ignore"):
        haz = np.where(at_risk > 0, (d1 + d2) / at_risk, 0.0)
        surv = np.cumprod(1.0 - haz, axis=0)
        surv_before = np.concatenate([np.ones((1, b, n_groups)), surv[:-1]], axis=0)
        inc = np.cumsum(np.where(at_risk > 0, surv_before * d1 / at_risk, 0.0), axis=0)
        inc_before = np.concatenate([np.zeros((1, b, n_groups)), inc[:-1]], axis=0)
        r = np.where(at_risk > 0, at_risk * (1.0 - inc_before) / surv_before, 0.0)
        r = np.nan_to_num(r, nan=0.0, posinf=0.0)
        d1_all = d1.sum(axis=2, keepdims=True)
        expected = np.where(
            r.sum(axis=2, keepdims=True) > 0, d1_all * r / r.sum(axis=2, keepdims=True), 0.0
        )
    score = (d1 - expected).sum(axis=0)
    return score[0] if single else score


def gray_test(
    time: np.ndarray,
    cause: np.ndarray,
    group: np.ndarray,
    n_perm: int = 2000,
    seed: int = 0,
) -> GrayTest:
    """Compare the cumulative incidence of bone metastasis between groups (death competing).

    Gray's score (:func:`gray_scores`) with a permutation p value. The permutation test is
    exact up to Monte Carlo error under the null that the groups share one distribution of
    (time, cause): the bone-metastasis incidence *and* the competing and censoring processes.
    Gray's asymptotic variance, which allows different death and censoring patterns, is not
    used; the statistic, built on the subdistribution risk sets, responds to differences in the
    incidence of bone metastasis.

    Parameters
    ----------
    time : numpy.ndarray
        Days to bone metastasis, death or censoring.
    cause : numpy.ndarray
        0/1/2 codes or ``censored``/``bone_metastasis``/``death``.
    group : numpy.ndarray
        Group label per patient (any hashable; at least 2 groups).
    n_perm : int, default=2000
    seed : int, default=0

    Returns
    -------
    GrayTest
    """
    time = np.asarray(time, dtype=float)
    codes = cause_codes(cause)
    labels = np.asarray(group, dtype=object)
    if not (time.shape == codes.shape == labels.shape) or time.ndim != 1:
        raise ValueError("time, cause and group must be 1-D of one length")
    keep = np.isfinite(time) & pd.notna(labels)
    time, codes, labels = time[keep], codes[keep], labels[keep]
    names, g = np.unique(labels.astype(str), return_inverse=True)
    k = names.size
    if k < 2:
        raise StudyError("a comparison of incidence needs at least 2 groups")
    if int((codes == BONE_METASTASIS).sum()) < 2:
        raise StudyError("a comparison of incidence needs at least 2 bone metastases")
    if int(n_perm) != n_perm or n_perm < 99:
        raise ValueError(f"n_perm must be an integer >= 99, got {n_perm}")
    order = np.argsort(time, kind="mergesort")
    time, codes, g = time[order], codes[order], g[order]
    observed = gray_scores(time, codes, g, k)
    rng = np.random.default_rng(seed)
    perm_scores = []
    for start in range(0, int(n_perm), 250):
        size = min(250, int(n_perm) - start)
        perms = np.stack([rng.permutation(g) for _ in range(size)], axis=1)
        perm_scores.append(gray_scores(time, codes, perms, k))
    null = np.concatenate(perm_scores, axis=0)[:, : k - 1]  # scores sum to 0: drop the last
    cov = np.cov(null, rowvar=False).reshape(k - 1, k - 1)
    inv = np.linalg.pinv(cov)
    stat = float(observed[: k - 1] @ inv @ observed[: k - 1])
    null_stats = np.einsum("bi,ij,bj->b", null, inv, null)
    p = (1.0 + float(np.sum(null_stats >= stat - 1e-9 * max(1.0, abs(stat))))) / (1.0 + len(null))
    counts = [int((g == j).sum()) for j in range(k)]
    events = [int(((g == j) & (codes == BONE_METASTASIS)).sum()) for j in range(k)]
    competing = [int(((g == j) & (codes == DEATH)).sum()) for j in range(k)]
    return GrayTest(
        groups=[str(x) for x in names],
        n=counts,
        n_events=events,
        n_competing=competing,
        score=observed,
        statistic=stat,
        p_value=p,
        df=k - 1,
        n_perm=int(n_perm),
    )


@dataclass(frozen=True)
class IncidenceCurves:
    """Aalen-Johansen incidence of bone metastasis per group on a common grid of days."""

    groups: list[str]
    times_days: np.ndarray
    cif: dict[str, np.ndarray]
    lo: dict[str, np.ndarray]
    hi: dict[str, np.ndarray]
    n: dict[str, int]
    n_events: dict[str, int]
    n_competing: dict[str, int]


def incidence_by_group(
    time: np.ndarray,
    cause: np.ndarray,
    group: np.ndarray,
    times_days: np.ndarray,
    order: Sequence[str] | None = None,
) -> IncidenceCurves:
    """Cumulative incidence of bone metastasis per group with pointwise 95 % intervals.

    Reuses :func:`training.evaluation.incidence.aalen_johansen_ci` (log-log interval, Aalen
    variance).
    """
    time = np.asarray(time, dtype=float)
    codes = cause_codes(cause)
    labels = np.asarray(group, dtype=object)
    keep = np.isfinite(time) & pd.notna(labels)
    names = list(order) if order is not None else sorted({str(v) for v in labels[keep]})
    event_names = np.array(["censored", "bone_metastasis", "death"])
    grid = np.asarray(times_days, dtype=float)
    out: dict[str, dict] = {"cif": {}, "lo": {}, "hi": {}, "n": {}, "ev": {}, "comp": {}}
    for name in names:
        mine = keep & (labels.astype(str) == name)
        out["n"][name] = int(mine.sum())
        out["ev"][name] = int((codes[mine] == BONE_METASTASIS).sum())
        out["comp"][name] = int((codes[mine] == DEATH).sum())
        if not mine.any():
            nan = np.full(grid.size, np.nan)
            out["cif"][name], out["lo"][name], out["hi"][name] = nan, nan, nan
            continue
        ci = aalen_johansen_ci(make_target(event_names[codes[mine]], time[mine]), grid)
        out["cif"][name] = ci["cif"].to_numpy()
        out["lo"][name] = ci["lo"].to_numpy()
        out["hi"][name] = ci["hi"].to_numpy()
    return IncidenceCurves(
        groups=names,
        times_days=grid,
        cif=out["cif"],
        lo=out["lo"],
        hi=out["hi"],
        n=out["n"],
        n_events=out["ev"],
        n_competing=out["comp"],
    )
