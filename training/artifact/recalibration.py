"""Logistic recalibration of a version's cumulative incidence of bone metastasis.

A version may store one :class:`Recalibration`: ``logit p' = a + b logit p``, one intercept and
one slope shared by every time, applied to the incidence at any horizon (and to its interval
bounds) by :class:`training.artifact.risk_model.RiskModel` before it answers. One pair for all
times keeps the curve non-decreasing in time and the patients' order at every horizon (``b > 0``
is required). It is estimated by :func:`fit_recalibration`, an IPCW-weighted logistic
regression of the status "bone metastasis by the horizon" (death first: status 0, the competing
event; censored before: unknown, weight 0) on the logit of the predicted incidence, the
headline horizons stacked; the training run fits it on out-of-fold predictions only and decides
whether to apply it on cross-fitted predictions (:mod:`training.evaluation.recalibration`,
``docs/modeling.md``, "Recalibration").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from training.models.link import logit

__all__ = ["Recalibration", "fit_recalibration"]

#: Fewer weighted events than this (or non-events) at the stacked horizons: no fit.
MIN_EVENTS = 10


@dataclass(frozen=True)
class Recalibration:
    """``logit p' = intercept + slope * logit p`` (``slope`` > 0), from ``n_rows`` rows."""

    intercept: float
    slope: float
    n_rows: int = 0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.intercept) and np.isfinite(self.slope) and self.slope > 0):
            raise ValueError(
                f"a recalibration needs a finite intercept and a positive slope, got "
                f"intercept {self.intercept}, slope {self.slope}"
            )

    def apply(self, p: np.ndarray | None) -> np.ndarray | None:
        """The recalibrated incidences (same shape; NaN stays NaN; None stays None)."""
        if p is None:
            return None
        p = np.asarray(p, dtype=float)
        z = self.intercept + self.slope * logit(p)
        out = expit(z)
        return np.where(np.isnan(p), np.nan, out)

    def describe(self) -> str:
        return f"logit p' = {self.intercept:+.3f} + {self.slope:.3f} x logit p"


def fit_recalibration(
    p: np.ndarray, label: np.ndarray, weight: np.ndarray, max_iter: int = 50
) -> Recalibration | None:
    """IPCW-weighted logistic recalibration of predictions ``p`` (any shape) on ``label``.

    ``label`` and ``weight`` have the shape of ``p`` (one column per horizon: the IPCW status of
    :func:`training.models.ipcw.status_at_horizon`); rows of weight 0 (status unknown) and NaN
    predictions are ignored. Newton's method on the weighted log-likelihood of
    ``(intercept, slope)``. None when the fit is not identified: fewer than
    :data:`MIN_EVENTS` events or non-events, a non-positive or non-finite slope, no
    convergence.
    """
    p, label, weight = (np.asarray(a, dtype=float).ravel() for a in (p, label, weight))
    if not (p.shape == label.shape == weight.shape):
        raise ValueError("predictions, labels and weights must have the same shape")
    keep = (weight > 0) & np.isfinite(p) & np.isfinite(weight)
    x, yv, w = logit(p[keep]), label[keep], weight[keep]
    if min(int((yv == 1).sum()), int((yv == 0).sum())) < MIN_EVENTS:
        return None
    w = w / w.mean()
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([0.0, 1.0])
    for _ in range(max_iter):
        q = expit(X @ beta)
        grad = X.T @ (w * (yv - q))
        hess = (X * (w * q * (1 - q))[:, None]).T @ X
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            return None
        beta = beta + step
        if not np.all(np.isfinite(beta)):
            return None
        if np.max(np.abs(step)) < 1e-8:
            break
    else:
        return None
    if beta[1] <= 0:
        return None
    return Recalibration(float(beta[0]), float(beta[1]), int(keep.sum()))
