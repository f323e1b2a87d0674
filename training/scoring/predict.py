"""Batch scoring of a validated cohort with a registered model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.draws import enrollment_view, rows_at
from features.records import contract_rows
from features.schema import DEFAULT_HORIZONS_MONTHS, PREDICTOR_COLUMNS
from features.vocabulary import probability_column


def output_columns(horizons_months: Sequence[float]) -> tuple[str, ...]:
    """The batch output's columns: id, score, group, then per event (bone metastasis, death)
    and horizon the probability and its interval bounds (contract 1.2, level
    :data:`training.artifact.intervals.INTERVAL_LEVEL`), then the warnings."""
    columns = ["patient_id", "risk_score", "risk_group"]
    for event in ("bone_met", "death"):
        for h in horizons_months:
            name = probability_column(h, event)
            columns += [name, f"{name}_low", f"{name}_high"]
    return (*columns, "warnings")


OUTPUT_COLUMNS = output_columns(DEFAULT_HORIZONS_MONTHS)


class ScoringError(RuntimeError):
    """The model could not be loaded or could not score the cohort."""


def load_model(model_uri: str):
    """Load the pyfunc model behind ``model_uri``; a clear error if it does not exist."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from training.registry.versions import authentication_failed, authentication_message

    try:
        return mlflow.pyfunc.load_model(model_uri)
    except (MlflowException, OSError) as err:
        if authentication_failed(err):
            raise ScoringError(authentication_message()) from err
        raise ScoringError(f"cannot load model {model_uri}: {err}") from err


def predict_patients(
    risk_model,
    patients: pd.DataFrame,
    measurements: pd.DataFrame | None = None,
    prediction_day: float | None = None,
    horizons_months: Sequence[float] = DEFAULT_HORIZONS_MONTHS,
) -> pd.DataFrame:
    """Predictions for typed patients rows: frame in, frame out (the local scoring engine).

    Without ``prediction_day`` every patient is scored at enrollment (a day-0 draw fills a
    missing enrollment marker, later draws are not used). With it, each patient is scored at
    that day with the draws known by then, by the rule of the prediction API
    (:func:`features.draws.rows_at`): a landmark model reads the marker's trajectory, a model
    trained at enrollment the latest marker (and says so in the warnings). Horizons count from
    that day for a patient still free of bone metastasis then (the API's rule): a patient whose
    outcome the table records on or before it gets no prediction or a warning
    (:func:`outcome_by_day`).

    Parameters
    ----------
    risk_model : training.artifact.risk_model.RiskModel
        The fitted model (``load_model(uri).unwrap_python_model().risk_model``).
    patients, measurements : pandas.DataFrame
        Typed tables (:func:`features.contract.validate_cohort`); outcome columns are ignored.
    prediction_day : float, optional
        Days since enrollment.
    horizons_months : sequence of float
        Horizons counted from the prediction day.

    Returns
    -------
    pandas.DataFrame
        ``patient_id``, ``risk_score``, ``risk_group``, one ``p_bone_met_<h>m`` column per
        horizon, one ``p_death_<h>m`` column per horizon (the cumulative incidence of death
        without bone metastasis; empty for a model that does not estimate it) and ``warnings``
        (a JSON list), one row per patient in input order.
    """
    if prediction_day is None:
        rows = enrollment_view(patients, measurements).reset_index(drop=True)
        notes = None
    else:
        rows, notes = rows_at(
            patients,
            measurements,
            prediction_day,
            landmark=bool(risk_model.landmark_days),
            uses_marker=bool(risk_model.include_marker),
        )
    rows = rows.drop(columns=["time_days", "event"], errors="ignore")
    batch = risk_model.predict_batch(rows, horizons_months)
    if notes is not None:
        for i, extra in enumerate(notes):
            batch.warnings[i] = extra + batch.warnings[i]
        ended, known = outcome_by_day(patients, prediction_day)
        for i in np.flatnonzero(ended):
            batch.risk_score[i] = np.nan
            batch.risk_group[i] = None
            batch.probability[i] = np.nan
            if batch.death_probability is not None:
                batch.death_probability[i] = np.nan
        for i, note in enumerate(known):
            if note:
                batch.warnings[i] = [note] if ended[i] else [note, *batch.warnings[i]]
    return batch.frame()


