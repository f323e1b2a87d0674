"""Marker values from repeated draws, using only what was known at the prediction time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.landmark import TRAJECTORY_FEATURES, latest_usable_draw, summarize_draws
from features.marker import MARKER_COLUMNS, marker_percent

__all__ = [
    "MARKER_FIELDS",
    "DRAW_FIELDS",
    "DrawsAt",
    "draws_at",
    "enrollment_view",
    "rows_at",
    "trajectory_at",
]

#: The marker fields of a draw (:data:`features.marker.MARKER_COLUMNS`).
MARKER_FIELDS = MARKER_COLUMNS
#: The columns of one patient's draws that :func:`draws_at` reads.
DRAW_FIELDS = ("day", *MARKER_FIELDS, "alkaline_phosphatase_u_per_l")


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


@dataclass(frozen=True)
class DrawsAt:
    """What a prediction at one day takes from one patient's draws (:func:`draws_at`).

    Attributes
    ----------
    latest : int
        Position among the patient's draws of the one whose marker fields become the current
        value (:func:`features.landmark.latest_usable_draw`); -1: the enrollment value stays.
    trajectory : numpy.ndarray or None
        :data:`features.landmark.TRAJECTORY_FEATURES` for a landmark model, else None.
    notes : list of str
        What was used or ignored (the API's warnings), in a fixed order.
    """

    latest: int
    trajectory: np.ndarray | None
    notes: list[str]


def draws_at(
    enrollment: tuple[float, float, float],
    draws: Mapping[str, np.ndarray],
    prediction_day: float,
    *,
    landmark: bool,
    uses_marker: bool = True,
) -> DrawsAt:
    """The rule of the prediction API for one patient: the draws known at ``prediction_day``.

    Only draws on or before ``prediction_day`` are used; the marker takes the latest of them
    with a usable marker (else the enrollment value stays); a landmark model also gets the
    trajectory of :func:`trajectory_at` (the rule of the training rows). A model that does not
    use the marker ignores the draws. Batch scoring (:func:`rows_at`) and the prediction
    service (``serving.service``) both call it, so they answer alike.

    Parameters
    ----------
    enrollment : tuple of float
        ``oc_positive_percent``, ``oc_positive_events``, ``pbmc_events`` of the patients row
        (NaN where missing).
    draws : mapping of str to numpy.ndarray
        The :data:`DRAW_FIELDS` of the patient's draws (typed: float with NaN; may be empty).
    prediction_day : float
        Days since enrollment.
    landmark : bool
        Whether the model reads the trajectory.
    uses_marker : bool, default True

    Returns
    -------
    DrawsAt
    """
    day = float(prediction_day)
    days = np.asarray(draws["day"], dtype=float)
    notes: list[str] = []
    known = days <= day
    ignored = days.size - int(np.count_nonzero(known))
    if ignored:
        notes.append(f"{ignored} draw(s) after prediction_day {day:g} ignored")
    if days.size and not uses_marker:
        notes.append("oc_measurements ignored: this model does not use the marker")
        known[:] = False
    fields = [np.asarray(draws[f], dtype=float) for f in MARKER_FIELDS]
    trajectory = None
    if landmark:
        trajectory = trajectory_at(enrollment, (days[known], *(f[known] for f in fields)), day)
    best = np.where(known, marker_percent(*fields), np.nan)
    latest = latest_usable_draw(days, best, day)
    if latest >= 0 and days[latest] > 0:
        notes.append(f"marker from the draw of day {days[latest]:g} used as the current value")
    if np.any(~np.isnan(np.asarray(draws["alkaline_phosphatase_u_per_l"], dtype=float)[known])):
        notes.append(
            "alkaline_phosphatase_u_per_l of the draws ignored: the model uses the enrollment value"
        )
    if day > 0 and not landmark:
        notes.append(
            f"prediction_day {day:g}: this model was trained at enrollment; horizons are "
            "counted from enrollment-style risk with the latest marker value"
        )
    return DrawsAt(latest=latest, trajectory=trajectory, notes=notes)


def rows_at(
    patients: pd.DataFrame,
    measurements: pd.DataFrame | None,
    prediction_day: float,
    *,
    landmark: bool,
    uses_marker: bool = True,
) -> tuple[pd.DataFrame, list[list[str]]]:
    """Each patient's row at ``prediction_day`` with the draws known by then (batch scoring).

    The rule of the prediction API (:func:`draws_at`, which ``serving.service`` calls too)
    for a table of patients: only draws on or before ``prediction_day`` are used; the marker
    columns take the latest draw with a usable marker (the current value, else the enrollment
    value stays); a landmark model (``landmark``) also gets ``landmark_day`` and the
    trajectory columns of :func:`trajectory_at`, the rule of the training rows. A model that
    does not use the marker (``uses_marker`` False) ignores the draws.

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
    day = float(prediction_day)
    if not (np.isfinite(day) and day >= 0):
        raise ValueError(f"prediction_day must be a finite number >= 0, got {prediction_day!r}")
    out = patients.copy().reset_index(drop=True)
    n = len(out)
    notes: list[list[str]] = []
    groups: dict[object, np.ndarray] = {}
    columns = {f: np.empty(0) for f in DRAW_FIELDS}
    if measurements is not None and len(measurements) > 0:
        draws = measurements.reset_index(drop=True)
        groups = {
            k: np.asarray(v) for k, v in draws.groupby("patient_id", sort=False).indices.items()
        }
        columns = {f: draws[f].to_numpy(dtype=float) for f in DRAW_FIELDS}
    enrollment = np.column_stack([out[f].to_numpy(dtype=float) for f in MARKER_FIELDS])
    marker = enrollment.copy()
    trajectory = np.full((n, len(TRAJECTORY_FEATURES)), np.nan)
    no_rows = np.empty(0, dtype=int)
    for i, pid in enumerate(out["patient_id"].to_numpy(dtype=object)):
        rows = groups.get(pid, no_rows)
        mine = {f: values[rows] for f, values in columns.items()}
        used = draws_at(tuple(enrollment[i]), mine, day, landmark=landmark, uses_marker=uses_marker)
        notes.append(used.notes)
        if used.trajectory is not None:
            trajectory[i] = used.trajectory
        if used.latest >= 0:
            marker[i] = [mine[f][used.latest] for f in MARKER_FIELDS]
    for j, f in enumerate(MARKER_FIELDS):
        out[f] = marker[:, j]
    if landmark:
        out["landmark_day"] = np.full(n, day)
        for j, name in enumerate(TRAJECTORY_FEATURES):
            out[name] = trajectory[:, j]
    return out, notes
