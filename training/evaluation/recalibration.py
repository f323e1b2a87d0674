"""Whether a family's version is recalibrated: cross-fitted on out-of-fold predictions,
adopted only when the data show a systematic error (``docs/modeling.md``, "Recalibration").

The recalibration (:class:`training.artifact.recalibration.Recalibration`) of the patients of
outer fold ``k`` is fitted on the out-of-fold predictions and outcomes of the *other* folds
(censoring weights estimated on those patients too): it never sees the patients it is scored
on. The recalibrated variant is then compared with the unrecalibrated one on the same patients
by the selection's rule: their per-patient Brier losses (12, 24, 36 months) are paired, and the
recalibration is adopted only when it lowers the mean loss by more than one paired standard
error (the unrecalibrated model is the simpler). The stored recalibration is fitted on the
out-of-fold predictions of every patient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.artifact.recalibration import Recalibration, fit_recalibration
from training.evaluation.ipcw import ipcw_status

__all__ = ["RecalibrationChoice", "choose_recalibration", "cross_fitted", "paired_se"]


def paired_se(difference: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Standard error of the mean of per-row ``difference`` (a paired comparison).

    Rows of one patient (``groups``: a landmark dataset has one row per landmark) are summed
    into one independent term (the cluster-robust standard error of a mean).
    """
    d = np.asarray(difference, dtype=float)
    n = d.size
    if n < 2:
        return float("nan")
    if groups is not None and len(np.unique(groups)) < n:
        centred = pd.Series(d - d.mean()).groupby(np.asarray(groups)).sum().to_numpy()
        g = centred.size
        return float(np.sqrt(g / (g - 1) * np.sum(centred**2)) / n) if g > 1 else float("nan")
    return float(d.std(ddof=1) / np.sqrt(n))


def _status(y: np.ndarray, horizons: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    pairs = [ipcw_status(y, h) for h in horizons]
    return (
        np.column_stack([p[0] for p in pairs]).astype(float),
        np.column_stack([p[1] for p in pairs]),
    )


def fit_on(y: np.ndarray, cif: np.ndarray, horizons: Sequence[float]) -> Recalibration | None:
    """The recalibration of ``(n, horizons)`` incidences ``cif`` on outcomes ``y`` (censoring
    weights estimated on ``y``)."""
    label, weight = _status(y, horizons)
    return fit_recalibration(cif, label, weight)


def brier_terms(y: np.ndarray, cif: np.ndarray, horizons: Sequence[float]) -> np.ndarray:
    """Each row's IPCW Brier loss averaged over ``horizons`` (censoring estimated on ``y``)."""
    label, weight = _status(y, horizons)
    return np.mean(weight * (label - cif) ** 2, axis=1)


def cross_fitted(
    y: np.ndarray, cif: np.ndarray, fold: np.ndarray, horizons: Sequence[float]
) -> tuple[np.ndarray, list[Recalibration | None]]:
    """Out-of-fold incidences recalibrated fold by fold, each fold's recalibration fitted on the
    other folds only (rows of fold ``-1`` are never used nor recalibrated).

    Returns the recalibrated ``(n, horizons)`` incidences (a fold whose fit is not identified
    keeps its predictions) and the recalibration of each fold (``None`` where not identified).
    """
    cif = np.asarray(cif, dtype=float)
    out = cif.copy()
    fits: list[Recalibration | None] = []
    for k in np.unique(fold[fold >= 0]):
        scored, others = fold == k, (fold >= 0) & (fold != k)
        fit = fit_on(y[others], cif[others], horizons)
        fits.append(fit)
        if fit is not None:
            out[scored] = fit.apply(cif[scored])
    return out, fits


@dataclass(frozen=True)
class RecalibrationChoice:
    """The decision for one family.

    ``applied``: whether the version stores ``fit``; ``gain``: the mean per-patient Brier loss
    of the unrecalibrated minus the cross-fitted recalibrated predictions (positive: the
    recalibration helps), ``se`` its paired standard error; ``cif``: the out-of-fold
    incidences the evaluation reads (cross-fitted recalibrated when applied, of the first
    repeat); ``losses``: the per-row losses of the selection (averaged over the repeats);
    ``served``: ``(repeats, n, horizons)`` the out-of-fold incidences of every repeat as the
    version serves them (cross-fitted recalibrated when applied): what the run's stack
    combines (:mod:`training.fitting.stack`).
    """

    applied: bool
    fit: Recalibration | None
    gain: float
    se: float
    cif: np.ndarray
    losses: np.ndarray
    served: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        """Logged with the family's metrics (``recalibration_*``)."""
        out = {
            "recalibration_applied": float(self.applied),
            "recalibration_brier_gain": self.gain,
            "recalibration_brier_gain_se": self.se,
        }
        if self.fit is not None:
            out["recalibration_intercept"] = self.fit.intercept
            out["recalibration_slope"] = self.fit.slope
        return out


def choose_recalibration(
    y: np.ndarray,
    cif: np.ndarray,
    fold: np.ndarray,
    horizons: Sequence[float],
    groups: np.ndarray | None = None,
) -> RecalibrationChoice:
    """Cross-fit, compare and decide (module docstring).

    ``cif``: ``(repeats, n, horizons)`` out-of-fold incidences; ``fold``: ``(repeats, n)``
    outer-fold index of each row in each repeat; ``horizons``: the months of the columns (the
    recalibration is fitted and judged on all of them).
    """
    cif = np.asarray(cif, dtype=float)
    fold = np.asarray(fold)
    raw = np.zeros(cif.shape[1])
    recal = np.zeros(cif.shape[1])
    every = np.empty_like(cif)
    for r in range(cif.shape[0]):
        crossed, _ = cross_fitted(y, cif[r], fold[r], horizons)
        every[r] = crossed
        for k in np.unique(fold[r]):
            rows = fold[r] == k  # censoring per scored fold, as the selection's losses
            raw[rows] += brier_terms(y[rows], cif[r][rows], horizons)
            recal[rows] += brier_terms(y[rows], crossed[rows], horizons)
    raw /= cif.shape[0]
    recal /= cif.shape[0]
    diff = raw - recal
    gain, se = float(diff.mean()), paired_se(diff, groups)
    fit = fit_on(y, cif[0], horizons)
    applied = fit is not None and np.isfinite(se) and gain > se
    return RecalibrationChoice(
        applied=applied,
        fit=fit,
        gain=gain,
        se=se,
        cif=every[0] if applied else cif[0],
        losses=recal if applied else raw,
        served=every if applied else cif,
    )
