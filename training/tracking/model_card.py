"""Model card in Markdown, organised along the TRIPOD+AI reporting items.

:func:`render_model_card` turns a :class:`ModelCardFacts` (everything the card states, gathered by
training) into Markdown for ``mlflow.log_text(card, "model_card.md")``. The renderer computes
nothing about the model: it formats facts. A fact that training did not supply is written as
"not available" instead of being guessed or failing the run.

Reference
---------
Collins GS, Moons KGM, Dhiman P, et al. (2024). TRIPOD+AI statement: updated guidance for
reporting clinical prediction models that use regression or machine learning methods.
BMJ 385:e078378.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from features.schema import DEFAULT_HORIZONS_MONTHS, PATIENT_SPECS, PREDICTOR_COLUMNS, ColumnSpec

__all__ = [
    "NOT_AVAILABLE",
    "SECTION_HEADINGS",
    "DEFAULT_INTENDED_USE",
    "DEFAULT_INTENDED_USERS",
    "ModelCardFacts",
    "format_estimate",
    "format_ci",
    "render_model_card",
]

NOT_AVAILABLE = "not available"

SECTION_HEADINGS: tuple[str, ...] = (
    "Model details",
    "Intended use and users",
    "Data and eligibility",
    "Outcome and horizons",
    "Predictors with units",
    "Missing data",
    "Sample size and events",
    "Model building",
    "Performance: discrimination and calibration",
    "Subgroups",
    "Incremental value of the osteocalcin marker",
    "Limitations and intended-use caveats",
)

DEFAULT_INTENDED_USE = (
    "Research use: estimate, for a patient with breast cancer who is free of bone metastasis at "
    "enrollment, the cumulative incidence of bone metastasis by 12, 24, 36 and 60 months with "
    "death as a competing event, from clinical covariates and circulating osteocalcin-positive "
    "cells at enrollment; and study whether the marker adds to the clinical covariates."
)
DEFAULT_INTENDED_USERS = (
    "Researchers and clinicians studying bone-metastasis risk and the osteocalcin marker. Not "
    "for decisions about the care of individual patients."
)

#: Inputs that are not predictors: the identifier, and the eligibility flag (patients with bone
#: metastasis at enrollment are excluded, so the flag is constant in training).
_NOT_PREDICTORS = ("patient_id", "bone_metastasis_at_enrollment")

#: Unit and meaning of the engineered features of ``features.transformers`` (all standardised with
#: training means and standard deviations before the model; ``missing_<input>`` is added by name).
_FEATURE_DOCS: dict[str, tuple[str, str]] = {
    "oc_log2_percent": (
        "log2(% of PBMC events)",
        "osteocalcin-positive cells at enrollment; from counts with a half-event continuity "
        "correction when counts are present",
    ),
    "age_years": ("years", "age at enrollment"),
    "ki67_percent": ("%", "Ki-67 index"),
    "histologic_grade": ("grade 1-3", "histologic grade"),
    "log_tumor_size_mm": ("log(mm)", "natural log of the largest tumor diameter"),
    "tumor_gt_20mm": ("0/1", "tumor larger than 20 mm"),
    "er_positive": ("0/1", "estrogen receptor positive"),
    "pr_positive": ("0/1", "progesterone receptor positive"),
    "her2_positive": ("0/1", "HER2 positive"),
    "er_pos_pr_neg": ("0/1", "ER-positive and PR-negative"),
    "subtype_luminal": ("0/1", "luminal subtype (ER+ or PR+, HER2-)"),
    "subtype_triple_negative": ("0/1", "triple-negative subtype"),
    "nodes_1_3": ("0/1", "1-3 involved axillary nodes (reference: none)"),
    "nodes_4_plus": ("0/1", "4 or more involved axillary nodes (reference: none)"),
    "metastatic": ("0/1", "metastatic setting at enrollment"),
    "visceral": ("0/1", "visceral metastasis (0 in early disease)"),
    "log_alp": ("log(U/L)", "natural log of serum alkaline phosphatase"),
    "endocrine_therapy": ("0/1", "endocrine therapy at enrollment"),
    "chemotherapy": ("0/1", "chemotherapy at enrollment"),
    "postmenopausal": ("0/1", "postmenopausal"),
    "btt_postmenopausal": ("0/1", "bone-targeted therapy in a postmenopausal patient"),
    "btt_premenopausal": ("0/1", "bone-targeted therapy in a pre- or perimenopausal patient"),
}

_SPLIT_KEYS = ("n", "bone_metastasis", "death", "censored")
_PERFORMANCE_COLUMNS = ("metric", "cv_mean", "cv_sd", "estimate", "lo", "hi")
_SUBGROUP_COLUMNS = ("variable", "level", "n", "events", "metric", "value")


class _HasInterval(Protocol):
    estimate: float
    lo: float
    hi: float


#: A point estimate with its interval: ``(estimate, lo, hi)`` or a
#: ``training.evaluation.bootstrap.Interval``.
Estimate = tuple[float, float, float] | _HasInterval


@dataclass(frozen=True, eq=False)
class ModelCardFacts:
    """Everything a model card states; ``None`` (or empty) renders as "not available".

    Frozen so a card cannot drift from the facts it was rendered from. ``eq=False`` because the
    DataFrame fields make field-wise equality ambiguous.

    Parameters
    ----------
    model_name : str
        Registered model name, e.g. ``"bone-metastasis-risk"``.
    family : str
        Model family, e.g. ``"cox_ridge"``, ``"logistic_ipcw"``.
    model_version : str, optional
        Registry version.
    run_id : str, optional
        MLflow run id.
    git_commit : str, optional
        Commit of the training code.
    training_date : str, optional
        Date of training (ISO 8601).
    data_digest : str, optional
        Digest of the training data.
    contract_version : int, optional
        Data contract version (``features.schema.CONTRACT_VERSION``).
    intended_use, intended_users : str
        Who should use the predictions, for what; defaults are the project's statement.
    data_source : str, optional
        Where the data come from (a study, a registry, ``"bonemet simulator (seed 7)"``).
    simulated : bool, optional
        True when the data come from the simulator: the card then says so prominently.
    setting : str, optional
        Clinical setting and population, e.g. ``"early and metastatic breast cancer"``.
    enrollment_period : str, optional
        Enrollment dates, e.g. ``"2015-01 to 2019-12"``.
    n_patients : int, optional
        Eligible patients used (free of bone metastasis at enrollment).
    n_excluded_bone_met_at_enrollment : int, optional
        Patients left out because they had bone metastasis at enrollment.
    horizons_months : tuple of int
        Prediction horizons (months of 365.25 / 12 days).
    median_follow_up_months : float, optional
        Median follow-up (reverse Kaplan-Meier or plain median; say which in ``data_source``).
    input_columns : tuple of str, optional
        Contract columns the model reads; default every predictor column of the contract
        except the identifier and the eligibility flag. Unit and meaning come from
        ``features.schema.PATIENT_COLUMNS``.
    engineered_features : tuple of str
        Names of the model's features (``pipeline.get_feature_names_out()``).
    missing_share : mapping of str to float, optional
        Input column to its share missing in the training split (0-1).
    imputation : str
        How missing values are handled.
    split_counts : mapping of str to mapping, optional
        Split name (e.g. ``"train"``, ``"test"``) to counts with keys ``n``,
        ``bone_metastasis``, ``death``, ``censored``. The ``"train"`` split gives events per
        feature.
    hyperparameter_search : str, optional
        How hyperparameters were searched (grid or random, metric, folds).
    search_space : mapping of str to sequence, optional
        Hyperparameter to the values searched.
    selected_params : mapping of str to object, optional
        Hyperparameter to the value selected.
    cv_scheme : str, optional
        Resampling scheme, e.g. ``"nested CV: 5 outer x 3 inner folds, stratified"``.
    evaluation : str, optional
        What the test estimates come from, e.g. ``"held-out test split (25 %)"``.
    risk_cutoffs : tuple of float, optional
        Risk-score cut-offs between low/intermediate and intermediate/high.
    performance : pandas.DataFrame, optional
        One row per metric; columns ``metric`` (name), ``cv_mean``, ``cv_sd`` (across outer
        folds), ``estimate``, ``lo``, ``hi`` (test estimate and its interval). Only ``metric``
        and ``estimate`` are required; missing values render as "not available".
    conf_level : float
        Level of the intervals, for the headers.
    subgroups : pandas.DataFrame, optional
        :func:`training.evaluation.subgroups.subgroup_metrics` output (columns ``variable, level, n,
        events,
        metric, value`` and optionally ``note``, ``lo``, ``hi``); one column per metric.
    marker_increment : mapping of str to estimate, optional
        Label (e.g. ``"ΔC (Harrell)"``, ``"ΔAUC 24 months"``) to ``(estimate, lo, hi)`` or a
        ``training.evaluation.bootstrap.Interval`` (with marker minus without).
    marker_lr_test : mapping of str to float, optional
        Likelihood-ratio test of the marker with keys ``statistic``, ``df``, ``p_value``.
    marker_method : str, optional
        How the differences and intervals were estimated, e.g. ``"paired bootstrap (200
        resamples) on the test split"``.
    limitations : tuple of str
        Caveats beyond the standard ones the card always states.
    landmark_days : tuple of float
        Landmarks of a landmark model (empty: predicts from enrollment).
    landmark_rows : mapping of str to int, optional
        A landmark model's training rows per split (a patient contributes one row per
        landmark at which they are still at risk); ``n_patients`` and ``split_counts`` count
        patients.
    competing_death : bool
        False when the training data had too few competing deaths: the death hazard is zero
        and the predicted incidence is ``1 - S(t)``.
    modelling_notes : tuple of str
        How the cohort was modelled when it departs from the default (shown under Data).

    Raises
    ------
    ValueError
        An input column unknown to the contract, a missing share outside [0, 1], split counts
        or tables lacking a key or column, or a horizon that is not positive.
    """

    model_name: str
    family: str
    model_version: str | None = None
    run_id: str | None = None
    git_commit: str | None = None
    training_date: str | None = None
    data_digest: str | None = None
    contract_version: int | None = None
    intended_use: str = DEFAULT_INTENDED_USE
    intended_users: str = DEFAULT_INTENDED_USERS
    data_source: str | None = None
    simulated: bool | None = None
    setting: str | None = None
    enrollment_period: str | None = None
    n_patients: int | None = None
    n_excluded_bone_met_at_enrollment: int | None = None
    horizons_months: tuple[int, ...] = DEFAULT_HORIZONS_MONTHS
    median_follow_up_months: float | None = None
    input_columns: tuple[str, ...] | None = None
    engineered_features: tuple[str, ...] = ()
    missing_share: Mapping[str, float] | None = None
    imputation: str = (
        "A missing-value indicator is added for every input that was missing in the training "
        "split; values are then imputed with training medians and all features standardised "
        "with training means and standard deviations. The fitted pipeline is part of the logged "
        "model; every imputed input is named in the prediction's warnings."
    )
    split_counts: Mapping[str, Mapping[str, int]] | None = None
    hyperparameter_search: str | None = None
    search_space: Mapping[str, Sequence[Any]] | None = None
    selected_params: Mapping[str, Any] | None = None
    cv_scheme: str | None = None
    evaluation: str | None = None
    risk_cutoffs: tuple[float, ...] | None = None
    performance: pd.DataFrame | None = None
    conf_level: float = 0.95
    subgroups: pd.DataFrame | None = None
    marker_increment: Mapping[str, Estimate] | None = None
    marker_lr_test: Mapping[str, float] | None = None
    marker_method: str | None = None
    limitations: tuple[str, ...] = field(default_factory=tuple)
    landmark_days: tuple[float, ...] = ()
    landmark_rows: Mapping[str, int] | None = None
    competing_death: bool = True
    modelling_notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [c for c in self.inputs() if c not in PATIENT_SPECS]
        if unknown:
            raise ValueError(f"input_columns not in the data contract: {', '.join(unknown)}")
        bad_h = [h for h in self.horizons_months if not h > 0]
        if bad_h:
            raise ValueError(f"horizons_months must be positive: {bad_h}")
        for name, share in (self.missing_share or {}).items():
            if not (_is_number(share) and 0.0 <= float(share) <= 1.0):
                raise ValueError(f"missing_share[{name!r}] = {share!r} is not a share in [0, 1]")
        for split, counts in (self.split_counts or {}).items():
            lacking = [k for k in _SPLIT_KEYS if k not in counts]
            if lacking:
                raise ValueError(f"split_counts[{split!r}] lacks key(s) {', '.join(lacking)}")
        _check_frame(self.performance, ("metric", "estimate"), "performance")
        _check_frame(self.subgroups, _SUBGROUP_COLUMNS, "subgroups")
        if not 0.0 < self.conf_level < 1.0:
            raise ValueError(f"conf_level must be in (0, 1), got {self.conf_level}")

    def inputs(self) -> tuple[str, ...]:
        """Contract columns the model reads (``input_columns`` or the contract's default)."""
        if self.input_columns is not None:
            return tuple(self.input_columns)
        return tuple(c for c in PREDICTOR_COLUMNS if c not in _NOT_PREDICTORS)


def _check_frame(frame: pd.DataFrame | None, columns: Sequence[str], name: str) -> None:
    if frame is None:
        return
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise ValueError(f"{name} lacks column(s) {', '.join(lacking)}")


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def _is_number(x: object) -> bool:
    if isinstance(x, bool) or x is None:
        return False
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _digits(x: float) -> int:
    """Two decimals, three for small non-zero magnitudes (Brier scores, differences in C)."""
    return 3 if 0.0 < abs(x) < 0.1 else 2


def format_estimate(x: object, digits: int | None = None) -> str:
    """A number with two decimals (three below 0.1 in magnitude); "not available" if missing.

    Parameters
    ----------
    x : object
        The value; None, NaN and non-numbers are "not available".
    digits : int, optional
        Decimals; default by magnitude.

    Returns
    -------
    str
    """
    if not _is_number(x):
        return NOT_AVAILABLE
    value = float(x)  # type: ignore[arg-type]
    return f"{value:.{_digits(value) if digits is None else digits}f}"


def format_ci(estimate: object, lo: object, hi: object, digits: int | None = None) -> str:
    """An estimate with its interval, e.g. ``"0.71 [0.66, 0.76]"``.

    All three numbers use the estimate's number of decimals. A missing estimate gives
    "not available"; a missing bound gives the estimate followed by
    ``[not available]``.

    Parameters
    ----------
    estimate, lo, hi : object
        Point estimate and interval bounds.
    digits : int, optional
        Decimals; default by the estimate's magnitude (see :func:`format_estimate`).

    Returns
    -------
    str
    """
    if not _is_number(estimate):
        return NOT_AVAILABLE
    d = _digits(float(estimate)) if digits is None else digits  # type: ignore[arg-type]
    point = format_estimate(estimate, d)
    if not (_is_number(lo) and _is_number(hi)):
        return f"{point} [{NOT_AVAILABLE}]"
    return f"{point} [{format_estimate(lo, d)}, {format_estimate(hi, d)}]"


def _triple(value: Estimate) -> tuple[Any, Any, Any]:
    if hasattr(value, "estimate"):
        return value.estimate, value.lo, value.hi  # type: ignore[union-attr]
    estimate, lo, hi = value  # type: ignore[misc]
    return estimate, lo, hi


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_AVAILABLE
    text = str(value).strip()
    return text if text else NOT_AVAILABLE


def _count(value: object) -> str:
    return str(int(value)) if _is_number(value) else NOT_AVAILABLE  # type: ignore[arg-type]


def _p_value(p: object) -> str:
    if not _is_number(p):
        return NOT_AVAILABLE
    p = float(p)  # type: ignore[arg-type]
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _cell(value: object) -> str:
    """Table cell text: one line, pipes escaped."""
    return str(value).replace("\n", " ").replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _bullets(items: Mapping[str, object]) -> list[str]:
    return [f"- **{key}**: {_text(value)}" for key, value in items.items()]


def _ci_header(conf_level: float) -> str:
    return f"{100 * conf_level:g} % CI"


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def _model_details(f: ModelCardFacts) -> list[str]:
    return _bullets(
        {
            "Name": f.model_name,
            "Version": f.model_version,
            "Family": f.family,
            "MLflow run id": f.run_id,
            "Git commit": f.git_commit,
            "Training date": f.training_date,
            "Training-data digest": f.data_digest,
            "Data contract version": f.contract_version,
        }
    )


def _intended_use(f: ModelCardFacts) -> list[str]:
    return _bullets({"Intended use": f.intended_use, "Intended users": f.intended_users})


def _data(f: ModelCardFacts) -> list[str]:
    simulated = {True: "yes (simulated cohort)", False: "no (observed patients)"}.get(
        f.simulated, NOT_AVAILABLE
    )
    items = {
        "Source": f.data_source,
        "Simulated data": simulated,
        "Setting": f.setting,
        "Enrollment period": f.enrollment_period,
        "Eligibility": "patients free of bone metastasis at enrollment",
        "Patients used (eligible)": _count(f.n_patients),
        "Excluded: bone metastasis at enrollment": _count(f.n_excluded_bone_met_at_enrollment),
    }
    if f.landmark_days:
        rows = f.landmark_rows or {}
        items["Landmark rows"] = (
            ", ".join(f"{split} {_count(n)}" for split, n in rows.items()) or NOT_AVAILABLE
        ) + (
            " (one row per patient and landmark at which the patient is still at risk; "
            f"landmarks: days {', '.join(f'{d:g}' for d in f.landmark_days)})"
        )
    lines = _bullets(items)
    lines += [f"- **Modelling note**: {_text(note)}" for note in f.modelling_notes]
    return lines


def _outcome(f: ModelCardFacts) -> list[str]:
    horizons = ", ".join(f"{h:g}" for h in f.horizons_months) + " months"
    follow = (
        f"{f.median_follow_up_months:.1f} months"
        if _is_number(f.median_follow_up_months)
        else NOT_AVAILABLE
    )
    return _bullets(
        {
            "Outcome": "time from enrollment to the first bone metastasis (days; a month is "
            "365.25 / 12 days)",
            "Competing event": (
                "death without bone metastasis. A patient who dies can no longer "
                "develop bone metastasis, so predictions and observed incidences are cumulative "
                "incidences with death competing (Aalen-Johansen), not 1 - Kaplan-Meier with "
                "death censored, which would overstate them. Each prediction also returns the "
                "cumulative incidence of death without bone metastasis (death_probability, data "
                "contract 1.1; docs/modeling.md says how each family obtains it)"
                if f.competing_death
                else "not modelled: the training data had too few deaths without bone "
                "metastasis, so the death hazard is taken as zero and the predicted incidence "
                "is 1 - S(t) (this overstates it where patients do die first)"
            ),
            "Censoring": "end of follow-up without either event, assumed independent of the "
            "outcome given the predictors. A patient censored before a horizon has unknown "
            "status at it and is represented by inverse probability of censoring weights "
            "(Kaplan-Meier estimate of the censoring distribution), not dropped",
            "Horizons": horizons,
            "Median follow-up": follow,
        }
    )


def _unit(spec: ColumnSpec) -> str:
    if spec.unit:
        return spec.unit
    if spec.allowed:
        return "category: " + ", ".join(spec.allowed)
    if spec.kind == "boolean":
        return "true/false"
    if spec.range_text():
        return f"{spec.kind} {spec.range_text()}"
    return "unitless"


def _feature_doc(name: str) -> tuple[str, str]:
    if name in _FEATURE_DOCS:
        return _FEATURE_DOCS[name]
    if name.startswith("missing_"):
        return "0/1", f"indicator: {name.removeprefix('missing_')} was missing (then imputed)"
    return NOT_AVAILABLE, NOT_AVAILABLE


def _predictors(f: ModelCardFacts) -> list[str]:
    lines = ["Inputs (data contract columns):", ""]
    lines += _table(
        ("feature", "unit", "meaning"),
        [
            (PATIENT_SPECS[c].name, _unit(PATIENT_SPECS[c]), PATIENT_SPECS[c].description)
            for c in f.inputs()
        ],
    )
    lines += ["", "Model features (built from the inputs, standardised on the training split):", ""]
    if f.engineered_features:
        lines += _table(
            ("feature", "unit", "meaning"),
            [(name, *_feature_doc(name)) for name in f.engineered_features],
        )
    else:
        lines.append(f"Model features: {NOT_AVAILABLE}.")
    return lines


def _missing(f: ModelCardFacts) -> list[str]:
    lines = ["Share missing per input in the training split:", ""]
    if f.missing_share:
        lines += _table(
            ("input", "missing"),
            [(c, f"{100 * float(s):.1f} %") for c, s in f.missing_share.items()],
        )
    else:
        lines.append(f"Share missing: {NOT_AVAILABLE}.")
    indicators = [n for n in f.engineered_features if n.startswith("missing_")]
    lines += ["", f"Handling: {_text(f.imputation)}"]
    if indicators:
        lines += ["", f"Missing-value indicators in the model: {', '.join(indicators)}."]
    return lines


def _events_per_feature(f: ModelCardFacts) -> str:
    train = (f.split_counts or {}).get("train")
    if not train or not f.engineered_features or not _is_number(train.get("bone_metastasis")):
        return NOT_AVAILABLE
    events = int(train["bone_metastasis"])
    p = len(f.engineered_features)
    return f"{events / p:.1f} ({events} bone metastasis events / {p} features)"


def _sample_size(f: ModelCardFacts) -> list[str]:
    if not f.split_counts:
        return [f"Counts per split: {NOT_AVAILABLE}."]
    lines = _table(
        ("split", "patients", "bone metastasis", "death (competing)", "censored"),
        [
            (split, *(_count(counts[k]) for k in _SPLIT_KEYS))
            for split, counts in f.split_counts.items()
        ],
    )
    lines += ["", f"Events per model feature in training: {_events_per_feature(f)}."]
    return lines


def _model_building(f: ModelCardFacts) -> list[str]:
    lines = _bullets(
        {
            "Family": f.family,
            "Hyperparameter search": f.hyperparameter_search,
            "Resampling": f.cv_scheme,
            "Risk-group cut-offs (risk score)": (
                ", ".join(format_estimate(c, 3) for c in f.risk_cutoffs) if f.risk_cutoffs else None
            ),
        }
    )
    if f.search_space:
        lines += ["", "Search space and selected values:", ""]
        selected = dict(f.selected_params or {})
        lines += _table(
            ("hyperparameter", "values searched", "selected"),
            [
                (k, ", ".join(str(v) for v in values), _text(selected.get(k)))
                for k, values in f.search_space.items()
            ],
        )
    elif f.selected_params:
        lines += ["", "Selected hyperparameters:", ""]
        lines += _table(("hyperparameter", "selected"), list(f.selected_params.items()))
    else:
        lines.append(f"- **Selected hyperparameters**: {NOT_AVAILABLE}")
    return lines


def _row_value(row: pd.Series, column: str) -> object:
    return row[column] if column in row.index else None


def _performance(f: ModelCardFacts) -> list[str]:
    lines = [f"Test estimates: {_text(f.evaluation)}.", ""]
    if f.performance is None or f.performance.empty:
        return lines + [f"Performance: {NOT_AVAILABLE}."]
    rows = []
    for _, row in f.performance.iterrows():
        mean, sd = _row_value(row, "cv_mean"), _row_value(row, "cv_sd")
        cv = (
            f"{format_estimate(mean)} ± {format_estimate(sd, _digits(float(mean)))}"
            if _is_number(mean) and _is_number(sd)
            else format_estimate(mean)
        )
        test = format_ci(row["estimate"], _row_value(row, "lo"), _row_value(row, "hi"))
        rows.append((row["metric"], cv, test))
    header = ("metric", "CV mean ± sd", f"test estimate [{_ci_header(f.conf_level)}]")
    return lines + _table(header, rows)


def _subgroups(f: ModelCardFacts) -> list[str]:
    if f.subgroups is None or f.subgroups.empty:
        return [f"Subgroup performance: {NOT_AVAILABLE}."]
    frame = f.subgroups
    metrics = list(pd.unique(frame["metric"]))
    keys = list(dict.fromkeys(zip(frame["variable"], frame["level"], strict=True)))
    rows = []
    for variable, level in keys:
        part = frame[(frame["variable"] == variable) & (frame["level"] == level)]
        cells = []
        for metric in metrics:
            hit = part[part["metric"] == metric]
            if hit.empty:
                cells.append(NOT_AVAILABLE)
                continue
            r = hit.iloc[0]
            if "lo" in r.index and "hi" in r.index:
                cells.append(format_ci(r["value"], r["lo"], r["hi"]))
            else:
                cells.append(format_estimate(r["value"]))
        notes = (
            sorted({str(n) for n in part["note"] if isinstance(n, str) and n})
            if "note" in part.columns
            else []
        )
        first = part.iloc[0]
        rows.append(
            (
                variable,
                level,
                _count(first["n"]),
                _count(first["events"]),
                *cells,
                "; ".join(notes),
            )
        )
    lines = [
        "Metrics within subgroups; a metric is not available when the subgroup has too few "
        "events or the metric is not defined there (reason in the note).",
        "",
    ]
    return lines + _table(("variable", "level", "n", "events", *metrics, "note"), rows)


def _marker(f: ModelCardFacts) -> list[str]:
    lines = [
        "Difference between the model with the osteocalcin marker and the same model without "
        "it (with minus without).",
        "",
        f"Method: {_text(f.marker_method)}.",
        "",
    ]
    if f.marker_increment:
        rows = []
        for label, value in f.marker_increment.items():
            estimate, lo, hi = _triple(value)
            if _is_number(lo) and _is_number(hi):
                excludes = "yes" if float(lo) > 0 or float(hi) < 0 else "no"
            else:
                excludes = NOT_AVAILABLE
            rows.append((label, format_ci(estimate, lo, hi), excludes))
        ci = _ci_header(f.conf_level)
        lines += _table(("quantity", f"difference [{ci}]", f"{ci} excludes 0"), rows)
    else:
        lines.append(f"Differences: {NOT_AVAILABLE}.")
    lr = f.marker_lr_test
    if lr and _is_number(lr.get("statistic")):
        df = _count(lr.get("df"))
        lines += [
            "",
            f"Likelihood-ratio test of the marker terms: chi2 = {float(lr['statistic']):.2f}, "
            f"df = {df}, {_p_value(lr.get('p_value'))}.",
        ]
    else:
        lines += ["", f"Likelihood-ratio test: {NOT_AVAILABLE}."]
    return lines


def _limitations(f: ModelCardFacts) -> list[str]:
    items = []
    if f.simulated is True:
        items.append(
            "**Trained and evaluated on simulated data** (the project's simulator). The "
            "performance shown describes the simulator, not patients; it supports no clinical "
            "claim."
        )
    elif f.simulated is None:
        items.append(f"Whether the data are simulated: {NOT_AVAILABLE}.")
    items += [
        "Not a medical device: not cleared or approved for clinical use; not for decisions about "
        "individual patients.",
        "Risk of overfitting: events per model feature in training "
        f"{_events_per_feature(f)}; hyperparameters were tuned on the development data and the "
        "test estimates come from a single split, so performance in new patients may be lower.",
        "Transportability: no external validation. Calibration may not transfer to other "
        "settings, populations, eras or flow-cytometry protocols (gating, number of PBMC events "
        "counted); recalibrate before use elsewhere.",
        "The marker is counted from tens of positive events per draw: counting noise attenuates "
        "its apparent effect and adds to individual prediction error.",
        "Horizons beyond the training follow-up are held at the last estimable value "
        "(with a warning).",
    ]
    items += [str(x) for x in f.limitations]
    return [f"- {item}" for item in items]


_SECTIONS = (
    _model_details,
    _intended_use,
    _data,
    _outcome,
    _predictors,
    _missing,
    _sample_size,
    _model_building,
    _performance,
    _subgroups,
    _marker,
    _limitations,
)


def render_model_card(facts: ModelCardFacts) -> str:
    """Render the model card as Markdown.

    Sections, in order, are :data:`SECTION_HEADINGS` (level-2 headings), after a level-1 title
    with the model's name and version.

    Parameters
    ----------
    facts : ModelCardFacts
        What the card states.

    Returns
    -------
    str
        Markdown text ending in a newline.
    """
    version = f" version {facts.model_version}" if facts.model_version else ""
    lines = [
        f"# Model card: {facts.model_name}{version} ({facts.family})",
        "",
        "Reported along TRIPOD+AI (Collins et al., BMJ 2024;385:e078378). Predicts the "
        "cumulative incidence of bone metastasis with death as a competing event.",
    ]
    for heading, section in zip(SECTION_HEADINGS, _SECTIONS, strict=True):
        lines += ["", f"## {heading}", "", *section(facts)]
    return "\n".join(lines) + "\n"
