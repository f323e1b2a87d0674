"""The served object: fitted features and estimator, risk-group cut-offs and training metadata.

One :class:`RiskModel` is pickled into the MLflow model's artifacts; the pyfunc wrapper
(``training/artifact/pyfunc_model.py``) and batch scoring call :meth:`RiskModel.predict_frame`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from features.schema import CONTRACT_VERSION
from features.transformers import (
    ClinicalFeatures,
    MarkerFeatures,
    Rows,
    is_missing,
    raw_missing,
    transform_rows,
)
from training.models.competing import DAYS_PER_MONTH
from training.models.ipcw import IPCWHorizonBase

RISK_GROUPS = ("low", "intermediate", "high")

#: Inputs the feature builders read, for "missing: imputed" warnings and the model card.
MODEL_INPUTS: tuple[str, ...] = ClinicalFeatures.columns_in
MARKER_INPUTS: tuple[str, ...] = MarkerFeatures.columns_in


def predict_pipeline(
    pipeline: Pipeline, typed: Rows, horizons_months: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Risk scores and ``(n, horizons)`` cumulative incidences of a fitted features+model pipeline.

    Incidences are made non-decreasing in time across the horizons, which may come in any
    order (the output keeps the order given).
    ``typed`` is a frame or a mapping of column arrays of typed contract rows; the features are
    built by :func:`features.transformers.transform_rows` and the estimator answers score and
    incidence in one call when it can (``predict_with_incidence``).
    """
    score, cif, _ = _predict(pipeline, typed, horizons_months, death=False)
    return score, cif


