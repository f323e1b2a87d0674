"""The cohort's columns as the study analyses them: enrollment marker, indicators, causes and
the clinical covariates of the adjusted models."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.landmark import trajectory_features
from features.transformers import ClinicalFeatures
from training.study.stats.competing import cause_codes

__all__ = [
    "ADJUSTMENT_TERMS",
    "MODEL_CODED_TERMS",
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
    "nodes_4_plus",
    "metastatic",
    "visceral",
    "bone_targeted_therapy",
)

#: Covariates the study takes as the prediction model codes them
#: (:class:`features.transformers.ClinicalFeatures`), so that both share one definition: receptor
#: status, the high nodal category (4 or more involved nodes), the metastatic setting and
#: visceral metastasis (absent by definition in early disease).
MODEL_CODED_TERMS = ("er_positive", "her2_positive", "nodes_4_plus", "metastatic", "visceral")


def clinical_design(patients: pd.DataFrame) -> pd.DataFrame:
    """Clinical covariates of the adjusted models (:data:`ADJUSTMENT_TERMS`), NaN where missing.

    The terms of :data:`MODEL_CODED_TERMS` are the model's own features
    (:class:`features.transformers.ClinicalFeatures`); age is per 10 years, grade 3 is against
    grades 1-2, and bone-targeted therapy is any against none.
    """
    clinical = ClinicalFeatures().fit(patients)
    coded = pd.DataFrame(
        clinical.transform(patients),
        columns=clinical.get_feature_names_out(),
        index=patients.index,
    )
    grade = numeric(patients, "histologic_grade")
    btt = 1.0 - is_value(patients, "bone_targeted_therapy", "none")
    design = pd.DataFrame(
        {
            "age_per_10y": numeric(patients, "age_years") / 10.0,
            "grade_3": np.where(np.isnan(grade), np.nan, grade == 3),
            "bone_targeted_therapy": btt,
            **{term: coded[term].to_numpy() for term in MODEL_CODED_TERMS},
        },
        index=patients.index,
    )
    return design[list(ADJUSTMENT_TERMS)]


def event_codes(frame: pd.DataFrame) -> np.ndarray:
    """Cause codes 0 (censored), 1 (bone metastasis), 2 (death) of the ``event`` column."""
    return cause_codes(frame["event"].to_numpy(dtype=object))
