"""Per-patient explanations of a risk score: which inputs move this patient's risk, and how far.

Method: occlusion against the training reference
-------------------------------------------------
The fitted feature pipeline turns the contract inputs into engineered, imputed and standardised
features. Every engineered feature belongs to exactly one *group*, named after the raw contract
input it is built from (:func:`feature_groups`)::

    oc_log2_percent, missing_oc_positive_percent           -> oc_positive_percent
    log_tumor_size_mm, tumor_gt_20mm, missing_tumor_size_mm -> tumor_size_mm
    nodes_1_3, nodes_4_plus, missing_positive_lymph_nodes   -> positive_lymph_nodes
    er_positive, pr_positive, her2_positive, er_pos_pr_neg,
      subtype_luminal, subtype_triple_negative,
      missing_er_status, missing_pr_status, missing_her2_status -> receptor_status
    btt_postmenopausal, btt_premenopausal, missing_...      -> bone_targeted_therapy
    postmenopausal, missing_menopausal_status               -> menopausal_status
    metastatic -> disease_setting;  visceral -> visceral_metastasis;  log_alp -> alkaline_...
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

Patients with bone metastasis at enrollment have no risk score (``RiskModel.predict_frame``)
and get an empty explanation.

Wording
-------
Values are shown with the units of :mod:`features.schema`. A numeric value outside the
training range (``RiskModel.training_ranges``) says so; otherwise, given training percentiles
(``reference`` argument or a ``training_percentiles`` attribute on the model, computed by
:func:`training_percentiles`), a value below the 10th or above the 90th percentile says so, and
one in between quotes the training median.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline

from features.schema import PATIENT_SPECS
from features.transformers import marker_percent
from training.models.bases import PH_BASES
from training.models.cause_specific import CauseSpecificHazards

__all__ = [
    "PERCENTILE_INPUTS",
    "Contribution",
    "explain",
    "explanation_text",
    "feature_groups",
    "reference_features",
    "risk_scale",
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
RECEPTOR_STATUS = "receptor_status"
OC_TREND = "oc_trend"
PREDICTION_DAY = "prediction_day"

#: Engineered feature -> the raw input (or group) it is built from.
_FEATURE_GROUP: dict[str, str] = {
    "oc_log2_percent": "oc_positive_percent",
    "log_tumor_size_mm": "tumor_size_mm",
    "tumor_gt_20mm": "tumor_size_mm",
    "er_positive": RECEPTOR_STATUS,
    "pr_positive": RECEPTOR_STATUS,
    "her2_positive": RECEPTOR_STATUS,
    "er_pos_pr_neg": RECEPTOR_STATUS,
    "subtype_luminal": RECEPTOR_STATUS,
    "subtype_triple_negative": RECEPTOR_STATUS,
    "nodes_1_3": "positive_lymph_nodes",
    "nodes_4_plus": "positive_lymph_nodes",
    "metastatic": "disease_setting",
    "visceral": "visceral_metastasis",
    "log_alp": "alkaline_phosphatase_u_per_l",
    "postmenopausal": "menopausal_status",
    "btt_postmenopausal": "bone_targeted_therapy",
    "btt_premenopausal": "bone_targeted_therapy",
    # Landmark models: how the marker moved up to the prediction day, and that day.
    "oc_change_log2": OC_TREND,
    "oc_slope_log2_per_year": OC_TREND,
    "landmark_years": PREDICTION_DAY,
}

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
#: Raw inputs attributed jointly with others (their missing-value indicators join the group).
_INPUT_GROUP: dict[str, str] = {
    "er_status": RECEPTOR_STATUS,
    "pr_status": RECEPTOR_STATUS,
    "her2_status": RECEPTOR_STATUS,
    "oc_change_log2": OC_TREND,
    "oc_slope_log2_per_year": OC_TREND,
    "landmark_years": PREDICTION_DAY,
}
_BOOLEAN_GROUPS = ("visceral_metastasis", "endocrine_therapy", "chemotherapy")
_RECEPTORS = (("er_status", "ER"), ("pr_status", "PR"), ("her2_status", "HER2"))
#: Upper bound on the rows of one stacked ``predict`` call (patients x (groups + 1)).
_MAX_STACKED_ROWS = 32768


# ---------------------------------------------------------------------------------------------
# Groups, reference and scale


def feature_groups(feature_names: Sequence[str]) -> dict[str, list[int]]:
    """Group engineered features by the raw input they are built from.

    Parameters
    ----------
    feature_names : sequence of str
        Output names of the fitted feature pipeline, in column order.

    Returns
    -------
    dict
        Group name (a contract column, or ``"receptor_status"`` for ER, PR and HER2 jointly)
        -> column indices, in order of first appearance. ``missing_<input>`` joins the group
        of ``<input>``; a feature without a known input is a group of its own.
    """
    groups: dict[str, list[int]] = {}
    for j, raw in enumerate(feature_names):
        # Spline terms and interactions of the flexible families ("oc_log2_percent:rcs1",
        # "oc_log2_percent:x_metastatic") belong to the group of their base feature.
        name = str(raw).split(":", 1)[0]
        if name in _FEATURE_GROUP:
            group = _FEATURE_GROUP[name]
        elif name.startswith("missing_"):
            raw = name.removeprefix("missing_")
            group = _INPUT_GROUP.get(raw, raw)
        else:
            group = name
        groups.setdefault(group, []).append(j)
    return groups


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
        values = _raw_numeric(X_train, column)
        if values is None:
            continue
        values = values[~np.isnan(values)]
        if values.size:
            p10, p50, p90 = np.percentile(values, [10, 50, 90])
            out[column] = (float(p10), float(p50), float(p90))
    return out


def _numeric(typed: pd.DataFrame, column: str) -> np.ndarray:
    series = typed[column]
    if series.dtype.kind not in "fiub":  # typed rows hold float64 already: skip the parse
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=float, na_value=np.nan)


def _raw_numeric(typed: pd.DataFrame, column: str) -> np.ndarray | None:
    """A numeric input as the model reads it (the marker from counts), None when absent."""
    if column == "oc_positive_percent":
        needed = ("oc_positive_percent", "oc_positive_events", "pbmc_events")
        if not all(c in typed.columns for c in needed):
            return None
        return marker_percent(*(_numeric(typed, c) for c in needed))
    return _numeric(typed, column) if column in typed.columns else None


# ---------------------------------------------------------------------------------------------
# Wording


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


class _Wording:
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
            self._numeric[column] = _raw_numeric(self.typed, column)
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
        already = _numeric(typed, "bone_metastasis_at_enrollment") == 1.0
    else:
        already = np.zeros(len(typed), dtype=bool)
    rows = np.flatnonzero(~already)
    if rows.size == 0:
        return result

    features, estimator = risk_model.pipeline[:-1], risk_model.pipeline[-1]
    X = np.asarray(features.transform(typed.iloc[rows]), dtype=float)
    groups = feature_groups(features.get_feature_names_out())
    names = list(groups)
    contributions = _occlusion(estimator, X, reference_features(features), list(groups.values()))

    scale = risk_scale(estimator)
    if reference is None:
        reference = getattr(risk_model, "training_percentiles", None) or {}
    wording = _Wording(typed, getattr(risk_model, "training_ranges", None) or {}, reference)
    k = min(int(top), len(names))
    for col, i in enumerate(rows):
        values = contributions[:, col]
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        result[i] = [wording.entry(names[g], int(i), float(values[g]), scale) for g in order]
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
