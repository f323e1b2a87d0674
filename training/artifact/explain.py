"""Per-patient explanations of a risk score: which inputs move this patient's risk, and how far.

Method: occlusion against the training reference
-------------------------------------------------
The fitted feature pipeline turns the contract inputs into engineered, imputed and standardised
features. Every engineered feature belongs to exactly one *group*, named after the raw contract
input it is built from (:func:`training.artifact.feature_inputs.feature_groups`, which asks the
builders of the fitted pipeline which inputs each feature comes from)::

    oc_log2_percent, missing_oc_positive_percent           -> oc_positive_percent
    log_tumor_size_mm, tumor_gt_20mm, missing_tumor_size_mm -> tumor_size_mm
    nodes_1_3, nodes_4_plus, missing_positive_lymph_nodes   -> positive_lymph_nodes
    er_positive, pr_positive, her2_positive, er_pos_pr_neg,
      subtype_luminal, subtype_triple_negative,
      missing_er_status, missing_pr_status, missing_her2_status -> receptor_status
    btt_postmenopausal, btt_premenopausal, missing_...      -> bone_targeted_therapy
    postmenopausal, missing_menopausal_status               -> menopausal_status
    metastatic -> disease_setting;  visceral -> visceral_metastasis;  log_alp -> alkaline_...
    landmark_years -> prediction_day;  oc_change_log2, oc_slope_log2_per_year -> oc_trend
    any other ``missing_<input>`` -> ``<input>``; any other feature -> a group of its own
    spline terms and interactions of the flexible families (``<feature>:rcs1``,
      ``oc_log2_percent:x_metastatic``) -> the group of ``<feature>``

ER, PR and HER2 are attributed *jointly*, as one group ``receptor_status`` (shown as the
subtype with its receptors, e.g. "triple negative (ER-, PR-, HER2-)"). The ER+/PR- pattern and
the subtype features are deterministic functions of the three receptors, so occluding one
receptor alone would score an impossible feature vector (ER+ yet triple negative), and with
penalised linear models the split of a collinear effect between a receptor and a subtype
feature is arbitrary: separate groups showed, for the same triple-negative patient, "ER
negative: +0.91" next to "triple negative: -1.67" (cox_ridge fitted on the training split of
``simulate_cohort(600, seed=7)``), two large offsetting entries
whose net, about -0.8, is the only identifiable quantity. The joint group reports that net.
(Bone-targeted therapy and menopausal status interact through ``btt_postmenopausal`` /
``btt_premenopausal``; they are kept as two groups as the contract has them, so for a treated
patient the menopausal entry is the change at her own treatment features.)

The *training reference* of a feature is the value the imputer gives a missing value: its
training median (``SimpleImputer.statistics_``), carried through the steps after the imputer
(the scaler) into the standardised space the estimator sees. For a group ``g`` and a patient
``x`` (standardised features)::

    contribution_g(x) = score(x) - score(x with the columns of g set to the reference)

where ``score`` is the family's risk score (``estimator.predict``): the log relative hazard of
bone metastasis for the proportional-hazards families (``cox_ridge``, ``cox_elasticnet``,
``gbsa``, ``xgb_cox``; scale ``"log hazard"``) and a log-odds of bone metastasis by 24 months
for the others (``rsf``: logit of the predicted cumulative incidence; ``logistic_ipcw``,
``xgb_ipcw``: the 24-month classifier's log-odds; scale ``"log odds"``).

- It needs nothing but ``predict``, so it fits every family, and it is vectorised: the patient
  matrix and one copy per group with that group occluded are stacked and scored in one
  ``predict`` call (per chunk of patients).
- For the linear families (``cox_ridge``, ``cox_elasticnet``, ``logistic_ipcw``) it is exact
  and additive: ``contribution_g = sum_{j in g} coef_j (x_j - ref_j)``, and the contributions
  of all groups sum to ``score(x) - score(reference patient)``. For tree ensembles it is a
  one-group-at-a-time sensitivity: interactions are attributed to each group involved, and the
  contributions need not add up.
- A patient whose input equals the reference (e.g. the training median's receptor profile,
  ER+, PR+, HER2- in the simulated cohorts) gets a contribution of exactly 0 for it.

Missing inputs
--------------
A missing input is imputed at the reference, so its value features contribute nothing; what
remains is its *missing-value indicator* (present when that input was missing in training): the
contribution then measures what "this value was missing" does to the score compared with a
typical patient. It is shown as ``value = "missing (imputed)"``; without an indicator it is
exactly 0.
The service and the page (``RiskModel.predict_batch(explain=True)``, ``given_only=True``) do
**not** list an input missing for this patient among its reasons: the imputed value is not the
patient's, so it is no reason for the patient's risk; what a missing input could change is
reported separately (:mod:`training.artifact.missing`).

Patients with bone metastasis at enrollment have no risk score (``RiskModel.predict_frame``)
and get an empty explanation.

Wording
-------
Values are shown with the units of :mod:`features.schema` and placed against the training data
(range, percentiles): :mod:`training.artifact.wording`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from training.artifact.feature_inputs import feature_groups, feature_inputs
from training.artifact.wording import (
    MISSING_TEXT,
    PERCENTILE_INPUTS,
    Contribution,
    Scale,
    Wording,
    numeric_column,
    training_percentiles,
)
from training.models.bases import PH_BASES
from training.models.cause_specific import CauseSpecificHazards

__all__ = [
    "MISSING_TEXT",
    "PERCENTILE_INPUTS",
    "Contribution",
    "explain",
    "explanation_text",
    "reference_features",
    "risk_scale",
    "training_percentiles",
]

#: Upper bound on the rows of one stacked ``predict`` call (patients x (groups + 1)).
_MAX_STACKED_ROWS = 32768


# ---------------------------------------------------------------------------------------------
# Reference and scale


def _flat_steps(pipeline: Pipeline) -> list[Any]:
    steps: list[Any] = []
    for _, step in pipeline.steps:
        steps.extend(_flat_steps(step) if isinstance(step, Pipeline) else [step])
    return steps


def reference_features(features: Pipeline) -> np.ndarray:
    """The training reference in the estimator's feature space.

    The imputer's statistics (training medians of the engineered features: what a missing value
    becomes) passed through the steps after the imputer (standardisation).

    Parameters
    ----------
    features : sklearn.pipeline.Pipeline
        The fitted feature pipeline (``risk_model.pipeline[:-1]``), possibly nested.

    Returns
    -------
    numpy.ndarray
        One value per output feature.

    Raises
    ------
    ValueError
        When the pipeline has no fitted ``SimpleImputer`` after its feature builders.
    """
    steps = _flat_steps(features)
    at = [i for i, s in enumerate(steps) if isinstance(s, SimpleImputer)]
    if not at:
        raise ValueError("the feature pipeline has no SimpleImputer: no training reference")
    ref = np.asarray(steps[at[0]].statistics_, dtype=float).reshape(1, -1)
    for step in steps[at[0] + 1 :]:
        ref = np.asarray(step.transform(ref), dtype=float)
    return ref[0]


def risk_scale(estimator: Any) -> Scale:
    """Scale of a family's risk score: ``"log hazard"`` (proportional hazards) or ``"log odds"``.

    Parameters
    ----------
    estimator : estimator
        The fitted model step of a risk model.

    Returns
    -------
    str
    """
    if isinstance(estimator, CauseSpecificHazards) and estimator.base in PH_BASES:
        return "log hazard"
    return "log odds"


# ---------------------------------------------------------------------------------------------
# Explanations


def _occlusion(
    estimator: Any, X: np.ndarray, ref: np.ndarray, columns: Sequence[Sequence[int]]
) -> np.ndarray:
    """``(n_groups, n)`` contributions: score of X minus score with each group at reference."""
    n, p = X.shape
    g = len(columns)
    out = np.empty((g, n))
    chunk = max(1, _MAX_STACKED_ROWS // (g + 1))
    for start in range(0, n, chunk):
        block = X[start : start + chunk]
        m = block.shape[0]
        stacked = np.broadcast_to(block, (g + 1, m, p)).copy()
        for k, cols in enumerate(columns, start=1):
            stacked[k][:, cols] = ref[cols]
        score = np.asarray(estimator.predict(stacked.reshape(-1, p)), dtype=float)
        score = score.reshape(g + 1, m)
        out[:, start : start + m] = score[0] - score[1:]
    # A patient already at the reference on a group contributes exactly 0 (not rounding noise
    # from scoring two copies of the same row in different places of a batch).
    for k, cols in enumerate(columns):
        out[k, np.all(X[:, cols] == ref[cols], axis=1)] = 0.0
    return out


def explain(
    risk_model: Any,
    typed: pd.DataFrame,
    top: int = 5,
    reference: Mapping[str, Sequence[float]] | None = None,
    given_only: bool = False,
) -> list[list[Contribution]]:
    """The inputs that move each patient's risk score most, by occlusion against the reference.

    See the module docstring for the method; the contributions are on the scale of the risk
    score (``RiskModel.predict_frame``'s ``risk_score``).

    Parameters
    ----------
    risk_model : training.artifact.risk_model.RiskModel
        A fitted risk model (``pipeline``: features then estimator; ``training_ranges``).
    typed : pandas.DataFrame
        Typed contract rows (:func:`features.contract.check_patients` output).
    top : int, default=5
        Entries per patient (fewer when the model has fewer groups).
    reference : mapping, optional
        Training ``(p10, p50, p90)`` per numeric input (:func:`training_percentiles`), for the
        wording; defaults to the model's ``training_percentiles`` attribute when it has one.
    given_only : bool, default False
        Leave out the inputs missing for the patient (``value`` ``"missing (imputed)"``): what
        the service and the page give as reasons.

    Returns
    -------
    list of list of dict
        Per row of ``typed``, at most ``top`` dicts sorted by decreasing ``|contribution|``:
        ``input`` (contract column, or ``"receptor_status"``), ``value`` (the patient's value
        with its unit, or ``"missing (imputed)"``), ``contribution`` (float, risk score minus
        the risk score with that input at the training reference), ``scale`` (``"log
        hazard"`` or ``"log odds"``) and ``text`` (one sentence). Empty for a patient with
        bone metastasis at enrollment (no risk score).

    Raises
    ------
    ValueError
        When ``top`` is not a positive integer, or the feature pipeline has no fitted
        ``SimpleImputer`` (no training reference).
    """
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    typed = typed.reset_index(drop=True)
    result: list[list[Contribution]] = [[] for _ in range(len(typed))]
    if "bone_metastasis_at_enrollment" in typed.columns:
        already = numeric_column(typed, "bone_metastasis_at_enrollment") == 1.0
    else:
        already = np.zeros(len(typed), dtype=bool)
    rows = np.flatnonzero(~already)
    if rows.size == 0:
        return result

    features, estimator = risk_model.pipeline[:-1], risk_model.pipeline[-1]
    X = np.asarray(features.transform(typed.iloc[rows]), dtype=float)
    groups = feature_groups(features.get_feature_names_out(), feature_inputs(features))
    names = list(groups)
    contributions = _occlusion(estimator, X, reference_features(features), list(groups.values()))

    scale = risk_scale(estimator)
    if reference is None:
        reference = getattr(risk_model, "training_percentiles", None) or {}
    wording = Wording(typed, getattr(risk_model, "training_ranges", None) or {}, reference)
    k = min(int(top), len(names))
    for col, i in enumerate(rows):
        values = contributions[:, col]
        order = np.argsort(-np.abs(values), kind="stable")
        # An imputed value is not the patient's: the service never gives it as a reason
        # (``RiskModel.missing_report`` says what the missing inputs could change).
        for g in order:
            entry = wording.entry(names[g], int(i), float(values[g]), scale)
            if not (given_only and entry["value"] == MISSING_TEXT):
                result[i].append(entry)
                if len(result[i]) == k:
                    break
    return result


def explanation_text(contributions: Sequence[Mapping[str, Any]]) -> str:
    """One patient's explanation as a single line: the sentences joined by ``"; "``.

    Parameters
    ----------
    contributions : sequence of dict
        One patient's entries from :func:`explain`.

    Returns
    -------
    str
        Empty when there are none.
    """
    return "; ".join(str(c["text"]) for c in contributions)
