"""Agreement of predictions with a known true risk (simulated cohorts, ``truth.csv``)."""

from __future__ import annotations

import numpy as np

from training.evaluation.calibration import fit_logistic
from training.evaluation.inputs import check_prob, logit

__all__ = ["truth_agreement"]


def truth_agreement(p: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How far predicted probabilities are from the true risk of the same patients.

    For simulated cohorts, whose true cumulative incidence is known (``truth.csv``):

    - ``mae``: mean absolute error ``mean |p - truth|``;
    - ``calibration_slope``, ``calibration_intercept``: ``b`` and ``a`` of
      ``truth = expit(a + b logit(p))`` fitted by logistic quasi-likelihood with the true
      probability as a fractional outcome (the calibration slope against the truth instead of
      against observed events: 1 and 0 for a perfect model; ``b < 1``: predictions too spread,
      ``b > 1``: too compressed).

    Parameters
    ----------
    p, truth : numpy.ndarray
        Predicted and true probabilities of the same patients at one horizon, in [0, 1].

    Returns
    -------
    dict of str to float

    Raises
    ------
    ValueError
        When the arrays differ in length, hold values outside [0, 1] or NaN, or the
        predictions are constant.
    """
    truth = np.asarray(truth, dtype=float)
    p = check_prob(p, truth.shape[0])
    truth = check_prob(truth, p.shape[0], "truth")
    lp = logit(p)
    if np.ptp(lp) == 0:
        raise ValueError("truth_agreement needs predictions that vary")
    design = np.column_stack([np.ones(lp.size), lp])
    a, b = fit_logistic(design, truth, np.ones(lp.size))
    return {
        "mae": float(np.mean(np.abs(p - truth))),
        "calibration_slope": float(b),
        "calibration_intercept": float(a),
    }
