"""The served object: fitted features and estimator, risk-group cut-offs and training metadata.

One :class:`RiskModel` is pickled into the MLflow model's artifacts; the pyfunc wrapper
(``training/pyfunc_model.py``) and batch scoring call :meth:`RiskModel.predict_frame`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from features.schema import CONTRACT_VERSION
from features.transformers import ClinicalFeatures, MarkerFeatures, raw_missing
from training.models import DAYS_PER_MONTH

RISK_GROUPS = ("low", "intermediate", "high")

#: Inputs the feature builders read, for "missing: imputed" warnings and the model card.
MODEL_INPUTS: tuple[str, ...] = ClinicalFeatures.columns_in
MARKER_INPUTS: tuple[str, ...] = MarkerFeatures.columns_in


def predict_pipeline(
    pipeline: Pipeline, typed: pd.DataFrame, horizons_months: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Risk scores and ``(n, horizons)`` cumulative incidences of a fitted features+model pipeline.

    Incidences are made non-decreasing across the horizons (given in any increasing order).
    """
    X = pipeline[:-1].transform(typed)
    score = pipeline[-1].predict(X)
    times = np.asarray(horizons_months, dtype=float) * DAYS_PER_MONTH
    cif = pipeline[-1].predict_cumulative_incidence(X, times)
    return score, np.maximum.accumulate(cif, axis=1)


def probability_column(months: float) -> str:
    """Name of the output column for a horizon, e.g. ``p_bone_met_24m``."""
    return f"p_bone_met_{float(months):g}m"


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
    """

    family: str
    pipeline: Pipeline
    risk_cutoffs: tuple[float, float]
    horizons_months: tuple[int, ...]
    max_follow_up_months: float
    include_marker: bool = True
    training_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    contract_version: int = CONTRACT_VERSION
    training_percentiles: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    @property
    def estimator(self):
        return self.pipeline[-1]

    @property
    def inputs(self) -> tuple[str, ...]:
        return MODEL_INPUTS + (MARKER_INPUTS if self.include_marker else ())

    def risk_group(self, score: np.ndarray) -> np.ndarray:
        """``low``/``intermediate``/``high`` by the stored cut-offs."""
        idx = np.searchsorted(np.asarray(self.risk_cutoffs), score, side="right")
        return np.asarray(RISK_GROUPS, dtype=object)[idx]

    def predict_arrays(
        self, typed: pd.DataFrame, horizons_months: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Risk scores and an ``(n, horizons)`` array of cumulative incidences."""
        return predict_pipeline(self.pipeline, typed, horizons_months)

    def warnings_for(
        self, typed: pd.DataFrame, horizons_months: Sequence[float]
    ) -> list[list[str]]:
        """Per-patient warnings: imputed inputs, values outside training, long horizons."""
        out: list[list[str]] = [[] for _ in range(len(typed))]
        missing_inputs = raw_missing(typed)
        for column in MODEL_INPUTS:
            for i in np.flatnonzero(missing_inputs[column]):
                out[i].append(f"{column} missing: imputed")
        if self.include_marker:
            no_marker = typed["oc_positive_percent"].isna() & (
                typed["oc_positive_events"].isna() | typed["pbmc_events"].isna()
            )
            for i in np.flatnonzero(no_marker.to_numpy()):
                out[i].append("oc_positive_percent missing: imputed")
        for column, (lo, hi) in self.training_ranges.items():
            values = pd.to_numeric(typed[column], errors="coerce").to_numpy(dtype=float)
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

    def predict_frame(
        self,
        typed: pd.DataFrame,
        horizons_months: Sequence[float] | None = None,
        explain: bool = False,
    ) -> pd.DataFrame:
        """Predictions for typed contract rows (``features.contract.check_patients`` output).

        Patients with bone metastasis at enrollment get no score and no probabilities (NaN),
        and a warning saying why. With ``explain`` an ``explanation`` column holds, per patient,
        a JSON list of the largest contributions to the risk score (``training.explain``).
        """
        horizons = tuple(horizons_months or self.horizons_months)
        n = len(typed)
        score = np.full(n, np.nan)
        cif = np.full((n, len(horizons)), np.nan)
        group = np.full(n, None, dtype=object)
        already = typed["bone_metastasis_at_enrollment"].to_numpy(dtype=float) == 1.0
        free = ~already
        if free.any():
            sub = typed.loc[free].reset_index(drop=True)
            score[free], cif[free] = self.predict_arrays(sub, horizons)
            group[free] = self.risk_group(score[free])
        warnings = self.warnings_for(typed, horizons)
        for i in np.flatnonzero(already):
            warnings[i] = [
                "bone metastasis present at enrollment: no risk of a first bone metastasis "
                "to predict"
            ]
        out = pd.DataFrame({"patient_id": typed["patient_id"].to_numpy(dtype=object)})
        out["risk_score"] = score
        out["risk_group"] = group
        for j, h in enumerate(horizons):
            out[probability_column(h)] = cif[:, j]
        out["warnings"] = [json.dumps(w) for w in warnings]
        if explain:
            from training.explain import explain as explain_rows

            out["explanation"] = [json.dumps(e) for e in explain_rows(self, typed)]
        return out
