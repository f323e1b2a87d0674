"""One row per measured draw, with where and when it was measured.

The enrollment draw comes from the ``patients`` row (its ``lab_id``, ``instrument_id``,
``reagent_lot``), or from the ``oc_measurements`` row of day 0 when the patients row has no
marker; later draws from ``oc_measurements``. A missing provenance cell is the group
``(missing)``, so a lab that stops filling it in shows up as such.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort

__all__ = ["PROVENANCE", "MISSING_GROUP", "draw_table", "log_percent"]

#: Draw provenance columns (contract 1.2) and the patient's site.
PROVENANCE = ("lab_id", "instrument_id", "reagent_lot")
MISSING_GROUP = "(missing)"
_MARKER = ("oc_positive_percent", "oc_positive_events", "pbmc_events")


def _provenance(frame: pd.DataFrame, n: int) -> dict[str, np.ndarray]:
    out = {}
    for column in PROVENANCE:
        if column in frame.columns:
            values = frame[column].to_numpy(dtype=object)
            out[column] = np.where(pd.isna(values), MISSING_GROUP, values).astype(object)
        else:
            out[column] = np.full(n, MISSING_GROUP, dtype=object)
    return out


def draw_table(cohort: Cohort, enrollment: np.ndarray | None) -> pd.DataFrame:
    """Every measured draw of ``cohort``.

    Parameters
    ----------
    cohort : Cohort
        A validated cohort.
    enrollment : numpy.ndarray of datetime64[D] or None
        Each patient's enrollment date (``patients`` row order), or None.

    Returns
    -------
    pandas.DataFrame
        ``patient_id, site_id, day, date`` (datetime64[D], NaT without enrollment dates),
        ``lab_id, instrument_id, reagent_lot, oc_positive_percent, oc_positive_events,
        pbmc_events``, sorted by date (then patient and day); only draws with a marker value.
    """
    p = cohort.patients
    n = len(p)
    site = (
        np.where(pd.isna(p["site_id"].to_numpy(dtype=object)), MISSING_GROUP, p["site_id"])
        if "site_id" in p.columns
        else np.full(n, MISSING_GROUP, dtype=object)
    )
    enrol = (
        enrollment if enrollment is not None else np.full(n, np.datetime64("NaT"), "datetime64[D]")
    )
    frames = [
        pd.DataFrame(
            {
                "patient_id": p["patient_id"].to_numpy(dtype=object),
                "day": 0.0,
                **_provenance(p, n),
                **{c: p[c].to_numpy(dtype=float) for c in _MARKER},
            }
        )
    ]
    m = cohort.measurements
    if m is not None and len(m):
        draws = pd.DataFrame(
            {
                "patient_id": m["patient_id"].to_numpy(dtype=object),
                "day": m["day"].to_numpy(dtype=float),
                **_provenance(m, len(m)),
                **{c: m[c].to_numpy(dtype=float) for c in _MARKER},
            }
        )
        # A day-0 measurement row is the enrollment draw itself: it replaces the patients row's
        # (which then has no marker, or the same one).
        day0 = set(draws.loc[draws["day"] == 0.0, "patient_id"])
        frames[0] = frames[0].loc[~frames[0]["patient_id"].isin(day0)]
        frames.append(draws)
    out = pd.concat(frames, ignore_index=True)
    # The percent of a draw given by its counts only.
    derived = out["oc_positive_percent"].isna() & out["pbmc_events"].gt(0)
    out.loc[derived, "oc_positive_percent"] = (
        100.0 * out.loc[derived, "oc_positive_events"] / out.loc[derived, "pbmc_events"]
    )
    out = out.loc[out["oc_positive_percent"].notna()].reset_index(drop=True)
    index = pd.Series(np.arange(n), index=p["patient_id"].to_numpy(dtype=object))
    row = index.loc[out["patient_id"]].to_numpy()
    out.insert(1, "site_id", np.asarray(site, dtype=object)[row])
    out.insert(3, "date", enrol[row] + np.round(out["day"].to_numpy()).astype("timedelta64[D]"))
    return out.sort_values(["date", "patient_id", "day"], kind="stable").reset_index(drop=True)


def log_percent(percent: np.ndarray, floor: float) -> np.ndarray:
    """Natural log of the percent, a zero read as ``floor`` (half the smallest positive value
    of the comparison: ranks, not this value, drive the test)."""
    percent = np.asarray(percent, dtype=float)
    return np.log(np.where(percent > 0, percent, floor))
