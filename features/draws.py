"""Marker values from repeated draws, using only what was known at the prediction time."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
