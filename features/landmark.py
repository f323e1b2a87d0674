"""Marker trajectory features at a landmark, built only from draws known by then.

A *landmark* is a day since enrollment at which a prediction is made. Everything here uses only
the draws taken on or before it, so a model trained on landmark features never sees the future:

- :func:`summarize_draws` is the one-patient kernel (plain numpy, a few microseconds): the six
  :data:`TRAJECTORY_FEATURES` from one patient's draws and a landmark day. The prediction
  service can call it on a request's ``oc_measurements`` list directly.
- :func:`draw_table` lists each patient's usable draws from the typed contract tables.
- :func:`trajectory_features` applies the kernel to every patient (one piece of code for a
  single request and for a cohort).
- :func:`landmark_dataset` builds the landmark cohort: patients still free of bone metastasis
  and under follow-up at the landmark, their marker columns from the latest draw by then, their
  residual time since the landmark, and the trajectory features.

Contract rule (``shared/data-contract.md``): a measurement taken on or after a patient's outcome
(``time_days``) must never feed a prediction for a time before it. :func:`draw_table` drops such
draws whenever ``time_days`` is known, so no landmark can reach them.

Scale: log2 percent, so a change of 1 is a doubling of the osteocalcin-positive fraction (the
scale of :class:`features.transformers.MarkerFeatures`); slopes are per year of 365.25 days.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.marker import MARKER_COLUMNS, PERCENT_FLOOR, log2_percent, marker_percent
from features.vocabulary import DAYS_PER_YEAR

__all__ = [
    "TRAJECTORY_FEATURES",
    "PERCENT_FLOOR",
    "DAYS_PER_YEAR",
    "latest_usable_draw",
    "summarize_draws",
    "draw_table",
    "trajectory_features",
    "landmark_dataset",
]

#: Output of :func:`summarize_draws`, in this order.
TRAJECTORY_FEATURES = (
    "oc_latest_log2",
    "oc_baseline_log2",
    "oc_change_log2",
    "oc_slope_log2_per_year",
    "oc_n_draws",
    "oc_days_since_latest",
)

_N_FEATURES = len(TRAJECTORY_FEATURES)


def latest_usable_draw(days: np.ndarray, percent: np.ndarray, day: float) -> int:
    """Which draw a prediction at ``day`` takes as the patient's current marker.

    The one rule for training rows (:func:`landmark_dataset`), batch scoring
    (:func:`features.draws.rows_at`) and the prediction API: the latest draw on or before
    ``day`` with a usable percent (finite). Days are unique per patient in the contract; on a
    tie the last listed draw counts.

    Parameters
    ----------
    days : numpy.ndarray
        Days since enrollment of one patient's draws (any order).
    percent : numpy.ndarray
        Best estimate of each draw's percent (:func:`features.marker.marker_percent`);
        NaN for a draw without a usable marker.
    day : float
        Day of the prediction.

    Returns
    -------
    int
        Position of that draw in ``days``; -1 when no draw qualifies.
    """
    d = np.asarray(days, dtype=float)
    use = np.flatnonzero((d <= day) & np.isfinite(np.asarray(percent, dtype=float)))
    if use.size == 0:
        return -1
    return int(use[use.size - 1 - int(np.argmax(d[use][::-1]))])


def summarize_draws(days: np.ndarray, percent: np.ndarray, landmark_day: float) -> np.ndarray:
    """Trajectory features of one patient's draws at a landmark.

    Only draws with ``day <= landmark_day`` and a finite ``percent`` are used. With ``y`` the
    log2 of ``max(percent, PERCENT_FLOOR)``:

    - ``oc_latest_log2``: y of the latest usable draw;
    - ``oc_baseline_log2``: y of the earliest usable draw (normally the enrollment draw, day 0);
    - ``oc_change_log2``: latest minus baseline (0 with a single draw);
    - ``oc_slope_log2_per_year``: least-squares slope of y on time in years (NaN with fewer than
      two draws or all draws on one day);
    - ``oc_n_draws``: number of usable draws (0 when none);
    - ``oc_days_since_latest``: ``landmark_day`` minus the day of the latest usable draw.

    Parameters
    ----------
    days : numpy.ndarray
        Days since enrollment of the draws (any order).
    percent : numpy.ndarray
        Best estimate of the osteocalcin-positive percent of each draw (callers derive it from
        the counts with :func:`features.marker.marker_percent`); NaN for an unusable draw.
    landmark_day : float
        Day of the prediction (finite, >= 0).

    Returns
    -------
    numpy.ndarray
        Shape ``(6,)``, in :data:`TRAJECTORY_FEATURES` order; NaN where undefined.

    Raises
    ------
    ValueError
        ``landmark_day`` not finite or negative, or ``days`` and ``percent`` of different shapes.
    """
    landmark = float(landmark_day)
    if not (math.isfinite(landmark) and landmark >= 0.0):
        raise ValueError(f"landmark_day must be a finite number >= 0, got {landmark_day!r}")
    d = np.asarray(days, dtype=float)
    p = np.asarray(percent, dtype=float)
    if d.shape != p.shape or d.ndim != 1:
        raise ValueError(f"days and percent must be 1-D of one length, got {d.shape}, {p.shape}")
    out = np.full(_N_FEATURES, np.nan)
    use = (d <= landmark) & np.isfinite(p)  # a NaN day compares False: never used
    n = int(np.count_nonzero(use))
    out[4] = n
    if n == 0:
        return out
    d = d[use]
    y = log2_percent(p[use])
    last = latest_usable_draw(d, p[use], landmark)
    first = int(np.argmin(d))
    out[0] = y[last]
    out[1] = y[first]
    out[2] = y[last] - y[first]
    out[5] = landmark - d[last]
    if n >= 2:
        t = d / DAYS_PER_YEAR
        tc = t - t.mean()
        sxx = float(tc @ tc)
        if sxx > 0.0:
            out[3] = float(tc @ (y - y.mean())) / sxx
    return out


def _draw_rows(patients: pd.DataFrame, measurements: pd.DataFrame | None) -> pd.DataFrame:
    """Usable draws with their reported values: patient_id, day, percent, and the raw fields.

    ``percent`` is the best estimate (from counts when present); the three contract marker
    columns are kept as reported so a landmark row can carry them.
    """
    columns = ["patient_id", "day", "percent", *MARKER_COLUMNS]
    parts = []
    have_day0: set[str] = set()
    if measurements is not None and len(measurements):
        m = measurements
        part = pd.DataFrame(
            {
                "patient_id": m["patient_id"].to_numpy(dtype=object),
                "day": m["day"].to_numpy(dtype=float),
                **{c: m[c].to_numpy(dtype=float) for c in MARKER_COLUMNS},
            }
        )
        parts.append(part)
        have_day0 = set(part.loc[part["day"].to_numpy() == 0.0, "patient_id"])
    enrol = pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(dtype=object),
            "day": 0.0,
            **{c: patients[c].to_numpy(dtype=float) for c in MARKER_COLUMNS},
        }
    )
    parts.append(enrol.loc[~enrol["patient_id"].isin(have_day0).to_numpy()])
    rows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    rows["percent"] = marker_percent(
        rows["oc_positive_percent"].to_numpy(dtype=float),
        rows["oc_positive_events"].to_numpy(dtype=float),
        rows["pbmc_events"].to_numpy(dtype=float),
    )
    keep = np.isfinite(rows["percent"].to_numpy(dtype=float))
    if "time_days" in patients.columns:
        # Contract: a draw on or after the outcome never feeds a prediction before it.
        outcome = pd.Series(
            patients["time_days"].to_numpy(dtype=float), index=patients["patient_id"].to_numpy()
        )
        t_out = outcome.reindex(rows["patient_id"].to_numpy()).to_numpy(dtype=float)
        keep &= ~(rows["day"].to_numpy(dtype=float) >= t_out)  # NaN outcome: keep
    rows = rows.loc[keep, columns]
    return rows.sort_values(["patient_id", "day"], kind="mergesort").reset_index(drop=True)


def draw_table(patients: pd.DataFrame, measurements: pd.DataFrame | None) -> pd.DataFrame:
    """Each patient's usable draws, from the typed contract tables.

    A draw is usable when it yields a percent: from both counts
    (:func:`features.marker.marker_percent`, half-event continuity correction) or from
    the reported percent. The patients row's enrollment marker is the day-0 draw of a patient
    without a day-0 row in ``measurements``. Draws on or after the patient's ``time_days`` are
    dropped (contract rule); patients without an outcome keep all their draws.

    Parameters
    ----------
    patients : pandas.DataFrame
        Typed ``patients`` table (:func:`features.contract.validate_cohort`).
    measurements : pandas.DataFrame or None
        Typed ``oc_measurements`` table, or None.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient_id``, ``day``, ``percent``, sorted by patient and day.
    """
    return _draw_rows(patients, measurements)[["patient_id", "day", "percent"]]


def _landmarks(landmark_day: float | np.ndarray, n: int) -> np.ndarray:
    arr = np.asarray(landmark_day, dtype=float)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(
            f"landmark_day must be a scalar or one value per patient ({n}), got {arr.shape}"
        )
    return arr


def _features_from_rows(
    patient_ids: np.ndarray, rows: pd.DataFrame, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kernel applied per patient; rows sorted by patient (as :func:`_draw_rows` returns).

    Returns the features, and per patient the position in ``rows`` of its latest usable draw
    by its landmark (:func:`latest_usable_draw`; -1 when none).
    """
    ids = rows["patient_id"].to_numpy(dtype=object)
    days = rows["day"].to_numpy(dtype=float)
    percent = rows["percent"].to_numpy(dtype=float)
    starts = {}
    if len(ids):
        change = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1], True])
        starts = {ids[a]: (a, b) for a, b in zip(change[:-1], change[1:], strict=True)}
    out = np.empty((len(patient_ids), _N_FEATURES))
    latest = np.full(len(patient_ids), -1)
    for i, pid in enumerate(patient_ids):
        a, b = starts.get(pid, (0, 0))
        out[i] = summarize_draws(days[a:b], percent[a:b], landmarks[i])
        k = latest_usable_draw(days[a:b], percent[a:b], landmarks[i])
        latest[i] = a + k if k >= 0 else -1
    return out, latest