def outcome_by_day(patients: pd.DataFrame, prediction_day: float) -> tuple[np.ndarray, list[str]]:
    """Which patients' recorded outcome came on or before ``prediction_day``.

    Probabilities from a prediction day are for a patient still free of bone metastasis then.
    A patient whose bone metastasis or death (``event``) the table records on or before that
    day (``time_days``) is no longer at risk: no prediction, a warning saying why. One whose
    follow-up ended (censored) on or before it is scored as if still free of bone metastasis,
    with a warning that this is unknown. A table without outcome columns has no such patient.

    Returns
    -------
    ended : numpy.ndarray of bool
        Patients with no prediction.
    notes : list of str
        Per patient, the warning ("" when none).
    """
    n = len(patients)
    if not {"time_days", "event"} <= set(patients.columns):
        return np.zeros(n, dtype=bool), [""] * n
    day = float(prediction_day)
    time = pd.to_numeric(patients["time_days"], errors="coerce").to_numpy(dtype=float)
    event = patients["event"].astype(object).to_numpy()
    before = np.isfinite(time) & (time <= day)
    ended = before & np.isin(event, ["bone_metastasis", "death"])
    notes = []
    for i in range(n):
        if ended[i]:
            what = str(event[i]).replace("_", " ")
            notes.append(
                f"{what} recorded on day {time[i]:g}, on or before prediction_day {day:g}: "
                "no longer at risk, no prediction"
            )
        elif before[i]:
            notes.append(
                f"follow-up ended on day {time[i]:g} (censored), on or before prediction_day "
                f"{day:g}: predicted as if still free of bone metastasis then, which is unknown"
            )
        else:
            notes.append("")
    return ended, notes


def score_cohort(
    cohort: Cohort, model_uri: str, prediction_day: float | None = None
) -> pd.DataFrame:
    """Predictions for every patient of ``cohort`` in the batch output layout.

    See :func:`predict_patients` (at enrollment, or at ``prediction_day`` with the draws known
    by then); works for every registered model, landmark models included.
    """
    risk_model = load_risk_model(model_uri)
    return output_frame(risk_model, cohort.patients, cohort.measurements, prediction_day)


def load_risk_model(model_uri: str):
    """The fitted risk model of the registered bonemet model behind ``model_uri``.

    Raises
    ------
    ScoringError
        When the model cannot be loaded or is not a bonemet risk model.
    """
    model = load_model(model_uri)
    try:
        return model.unwrap_python_model().risk_model
    except AttributeError as err:
        raise ScoringError(f"{model_uri} is not a bonemet risk model: {err}") from err


def output_frame(
    risk_model,
    patients: pd.DataFrame,
    measurements: pd.DataFrame | None,
    prediction_day: float | None,
) -> pd.DataFrame:
    """:func:`predict_patients` in the batch output layout (:data:`OUTPUT_COLUMNS`).

    Raises
    ------
    ScoringError
        When the model cannot score these rows.
    """
    try:
        frame = predict_patients(risk_model, patients, measurements, prediction_day)
    except ValueError as err:
        raise ScoringError(str(err)) from err
    # A model trained before contract 1.1 has no p_death columns, one logged before 1.2 no
    # interval bounds: they are left empty (its warnings say why).
    return frame.reindex(columns=list(OUTPUT_COLUMNS))


def scoring_rows(cohort: Cohort) -> pd.DataFrame:
    """The contract rows every engine hands to the model: one per patient, at enrollment.

    Outcome columns are dropped; a day-0 draw fills a missing enrollment marker.
    """
    return contract_rows(
        enrollment_view(cohort.patients, cohort.measurements)[list(PREDICTOR_COLUMNS)]
    )
