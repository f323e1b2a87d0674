"""Wording of explanations: each group's value and sentence, with units and training context.

Values are shown with the units of :mod:`features.schema`. A numeric value outside the
training range (``RiskModel.training_ranges``) says so; otherwise, given training percentiles
(``reference`` argument of :func:`training.artifact.explain.explain` or a
``training_percentiles`` attribute on the model, computed by :func:`training_percentiles`), a
value below the 10th or above the 90th percentile says so, and one in between quotes the
training median. Labels are keyed by contract input (or joint group,
:mod:`training.artifact.feature_inputs`); an input without one takes the schema's description.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.schema import PATIENT_SPECS
from features.transformers import MarkerFeatures, marker_percent
from training.artifact.feature_inputs import OC_TREND, PREDICTION_DAY, RECEPTOR_STATUS

__all__ = [
    "MISSING_TEXT",
    "PERCENTILE_INPUTS",
    "Contribution",
    "Scale",
    "Wording",
    "numeric_column",
    "raw_numeric",
    "training_percentiles",
]

Scale = Literal["log hazard", "log odds"]
#: One entry of an explanation: ``input``, ``value``, ``contribution``, ``scale``, ``text``.
Contribution = dict[str, Any]

#: Numeric inputs whose training 10th, 50th and 90th percentiles word the explanations.
PERCENTILE_INPUTS: tuple[str, ...] = (
    "age_years",
    "ki67_percent",
    "tumor_size_mm",
    "positive_lymph_nodes",
    "alkaline_phosphatase_u_per_l",
    "oc_positive_percent",
)

MISSING_TEXT = "missing (imputed)"

#: Short clinical names of the groups (others fall back to the schema's description).
_LABELS: dict[str, str] = {
    "oc_positive_percent": "osteocalcin-positive cells",
    "age_years": "age",
    "ki67_percent": "Ki-67",
    "histologic_grade": "histologic grade",
    "tumor_size_mm": "tumor size",
    "positive_lymph_nodes": "involved axillary nodes",
    RECEPTOR_STATUS: "receptor status",
    "disease_setting": "disease setting",
    "visceral_metastasis": "visceral metastasis",
    "alkaline_phosphatase_u_per_l": "alkaline phosphatase",
    "menopausal_status": "menopausal status",
    "bone_targeted_therapy": "bone-targeted therapy",
    "endocrine_therapy": "endocrine therapy",
    "chemotherapy": "chemotherapy",
    OC_TREND: "osteocalcin-positive cells",
    PREDICTION_DAY: "prediction",
}


_MENOPAUSE = {"pre": "premenopausal", "peri": "perimenopausal", "post": "postmenopausal"}
_BOOLEAN_GROUPS = ("visceral_metastasis", "endocrine_therapy", "chemotherapy")
_RECEPTORS = (("er_status", "ER"), ("pr_status", "PR"), ("her2_status", "HER2"))


def training_percentiles(X_train: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """10th, 50th and 90th percentiles of the numeric inputs in the training rows.

    The osteocalcin-positive percent is the model's estimate
    (:func:`features.transformers.marker_percent`: from the counts when present). Training can
    store the result on a :class:`training.artifact.risk_model.RiskModel` as
    ``training_percentiles``.

    Parameters
    ----------
    X_train : pandas.DataFrame
        Typed contract rows of the training split.

    Returns
    -------
    dict
        Input -> ``(p10, p50, p90)`` for each of :data:`PERCENTILE_INPUTS` present with at
        least one value.
    """
    out: dict[str, tuple[float, float, float]] = {}
    for column in PERCENTILE_INPUTS:
        values = raw_numeric(X_train, column)
        if values is None:
            continue
        values = values[~np.isnan(values)]
        if values.size:
            p10, p50, p90 = np.percentile(values, [10, 50, 90])
            out[column] = (float(p10), float(p50), float(p90))
    return out


def numeric_column(typed: pd.DataFrame, column: str) -> np.ndarray:
    """Column ``column`` of typed rows as float, NaN where missing or not a number."""
    series = typed[column]
    if series.dtype.kind not in "fiub":  # typed rows hold float64 already: skip the parse
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=float, na_value=np.nan)


def raw_numeric(typed: pd.DataFrame, column: str) -> np.ndarray | None:
    """A numeric input as the model reads it (the marker from counts), None when absent."""
    if column == "oc_positive_percent":
        needed = MarkerFeatures.columns_in
        if not all(c in typed.columns for c in needed):
            return None
        return marker_percent(*(numeric_column(typed, c) for c in needed))
    return numeric_column(typed, column) if column in typed.columns else None


def _number(column: str, value: float) -> str:
    if column == "oc_positive_percent":
        return f"{value:.3f}" if value >= 0.01 else f"{value:.2g}"
    return f"{value:.4g}"


def _with_unit(column: str, value: float) -> str:
    spec = PATIENT_SPECS.get(column)
    unit = spec.unit if spec is not None else ""
    if unit == "nodes" and value == 1:
        unit = "node"
    return f"{_number(column, value)} {unit}".rstrip()


def _label(group: str) -> str:
    if group in _LABELS:
        return _LABELS[group]
    spec = PATIENT_SPECS.get(group)
    return spec.description if spec is not None and spec.description else group


def _position(
    column: str,
    value: float,
    ranges: Mapping[str, tuple[float, float]],
    reference: Mapping[str, Sequence[float]],
) -> str:
    """Where a numeric value lies in the training data, as a parenthesised phrase (or "")."""
    if column in ranges:
        lo, hi = ranges[column]
        if value < lo or value > hi:
            return f" (outside the training range {_number(column, lo)}-{_number(column, hi)})"
    if column in reference:
        p10, p50, p90 = (float(v) for v in reference[column])
        if value > p90:
            return " (above the training 90th percentile)"
        if value < p10:
            return " (below the training 10th percentile)"
        return f" (training median {_number(column, p50)})"
    return ""


def _subtype(er: Any, pr: Any, her2: Any) -> str:
    """Subtype as the feature builder defines it, with the receptors; "missing" when none."""
    states = {"positive": "+", "negative": "-"}
    marks = [
        (name, states.get(v) if isinstance(v, str) else None)
        for v, (_, name) in zip((er, pr, her2), _RECEPTORS, strict=True)
    ]
    if all(m is None for _, m in marks):
        return MISSING_TEXT
    receptors = ", ".join(f"{n}{m}" if m else f"{n} missing" for n, m in marks)
    e, p, h = (m for _, m in marks)
    if h == "+":
        name = "HER2-positive"
    elif h == "-" and "+" in (e, p):
        name = "luminal"
    elif e == p == h == "-":
        name = "triple negative"
    else:
        return receptors
    return f"{name} ({receptors})"


class Wording:
    """Value text and sentence subject of each group for the rows being explained."""

    def __init__(
        self,
        typed: pd.DataFrame,
        ranges: Mapping[str, tuple[float, float]],
        reference: Mapping[str, Sequence[float]],
    ) -> None:
        self.typed = typed
        self.ranges = ranges
        self.reference = reference
        self._numeric: dict[str, np.ndarray | None] = {}
        self._objects: dict[str, np.ndarray | None] = {}

    def numbers(self, column: str) -> np.ndarray | None:
        if column not in self._numeric:
            self._numeric[column] = raw_numeric(self.typed, column)
        return self._numeric[column]

    def objects(self, column: str) -> np.ndarray | None:
        if column not in self._objects:
            self._objects[column] = (
                self.typed[column].to_numpy(dtype=object) if column in self.typed else None
            )
        return self._objects[column]

    def category(self, column: str, i: int) -> str | None:
        values = self.objects(column)
        value = None if values is None else values[i]
        return value if isinstance(value, str) else None

    def flag(self, column: str, i: int) -> float:
        values = self.numbers(column)
        return np.nan if values is None else float(values[i])

    def describe(self, group: str, i: int) -> tuple[str, str]:
        """``(value, subject)`` of group ``group`` for row ``i``."""
        label = _label(group)
        if group == RECEPTOR_STATUS:
            value = _subtype(*(self.category(c, i) for c, _ in _RECEPTORS))
            return value, f"{label} {value}"
        if group == OC_TREND:
            change = self.flag("oc_change_log2", i)
            slope = self.flag("oc_slope_log2_per_year", i)
            if np.isnan(change):
                return MISSING_TEXT, f"{label} trend"
            value = f"x{2.0**change:.2f} since the first draw"
            if np.isfinite(slope):
                value += f" ({slope:+.2f} doublings a year)"
            return value, f"{label} {value}"
        if group == PREDICTION_DAY:
            day = self.flag("landmark_day", i)
            value = f"day {day:g} after enrollment"
            return value, f"{label} on {value}"
        if group in PERCENTILE_INPUTS or group == "histologic_grade":
            x = self.flag(group, i)
            if np.isnan(x):
                return MISSING_TEXT, label
            value = _with_unit(group, x)
            position = _position(group, x, self.ranges, self.reference)
            if group == "positive_lymph_nodes":
                return value, f"{value} involved{position}"
            return value, f"{label} {value}{position}"
        if group in _BOOLEAN_GROUPS:
            x = self.flag(group, i)
            if group == "visceral_metastasis" and self.category("disease_setting", i) == "early":
                return "no (early disease)", f"no {label} (early disease)"
            if np.isnan(x):
                return MISSING_TEXT, label
            return ("yes", label) if x == 1.0 else ("no", f"no {label}")
        value = self.category(group, i)
        if value is None:
            values = self.objects(group)
            if values is None or pd.isna(values[i]):
                return (MISSING_TEXT, label) if values is not None else ("", label)
            value = str(values[i])
        if group == "menopausal_status":
            value = _MENOPAUSE.get(value, value)
            return value, value
        if group == "disease_setting":
            return value, f"{value} disease"
        if group == "bone_targeted_therapy":
            if value == "none":
                return value, f"no {label}"
            post = self.category("menopausal_status", i)
            if post is not None:
                value += " (postmenopausal)" if post == "post" else " (not postmenopausal)"
            return value, f"{label} {value}"
        return value, f"{label} {value}"

    def entry(self, group: str, i: int, contribution: float, scale: Scale) -> Contribution:
        value, subject = self.describe(group, i)
        if value == MISSING_TEXT:
            subject = f"{subject} missing (imputed at the training median)"
        return {
            "input": group,
            "value": value,
            "contribution": contribution,
            "scale": scale,
            "text": f"{subject}: {contribution:+.2f} to the {scale}",
        }