def trajectory_features(
    patients: pd.DataFrame,
    measurements: pd.DataFrame | None,
    landmark_day: float | np.ndarray,
) -> pd.DataFrame:
    """The :data:`TRAJECTORY_FEATURES` of every patient at a landmark.

    Parameters
    ----------
    patients : pandas.DataFrame
        Typed ``patients`` table.
    measurements : pandas.DataFrame or None
        Typed ``oc_measurements`` table, or None (then only the enrollment draw counts).
    landmark_day : float or numpy.ndarray
        One landmark for all, or one per patients row.

    Returns
    -------
    pandas.DataFrame
        One row per patients row in the same order (RangeIndex), the six feature columns.
    """
    landmarks = _landmarks(landmark_day, len(patients))
    rows = _draw_rows(patients, measurements)
    ids = patients["patient_id"].to_numpy(dtype=object)
    values = _features_from_rows(ids, rows, landmarks)[0]
    return pd.DataFrame(values, columns=list(TRAJECTORY_FEATURES))


def landmark_dataset(
    patients: pd.DataFrame, measurements: pd.DataFrame | None, landmark_day: float
) -> pd.DataFrame:
    """The landmark cohort: patients still at risk at ``landmark_day``, with features by then.

    At risk means free of bone metastasis at enrollment, with an outcome, and ``time_days >
    landmark_day`` (no bone metastasis, death or end of follow-up yet).

    Parameters
    ----------
    patients : pandas.DataFrame
        Typed ``patients`` table with outcomes.
    measurements : pandas.DataFrame or None
        Typed ``oc_measurements`` table, or None.
    landmark_day : float
        Days since enrollment (finite, >= 0).

    Returns
    -------
    pandas.DataFrame
        The patients columns in their order, RangeIndex, where

        - ``oc_positive_percent``, ``oc_positive_events``, ``pbmc_events`` are those of the
          latest usable draw on or before the landmark (as reported; NaN where it had none, all
          NaN without a usable draw); other columns keep their enrollment values;
        - ``time_days`` is the residual time ``time_days - landmark_day`` (``event`` unchanged);

        followed by a ``landmark_day`` column and the :data:`TRAJECTORY_FEATURES` columns.
    """
    landmark = float(landmark_day)
    if not (math.isfinite(landmark) and landmark >= 0.0):
        raise ValueError(f"landmark_day must be a finite number >= 0, got {landmark_day!r}")
    for column in ("bone_metastasis_at_enrollment", "time_days", "event"):
        if column not in patients.columns:
            raise KeyError(f"landmark_dataset needs the patients column {column}")
    time = patients["time_days"].to_numpy(dtype=float)
    at_risk = (
        (patients["bone_metastasis_at_enrollment"].to_numpy(dtype=float) == 0.0)
        & patients["event"].notna().to_numpy()
        & (time > landmark)
    )
    out = patients.loc[at_risk].reset_index(drop=True)
    rows = _draw_rows(out, measurements)
    ids = out["patient_id"].to_numpy(dtype=object)
    values, latest = _features_from_rows(ids, rows, np.full(len(out), landmark))
    found = latest >= 0
    for column in MARKER_COLUMNS:
        marker = np.full(len(out), np.nan)
        marker[found] = rows[column].to_numpy(dtype=float)[latest[found]]
        out[column] = marker
    out["time_days"] = out["time_days"].to_numpy(dtype=float) - landmark
    out["landmark_day"] = landmark
    for j, name in enumerate(TRAJECTORY_FEATURES):
        out[name] = values[:, j]
    return out
