"""What a model card states: :class:`ModelCardFacts`, gathered by training, checked when made."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from features.schema import (
    DEFAULT_HORIZONS_MONTHS,
    PATIENT_SPECS,
    PREDICTOR_COLUMNS,
    PROVENANCE_COLUMNS,
)
from training.artifact.card import DEFAULT_INTENDED_USE, LANDMARK_INTENDED_USE  # noqa: F401
from training.registry.card.text import is_number

DEFAULT_INTENDED_USERS = (
    "Researchers and clinicians studying bone-metastasis risk and the osteocalcin marker. Not "
    "for decisions about the care of individual patients."
)

#: Inputs that are not predictors: the identifier, and the eligibility flag (patients with bone
#: metastasis at enrollment are excluded, so the flag is constant in training), and the (1.2)
#: provenance columns: a model must not learn the hospital, the lab or the reagent lot.
_NOT_PREDICTORS = ("patient_id", "bone_metastasis_at_enrollment", *PROVENANCE_COLUMNS)

SPLIT_KEYS = ("n", "bone_metastasis", "death", "censored")
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
    contract_version : str, optional
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
    contract_version: int | str | None = None
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
            if not (is_number(share) and 0.0 <= float(share) <= 1.0):
                raise ValueError(f"missing_share[{name!r}] = {share!r} is not a share in [0, 1]")
        for split, counts in (self.split_counts or {}).items():
            lacking = [k for k in SPLIT_KEYS if k not in counts]
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


def estimate_parts(value: Estimate) -> tuple[Any, Any, Any]:
    """``(estimate, lo, hi)`` of a tuple or an object with those attributes."""
    if hasattr(value, "estimate"):
        return value.estimate, value.lo, value.hi  # type: ignore[union-attr]
    estimate, lo, hi = value  # type: ignore[misc]
    return estimate, lo, hi
