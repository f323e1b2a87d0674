"""Marker values from repeated draws, using only what was known at the prediction time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.landmark import summarize_draws
from features.transformers import marker_percent

MARKER_FIELDS = ("oc_positive_percent", "oc_positive_events", "pbmc_events")


def enrollment_view(patients: pd.DataFrame, measurements: pd.DataFrame | None) -> pd.DataFrame:
    """Patients rows whose missing enrollment marker is taken from a day-0 draw.

    A patients row that carries none of the three marker fields but has a draw on day 0 in
    ``oc_measurements`` gets that draw's values (percent and counts). Later draws are never
    used here: a model predicting at enrollment must not see the future.

    Parameters
    ----------
    patients, measurements : pandas.DataFrame
        Typed tables from :func:`features.contract.validate_cohort`.

    Returns
    -------
    pandas.DataFrame
        A copy of ``patients``.
    """
    out = patients.copy()
    if measurements is None or measurements.empty:
        return out
    day0 = measurements.loc[measurements["day"].to_numpy(dtype=float) == 0.0]
    if day0.empty:
        return out
    day0 = day0.drop_duplicates("patient_id").set_index("patient_id")
    none = np.ones(len(out), dtype=bool)
    for field in MARKER_FIELDS:
        none &= out[field].isna().to_numpy()
    fill = none & out["patient_id"].isin(day0.index).to_numpy()
    if fill.any():
        ids = out.loc[fill, "patient_id"]
        for field in MARKER_FIELDS:
            out.loc[fill, field] = day0.loc[ids, field].to_numpy(dtype=float)
    return out


def trajectory_at(
    enrollment: tuple[float, float, float],
    draws: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    prediction_day: float,
) -> np.ndarray:
    """One patient's trajectory features at ``prediction_day``, from a request's values.

    The draws a training landmark row sees (:func:`features.landmark.landmark_dataset`): every
    draw on or before ``prediction_day`` with a usable marker, the patients row's enrollment
    marker counting as the day-0 draw when no draw is dated day 0.

    Parameters
    ----------
    enrollment : tuple of float
        ``oc_positive_percent``, ``oc_positive_events``, ``pbmc_events`` of the patients row
        (NaN where missing).
    draws : tuple of numpy.ndarray
        ``day``, ``oc_positive_percent``, ``oc_positive_events``, ``pbmc_events`` of the
        patient's draws (typed: float with NaN).
    prediction_day : float

    Returns
    -------
    numpy.ndarray
        :data:`features.landmark.TRAJECTORY_FEATURES`, in that order.
    """
    days, percent, events, pbmc = (np.asarray(a, dtype=float) for a in draws)
    best = marker_percent(percent, events, pbmc)
    if not np.any(days == 0.0):
        first = marker_percent(*(np.array([v], dtype=float) for v in enrollment))
        days, best = np.append(days, 0.0), np.append(best, first)
    return summarize_draws(days, best, prediction_day)
