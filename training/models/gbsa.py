"""Gradient-boosted Cox models with the partial likelihood in O(n log n) (scikit-survival's).

:class:`FastGBSA` is ``sksurv.ensemble.GradientBoostingSurvivalAnalysis`` (a subclass: same
parameters, attributes and predictions) whose Cox loss (``loss="coxph"``) computes the negative
partial log-likelihood and its negative gradient with sorted cumulative sums instead of
scikit-survival's double loop over the patients (O(n^2) per boosting stage, and the loss is
evaluated at every stage for ``train_score_`` and, when subsampling, ``oob_scores_``).

With ``eta`` the raw predictions, ``R(t) = sum_{j: T_j >= t} exp(eta_j)`` (every patient whose
time is not before ``t``), the definitions are scikit-survival's:

    loss      = -sum_i delta_i (eta_i - log R(T_i))
    gradient_i = delta_i - exp(eta_i) * sum_{j: delta_j, T_j <= T_i} 1 / R(T_j)

``exp`` is shifted by the largest prediction (the ratios do not change; the log adds it back).
Equal to scikit-survival's to rounding (``tests/models/test_gbsa.py``); on the landmark demo's
4,000 rows a fit took about 0.3 s against 5 s.
"""

from __future__ import annotations

import numpy as np
from sksurv.ensemble import GradientBoostingSurvivalAnalysis
from sksurv.ensemble.survival_loss import CoxPH

__all__ = ["FastGBSA", "SortedCoxPHLoss"]


def _risk_sets(time: np.ndarray, eta: np.ndarray):
    """Ascending order of the times, and R(T_i) / exp(shift) for every patient."""
    shift = float(eta.max(initial=0.0))
    w = np.exp(eta - shift)
    order = np.argsort(time, kind="mergesort")
    t_sorted = time[order]
    suffix = np.cumsum(w[order][::-1])[::-1]  # sum over sorted positions k.. of w
    first = np.searchsorted(t_sorted, time, side="left")  # first position with T >= T_i
    return order, t_sorted, w, suffix[first], shift


class SortedCoxPHLoss(CoxPH):
    """scikit-survival's Cox partial-likelihood loss, in O(n log n)."""

    def __call__(self, y_true, raw_prediction, sample_weight=None):
        event = np.asarray(y_true["event"], dtype=bool)
        time = np.asarray(y_true["time"], dtype=float)
        eta = np.asarray(raw_prediction, dtype=float).ravel()
        if eta.size == 0:
            return -0.0
        _, _, _, at_risk, shift = _risk_sets(time, eta)
        return -float(np.sum(eta[event] - (np.log(at_risk[event]) + shift)))

    def gradient(self, y_true, raw_prediction, sample_weight=None, **kwargs):
        event = np.asarray(y_true["event"], dtype=bool)
        time = np.asarray(y_true["time"], dtype=float)
        eta = np.asarray(raw_prediction, dtype=float).ravel()
        order, t_sorted, w, at_risk, _ = _risk_sets(time, eta)
        # Cumulative sum of 1 / R(T_j) over events j in time order, read at each T_i (<=).
        inv = np.where(event, 1.0 / at_risk, 0.0)[order]
        upto = np.searchsorted(t_sorted, time, side="right")
        cum = np.concatenate(([0.0], np.cumsum(inv)))[upto]
        ret = event.astype(float) - w * cum
        if sample_weight is not None:
            ret *= sample_weight
        return ret


class FastGBSA(GradientBoostingSurvivalAnalysis):
    """``GradientBoostingSurvivalAnalysis`` whose ``coxph`` loss is :class:`SortedCoxPHLoss`."""

    def _get_loss(self, sample_weight):
        if self.loss == "coxph":
            return SortedCoxPHLoss()
        return super()._get_loss(sample_weight)
