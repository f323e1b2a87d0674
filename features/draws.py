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


def rows_at(
    patients: pd.DataFrame,
    measurements: pd.DataFrame | None,
    prediction_day: float,
    *,
    landmark: bool,
    uses_marker: bool = True,
) -> tuple[pd.DataFrame, list[list[str]]]:
    """Each patient's row at ``prediction_day`` with the draws known by then (batch scoring).

    The rule of the prediction API (``serving.service``) for a table of patients: only draws
    on or before ``prediction_day`` are used; the marker columns take the latest draw with a
    usable marker (the current value, else the enrollment value stays); a landmark model
    (``landmark``) also gets ``landmark_day`` and the trajectory columns of
    :func:`trajectory_at`, the rule of the training rows. A model that does not use the marker
    (``uses_marker`` False) ignores the draws.

    Parameters
    ----------
    patients, measurements : pandas.DataFrame
        Typed tables from :func:`features.contract.validate_cohort` (measurements may be None).
    prediction_day : float
        Days since enrollment (>= 0), the same for every patient.
    landmark : bool
        Add ``landmark_day`` and the :data:`features.landmark.TRAJECTORY_FEATURES` columns.
    uses_marker : bool, default True

    Returns
    -------
    rows : pandas.DataFrame
        A copy of ``patients`` (plus the landmark columns).
    notes : list of list of str
        Per patient, what was used or ignored (the API's warnings).
    """
    from features.landmark import TRAJECTORY_FEATURES

    day = float(prediction_day)
    if not (np.isfinite(day) and day >= 0):
        raise ValueError(f"prediction_day must be a finite number >= 0, got {prediction_day!r}")
    out = patients.copy().reset_index(drop=True)
    n = len(out)
    notes: list[list[str]] = [[] for _ in range(n)]
    has_draws = measurements is not None and len(measurements) > 0
    groups: dict[object, np.ndarray] = {}
    if has_draws:
        draws = measurements.reset_index(drop=True)
        groups = {
            k: np.asarray(v) for k, v in draws.groupby("patient_id", sort=False).indices.items()
        }
        d_day = draws["day"].to_numpy(dtype=float)
        d_fields = {f: draws[f].to_numpy(dtype=float) for f in MARKER_FIELDS}
        d_best = marker_percent(
            d_fields["oc_positive_percent"], *(d_fields[f] for f in MARKER_FIELDS[1:])
        )
        d_alp = draws["alkaline_phosphatase_u_per_l"].to_numpy(dtype=float)
    enrollment = np.column_stack([out[f].to_numpy(dtype=float) for f in MARKER_FIELDS])
    marker = enrollment.copy()
    trajectory = np.full((n, len(TRAJECTORY_FEATURES)), np.nan)
    empty = (np.empty(0),) * 4
    for i, pid in enumerate(out["patient_id"].to_numpy(dtype=object)):
        rows = groups.get(pid, np.empty(0, dtype=int))
        usable = rows[d_day[rows] <= day] if rows.size else rows
        if rows.size > usable.size:
            notes[i].append(
                f"{rows.size - usable.size} draw(s) after prediction_day {day:g} ignored"
            )
        if rows.size and not uses_marker:
            notes[i].append("oc_measurements ignored: this model does not use the marker")
            usable = usable[:0]
        if landmark:
            known = (
                (d_day[usable],) + tuple(d_fields[f][usable] for f in MARKER_FIELDS)
                if usable.size
                else empty
            )
            trajectory[i] = trajectory_at(tuple(enrollment[i]), known, day)
        with_marker = usable[~np.isnan(d_best[usable])] if usable.size else usable
        if with_marker.size:
            latest = with_marker[np.argmax(d_day[with_marker])]
            marker[i] = [d_fields[f][latest] for f in MARKER_FIELDS]
            if d_day[latest] > 0:
                notes[i].append(
                    f"marker from the draw of day {d_day[latest]:g} used as the current value"
                )
        if usable.size and np.any(~np.isnan(d_alp[usable])):
            notes[i].append(
                "alkaline_phosphatase_u_per_l of the draws ignored: the model uses the "
                "enrollment value"
            )
        if day > 0 and not landmark:
            notes[i].append(
                f"prediction_day {day:g}: this model was trained at enrollment; horizons are "
                "counted from enrollment-style risk with the latest marker value"
            )
    for j, f in enumerate(MARKER_FIELDS):
        out[f] = marker[:, j]
    if landmark:
        out["landmark_day"] = np.full(n, day)
        for j, name in enumerate(TRAJECTORY_FEATURES):
            out[name] = trajectory[:, j]
    return out, notes
