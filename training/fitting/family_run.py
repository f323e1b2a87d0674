"""One family's run, without MLflow: repeated nested CV (out-of-fold predictions of every
patient), the final fit on every training row, the evaluation (out-of-fold or held-out) and
the marker's increment; every configured family in turn or in worker processes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from features.schema import HEADLINE_HORIZON_MONTHS
from features.transformers import transform_rows
from features.vocabulary import DEATH
from training.artifact.explain import training_percentiles
from training.artifact.intervals import fit_uncertainty
from training.artifact.missing import plausible_values
from training.artifact.risk_model import (
    MODEL_INPUTS,
    RiskModel,
    development_facts,
    estimates_death,
    predict_features,
    predict_pipeline,
)
from training.config import TrainConfig
from training.evaluation.bootstrap import Interval
from training.evaluation.recalibration import choose_recalibration
from training.evaluation.suite import (
    SELECTION_HORIZONS_MONTHS,
    SplitEvaluation,
    auc_curve,
    cv_summary,
    evaluate_split,
    point_metrics,
)
from training.fitting.data import TrainingData
from training.fitting.search import Trial, fit_pipeline, folds, n_fits, search
from training.models.catalog import FAMILIES
from training.models.competing import DAYS_PER_MONTH

NUMERIC_RANGE_INPUTS = (
    "age_years",
    "ki67_percent",
    "tumor_size_mm",
    "positive_lymph_nodes",
    "alkaline_phosphatase_u_per_l",
)


def fit_risk_model(
    family: str,
    params: Mapping[str, Any],
    config: TrainConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    include_marker: bool | None = None,
) -> RiskModel:
    """Fit features and estimator of one family on typed rows ``X`` and target ``y``.

    Parameters
    ----------
    family : str
        Name in :data:`training.models.catalog.FAMILIES`.
    params : mapping
        Hyperparameters of the family (one configuration of its grid).
    include_marker : bool, optional
        Override of ``config.include_marker`` (False: the clinical-only model).
    """
    marker = config.include_marker if include_marker is None else include_marker
    fam = FAMILIES[family]
    pipeline = fit_pipeline(fam.make, params, X, y, marker, flexible=fam.flexible)
    score = pipeline.predict(X)
    cutoffs = tuple(float(c) for c in np.quantile(score, [1 / 3, 2 / 3]))
    ranges = {}
    inputs = NUMERIC_RANGE_INPUTS + (("oc_positive_percent",) if marker else ())
    for column in inputs:
        values = X[column].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        if values.size:
            ranges[column] = (float(values.min()), float(values.max()))
    follow_up = float(np.quantile(y["time"], 0.9)) / DAYS_PER_MONTH
    landmarks = tuple(config.landmark_days) if "landmark_day" in X.columns else ()
    uncertainty, plausible = interval_data(pipeline, X, y, config, marker)
    return RiskModel(
        uncertainty=uncertainty,
        plausible=plausible,
        development=development_facts(X, y),
        competing_death=bool(np.any(y["cause"] == DEATH)),
        family=family,
        pipeline=pipeline,
        risk_cutoffs=cutoffs,  # type: ignore[arg-type]
        horizons_months=tuple(config.horizons_months),
        max_follow_up_months=follow_up,
        include_marker=marker,
        training_ranges=ranges,
        training_percentiles=training_percentiles(X),
        landmark_days=landmarks,
    )


def interval_data(pipeline, X: pd.DataFrame, y: np.ndarray, config: TrainConfig, marker: bool):
    """What a version stores to answer with intervals and missing-input ranges (contract 1.2):
    the estimation uncertainty (:func:`training.artifact.intervals.fit_uncertainty`) and the
    plausible values of each input (:func:`training.artifact.missing.plausible_values`)."""
    horizons = tuple(float(h) for h in config.horizons_months)
    features = transform_rows(pipeline[:-1], X)
    _, bone, death = predict_features(pipeline[-1], features, horizons, estimates_death(pipeline[-1]))
    cif = {"bone": bone} if death is None else {"bone": bone, "death": death}
    uncertainty = fit_uncertainty(cif, features, y, horizons, seed=int(config.seed))
    inputs = MODEL_INPUTS + (("oc_positive_percent",) if marker else ())
    return uncertainty, plausible_values(X, inputs)


class Progress(Protocol):
    """Receives progress of a training run (the CLI draws bars; the library stays silent)."""

    def start(self, total: int, description: str) -> None: ...

    def advance(self, description: str) -> None: ...


class SilentProgress:
    """Progress that shows nothing (the default of a library call)."""

    def start(self, total: int, description: str) -> None:
        return None

    def advance(self, description: str) -> None:
        return None


@dataclass(frozen=True)
class FamilySkipped:
    """A family that could not be fitted on this cohort, and why (the others go on)."""

    family: str
    reason: str


@dataclass
class FamilyOutcome:
    """Everything a training run learned about one family.

    ``test`` is the evaluation of ``data.design``: the held-out split scored by the final
    model, or every training row scored by its out-of-fold prediction (first repeat).
    ``oof_loss`` holds each training row's out-of-fold Brier loss at the selection horizons
    (averaged over the repeats; the selection's paired comparisons); ``test_groups`` the risk
    group of each evaluated row (figure of incidence by group).
    """

    family: str
    model: RiskModel
    params: dict[str, Any]
    cv: dict[str, float]
    fold_metrics: list[dict[str, float]]
    trials: tuple[Trial, ...]
    test: SplitEvaluation
    clinical_test: dict[str, float]
    increments: dict[str, Interval]
    clinical_auc: tuple[list, list] | None
    importance: pd.Series
    test_risk: np.ndarray
    oof_loss: np.ndarray | None = None
    test_groups: np.ndarray | None = None
    oof: OutOfFold | None = None


@dataclass(frozen=True)
class OutOfFold:
    """A family's out-of-fold predictions as its version serves them (cross-fitted
    recalibrated when the version is recalibrated): what the run's stack combines
    (:mod:`training.fitting.stack`).

    ``served``: ``(repeats, n, months)`` incidences at the selection ``months``; ``fold``:
    ``(repeats, n)`` outer-fold index of each row (the same for every family of a run);
    ``cif``: ``(n, horizons)`` the first repeat at every training ``horizons``.
    """

    served: np.ndarray
    fold: np.ndarray
    months: tuple[int, ...]
    cif: np.ndarray
    horizons: tuple[int, ...]


def _risk_and_cif(pipe, X: pd.DataFrame, horizons):
    risk, cif = predict_pipeline(pipe, X, horizons)
    return risk, {h: cif[:, j] for j, h in enumerate(horizons)}


def brier_losses(y: np.ndarray, cif: Mapping[int, np.ndarray]) -> np.ndarray:
    """Each row's IPCW Brier loss averaged over the selection horizons (12, 24, 36 months).

    Their mean is :func:`training.evaluation.suite.mean_brier` of the same rows (censoring
    estimated on ``y``): the per-patient terms a paired comparison of two families needs.
    """
    from training.evaluation.ipcw import ipcw_status
    from training.evaluation.suite import SELECTION_HORIZONS_MONTHS

    months = [h for h in cif if h in SELECTION_HORIZONS_MONTHS] or list(cif)
    total = np.zeros(len(y))
    for h in months:
        label, weight = ipcw_status(y, h)
        total += weight * (label - np.asarray(cif[h], dtype=float)) ** 2
    return total / len(months)


def pooled_trials(grid, searches) -> tuple[Trial, ...]:
    """Each configuration's inner-CV scores pooled over every outer fold's search."""
    return tuple(
        Trial(dict(params), tuple(sc for inner in searches for sc in inner.trials[i].scores))
        for i, params in enumerate(grid)
    )


def tertile_groups(score: np.ndarray) -> np.ndarray:
    """``low``/``intermediate``/``high`` by the tertiles of ``score``."""
    from training.artifact.risk_model import RISK_GROUPS

    cutoffs = np.quantile(score, [1 / 3, 2 / 3])
    return np.asarray(RISK_GROUPS, dtype=object)[np.searchsorted(cutoffs, score, side="right")]


def run_family(name: str, data: TrainingData, progress: Progress) -> FamilyOutcome:
    """Nested CV (repeated), final fit, evaluation and marker increment of one family.

    The outer folds are the same for every family of a run (same rows, same seeds): their
    out-of-fold predictions are paired. The final configuration is the one with the lowest
    inner-CV score pooled over every outer fold's search (no separate final search), and the
    final model is fitted on every training row. Without a held-out split the evaluation,
    the gates' intervals and the marker's increment read the out-of-fold predictions of every
    row (the first repeat; the clinical-only model fitted in the same folds).
    """
    from training.evaluation.importance import feature_importance

    config = data.config
    X_train, y_train = data.X_train, data.y_train
    X_eval, y_eval = data.evaluation_rows()
    family = FAMILIES[name]
    horizons = tuple(config.horizons_months)
    grid = family.grid[: config.max_grid]
    n = len(X_train)
    marker = config.include_marker
    oof_clinical = marker and not data.held_out

    def tick(what: str) -> None:
        progress.advance(f"{name}: {what}")

    fold_metrics = []
    searches = []
    oof_risk, oof_cif = np.full(n, np.nan), np.full((n, len(horizons)), np.nan)
    # Every repeat's out-of-fold incidences at the selection horizons and outer-fold index:
    # the cross-fitted recalibration (training.evaluation.recalibration).
    months = [h for h in horizons if h in SELECTION_HORIZONS_MONTHS] or list(horizons)
    oof_sel = np.full((config.cv_repeats, n, len(months)), np.nan)
    fold_of = np.full((config.cv_repeats, n), -1)
    clin_risk, clin_cif = np.full(n, np.nan), np.full((n, len(horizons)), np.nan)
    importance = None
    for r in range(config.cv_repeats):
        seed_r = config.seed + 1000 * r
        for k, (tr, te) in enumerate(folds(X_train, config.outer_folds, seed_r)):
            inner = search(
                family.make,
                grid,
                X_train.iloc[tr],
                y_train[tr],
                include_marker=marker,
                n_folds=config.inner_folds,
                seed=seed_r + k + 1,
                tick=tick,
                flexible=family.flexible,
                max_patients=config.search_max_patients,
            )
            searches.append(inner)
            # Read for bone metastasis only (scores, incidences, importance): death=False.
            pipe = fit_pipeline(
                family.make, inner.best_params, X_train.iloc[tr], y_train[tr], marker,
                flexible=family.flexible, death=False,
            )
            tick(f"outer fold {k + 1}" + (f" (repeat {r + 1})" if config.cv_repeats > 1 else ""))
            risk, cif = _risk_and_cif(pipe, X_train.iloc[te], horizons)
            fold_metrics.append(point_metrics(y_train[tr], y_train[te], risk, cif))
            oof_sel[r, te] = np.column_stack([cif[h] for h in months])
            fold_of[r, te] = k
            if r:
                continue
            oof_risk[te] = cif[HEADLINE_HORIZON_MONTHS]  # comparable across the fold models
            oof_cif[te] = np.column_stack([cif[h] for h in horizons])
            if importance is None and not data.held_out:
                Xt = pipe[:-1].transform(X_train.iloc[te])
                names = pipe[0].get_feature_names_out()
                importance = feature_importance(pipe[-1], Xt, y_train[te], names, seed=config.seed)
            if oof_clinical:
                clinical = fit_pipeline(
                    family.make, inner.best_params, X_train.iloc[tr], y_train[tr], False,
                    flexible=family.flexible, death=False,
                )
                tick(f"clinical-only fold {k + 1}")
                _, cif_c = _risk_and_cif(clinical, X_train.iloc[te], horizons)
                clin_risk[te] = cif_c[HEADLINE_HORIZON_MONTHS]
                clin_cif[te] = np.column_stack([cif_c[h] for h in horizons])
    trials = pooled_trials(grid, searches)
    ranked = [t for t in trials if np.isfinite(t.mean)]
    params = dict(min(ranked, key=lambda t: t.mean).params)  # min keeps the first of ties
    model = fit_risk_model(name, params, config, X_train, y_train)
    tick("final fit")
    ids = X_train["patient_id"] if "patient_id" in X_train.columns else None
    recal = choose_recalibration(
        y_train, oof_sel, fold_of, months,
        groups=ids.to_numpy() if ids is not None and ids.duplicated().any() else None,
    )
    if recal.applied:
        model.recalibration = recal.fit
    if recal.applied:  # each fold recalibrated by the other folds only (cross-fitted)
        crossed = dict(zip(months, recal.cif.T, strict=True))
        oof_cif = np.column_stack(
            [crossed[h] if h in crossed else recal.fit.apply(oof_cif[:, j])
             for j, h in enumerate(horizons)]
        )  # fmt: skip
    if data.held_out:
        risk, cif_eval = model.predict_arrays(X_eval, horizons)
        cif = {h: cif_eval[:, j] for j, h in enumerate(horizons)}
        groups = model.risk_group(risk)
    else:
        risk, cif = oof_risk, {h: oof_cif[:, j] for j, h in enumerate(horizons)}
        groups = tertile_groups(risk)
    risk_c = cif_c = None
    if marker and oof_clinical:
        risk_c = clin_risk
        cif_c = {h: clin_cif[:, j] for j, h in enumerate(horizons)}
    elif marker:
        clinical = fit_risk_model(name, params, config, X_train, y_train, include_marker=False)
        tick("clinical-only fit")
        risk_c, cif_c = _risk_and_cif(clinical.pipeline, X_eval, horizons)
    bound = config.bootstrap_max_patients or None
    # The marker's paired increments come from the evaluation's own resamples.
    test = evaluate_split(
        y_train, y_eval, risk, cif, X_eval, n_boot=config.n_bootstrap, seed=config.seed,
        max_resample=bound, reference_risk=risk_c,
    )
    if importance is None or importance.name == "coefficient":
        # Coefficients are the final model's; permutation importance needs unseen rows.
        Xt_eval = model.pipeline[:-1].transform(X_eval)
        importance = feature_importance(
            model.estimator, Xt_eval, y_eval, model.pipeline[0].get_feature_names_out(),
            seed=config.seed,
        )
    cv = cv_summary(fold_metrics)
    if recal.applied and "cv_brier_headline_mean" in cv:
        # The selection score of the served (recalibrated) probability: the paired gain of
        # the cross-fitted recalibration subtracted from the fold models' score.
        cv["cv_brier_headline_mean"] -= recal.gain
    cv.update(recal.summary())
    outcome = FamilyOutcome(
        family=name,
        model=model,
        params=params,
        cv=cv,
        fold_metrics=fold_metrics,
        trials=trials,
        test=test,
        clinical_test={},
        increments={},
        clinical_auc=None,
        importance=importance,
        test_risk=risk,
        oof_loss=recal.losses,
        test_groups=groups,
        oof=OutOfFold(recal.served, fold_of, tuple(months), oof_cif, horizons),
    )
    if not marker:  # already clinical-only: no increment to measure
        return outcome
    outcome.clinical_test = point_metrics(y_train, y_eval, risk_c, cif_c)
    outcome.clinical_auc = auc_curve(y_train, y_eval, risk_c)
    outcome.increments = dict(test.increments)
    return outcome


def run_family_or_skip(
    name: str, data: TrainingData, progress: Progress
) -> FamilyOutcome | FamilySkipped:
    """:func:`run_family`, or the reason the family cannot be fitted on this cohort.

    A family whose estimator fails on these data (a solver that does not converge, a
    classifier with one class at a horizon, too little memory) must not stop the others.
    """
    try:
        return run_family(name, data, progress)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError, MemoryError) as err:
        return FamilySkipped(name, f"{type(err).__name__}: {err}".strip())


def family_outcomes(
    data: TrainingData, progress: Progress
) -> Iterator[FamilyOutcome | FamilySkipped]:
    """Run every family of ``data.config``, in order (:func:`run_family_or_skip`); with
    ``config.n_jobs`` > 1 in parallel worker processes.

    Workers run with one BLAS/OpenMP thread each: on this project's 2-core machines OpenMP
    code with more threads than cores was erratically 10-100x slower.
    """
    config = data.config
    clinical_fits = (
        0 if not config.include_marker else 1 if data.held_out else config.outer_folds
    )
    total = sum(
        n_fits(
            min(len(FAMILIES[f].grid), config.max_grid),
            config.outer_folds,
            config.inner_folds,
            config.cv_repeats,
        )
        + clinical_fits
        for f in config.families
    )
    progress.start(total, "training")
    if config.n_jobs == 1 or len(config.families) == 1:
        for name in config.families:
            yield run_family_or_skip(name, data, progress)
        return
    import multiprocessing
    import threading

    from joblib import Parallel, delayed, parallel_config

    # Slow families (``Family.slow``) first, so that the others fill the second worker meanwhile;
    # each result is yielded in config order as soon as it and the ones before it are done.
    order = sorted(config.families, key=lambda f: not FAMILIES[f].slow)
    done: dict[str, FamilyOutcome | FamilySkipped] = {}
    pending = list(config.families)
    # Workers report each fit through a managed queue; a thread here moves the bar.
    with multiprocessing.Manager() as manager:
        queue = manager.Queue()
        relay = threading.Thread(target=_relay, args=(queue, progress), daemon=True)
        relay.start()
        try:
            with parallel_config(backend="loky", inner_max_num_threads=1):
                results = Parallel(n_jobs=config.n_jobs, return_as="generator_unordered")(
                    delayed(_named)(name, data, _QueueProgress(queue)) for name in order
                )
                for name, outcome in results:
                    done[name] = outcome
                    while pending and pending[0] in done:
                        yield done.pop(pending.pop(0))
        finally:
            queue.put(None)
            relay.join(timeout=10)


def _named(
    name: str, data: TrainingData, progress: Progress
) -> tuple[str, FamilyOutcome | FamilySkipped]:
    return name, run_family_or_skip(name, data, progress)


class _QueueProgress:
    """Progress that forwards each step to a queue (used inside worker processes)."""

    def __init__(self, queue) -> None:
        self.queue = queue

    def start(self, total: int, description: str) -> None:
        return None

    def advance(self, description: str) -> None:
        self.queue.put(description)


def _relay(queue, progress: Progress) -> None:
    while (item := queue.get()) is not None:
        progress.advance(item)
