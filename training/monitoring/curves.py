"""Predicted cumulative incidences on a grid of horizons, read as cause-specific hazards.

With ``F1``, ``F2`` the predicted cumulative incidences of bone metastasis and of death
without it, the cause-specific cumulative hazard of bone metastasis is

    Lambda1(t) = integral_0^t dF1(u) / S(u-),     S = 1 - F1 - F2,

on the grid by :func:`features.incidence.cause_specific_cumhaz` and linear in between (beyond
the last horizon, the last segment's slope). Every model family answers ``F1`` and
``F2`` (a model without ``F2``, trained before contract 1.1, is read with ``F2 = 0``), so the
CUSUM needs no family-specific hazard. Batch-scoring outputs give the four horizons 12, 24, 36
and 60 months (a coarse grid); a model gives :data:`MODEL_GRID_MONTHS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.incidence import cause_specific_cumhaz, cumhaz_at
from features.vocabulary import PROBABILITY_COLUMN, probability_column
from training.models.competing import DAYS_PER_MONTH

__all__ = ["MODEL_GRID_MONTHS", "horizons_of", "cumulative_hazard", "cumhaz_at"]

#: Horizons at which a model is asked for its incidences (months): monthly to 5 years.
MODEL_GRID_MONTHS: tuple[float, ...] = tuple(float(m) for m in range(1, 61))


def horizons_of(frame: pd.DataFrame) -> list[float]:
    """The horizons (months) of the ``p_bone_met_<h>m`` columns of a predictions frame."""
    matches = (PROBABILITY_COLUMN.match(str(c)) for c in frame.columns)
    return sorted(float(m.group(2)) for m in matches if m and m.group(1) == "bone_met")


def cumulative_hazard(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Grid (days, starting at 0) and ``(n, grid)`` cause-specific cumulative hazards of bone
    metastasis from the ``p_bone_met_<h>m`` and ``p_death_<h>m`` columns of ``frame``.

    Raises
    ------
    ValueError
        When ``frame`` has no ``p_bone_met_<h>m`` column.
    """
    months = horizons_of(frame)
    if not months:
        raise ValueError("the predictions have no p_bone_met_<h>m column")
    f1 = np.column_stack([frame[probability_column(m)].to_numpy(dtype=float) for m in months])
    death = [probability_column(m, "death") for m in months]
    if all(c in frame.columns for c in death) and frame[death].notna().all().all():
        f2 = np.column_stack([frame[c].to_numpy(dtype=float) for c in death])
    else:
        f2 = np.zeros_like(f1)
    cumhaz = cause_specific_cumhaz(f1, f2)
    grid = np.concatenate([[0.0], np.asarray(months) * DAYS_PER_MONTH])
    return grid, cumhaz
