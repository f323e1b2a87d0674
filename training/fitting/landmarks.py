"""Landmark models: the stacked landmark rows of a split, and metrics at each landmark."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.vocabulary import BONE_METASTASIS
from training.evaluation.suite import point_metrics
from training.models.competing import make_target


def landmark_rows(
    rows: pd.DataFrame, measurements: pd.DataFrame | None, landmark_days: Sequence[float]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Stack the landmark datasets of ``rows`` (one split's patients) and their targets.

    Each patient still free of bone metastasis and under follow-up at a landmark contributes
    one row per such landmark: the draws known by then (:func:`features.landmark.
    landmark_dataset`: no draw after the landmark, none on or after the outcome) and the
    residual time since the landmark.
    """
    from features.landmark import landmark_dataset

    parts = [landmark_dataset(rows, measurements, day) for day in landmark_days]
    stacked = pd.concat([p for p in parts if len(p)], ignore_index=True)
    y = make_target(
        stacked["event"].to_numpy(dtype=object), stacked["time_days"].to_numpy(dtype=float)
    )
    return stacked, y


def per_landmark_metrics(
    X: pd.DataFrame,
    y: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    prefix: str,
) -> dict[str, float]:
    """Each landmark's rows on their own: patients at risk, events and the point metrics.

    ``<prefix><day>_n``, ``_bone_met_events`` and :func:`training.evaluation.suite.point_metrics`
    of the
    rows of that landmark (its own censoring distribution), e.g. ``eval_landmark_91_uno_c``.
    A landmark with too few events for a metric leaves it out.
    """
    days = X["landmark_day"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    for day in np.unique(days):
        rows = days == day
        key = f"{prefix}{day:g}"
        events = int(np.sum(y["cause"][rows] == BONE_METASTASIS))
        out[f"{key}_n"] = float(rows.sum())
        out[f"{key}_bone_met_events"] = float(events)
        if events < 2:
            continue
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            # A late landmark can have too few patients for a horizon's metric: left out.
            warnings.simplefilter("ignore")
            try:
                found = point_metrics(
                    y[rows], y[rows], risk[rows], {h: c[rows] for h, c in cif.items()}
                )
            except ValueError:
                continue
        out.update({f"{key}_{k}": float(v) for k, v in found.items() if np.isfinite(v)})
    return out


def landmark_metrics(X: pd.DataFrame, y: np.ndarray, risk: np.ndarray) -> dict[str, float]:
    """Per landmark of a landmark model's test rows: patients at risk, events, Harrell's C.

    The pooled test metrics weight every landmark by its patients at risk; these show each
    prediction time on its own (``test_landmark_<day>_*``). Empty for rows without landmarks.
    """
    from training.evaluation.concordance import harrell_c

    if "landmark_day" not in X.columns:
        return {}
    days = X["landmark_day"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    for day in np.unique(days):
        rows = days == day
        events = int(np.sum(y["cause"][rows] == BONE_METASTASIS))
        key = f"test_landmark_{day:g}"
        out[f"{key}_n"] = float(rows.sum())
        out[f"{key}_bone_met_events"] = float(events)
        if events:
            c = harrell_c(y[rows], risk[rows])
            if np.isfinite(c):
                out[f"{key}_harrell_c"] = float(c)
    return out
