"""The cohort's columns as the study analyses them: enrollment marker, indicators, causes and
the clinical covariates of the adjusted models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.landmark import trajectory_features
from training.study.stats.competing import cause_codes

__all__ = [
    "ADJUSTMENT_TERMS",
    "clinical_design",
    "enrollment_log2",
    "event_codes",
    "is_value",
    "numeric",
]


def enrollment_log2(cohort: Cohort) -> np.ndarray:
    """log2 enrollment marker per patients row (day-0 draw; counts preferred, see landmark)."""
    return trajectory_features(cohort.patients, cohort.measurements, 0.0)[
        "oc_latest_log2"
    ].to_numpy()


def is_value(frame: pd.DataFrame, column: str, value: str) -> np.ndarray:
    """1.0 where ``column`` equals ``value``, 0.0 where it differs, NaN where it is missing."""
    col = frame[column]
    return np.where(col.isna().to_numpy(), np.nan, (col.to_numpy(dtype=object) == value) * 1.0)


def numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    """``column`` as floats (NaN where missing)."""
    return frame[column].to_numpy(dtype=float)


#: Clinical covariates of the adjusted Aim 2 model (complete cases).
ADJUSTMENT_TERMS = (
    "age_per_10y",
    "er_positive",
    "her2_positive",
    "grade_3",
    "nodes_over_4",
    "metastatic",
    "visceral",
    "bone_targeted_therapy",
)


def clinical_design(patients: pd.DataFrame) -> pd.DataFrame:
    """Clinical covariates of the adjusted models, NaN where the input is missing.

    Visceral metastasis is 0 in early disease (known absent there, by the contract).
    """
    metastatic = is_value(patients, "disease_setting", "metastatic")
    visceral = np.where(metastatic == 0.0, 0.0, numeric(patients, "visceral_metastasis"))
    grade = numeric(patients, "histologic_grade")
    nodes = numeric(patients, "positive_lymph_nodes")
    btt = 1.0 - is_value(patients, "bone_targeted_therapy", "none")
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(
            {
                "age_per_10y": numeric(patients, "age_years") / 10.0,
                "er_positive": is_value(patients, "er_status", "positive"),
                "her2_positive": is_value(patients, "her2_status", "positive"),
                "grade_3": np.where(np.isnan(grade), np.nan, grade == 3),
                "nodes_over_4": np.where(np.isnan(nodes), np.nan, nodes > 4),
                "metastatic": metastatic,
                "visceral": visceral,
                "bone_targeted_therapy": btt,
            }
        )


def event_codes(frame: pd.DataFrame) -> np.ndarray:
    """Cause codes 0 (censored), 1 (bone metastasis), 2 (death) of the ``event`` column."""
    return cause_codes(frame["event"].to_numpy(dtype=object))
