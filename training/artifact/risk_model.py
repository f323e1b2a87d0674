"""The served object: fitted features and estimator, risk-group cut-offs and training metadata.

One :class:`RiskModel` is pickled into the MLflow model's artifacts; the pyfunc wrapper
(``training/artifact/pyfunc_model.py``) and batch scoring call :meth:`RiskModel.predict_frame`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
from features.vocabulary import BONE_METASTASIS, DEATH, probability_column
from training.artifact.intervals import (
    NO_INTERVAL_WARNING,
    Uncertainty,
    combine,
    logit,
    marker_bounds,
)
from training.artifact.recalibration import Recalibration
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
    return predict_features(
        pipeline[-1], transform_rows(pipeline[:-1], typed), horizons_months, death
    )


def predict_features(
    estimator, X: np.ndarray, horizons_months: Sequence[float], death: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """As :func:`predict_competing` from the features the estimator sees (``X``)."""
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


#: The columns :func:`_stack_marker` moves to the marker's bounds.
_MARKER_STACKED = frozenset(
    {"oc_positive_percent", "oc_positive_events", "pbmc_events", "oc_latest_log2"}
)


def _stack_marker(rows: Rows, counted: np.ndarray, pct_lo: np.ndarray, pct_hi: np.ndarray) -> Rows:
    """``rows`` followed by the ``counted`` rows at ``pct_lo`` and again at ``pct_hi`` (the
    marker percent, and the latest draw of a landmark row, moved to the bound; the counts of
    those copies removed, since the features read the counts first)."""
    from features.marker import marker_percent

    columns = {c: np.asarray(rows[c]) for c in rows}
    point = marker_percent(
        *(np.asarray(columns[c], dtype=float)[counted] for c in MARKER_INPUTS)
    )
    # Every other column: its rows, then the counted rows twice, by one index per column.
    counted_rows = np.asarray(counted, dtype=bool).nonzero()[0]
    take = np.concatenate([np.arange(len(counted)), counted_rows, counted_rows])
    stacked = {}
    for name, values in columns.items():
        if name not in _MARKER_STACKED:
            stacked[name] = values[take]
            continue
        part = values[counted]
        if name == "oc_positive_percent":
            parts = [values, pct_lo, pct_hi]
        elif name in ("oc_positive_events", "pbmc_events"):
            gone = np.full(part.shape, np.nan)  # the bound is given as the percent
            parts = [values.astype(float), gone, gone]
        elif name == "oc_latest_log2":
            with np.errstate(divide="ignore", invalid="ignore"):
                shift_lo = np.log2(np.maximum(pct_lo, 1e-4) / np.maximum(point, 1e-4))
                shift_hi = np.log2(np.maximum(pct_hi, 1e-4) / np.maximum(point, 1e-4))
            base = part.astype(float)
            parts = [values, base + np.nan_to_num(shift_lo), base + np.nan_to_num(shift_hi)]
        stacked[name] = np.concatenate(parts)
    if isinstance(rows, pd.DataFrame):
        return pd.DataFrame(stacked)
    return stacked


#: The events' stored covariances stacked, per (Uncertainty, events): built once per version.
_STACKED_COV: dict[tuple[int, tuple[str, ...]], tuple[Uncertainty, np.ndarray | None]] = {}


def _stacked_cov(uncertainty: Uncertainty, events: tuple[str, ...]) -> np.ndarray | None:
    """``(E, K, q, q)``: the covariances of ``events`` stacked (None unless each has one, of
    one shape), kept for the version's :class:`Uncertainty` object (a service serves few)."""
    key = (id(uncertainty), events)
    found = _STACKED_COV.get(key)
    if found is not None and found[0] is uncertainty:  # the same object, not a reused id
        return found[1]
    covs = [uncertainty.cov.get(e) for e in events]
    stacked = None
    if all(c is not None and c.shape == covs[0].shape for c in covs):
        stacked = np.stack(covs)
        stacked.flags.writeable = False
    if len(_STACKED_COV) >= 64:
        _STACKED_COV.clear()
    _STACKED_COV[key] = (uncertainty, stacked)
    return stacked


