"""Batch scoring of a validated cohort with a registered model."""

from __future__ import annotations

import pandas as pd

from features.contract import Cohort
from features.draws import enrollment_view
from features.records import contract_rows
from features.schema import PREDICTOR_COLUMNS

OUTPUT_COLUMNS = (
    "patient_id",
    "risk_score",
    "risk_group",
    "p_bone_met_12m",
    "p_bone_met_24m",
    "p_bone_met_36m",
    "p_bone_met_60m",
)


HORIZONS_MONTHS = (12.0, 24.0, 36.0, 60.0)


class ScoringError(RuntimeError):
    """The model could not be loaded or could not score the cohort."""


def load_model(model_uri: str):
    """Load the pyfunc model behind ``model_uri``; a clear error if it does not exist."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as err:
        raise ScoringError(f"cannot load model {model_uri}: {err}") from err


def score_cohort(cohort: Cohort, model_uri: str) -> pd.DataFrame:
    """Predictions at enrollment for every patient, in the batch output layout.

    Outcome columns are ignored (a training cohort can be scored); a day-0 draw fills a
    missing enrollment marker.
    """
    from mlflow.exceptions import MlflowException

    model = load_model(model_uri)
    rows = scoring_rows(cohort)
    try:
        frame = model.predict(rows, params={"horizons_months": list(HORIZONS_MONTHS)})
    except MlflowException as err:
        raise ScoringError(str(err)) from err
    return frame[list(OUTPUT_COLUMNS)]


def scoring_rows(cohort: Cohort) -> pd.DataFrame:
    """The contract rows every engine hands to the model: one per patient, at enrollment.

    Outcome columns are dropped; a day-0 draw fills a missing enrollment marker.
    """
    return contract_rows(
        enrollment_view(cohort.patients, cohort.measurements)[list(PREDICTOR_COLUMNS)]
    )
