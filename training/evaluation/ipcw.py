"""The status "bone metastasis by the horizon" and its inverse probability of censoring weight.

The one place evaluation derives the IPCW status at a horizon: death before the horizon is a
non-event (label 0, the competing event), event-free follow-up beyond it is label 0, and
censoring before it is unknown status (weight 0). Known statuses are weighted by the inverse
Kaplan-Meier probability of remaining uncensored: the models' one definition,
:func:`training.models.ipcw.status_at_horizon`, which the IPCW classifiers train on.
The IPCW AUC and Brier score (:mod:`training.evaluation.accuracy`) and the calibration fits
(:mod:`training.evaluation.calibration`) all call :func:`ipcw_status`.
"""

from __future__ import annotations

import numpy as np

from training.models.competing import DAYS_PER_MONTH
from training.models.ipcw import status_at_horizon

__all__ = ["ipcw_status"]


def ipcw_status(y: np.ndarray, months: float) -> tuple[np.ndarray, np.ndarray]:
    """Status "bone metastasis by ``months``" and its IPCW weight, censoring estimated on ``y``.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target (fields ``cause`` and ``time`` in days).
    months : float
        Horizon (months).

    Returns
    -------
    label : numpy.ndarray of int
        1 for bone metastasis by the horizon, else 0.
    weight : numpy.ndarray of float
        ``1 / G(T-)`` for an event by the horizon, ``1 / G(h)`` beyond it, 0 when censored
        before it (status unknown; ``weight > 0`` marks the known statuses).
    """
    status = status_at_horizon(y, months * DAYS_PER_MONTH)
    return status.label, status.weight
