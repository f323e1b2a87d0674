"""The model card's facts of one family trained by :func:`training.runs.train.train`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.schema import CONTRACT_REVISION
from features.vocabulary import BONE_METASTASIS, CENSORED, DEATH
from training.config import MODEL_NAME, TrainConfig
from training.evaluation.names import HEADLINE, PER_HORIZON
from training.fitting.data import TrainingData
from training.fitting.family_run import FamilyOutcome
from training.models.catalog import FAMILIES
from training.models.competing import DAYS_PER_MONTH
from training.registry.card import ModelCardFacts
from training.store.backend import git_commit


def _performance(out: FamilyOutcome, config: TrainConfig) -> pd.DataFrame:
    """Headline metrics with CV mean and sd, test estimate and interval; then the other
    horizons' calibration and accuracy (no interval)."""
    nan = float("nan")
    rows = []
    for name in HEADLINE:
        iv = out.test.intervals.get(name)
        rows.append(
            {
                "metric": name,
                "cv_mean": out.cv.get(f"cv_{name}_mean", nan),
                "cv_sd": out.cv.get(f"cv_{name}_sd", nan),
                "estimate": out.test.metrics.get(name, nan),
                "lo": iv.lo if iv else nan,
                "hi": iv.hi if iv else nan,
            }
        )
    for h in config.horizons_months:
        for name in (f"{metric}_{h}m" for metric in PER_HORIZON):
            if name not in HEADLINE and name in out.test.metrics:
                rows.append(
                    {
                        "metric": name,
                        "cv_mean": out.cv.get(f"cv_{name}_mean", nan),
                        "cv_sd": out.cv.get(f"cv_{name}_sd", nan),
                        "estimate": out.test.metrics[name],
                        "lo": nan,
                        "hi": nan,
                    }
                )
    return pd.DataFrame(rows)