def _positions(mask: Any) -> np.ndarray:
    """The positions where a 1-D mask is true: :func:`numpy.flatnonzero` without its Python
    wrappers (called a score of times per answer)."""
    return np.asarray(mask, dtype=bool).nonzero()[0]


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
    low, high, death_low, death_high : numpy.ndarray or None
        Bounds of the :data:`~training.artifact.intervals.INTERVAL_LEVEL` interval of each
        probability (contract 1.2, :mod:`training.artifact.intervals`); None for a version
        logged without interval data.
    """

    patient_id: np.ndarray
    risk_score: np.ndarray
    risk_group: np.ndarray
    probability: np.ndarray
    horizons_months: tuple[float, ...]
    warnings: list[list[str]]
    explanation: list[list[dict]] | None = None
    death_probability: np.ndarray | None = None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    death_low: np.ndarray | None = None
    death_high: np.ndarray | None = None
    #: With ``explain``: per patient ``{"ranges": [...], "too_uncertain": bool}``
    #: (:mod:`training.artifact.missing`).
    missing: list[dict] | None = None

    def frame(self) -> pd.DataFrame:
        """One row per patient: id, score, group, ``p_bone_met_<h>m`` columns with their
        interval bounds ``p_bone_met_<h>m_low`` and ``_high`` (when the version has interval
        data), ``p_death_<h>m`` columns and bounds (when the model estimates death), JSON
        warnings (and JSON explanation)."""
        out = pd.DataFrame({"patient_id": self.patient_id})
        out["risk_score"] = self.risk_score
        out["risk_group"] = self.risk_group
        tables = [("bone_met", self.probability, self.low, self.high)]
        if self.death_probability is not None:
            tables.append(("death", self.death_probability, self.death_low, self.death_high))
        for event, point, low, high in tables:
            for j, h in enumerate(self.horizons_months):
                name = probability_column(h, event)
                out[name] = point[:, j]
                if low is not None and high is not None:
                    out[f"{name}_low"] = low[:, j]
                    out[f"{name}_high"] = high[:, j]
        out["warnings"] = [json.dumps(w) for w in self.warnings]
        if self.explanation is not None:
            out["explanation"] = [json.dumps(e) for e in self.explanation]
        return out


def development_facts(X: pd.DataFrame, y: np.ndarray) -> dict:
    """Who a version was fitted on, for the page and ``GET /model``: patients, first bone
    metastases, deaths before bone metastasis, median and longest follow-up (years), the share
    in each disease setting (a landmark model's rows counted once per patient)."""
    first = np.ones(len(X), dtype=bool)
    if "landmark_day" in X.columns:  # every patient has a row at landmark 0
        first = X["landmark_day"].to_numpy(dtype=float) == 0.0
    cause = y["cause"][first]
    years = y["time"][first] / (12.0 * DAYS_PER_MONTH)
    settings = X.loc[first, "disease_setting"].astype(str).value_counts(normalize=True)
    return {
        "patients": int(first.sum()),
        "bone_metastases": int((cause == BONE_METASTASIS).sum()),
        "deaths_before_bone_metastasis": int((cause == DEATH).sum()),
        "median_follow_up_years": float(np.median(years)) if years.size else None,
        "longest_follow_up_years": float(np.max(years)) if years.size else None,
        "disease_setting": {str(k): float(v) for k, v in settings.items()},
    }


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
    #: Estimation uncertainty (:func:`training.artifact.intervals.fit_uncertainty`); None in
    #: versions logged before contract 1.2 (answers without intervals, with a warning).
    uncertainty: Uncertainty | None = None
    #: Per input, a few plausible values from the training data (:func:`plausible_values`):
    #: how far a missing input could move the answer. None in versions logged before.
    plausible: dict[str, tuple] | None = None
    #: The population the version was fitted on (:func:`development_facts`): patients, events,
    #: follow-up, settings. None in versions logged before contract 1.2.
    development: dict | None = None
    #: Held-out metrics with their bootstrap bounds (``<metric>``, ``<metric>_lo``,
    #: ``<metric>_hi``), set by the training run before logging. None when not recorded.
    performance: dict[str, float] | None = None
    #: Logistic recalibration of the incidence of bone metastasis, applied to every answer
    #: (:mod:`training.artifact.recalibration`); None when the training run found no systematic
    #: error to correct, and in versions logged before it existed.
    recalibration: Recalibration | None = None

    def recalibrate(
        self, cif: np.ndarray, death: np.ndarray | None, horizons_months: Sequence[float]
    ) -> np.ndarray:
        """The stored recalibration applied to ``(n, horizons)`` incidences of bone metastasis
        (as they are without one).

        With the competing death's incidence ``death``, each answer is kept at most
        ``1 - death`` (the two incidences never sum above 1), then at most every later
        horizon's (the largest non-decreasing curve under the capped one): the recalibrated
        curve stays non-decreasing in time and the death's is served as estimated.
        """
        fit = getattr(self, "recalibration", None)  # absent from versions pickled before
        if fit is None:
            return cif
        out = fit.apply(cif)
        if death is None:
            return out
        out = np.minimum(out, 1.0 - death)
        order = np.argsort(np.asarray(horizons_months, dtype=float), kind="stable")
        later_min = np.minimum.accumulate(out[:, order][:, ::-1], axis=1)[:, ::-1]
        out[:, order] = later_min
        return out

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
        for i in _positions(late):
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
        """Risk scores and an ``(n, horizons)`` array of cumulative incidences (recalibrated
        when the version stores a recalibration)."""
        if getattr(self, "recalibration", None) is None:
            return predict_pipeline(self.pipeline, typed, horizons_months)
        score, cif, death = predict_competing(self.pipeline, typed, horizons_months)
        return score, self.recalibrate(cif, death, horizons_months)

    def warnings_for(self, typed: Rows, horizons_months: Sequence[float]) -> list[list[str]]:
        """Per-patient warnings: imputed inputs, values outside training, inputs this model
        ignores, long horizons."""
        n = len(typed["patient_id"])
        out: list[list[str]] = [[] for _ in range(n)]
        missing_inputs = raw_missing(typed)
        # Every column's mask at once: nonzero of a (columns, n) table lists the places column
        # by column, each in row order, so each patient's warnings keep the columns' order.
        table = np.array([missing_inputs[c] for c in MODEL_INPUTS], dtype=bool).reshape(-1, n)
        for c, i in zip(*table.nonzero(), strict=True):
            out[i].append(f"{MODEL_INPUTS[c]} missing: imputed")
        given = {c: ~is_missing(typed[c]) for c in MARKER_INPUTS}
        if self.include_marker:
            has_marker = given["oc_positive_percent"] | (
                given["oc_positive_events"] & given["pbmc_events"]
            )
            for i in _positions(~has_marker):
                out[i].append("oc_positive_percent missing: imputed")
        else:
            for column in MARKER_INPUTS:
                for i in _positions(given[column]):
                    out[i].append(
                        f"{column} ignored: this model does not use the marker (clinical-only)"
                    )
        ranges = list(self.training_ranges.items())
        if ranges:
            values = np.array([_column(typed, c) for c, _ in ranges], dtype=float).reshape(-1, n)
            limits = np.array([bounds for _, bounds in ranges], dtype=float)
            with np.errstate(invalid="ignore"):  # NaN: not outside
                outside = (values < limits[:, :1]) | (values > limits[:, 1:])
            for c, i in zip(*outside.nonzero(), strict=True):
                column, (lo, hi) = ranges[c]
                out[i].append(
                    f"{column} {values[c, i]:g} outside the training range {lo:g}-{hi:g}"
                )
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
        already = _column(typed, "bone_metastasis_at_enrollment") == 1.0
        free = ~already
        if n and free.all():
            # The usual case (every row free): the predictions are the tables themselves.
            score, cif, death, bounds = self._predict_recalibrated(typed, horizons)
            group = self.risk_group(score)
        else:
            score, cif, death, group, bounds = self._predict_free(typed, free, horizons)
        warnings = self.warnings_for(typed, horizons)
        if self.uncertainty is None:
            for i in _positions(free):
                warnings[i].append(NO_INTERVAL_WARNING)
        if death is None:
            for i in _positions(free):
                warnings[i].append(
                    "death_probability not available: this model version was trained before "
                    "contract 1.1 and does not estimate the competing death"
                )
        for i, notes in enumerate(landmark_notes):
            warnings[i] = notes + warnings[i]
        for i in _positions(already):
            warnings[i] = [
                "bone metastasis present at enrollment: no risk of a first bone metastasis "
                "to predict"
            ]
        explanation = missing = None
        if explain:
            from training.artifact.explain import explain as explain_rows

            frame = typed if isinstance(typed, pd.DataFrame) else pd.DataFrame(typed)
            explanation = explain_rows(self, frame, given_only=True)
            missing = self.missing_report(frame, horizons, free)
        low, high, death_low, death_high = bounds if bounds is not None else (None,) * 4
        return PredictionBatch(
            ids,
            score,
            group,
            cif,
            horizons,
            warnings,
            explanation,
            death_probability=death,
            low=low,
            high=high,
            death_low=death_low,
            death_high=death_high,
            missing=missing,
        )

    def missing_report(
        self, frame: pd.DataFrame, horizons: Sequence[float], free: np.ndarray
    ) -> list[dict]:
        """Per row the missing inputs' ranges at the headline horizon and whether too little is
        known to show a number (:mod:`training.artifact.missing`)."""
        from features.schema import HEADLINE_HORIZON_MONTHS
        from training.artifact.missing import missing_inputs, missing_ranges, too_uncertain

        months = float(HEADLINE_HORIZON_MONTHS)
        ranges = missing_ranges(self, frame, months, horizons)
        plausible = self.plausible or {}
        absent = missing_inputs(frame.reset_index(drop=True), plausible) if plausible else None
        out = []
        for i in range(len(frame)):
            if not free[i]:
                out.append({"ranges": [], "too_uncertain": False})
                continue
            given = [c for c in plausible if c not in absent[i]] if absent else []
            out.append(
                {"ranges": ranges[i], "too_uncertain": too_uncertain(self, given, ranges[i])}
            )
        return out

    def _predict_recalibrated(self, rows: Rows, horizons: tuple[float, ...]):
        """:meth:`_predict_with_bounds` with the stored recalibration applied to the incidence
        of bone metastasis and its bounds (a monotone map: bounds map to bounds)."""
        score, cif, death, bounds = self._predict_with_bounds(rows, horizons)
        cif = self.recalibrate(cif, death, horizons)
        if bounds is not None:
            bounds = [
                self.recalibrate(b, death, horizons) if j < 2 and b is not None else b
                for j, b in enumerate(bounds)
            ]
        return score, cif, death, bounds

    def _predict_free(self, typed: Rows, free: np.ndarray, horizons: tuple[float, ...]):
        """:meth:`predict_batch`'s tables when some rows have bone metastasis at enrollment:
        NaN (None for the group) there, the ``free`` rows' predictions elsewhere."""
        n = len(free)
        score = np.full(n, np.nan)
        cif = np.full((n, len(horizons)), np.nan)
        death = np.full((n, len(horizons)), np.nan) if self.estimates_death else None
        group = np.full(n, None, dtype=object)
        bounds = None
        if free.any():
            found_score, found_cif, found_death, found_bounds = self._predict_recalibrated(
                _take(typed, free), horizons
            )
            score[free], cif[free] = found_score, found_cif
            if death is not None:
                death[free] = found_death
            group[free] = self.risk_group(score[free])
            if found_bounds is not None:
                bounds = [np.full((n, len(horizons)), np.nan) for _ in range(4)]
                for table, found in zip(bounds, found_bounds, strict=True):
                    if found is not None:
                        table[free] = found
                if death is None:
                    bounds[2] = bounds[3] = None
        return score, cif, death, group, bounds

    def _predict_with_bounds(self, rows: Rows, horizons: tuple[float, ...]):
        """Score, incidences and their interval bounds (:mod:`training.artifact.intervals`).

        The rows whose draw gives its counts are scored again at the two percentiles of the
        fraction, in the same call as the rows themselves.
        """
        if self.uncertainty is None:
            score, cif, death = predict_competing(self.pipeline, rows, horizons)
            return score, cif, death, None
        n = len(rows["patient_id"])
        counted = np.zeros(n, dtype=bool)
        if self.include_marker:
            pct_lo, pct_hi = marker_bounds(
                _column(rows, "oc_positive_events"), _column(rows, "pbmc_events")
            )
            counted = ~np.isnan(pct_lo)
        death_too = self.estimates_death
        if counted.any():
            stacked = _stack_marker(rows, counted, pct_lo[counted], pct_hi[counted])
            X = transform_rows(self.pipeline[:-1], stacked)
            score, cif, death = predict_features(self.estimator, X, horizons, death_too)
            m = int(counted.sum())
            if m == n:  # every row counted: the stacked rows are the tables
                at = [None if t is None else t[a:b] for t in (cif, death)
                      for a, b in ((n, n + m), (n + m, n + 2 * m))]  # fmt: skip
            else:
                at = [np.full((n, len(horizons)), np.nan) for _ in range(4)]
                for k, table in enumerate((cif, death)):
                    if table is None:
                        continue
                    at[2 * k][counted] = table[n : n + m]
                    at[2 * k + 1][counted] = table[n + m :]
            score, cif = score[:n], cif[:n]
            death = None if death is None else death[:n]
            marker = {"bone": (at[0], at[1]), "death": (at[2], at[3])}
        else:
            X = transform_rows(self.pipeline[:-1], rows)
            score, cif, death = predict_features(self.estimator, X, horizons, death_too)
            marker = {"bone": None, "death": None}
        X = np.asarray(X, dtype=float)[:n]
        # Both events in one pass (stacked on a leading axis): the same arithmetic per event.
        events = [(e, p) for e, p in (("bone", cif), ("death", death)) if p is not None]
        # np.array of same-shape arrays is np.stack's result without its Python wrapper.
        P = np.array([p for _, p in events])
        L = logit(P)
        names = tuple(e for e, _ in events)
        cov = _stacked_cov(self.uncertainty, names)
        if cov is not None:
            half = self.uncertainty.stacked_half_widths(cov, L, X, horizons)
        else:
            half = np.array(
                [self.uncertainty.half_widths(e, L[j], X, horizons) for j, e in enumerate(names)]
            )
        marks = [marker[e] for e in names]
        stacked_marker = (
            None if marks[0] is None else tuple(np.array([m[i] for m in marks]) for i in (0, 1))
        )
        low, high = combine(P, (half, half), stacked_marker, L)
        out = []
        for j in range(len(events)):
            out += [low[j], high[j]]
        if death is None:
            out += [None, None]
        return score, cif, death, out

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
