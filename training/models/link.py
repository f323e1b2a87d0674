"""The logit link, defined once: :func:`scipy.special.logit` of a probability clipped away from
0 and 1, so that a prediction of exactly 0 or 1 has a finite (if large) log-odds.

The calibration metrics (:mod:`training.evaluation.calibration`), the classifiers' risk score
(:class:`training.models.cause_specific.CauseSpecificHazards`) and the served interval
(:mod:`training.artifact.intervals`) all read it.
"""

from __future__ import annotations

import numpy as np
from scipy import special

__all__ = ["P_EPS", "logit"]

#: Probabilities are clipped to [P_EPS, 1 - P_EPS] before taking log-odds.
P_EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of ``p`` clipped to [P_EPS, 1 - P_EPS]; NaN stays NaN.

    Parameters
    ----------
    p : array_like
        Probabilities.

    Returns
    -------
    numpy.ndarray
    """
    # np.minimum/np.maximum rather than np.clip: the same values, without np.clip's Python
    # wrapper, which costs more than the arithmetic on a single served patient.
    q = np.minimum(np.maximum(np.asarray(p, dtype=float), P_EPS), 1.0 - P_EPS)
    return special.logit(q)