def card_facts(
    out: FamilyOutcome,
    data: TrainingData,
    *,
    run_id: str,
    dataset_digest: str,
    source: str,
    cohort: Cohort,
    lr_test: Mapping[str, float] | None,
    version: str | None = None,
) -> ModelCardFacts:
    """The model card's facts; counts are of patients (``data.patients_y``: one target per
    patient and split), a landmark model's stacked rows (``data.y_*``) are counted apart."""
    from training.artifact.risk_model import MARKER_INPUTS, MODEL_INPUTS

    config, patients_y = data.config, data.patients_y
    inputs = MODEL_INPUTS + (MARKER_INPUTS if out.model.include_marker else ())
    missing = {c: float(data.X_train[c].isna().mean()) for c in inputs}
    counts = {
        split: {
            "n": int(len(yy)),
            "bone_metastasis": int(np.sum(yy["cause"] == BONE_METASTASIS)),
            "death": int(np.sum(yy["cause"] == DEATH)),
            "censored": int(np.sum(yy["cause"] == CENSORED)),
        }
        for split, yy in patients_y.items()
    }
    landmark_rows = (
        {"train": int(len(data.y_train))}
        | ({"test": int(len(data.y_test))} if data.y_test is not None else {})
        if config.landmark_days
        else None
    )
    settings_seen = ", ".join(sorted(set(cohort.patients["disease_setting"].dropna())))
    grid = FAMILIES[out.family].grid[: config.max_grid] if out.family in FAMILIES else ()
    stack = getattr(out.model, "member_families", ())  # the run's stack (training.fitting.stack)
    space: dict[str, list] = {}
    for g in grid:
        for k, v in g.items():
            space.setdefault(k, [])
            if v not in space[k]:
                space[k].append(v)
    return ModelCardFacts(
        model_name=MODEL_NAME,
        family=out.family,
        model_version=version,
        run_id=run_id,
        git_commit=git_commit(),
        training_date=datetime.now(UTC).strftime("%Y-%m-%d"),
        data_digest=dataset_digest,
        contract_version=CONTRACT_REVISION,
        data_source=source,
        simulated=("demo" in source or "simulat" in source) or None,
        setting=settings_seen,
        n_patients=int(sum(len(yy) for yy in patients_y.values())),
        n_excluded_bone_met_at_enrollment=data.n_excluded,
        horizons_months=tuple(config.horizons_months),
        median_follow_up_months=float(np.median(patients_y["train"]["time"]) / DAYS_PER_MONTH),
        landmark_days=tuple(config.landmark_days),
        landmark_rows=landmark_rows,
        competing_death=out.model.competing_death,
        modelling_notes=data.notes + ((stack_text(out.model),) if stack else ()),
        input_columns=tuple(inputs),
        engineered_features=tuple(str(n) for n in out.model.pipeline[0].get_feature_names_out()),
        missing_share=missing,
        split_counts=counts,
        hyperparameter_search=(
            f"grid of {len(grid)} configurations, ranked by the inner "
            f"{config.inner_folds}-fold CV mean IPCW Brier score at 12, 24 and 36 months, "
            "pooled over every outer fold's search"
            if not stack
            else "none of its own: each member's version was searched as its family is; the "
            "weights minimise the IPCW Brier score at 12, 24 and 36 months of the members' "
            "out-of-fold predictions"
        ),
        search_space=space,
        selected_params=out.params,
        cv_scheme=(
            f"nested CV on {'the training split' if data.held_out else 'every patient'}: "
            f"{config.outer_folds} outer folds x {config.inner_folds} inner folds"
            + (f", repeated {config.cv_repeats} times" if config.cv_repeats > 1 else "")
            + ", stratified by outcome and setting; the registered model is fitted on "
            + ("the whole training split" if data.held_out else "every patient")
        ),
        evaluation=(
            f"held-out test split ({config.holdout:.0%}, stratified), percentile "
            f"bootstrap 95 % intervals ({config.n_bootstrap} resamples)"
            if data.held_out
            else "out-of-fold predictions of every patient (each patient predicted by the "
            "outer-fold model that did not see them, first repeat), percentile bootstrap 95 % "
            f"intervals ({config.n_bootstrap} resamples): the performance of the modelling "
            "procedure, of which the registered model is the fit on all patients"
        )
        + recalibration_text(out.model.recalibration),
        risk_cutoffs=tuple(out.model.risk_cutoffs),
        performance=_performance(out, config),
        subgroups=out.test.subgroups,
        marker_increment={
            f"delta {k}": (iv.estimate, iv.lo, iv.hi) for k, iv in out.increments.items()
        },
        marker_lr_test=(
            {
                "statistic": lr_test["marker_lr_statistic"],
                "df": lr_test["marker_lr_df"],
                "p_value": lr_test["marker_lr_p_value"],
            }
            if lr_test
            else None
        ),
        marker_method=(
            "same family and hyperparameters refitted without the osteocalcin "
            "features"
            + (
                "; paired bootstrap of the test split"
                if data.held_out
                else " in the same outer folds; paired bootstrap of the out-of-fold predictions"
            )
            if out.model.include_marker and not stack
            else "not measured for the stack: see its members' versions"
            if stack
            else "not measured: the cohort has no marker values (clinical-only model)"
        ),
    )


def recalibration_text(recalibration) -> str:
    """What the card says of a stored recalibration (none: nothing)."""
    if recalibration is None:
        return ""
    return (
        f"; the served probabilities of bone metastasis are recalibrated, logit p' = "
        f"{recalibration.intercept:+.3f} + {recalibration.slope:.3f} logit p, fitted on the "
        "out-of-fold predictions (cross-fitted when scored) because it lowered their Brier "
        "score by more than its paired standard error"
    )


def stack_text(model) -> str:
    """What the card says of the run's stack: what the version is, its members and weights."""
    members = ", ".join(
        f"{f} (weight {w:.3f})" for f, w in zip(model.member_families, model.weights, strict=True)
    )
    lead = model.member_families[int(max(range(len(model.weights)), key=model.weights.__getitem__))]
    return (
        "This version is the stack of the run's families: its probabilities are the weighted sum "
        f"of its members' registered (all-patient) models' answers, {members}; the weights are "
        "non-negative, sum to 1 and minimise the IPCW Brier score at 12, 24 and 36 months of "
        "the members' out-of-fold predictions (its reported performance: cross-fitted, each "
        "outer fold's predictions weighted by the other folds only). Death without bone "
        "metastasis is combined with the same weights, capped so that the two sum to at most 1. "
        "Each interval is the same weighted combination of the members' bounds (conservative: "
        "never narrower than the combination's own under any correlation of the members). The "
        f"risk score is the log-odds of the 24-month probability; explanations and engineered "
        f"features are those of the heaviest member ({lead})."
    )
