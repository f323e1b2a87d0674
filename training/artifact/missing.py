"""Missing inputs: how far each could move the answer, and when too little is known to answer.

A missing input is imputed (the training median, plus a missing-value indicator where the
training data had missing values), which gives *a* number, not the patient's. What the clinician
needs is how much that number depends on what is not known:

- **Plausible values** (:func:`plausible_values`, computed at training time and stored with the
  version as ``RiskModel.plausible``): for a numeric input its 10th, 50th and 90th percentile in
  the training rows; for a category or a boolean every value seen. The osteocalcin marker is
  the model's percent (from the counts when present).
- **Range** (:func:`missing_ranges`): for each missing input, the probability of bone metastasis
  at the headline horizon with that input set to each plausible value (the others as given),
  all in one batched call; reported as the lowest and highest, largest range first.
- **Minimum information** (:func:`too_uncertain`): the answer is too uncertain to show as a
  number when fewer than :data:`MIN_OPTIONAL_GIVEN` of the optional inputs the model reads are
  given, or when a single missing input could move the answer by more than
  :data:`MAX_MISSING_SPREAD` (25 in 100: its range is wider than that). The page then shows what to fill in instead of a
  number; the API still returns the number (and ``too_uncertain``) for programs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Fraction of the model's optional inputs that must be given for a number to be shown.
MIN_OPTIONAL_GIVEN = 0.5
#: Widest range of one missing input (probability at the headline horizon) for which a number
#: is shown.
MAX_MISSING_SPREAD = 0.25
#: Inputs every record has (contract: required), never "missing".
REQUIRED_INPUTS = ("age_years", "disease_setting", "bone_metastasis_at_enrollment")
_MAX_CATEGORIES = 6


def plausible_values(X: pd.DataFrame, inputs: Sequence[str]) -> dict[str, tuple]:
    """Per optional input a few plausible values from the training rows (module docstring)."""
    from features.marker import MARKER_COLUMNS, marker_percent

    out: dict[str, tuple] = {}
    for column in inputs:
        if column in REQUIRED_INPUTS or column in MARKER_COLUMNS[1:]:
            continue
        if column == "oc_positive_percent":
            if not all(c in X.columns for c in MARKER_COLUMNS):
                continue
            values = pd.Series(
                marker_percent(*(X[c].to_numpy(dtype=float) for c in MARKER_COLUMNS))
            )
        elif column in X.columns:
            values = X[column]
        else:
            continue
        values = values.dropna()
        if values.empty:
            continue
        numeric = pd.api.types.is_numeric_dtype(values)
        distinct = pd.unique(values)
        if not numeric or len(distinct) <= _MAX_CATEGORIES:
            out[column] = tuple(sorted(distinct.tolist(), key=str))
        else:
            p = np.percentile(values.to_numpy(dtype=float), [10, 50, 90])
            out[column] = tuple(float(v) for v in p)
    return out


def missing_inputs(typed: pd.DataFrame, plausible: dict[str, tuple]) -> list[list[str]]:
    """Per row, the inputs with plausible values that the row does not give."""
    from features.marker import MARKER_COLUMNS, marker_percent

    n = len(typed)
    out: list[list[str]] = [[] for _ in range(n)]
    for column in plausible:
        if column == "oc_positive_percent":
            missing = np.isnan(
                marker_percent(*(typed[c].to_numpy(dtype=float) for c in MARKER_COLUMNS))
            )
        else:
            missing = typed[column].isna().to_numpy()
        for i in np.flatnonzero(missing):
            out[i].append(column)
    return out


def _impossible(column: str, value: Any, row: pd.Series) -> bool:
    """A value the contract forbids for this row (visceral metastasis in early disease)."""
    return (
        column == "visceral_metastasis"
        and bool(value)
        and row.get("disease_setting") == "early"
    )


def missing_ranges(
    risk_model: Any, typed: pd.DataFrame, months: float, horizons: Sequence[float] = ()
) -> list[list[dict[str, Any]]]:
    """Per row, ``{"input", "months", "low", "high", "at_horizons"}`` for each missing input,
    widest first: ``low``/``high`` at ``months`` (the headline horizon, which ranks them),
    ``at_horizons`` the same at each of ``horizons`` (``{"months", "low", "high"}``), all from
    one batched call.

    Empty for every row when the version carries no plausible values (logged before them).
    """
    plausible = getattr(risk_model, "plausible", None) or {}
    typed = typed.reset_index(drop=True)
    result: list[list[dict[str, Any]]] = [[] for _ in range(len(typed))]
    if not plausible:
        return result
    wanted = missing_inputs(typed, plausible)
    copies, where = [], []
    for i, columns in enumerate(wanted):
        row = typed.iloc[i]
        for column in columns:
            for value in plausible[column]:
                if _impossible(column, value, row):
                    continue
                copy = row.copy()
                copy[column] = value
                copies.append(copy)
                where.append((i, column))
    if not copies:
        return result
    frame = pd.DataFrame(copies).reset_index(drop=True)
    for column in typed.columns:
        frame[column] = frame[column].astype(typed[column].dtype, errors="ignore")
    others = [float(h) for h in horizons if float(h) != float(months)]
    _, cif = risk_model.predict_arrays(frame, [float(months), *others])
    spans: dict[tuple[int, str], list[np.ndarray]] = {}
    for (i, column), p in zip(where, cif, strict=True):
        spans.setdefault((i, column), []).append(p)
    for (i, column), ps in spans.items():
        table = np.vstack(ps)
        low, high = table.min(axis=0), table.max(axis=0)
        at = {float(months): (low[0], high[0])}
        at.update({h: (low[k], high[k]) for k, h in enumerate(others, start=1)})
        result[i].append(
            {
                "input": column,
                "months": float(months),
                "low": float(low[0]),
                "high": float(high[0]),
                "at_horizons": [
                    {"months": float(h), "low": float(at[float(h)][0]), "high": float(at[float(h)][1])}
                    for h in (horizons or [months])
                ],
            }
        )
    for entries in result:
        entries.sort(key=lambda e: -(e["high"] - e["low"]))
    return result


def too_uncertain(
    risk_model: Any, given: Sequence[str], ranges: Sequence[dict[str, Any]]
) -> bool:
    """Whether too little is known to show a number (module docstring, "Minimum information").

    ``given``: the optional inputs this row gives; ``ranges``: its :func:`missing_ranges`.
    """
    plausible = getattr(risk_model, "plausible", None) or {}
    if not plausible:
        return False
    share = len([c for c in given if c in plausible]) / len(plausible)
    spread = max((e["high"] - e["low"] for e in ranges), default=0.0)
    return share < MIN_OPTIONAL_GIVEN or spread > MAX_MISSING_SPREAD