def predict_competing(
    pipeline: Pipeline, typed: Rows, horizons_months: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """As :func:`predict_pipeline`, plus the cumulative incidence of death without bone
    metastasis by each horizon (``(n, horizons)``, non-decreasing in time), or None when the
    estimator cannot estimate it (:func:`estimates_death`)."""
    return _predict(pipeline, typed, horizons_months, death=estimates_death(pipeline[-1]))


def estimates_death(estimator) -> bool:
    """Whether a fitted family estimator answers the competing death (``predict_incidences``).

    False for an IPCW classifier pickled before its death classifiers existed (contract 1.0).
    """
    if isinstance(estimator, IPCWHorizonBase):
        return hasattr(estimator, "death_classifiers_")
    return hasattr(estimator, "predict_incidences")


def _predict(
    pipeline: Pipeline, typed: Rows, horizons_months: Sequence[float], death: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    X = transform_rows(pipeline[:-1], typed)
    estimator = pipeline[-1]
    times = np.asarray(horizons_months, dtype=float) * DAYS_PER_MONTH
    cif_death = None
    if death and hasattr(estimator, "predict_with_incidences"):
        score, cif, cif_death = estimator.predict_with_incidences(X, times)
    elif death:
        score = estimator.predict(X)
        cif, cif_death = estimator.predict_incidences(X, times)
    elif hasattr(estimator, "predict_with_incidence"):
        score, cif = estimator.predict_with_incidence(X, times)
    else:
        score, cif = estimator.predict(X), estimator.predict_cumulative_incidence(X, times)
    order = np.argsort(times, kind="stable")
    return (
        score,
        _running_max(cif, order),
        None if cif_death is None else _running_max(cif_death, order),
    )


def _running_max(cif: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Make incidences non-decreasing along the horizons taken in ``order``."""
    monotone = np.empty_like(cif)
    monotone[:, order] = np.maximum.accumulate(cif[:, order], axis=1)
    return monotone


def _take(typed: Rows, rows: np.ndarray) -> Rows:
    """The selected rows (boolean mask) of a frame or of a mapping of column arrays."""
    if isinstance(typed, pd.DataFrame):
        return typed.loc[rows].reset_index(drop=True)
    return {name: np.asarray(values)[rows] for name, values in typed.items()}


def _column(typed: Rows, name: str, dtype: type = float) -> np.ndarray:
    values = typed[name]
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=dtype)
    return np.asarray(values, dtype=dtype)


@dataclass
class PredictionBatch:
    """Predictions for a batch of patients, as arrays (the service's and the frame's source).

    Attributes
    ----------
    patient_id : numpy.ndarray of object
    risk_score : numpy.ndarray
        NaN for a patient with bone metastasis at enrollment (no risk to predict).
    risk_group : numpy.ndarray of object
        ``low``/``intermediate``/``high``, None where there is no score.
    probability : numpy.ndarray
        ``(n, horizons)`` cumulative incidence of bone metastasis, NaN where there is no score.
    horizons_months : tuple of float
    warnings : list of list of str
    explanation : list of list of dict or None
        With ``explain``: per patient the largest contributions (``training.artifact.explain``).
    death_probability : numpy.ndarray or None
        ``(n, horizons)`` cumulative incidence of death without bone metastasis (the competing
        event, contract 1.1), NaN where there is no score; None when the model cannot
        estimate it.
    """

    patient_id: np.ndarray
    risk_score: np.ndarray
    risk_group: np.ndarray
    probability: np.ndarray
    horizons_months: tuple[float, ...]
    warnings: list[list[str]]
    explanation: list[list[dict]] | None = None
    death_probability: np.ndarray | None = None

    def frame(self) -> pd.DataFrame:
        """One row per patient: id, score, group, ``p_bone_met_<h>m`` columns, ``p_death_<h>m``
        columns (when the model estimates death), JSON warnings (and JSON explanation)."""
        out = pd.DataFrame({"patient_id": self.patient_id})
        out["risk_score"] = self.risk_score
        out["risk_group"] = self.risk_group
        for j, h in enumerate(self.horizons_months):
            out[probability_column(h)] = self.probability[:, j]
        if self.death_probability is not None:
            for j, h in enumerate(self.horizons_months):
                out[probability_column(h, "death")] = self.death_probability[:, j]
        out["warnings"] = [json.dumps(w) for w in self.warnings]
        if self.explanation is not None:
            out["explanation"] = [json.dumps(e) for e in self.explanation]
        return out


def probability_column(months: float, event: str = "bone_met") -> str:
    """Name of the output column for a horizon, e.g. ``p_bone_met_24m`` (``event="death"``:
    ``p_death_24m``)."""
    return f"p_{event}_{float(months):g}m"


@dataclass
class RiskModel:
    """A fitted model family with everything needed to answer a prediction.

    Attributes
    ----------
    family : str
        Model family name (``cox_ridge``, ``logistic_ipcw``, ...).
    pipeline : sklearn.pipeline.Pipeline
        ``features`` (fitted feature pipeline) then ``model`` (fitted estimator).
    risk_cutoffs : tuple of float
        Risk-score tertiles of the training split: below the first is ``low``, at or above the
        second ``high``.
    horizons_months : tuple of int
        Default horizons of the output.
    max_follow_up_months : float
        Horizon up to which the training data had patients under follow-up; a longer horizon
        gets a warning.
    include_marker : bool
        Whether the osteocalcin features are used.
    training_ranges : dict
        Per numeric input, the 1st and 99th percentile seen in training.
    landmark_days : tuple of float
        Empty for a model that predicts from enrollment. Otherwise the landmarks (days since
        enrollment) of a landmark supermodel: rows carry ``landmark_day`` (the prediction day)
        and the trajectory columns of :mod:`features.landmark` built from the draws known by
        then, and probabilities count from the prediction day. A prediction day after the last
        landmark is predicted as at the last landmark, with a warning.
    competing_death : bool
        True: death without bone metastasis is a modelled competing event. False: the
        training data had too few deaths (``training.fitting.data.competing_deaths``), the death
        hazard is zero and the incidence of bone metastasis is ``1 - S(t)``.
    """

    family: str
    pipeline: Pipeline
    risk_cutoffs: tuple[float, float]
    horizons_months: tuple[int, ...]
    max_follow_up_months: float
    include_marker: bool = True
    training_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    contract_version: int | str = CONTRACT_VERSION  # an int (1) in models of bonemet < 1.2
    training_percentiles: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    landmark_days: tuple[float, ...] = ()
    competing_death: bool = True

    @property
    def competing_risk(self) -> str:
        """How death is handled, in words (``GET /model``, the model card, the CLI)."""
        if self.competing_death:
            return "death without bone metastasis modelled as a competing event"
        return (
            "no competing death modelled: death hazard taken as zero (too few deaths in the "
            "training data), incidence of bone metastasis = 1 - S(t)"
        )

    @property
    def estimator(self):
        return self.pipeline[-1]

    @property
    def inputs(self) -> tuple[str, ...]:
        return MODEL_INPUTS + (MARKER_INPUTS if self.include_marker else ())

    @property
    def uses_trajectory(self) -> bool:
        """Whether the model reads the marker's trajectory (a landmark model with the marker)."""
        return bool(self.landmark_days) and self.include_marker

    def _landmark_rows(self, typed: Rows, warnings: list[list[str]]) -> Rows:
        """Rows with the landmark columns a landmark model reads.

        Rows without them (plain contract rows) are predictions at enrollment from the
        enrollment draw; a prediction day after the last landmark is clipped to it.
        """
        from features.draws import MARKER_FIELDS, trajectory_at
        from features.landmark import TRAJECTORY_FEATURES

        columns = {c: np.asarray(typed[c]) for c in typed}  # a frame's or a mapping's columns
        n = len(columns["patient_id"])
        if "landmark_day" not in columns:
            enrollment = np.column_stack([_column(columns, f) for f in MARKER_FIELDS])
            no_draws = (np.empty(0),) * 4
            values = np.array([trajectory_at(tuple(e), no_draws, 0.0) for e in enrollment])
            values = values.reshape(n, len(TRAJECTORY_FEATURES))
            columns["landmark_day"] = np.zeros(n)
            for j, name in enumerate(TRAJECTORY_FEATURES):
                columns[name] = values[:, j]
        day = _column(columns, "landmark_day")
        last = float(self.landmark_days[-1])
        late = day > last
        for i in np.flatnonzero(late):
            warnings[i].append(
                f"prediction_day {day[i]:g} is after the last training landmark (day {last:g}): "
                f"predicted as at day {last:g} with the draws known by day {day[i]:g}"
            )
        if late.any():
            columns["landmark_day"] = np.minimum(day, last)
        return columns

    @property
    def estimates_death(self) -> bool:
        """Whether predictions include the competing death (:func:`estimates_death`)."""
        return estimates_death(self.estimator)

    def risk_group(self, score: np.ndarray) -> np.ndarray:
        """``low``/``intermediate``/``high`` by the stored cut-offs."""
        idx = np.searchsorted(np.asarray(self.risk_cutoffs), score, side="right")
        return np.asarray(RISK_GROUPS, dtype=object)[idx]

    def predict_arrays(
        self, typed: Rows, horizons_months: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Risk scores and an ``(n, horizons)`` array of cumulative incidences."""
        return predict_pipeline(self.pipeline, typed, horizons_months)

    def warnings_for(self, typed: Rows, horizons_months: Sequence[float]) -> list[list[str]]:
        """Per-patient warnings: imputed inputs, values outside training, inputs this model
        ignores, long horizons."""
        n = len(typed["patient_id"])
        out: list[list[str]] = [[] for _ in range(n)]
        missing_inputs = raw_missing(typed)
        for column in MODEL_INPUTS:
            for i in np.flatnonzero(missing_inputs[column]):
                out[i].append(f"{column} missing: imputed")
        given = {c: ~is_missing(typed[c]) for c in MARKER_INPUTS}
        if self.include_marker:
            has_marker = given["oc_positive_percent"] | (
                given["oc_positive_events"] & given["pbmc_events"]
            )
            for i in np.flatnonzero(~has_marker):
                out[i].append("oc_positive_percent missing: imputed")
        else:
            for column in MARKER_INPUTS:
                for i in np.flatnonzero(given[column]):
                    out[i].append(
                        f"{column} ignored: this model does not use the marker (clinical-only)"
                    )
        for column, (lo, hi) in self.training_ranges.items():
            values = _column(typed, column)
            with np.errstate(invalid="ignore"):
                outside = (values < lo) | (values > hi)
            for i in np.flatnonzero(outside):
                out[i].append(f"{column} {values[i]:g} outside the training range {lo:g}-{hi:g}")
        long = [h for h in horizons_months if h > self.max_follow_up_months]
        if long:
            text = (
                f"horizon(s) {', '.join(f'{h:g}' for h in long)} months beyond the training "
                f"follow-up ({self.max_follow_up_months:.0f} months): probability held at the "
                "last estimable value"
            )
            for w in out:
                w.append(text)
        return out

    def predict_batch(
        self,
        typed: Rows,
        horizons_months: Sequence[float] | None = None,
        explain: bool = False,
    ) -> PredictionBatch:
        """Predictions for typed contract rows, as arrays.

        Parameters
        ----------
        typed : pandas.DataFrame or mapping of column arrays
            Typed contract rows (``features.contract.check_patients`` or ``check_records``
            output): every predictor column.
        horizons_months : sequence of float, optional
            Defaults to the model's horizons.
        explain : bool, default False
            Add each patient's largest contributions to the risk score.

        Patients with bone metastasis at enrollment get no score and no probabilities (NaN),
        and a warning saying why.
        """
        horizons = tuple(float(h) for h in (horizons_months or self.horizons_months))
        ids = _column(typed, "patient_id", object)
        n = ids.shape[0]
        landmark_notes: list[list[str]] = [[] for _ in range(n)]
        if self.landmark_days:
            typed = self._landmark_rows(typed, landmark_notes)
        score = np.full(n, np.nan)
        cif = np.full((n, len(horizons)), np.nan)
        death = np.full((n, len(horizons)), np.nan) if self.estimates_death else None
        group = np.full(n, None, dtype=object)
        already = _column(typed, "bone_metastasis_at_enrollment") == 1.0
        free = ~already
        if free.any():
            rows = typed if free.all() else _take(typed, free)
            score[free], cif[free], found = predict_competing(self.pipeline, rows, horizons)
            if death is not None:
                death[free] = found
            group[free] = self.risk_group(score[free])
        warnings = self.warnings_for(typed, horizons)
        if death is None:
            for i in np.flatnonzero(free):
                warnings[i].append(
                    "death_probability not available: this model version was trained before "
                    "contract 1.1 and does not estimate the competing death"
                )
        for i, notes in enumerate(landmark_notes):
            warnings[i] = notes + warnings[i]
        for i in np.flatnonzero(already):
            warnings[i] = [
                "bone metastasis present at enrollment: no risk of a first bone metastasis "
                "to predict"
            ]
        explanation = None
        if explain:
            from training.artifact.explain import explain as explain_rows

            frame = typed if isinstance(typed, pd.DataFrame) else pd.DataFrame(typed)
            explanation = explain_rows(self, frame)
        return PredictionBatch(
            ids, score, group, cif, horizons, warnings, explanation, death_probability=death
        )

    def predict_frame(
        self,
        typed: Rows,
        horizons_months: Sequence[float] | None = None,
        explain: bool = False,
    ) -> pd.DataFrame:
        """:meth:`predict_batch` as a frame (:meth:`PredictionBatch.frame`): patient_id,
        risk_score, risk_group, ``p_bone_met_<h>m`` per horizon, warnings (a JSON list) and,
        with ``explain``, explanation (a JSON list)."""
        return self.predict_batch(typed, horizons_months, explain).frame()
