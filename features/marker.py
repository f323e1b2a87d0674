"""The marker of one draw: its percent (from the counts when given) and its log2 model scale.

One definition for every reader of a draw: the feature builders (:mod:`features.transformers`),
the landmark trajectory (:mod:`features.landmark`), the draws known at a prediction day
(:mod:`features.draws`) and the study.
"""

from __future__ import annotations

import numpy as np

from features.typed_rows import Rows, numeric

__all__ = ["MARKER_COLUMNS", "PERCENT_FLOOR", "log2_percent", "marker_percent", "rows_log2_percent"]

#: The contract's marker fields of a draw (patients row or ``oc_measurements`` row).
MARKER_COLUMNS = ("oc_positive_percent", "oc_positive_events", "pbmc_events")


def marker_percent(percent: np.ndarray, events: np.ndarray, pbmc: np.ndarray) -> np.ndarray:
    """Best estimate of the osteocalcin-positive percent from a draw.

    From the counts when both are present, with a continuity correction of half an event so
    that a draw with zero positive events (common at 0.01-0.05 % of 100,000 events) has a
    finite logarithm; from the reported percent otherwise; NaN when neither.
    """
    events = np.asarray(events, dtype=float)
    pbmc = np.asarray(pbmc, dtype=float)
    percent = np.asarray(percent, dtype=float)
    from_counts = 100.0 * (events + 0.5) / (pbmc + 0.5)
    have_counts = ~np.isnan(events) & ~np.isnan(pbmc)
    return np.where(have_counts, from_counts, percent)


#: Smallest osteocalcin-positive percent taken at face value before the log2: a reported 0 %
#: (no positive event counted) stays finite. Percents from counts (:func:`marker_percent`, half
#: an event of continuity correction) never go below 1.25e-4 % (400,000 PBMC events), so the
#: floor only touches reported percents. One value for the model's marker feature
#: (:class:`features.transformers.MarkerFeatures`, which stores it: models logged by 0.1.0 keep
#: their 0.0005), the landmark trajectory (:mod:`features.landmark`) and the study.
PERCENT_FLOOR = 1e-4


def log2_percent(percent: np.ndarray, floor: float = PERCENT_FLOOR) -> np.ndarray:
    """The marker on its model scale: log2 of the percent raised to ``floor`` (NaN stays NaN)."""
    with np.errstate(invalid="ignore"):
        return np.log2(np.maximum(np.asarray(percent, dtype=float), floor))


def rows_log2_percent(X: Rows, floor: float = PERCENT_FLOOR) -> np.ndarray:
    """The log2 marker of each typed contract row (:func:`marker_percent`, then the floor)."""
    return log2_percent(marker_percent(*(numeric(X, c) for c in MARKER_COLUMNS)), floor)
