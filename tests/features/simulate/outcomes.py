"""The outcome of simulated patients, read back for the simulator's tests: event codes and an
Aalen-Johansen estimate written out independently of training's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.vocabulary import BONE_METASTASIS, CAUSE_CODES, CENSORED, DEATH


def outcome(patients: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """time_days and cause codes (features.vocabulary; no outcome counts as censored)."""
    event = patients["event"].to_numpy(dtype=object, na_value=None)
    code = np.array([CAUSE_CODES.get(e, CENSORED) for e in event], dtype=int)
    return patients["time_days"].to_numpy(dtype=float, na_value=np.nan), code


def aalen_johansen(time: np.ndarray, code: np.ndarray, at: float) -> float:
    """Aalen-Johansen cumulative incidence of bone metastasis at ``at`` (death competing)."""
    times, inverse = np.unique(time, return_inverse=True)
    d1 = np.bincount(inverse, weights=code == BONE_METASTASIS, minlength=len(times))
    d2 = np.bincount(inverse, weights=code == DEATH, minlength=len(times))
    leaving = np.bincount(inverse, minlength=len(times))
    at_risk = len(time) - np.concatenate([[0], np.cumsum(leaving)[:-1]])
    surv_after = np.cumprod(1.0 - (d1 + d2) / at_risk)
    surv_before = np.concatenate([[1.0], surv_after[:-1]])
    cif = np.cumsum(surv_before * d1 / at_risk)
    k = np.searchsorted(times, at, side="right") - 1
    return float(cif[k]) if k >= 0 else 0.0
