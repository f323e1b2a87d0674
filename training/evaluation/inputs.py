"""Checks of the arguments every evaluation metric takes: the target, predictions, a horizon.

Targets ``y`` are structured arrays with fields ``cause`` (0 censored, 1 bone metastasis,
2 death without bone metastasis) and ``time`` (days), as built by
:func:`training.models.competing.make_target`. ``p`` is a predicted cumulative incidence of bone
metastasis by a horizon given in months (a month is ``DAYS_PER_MONTH`` = 365.25 / 12 days).
"""

from __future__ import annotations

import numpy as np

from training.models.competing import BONE_METASTASIS, CENSORED, DEATH
from training.models.link import P_EPS, logit

__all__ = ["P_EPS", "check_y", "check_prob", "check_months", "logit"]


def check_y(y: np.ndarray) -> np.ndarray:
    """The structured target ``y``, or TypeError/ValueError naming what is wrong."""
    names = getattr(getattr(y, "dtype", None), "names", None)
    if not (isinstance(y, np.ndarray) and names and {"cause", "time"} <= set(names)):
        raise TypeError(
            "y must be a structured array with fields 'cause' and 'time' "
            "(training.models.competing.make_target)"
        )
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"y must be a non-empty 1-D structured array, got shape {y.shape}")
    bad = ~np.isin(y["cause"], (CENSORED, BONE_METASTASIS, DEATH))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"y['cause'] must be 0, 1 or 2: y['cause'][{i}] = {y['cause'][i]}")
    return y


def check_prob(p: np.ndarray, n: int, name: str = "p") -> np.ndarray:
    """``p`` as a float array of ``n`` probabilities in [0, 1], or ValueError naming a bad one."""
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or p.shape[0] != n:
        raise ValueError(f"{name} must be 1-D with one value per patient: shape {p.shape}, n={n}")
    bad = ~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} must be probabilities in [0, 1]: {name}[{i}] = {p[i]}")
    return p


def check_months(months: float) -> float:
    """A horizon in months as a float, or ValueError unless finite and positive."""
    months = float(months)
    if not (np.isfinite(months) and months > 0):
        raise ValueError(f"months must be a finite horizon > 0, got {months}")
    return months


