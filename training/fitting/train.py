"""Fit, evaluate, log and register every candidate model family on a validated cohort."""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from features.contract import Cohort, check_patients
from features.draws import enrollment_view
from features.examples import synthetic_patient_rows
from features.schema import CONTRACT_VERSION
from training.artifact.explain import training_percentiles
from training.artifact.risk_model import RiskModel, predict_pipeline
from training.config import MODEL_NAME, Settings, TrainConfig
from training.evaluation.metrics import Interval
from training.evaluation.suite import (
    HEADLINE,
    SplitEvaluation,
    auc_curve,
    cv_summary,
    evaluate_split,
    point_metrics,
)
from training.fitting.search import SEARCH_METRIC, Trial, fit_pipeline, folds, n_fits, search
from training.fitting.search import strata as search_strata
from training.models.competing import DAYS_PER_MONTH, make_target
from training.models.families import FAMILIES
from training.tracking.store import git_commit

COMPARISON_METRICS = (
    "cv_brier_headline_mean",
    "cv_uno_c_mean",
    "test_harrell_c",
    "test_uno_c",
    "test_td_auc_24m",
    "test_brier_24m",
    "test_calibration_slope_24m",
    "delta_uno_c_marker",
)

NUMERIC_RANGE_INPUTS = (
    "age_years",
    "ki67_percent",
    "tumor_size_mm",
    "positive_lymph_nodes",
    "alkaline_phosphatase_u_per_l",
)

#: Fewer competing deaths than this in the training split: the death hazard is taken as zero.
MIN_COMPETING_DEATHS = 5


class TrainingDataError(ValueError):
    """The cohort is valid but cannot train a model (no outcomes, too few events)."""


@dataclass(frozen=True)
class CandidateResult:
    """One fitted family: its run, registered version and test metrics."""

    family: str
    run_id: str
    version: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class FamilySkipped:
    """A family that could not be fitted on this cohort, and why (the others go on)."""

    family: str
    reason: str


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` did: the parent run, each candidate, and the new challenger.

    ``notes`` say how the cohort was modelled when it departs from the default (no competing
    deaths, no marker); ``skipped`` lists the families that could not be fitted.
    """

    parent_run_id: str
    experiment_id: str
    candidates: tuple[CandidateResult, ...]
    challenger_version: str
    selection_metric: str
    n_train: int
    n_test: int
    n_excluded_bone_met_at_enrollment: int
    dataset_digest: str
    notes: tuple[str, ...] = ()
    skipped: tuple[FamilySkipped, ...] = ()
    n_train_patients: int | None = None
    n_test_patients: int | None = None
    landmark_days: tuple[float, ...] = field(default_factory=tuple)


def time_to_event_rows(cohort: Cohort) -> tuple[pd.DataFrame, int]:
    """Rows eligible for time-to-event models: free of bone metastasis at enrollment."""
    if not cohort.has_outcome:
        raise TrainingDataError(
            "the cohort has no outcomes (time_days, event): it can be scored, not trained on"
        )
    p = enrollment_view(cohort.patients, cohort.measurements)
    eligible = p["bone_metastasis_at_enrollment"].to_numpy(dtype=float) != 1.0
    return p.loc[eligible].reset_index(drop=True), int((~eligible).sum())


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
        Name in :data:`training.models.families.FAMILIES`.
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
    return RiskModel(
        competing_death=bool(np.any(y["cause"] == 2)),
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


def landmark_rows(
    rows: pd.DataFrame, measurements: pd.DataFrame | None, landmark_days: Sequence[float]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Stack the landmark datasets of ``rows`` (one split's patients) and their targets.

    Each patient still free of bone metastasis and under follow-up at a landmark contributes
    one row per such landmark: the draws known by then (:func:`features.landmark.
    landmark_dataset`: no draw after the landmark, none on or after the outcome) and the
    residual time since the landmark.
    """
    from features.landmark import landmark_dataset

    parts = [landmark_dataset(rows, measurements, day) for day in landmark_days]
    stacked = pd.concat([p for p in parts if len(p)], ignore_index=True)
    y = make_target(
        stacked["event"].to_numpy(dtype=object), stacked["time_days"].to_numpy(dtype=float)
    )
    return stacked, y


def split(
    rows: pd.DataFrame, config: TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Held-out test split, stratified by outcome and disease setting."""
    y = make_target(rows["event"].to_numpy(dtype=object), rows["time_days"].to_numpy(dtype=float))
    strata = search_strata(rows, min_count=2)
    idx = np.arange(len(rows))
    i_train, i_test = train_test_split(
        idx, test_size=config.test_size, random_state=config.seed, stratify=strata
    )
    i_train, i_test = np.sort(i_train), np.sort(i_test)
    return (
        rows.iloc[i_train].reset_index(drop=True),
        rows.iloc[i_test].reset_index(drop=True),
        y[i_train],
        y[i_test],
    )


def check_events(y: np.ndarray, where: str, minimum: int = 5) -> None:
    """Refuse to train on too few bone metastasis events (deaths: :func:`competing_deaths`)."""
    n = int(np.sum(y["cause"] == 1))
    if n < minimum:
        raise TrainingDataError(
            f"{where}: only {n} bone_metastasis event(s); at least {minimum} are needed to fit "
            "and evaluate the models"
        )


def competing_deaths(
    y_train: np.ndarray, y_test: np.ndarray, minimum: int = MIN_COMPETING_DEATHS
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Targets with the competing death modelled, or with its hazard taken as zero.

    Public cohorts often record one event type only. With fewer than ``minimum`` deaths in
    the training split a death hazard cannot be estimated: deaths (if any) are then treated
    as censoring in both splits, the families fit no death model (zero death hazard) and the
    predicted incidence of bone metastasis is ``1 - S(t)``.

    Returns
    -------
    y_train, y_test : numpy.ndarray
        Unchanged, or with cause 2 recoded to 0.
    note : str or None
        None when deaths are modelled; else the sentence the run, the card and the CLI show.
    """
    n = int(np.sum(y_train["cause"] == 2))
    if n >= minimum:
        return y_train, y_test, None
    note = (
        f"no competing death modelled: {n} death(s) without bone metastasis in the training "
        f"split (fewer than {minimum}); the death hazard is taken as zero, so the predicted "
        "incidence of bone metastasis is 1 - S(t)"
        + (" and the recorded deaths count as censoring" if n else "")
    )
    return censor_deaths(y_train), censor_deaths(y_test), note


def censor_deaths(y: np.ndarray) -> np.ndarray:
    """A copy of the target with every death (cause 2) recoded as censoring (cause 0)."""
    y = y.copy()
    y["cause"][y["cause"] == 2] = 0
    return y


def has_marker_values(cohort: Cohort) -> bool:
    """Whether any patients row or draw carries an osteocalcin marker value."""
    from features.draws import MARKER_FIELDS

    for table in (cohort.patients, cohort.measurements):
        if table is not None and len(table):
            if any(table[f].notna().any() for f in MARKER_FIELDS if f in table.columns):
                return True
    return False


def log_risk_model(
    model: RiskModel,
    example: pd.DataFrame | None = None,
    registered_model_name: str | None = None,
    model_card: str | None = None,
):
    """Log a fitted RiskModel as an MLflow pyfunc (models-from-code) in the active run.

    Parameters
    ----------
    model : RiskModel
        The fitted model; pickled into the ``risk_model`` artifact.
    example : pandas.DataFrame, optional
        Contract rows used as input example and to infer the signature. Default: the
        synthetic rows of :func:`features.examples.synthetic_patient_rows`. The example
        travels with the model (registry, Bento, container): never pass patient rows.
    registered_model_name : str or None
        Register the logged model as a new version of this name (``train`` registers after
        the family's run finished instead, with all tags at once:
        :func:`training.tracking.registry.register_version`).
    model_card : str, optional
        Markdown model card stored inside the model (``model_card`` artifact).

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    import features
    import training
    from training import artifact
    from training.tracking import logged_model

    model_code = str(Path(artifact.__file__).with_name("pyfunc_model.py"))
    if example is None:
        example = synthetic_patient_rows()
    typed, _ = check_patients(example, table="example", allow_outcome=False)
    output = model.predict_frame(typed, model.horizons_months)
    with warnings.catch_warnings():
        # MLflow hints that integer columns cannot hold missing values; the input schema is
        # relaxed to Any below (registry.relax_input_schema), so the hint does not apply.
        warnings.filterwarnings("ignore", message=".*Inferred schema contains integer")
        signature = infer_signature(
            example,
            output,
            params={"horizons_months": [float(h) for h in model.horizons_months], "explain": False},
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk_model.joblib"
        joblib.dump(model, path)
        # The pickle names every module it needs: XGBoost families need xgboost installed.
        needs_xgboost = b"xgboost" in path.read_bytes()
        artifacts = {"risk_model": str(path)}
        if model_card is not None:
            card = Path(tmp) / "model_card.md"
            card.write_text(model_card)
            artifacts["model_card"] = str(card)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=model_code,
            artifacts=artifacts,
            signature=logged_model.relax_input_schema(signature),
            input_example=example,
            pip_requirements=logged_model.pip_requirements(xgboost=needs_xgboost),
            # The project's own packages travel with the model: it loads in an environment
            # with only its requirements.txt installed, outside the project folder.
            code_paths=[str(Path(pkg.__file__).parent) for pkg in (features, training)],
            registered_model_name=registered_model_name,
        )


class Progress(Protocol):
    """Receives progress of a training run (the CLI draws bars; the library stays silent)."""

    def start(self, total: int, description: str) -> None: ...

    def advance(self, description: str) -> None: ...


class _Silent:
    def start(self, total: int, description: str) -> None:
        return None

    def advance(self, description: str) -> None:
        return None


def marker_lr_test(X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Likelihood-ratio test of the osteocalcin features in a cause-specific Cox model.

    Lightly ridge-penalised Cox models (``alpha`` 0.5, to keep the fit finite when a missing
    indicator or a rare category separates events) for bone metastasis (death censored), with
    and without the marker features, on the same training rows; the statistic is twice the
    difference of the (unpenalised) partial log-likelihoods at the fitted coefficients (Breslow
    ties), chi-squared with as many degrees of freedom as marker features. Returns NaNs when a
    fit fails.
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    from features.transformers import make_feature_pipeline
    from training.evaluation.metrics import cox_partial_loglik, likelihood_ratio_test

    event = y["cause"] == 1
    lls, widths = [], []
    for marker in (True, False):
        Xt = make_feature_pipeline(include_marker=marker).fit_transform(X)
        cox = CoxPHSurvivalAnalysis(alpha=0.5, ties="breslow", n_iter=200)
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                cox.fit(Xt, Surv.from_arrays(event, y["time"]))
        except ValueError:
            nan = float("nan")
            return {"marker_lr_statistic": nan, "marker_lr_df": nan, "marker_lr_p_value": nan}
        lls.append(cox_partial_loglik(Xt, y["time"], event, cox.coef_))
        widths.append(Xt.shape[1])
    df = widths[0] - widths[1]
    test = likelihood_ratio_test(lls[0], lls[1], df)
    return {
        "marker_lr_statistic": float(test.statistic),
        "marker_lr_df": float(df),
        "marker_lr_p_value": float(test.p_value),
    }


def per_landmark_metrics(
    X: pd.DataFrame,
    y: np.ndarray,
    risk: np.ndarray,
    cif: Mapping[int, np.ndarray],
    prefix: str,
) -> dict[str, float]:
    """Each landmark's rows on their own: patients at risk, events and the point metrics.

    ``<prefix><day>_n``, ``_bone_met_events`` and :func:`training.evaluation.suite.point_metrics`
    of the
    rows of that landmark (its own censoring distribution), e.g. ``eval_landmark_91_uno_c``.
    A landmark with too few events for a metric leaves it out.
    """
    days = X["landmark_day"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    for day in np.unique(days):
        rows = days == day
        key = f"{prefix}{day:g}"
        events = int(np.sum(y["cause"][rows] == 1))
        out[f"{key}_n"] = float(rows.sum())
        out[f"{key}_bone_met_events"] = float(events)
        if events < 2:
            continue
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            # A late landmark can have too few patients for a horizon's metric: left out.
            warnings.simplefilter("ignore")
            try:
                found = point_metrics(
                    y[rows], y[rows], risk[rows], {h: c[rows] for h, c in cif.items()}
                )
            except ValueError:
                continue
        out.update({f"{key}_{k}": float(v) for k, v in found.items() if np.isfinite(v)})
    return out


def landmark_metrics(X: pd.DataFrame, y: np.ndarray, risk: np.ndarray) -> dict[str, float]:
    """Per landmark of a landmark model's test rows: patients at risk, events, Harrell's C.

    The pooled test metrics weight every landmark by its patients at risk; these show each
    prediction time on its own (``test_landmark_<day>_*``). Empty for rows without landmarks.
    """
    from training.evaluation.scores import harrell_c

    if "landmark_day" not in X.columns:
        return {}
    days = X["landmark_day"].to_numpy(dtype=float)
    out: dict[str, float] = {}
    for day in np.unique(days):
        rows = days == day
        events = int(np.sum(y["cause"][rows] == 1))
        key = f"test_landmark_{day:g}"
        out[f"{key}_n"] = float(rows.sum())
        out[f"{key}_bone_met_events"] = float(events)
        if events:
            c = harrell_c(y[rows], risk[rows])
            if np.isfinite(c):
                out[f"{key}_harrell_c"] = float(c)
    return out


@dataclass
class FamilyOutcome:
    """Everything ``train`` learned about one family."""

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


def _risk_and_cif(pipe, X: pd.DataFrame, horizons: Sequence[int]):
    risk, cif = predict_pipeline(pipe, X, horizons)
    return risk, {h: cif[:, j] for j, h in enumerate(horizons)}


def run_family(
    name: str,
    config: TrainConfig,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    progress: Progress,
) -> FamilyOutcome:
    """Nested CV, final search, fit, test evaluation and marker increment of one family."""
    from training.evaluation import metrics as mx
    from training.evaluation.scores import cumulative_dynamic_auc, uno_c
    from training.models.families import feature_importance

    family = FAMILIES[name]
    horizons = tuple(config.horizons_months)
    grid = family.grid[: config.max_grid]

    def tick(what: str) -> None:
        progress.advance(f"{name}: {what}")

    fold_metrics = []
    for k, (tr, te) in enumerate(folds(X_train, config.outer_folds, config.seed)):
        inner = search(
            family.make,
            grid,
            X_train.iloc[tr],
            y_train[tr],
            include_marker=config.include_marker,
            n_folds=config.inner_folds,
            seed=config.seed + k + 1,
            tick=tick,
            flexible=family.flexible,
        )
        pipe = fit_pipeline(
            family.make,
            inner.best_params,
            X_train.iloc[tr],
            y_train[tr],
            config.include_marker,
            flexible=family.flexible,
        )
        tick(f"outer fold {k + 1}")
        risk, cif = _risk_and_cif(pipe, X_train.iloc[te], horizons)
        fold_metrics.append(point_metrics(y_train[tr], y_train[te], risk, cif))
    final = search(
        family.make,
        grid,
        X_train,
        y_train,
        include_marker=config.include_marker,
        n_folds=config.inner_folds,
        seed=config.seed,
        tick=tick,
        flexible=family.flexible,
    )
    model = fit_risk_model(name, final.best_params, config, X_train, y_train)
    tick("final fit")
    risk, cif = _risk_and_cif(model.pipeline, X_test, horizons)
    test = evaluate_split(
        y_train, y_test, risk, cif, X_test, n_boot=config.n_bootstrap, seed=config.seed
    )
    Xt_test = model.pipeline[:-1].transform(X_test)
    importance = feature_importance(
        model.estimator,
        Xt_test,
        y_test,
        model.pipeline[0].get_feature_names_out(),
        seed=config.seed,
    )
    outcome = FamilyOutcome(
        family=name,
        model=model,
        params=dict(final.best_params),
        cv=cv_summary(fold_metrics),
        fold_metrics=fold_metrics,
        trials=final.trials,
        test=test,
        clinical_test={},
        increments={},
        clinical_auc=None,
        importance=importance,
        test_risk=risk,
    )
    if not config.include_marker:  # already clinical-only: no increment to measure
        return outcome
    clinical = fit_risk_model(
        name, final.best_params, config, X_train, y_train, include_marker=False
    )
    tick("clinical-only fit")
    risk_c, cif_c = _risk_and_cif(clinical.pipeline, X_test, horizons)
    outcome.clinical_test = point_metrics(y_train, y_test, risk_c, cif_c)
    outcome.clinical_auc = auc_curve(y_train, y_test, risk_c)
    tau = 60 * DAYS_PER_MONTH

    def increment(fn) -> Interval:
        """Marker minus clinical-only, paired bootstrap interval on the same resamples."""
        if config.n_bootstrap:
            return mx.paired_bootstrap_difference(
                fn, y_test, risk, risk_c, n_boot=config.n_bootstrap, seed=config.seed
            )
        nan = float("nan")
        return Interval(fn(y_test, risk) - fn(y_test, risk_c), nan, nan, 0)

    increments = outcome.increments
    increments["harrell_c"] = increment(lambda yy, r: mx.fast_harrell_c(yy, r))
    increments["uno_c"] = increment(lambda yy, r: uno_c(y_train, yy, r, tau))
    # An interval at the clinical horizon only (bootstrapping sksurv's AUC is the costly part);
    # the AUC-over-time figure shows both feature sets at every horizon.
    if 24 < float(y_test["time"].max()) / DAYS_PER_MONTH:
        increments["td_auc_24m"] = increment(
            lambda yy, r: cumulative_dynamic_auc(y_train, yy, r, 24)
        )
    return outcome


def run_family_or_skip(
    name: str,
    config: TrainConfig,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    progress: Progress,
) -> FamilyOutcome | FamilySkipped:
    """:func:`run_family`, or the reason the family cannot be fitted on this cohort.

    A family whose estimator fails on these data (a solver that does not converge, a
    classifier with one class at a horizon, too little memory) must not stop the others.
    """
    try:
        return run_family(name, config, X_train, y_train, X_test, y_test, progress)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError, RuntimeError, MemoryError) as err:
        return FamilySkipped(name, f"{type(err).__name__}: {err}".strip())


def _log_family(
    out: FamilyOutcome,
    config: TrainConfig,
    y_test: np.ndarray,
    X_test: pd.DataFrame,
) -> dict[str, float]:
    """Metrics, trial runs, tables and figures of one family into the active run."""
    import mlflow

    from training.evaluation import figures

    metrics = {**out.test.flat("test_"), **out.cv}
    metrics.update(
        {f"clinical_test_{k}": v for k, v in out.clinical_test.items() if np.isfinite(v)}
    )
    for k, iv in out.increments.items():
        for suffix, value in (("", iv.estimate), ("_lo", iv.lo), ("_hi", iv.hi)):
            if np.isfinite(value):
                metrics[f"delta_{k}_marker{suffix}"] = float(value)
    metrics.update(landmark_metrics(X_test, y_test, out.test_risk))
    mlflow.log_metrics(metrics)
    mlflow.log_params({f"selected_{k}": v for k, v in out.params.items()})
    experiment_id = mlflow.active_run().info.experiment_id
    for i, trial in enumerate(out.trials):
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{out.family}-trial-{i + 1}", nested=True
        ):
            mlflow.log_params({"family": out.family, **trial.params})
            mlflow.set_tag("selected", str(trial.params == out.params).lower())
            mlflow.log_metrics(
                {
                    k: v
                    for k, v in (
                        (f"inner_cv_{SEARCH_METRIC}_mean", trial.mean),
                        (f"inner_cv_{SEARCH_METRIC}_sd", trial.sd),
                    )
                    if np.isfinite(v)
                }
            )
    trials = pd.DataFrame(
        [
            {
                **t.params,
                f"inner_cv_{SEARCH_METRIC}_mean": t.mean,
                f"inner_cv_{SEARCH_METRIC}_sd": t.sd,
            }
            for t in out.trials
        ]
    )
    mlflow.log_table(trials, "tables/trials.json")
    mlflow.log_table(pd.DataFrame(out.fold_metrics), "tables/cv_outer_folds.json")
    for h, table in out.test.calibration.items():
        mlflow.log_table(table, f"tables/calibration_{h}m.json")
    if out.test.decision_curve is not None:
        mlflow.log_table(out.test.decision_curve, "tables/decision_curve_24m.json")
    if out.test.subgroups is not None:
        mlflow.log_table(out.test.subgroups, "tables/subgroups.json")
    mlflow.log_table(
        out.importance.rename("importance").reset_index(), "tables/feature_importance.json"
    )
    annotations = {}
    for h in out.test.calibration:
        slope = out.test.metrics.get(f"calibration_slope_{h}m", float("nan"))
        ici = out.test.metrics.get(f"ici_{h}m", float("nan"))
        annotations[h] = f"slope {slope:.2f}\nICI {ici:.3f}"
    mlflow.log_figure(
        figures.calibration_figure(out.test.calibration, annotations), "figures/calibration.png"
    )
    groups = out.model.risk_group(out.test_risk)
    mlflow.log_figure(
        figures.incidence_by_group_figure(y_test, groups), "figures/incidence_by_risk_group.png"
    )
    mlflow.log_figure(
        figures.auc_over_time_figure(
            np.asarray(out.test.auc_months),
            np.asarray(out.test.auc_values),
            "with osteocalcin marker" if out.model.include_marker else "clinical only",
            other=(
                {"clinical only": tuple(np.asarray(a) for a in out.clinical_auc)}
                if out.clinical_auc is not None
                else {}
            ),
        ),
        "figures/auc_over_time.png",
    )
    if out.test.decision_curve is not None:
        mlflow.log_figure(
            figures.decision_curve_figure(out.test.decision_curve, 24),
            "figures/decision_curve_24m.png",
        )
    mlflow.log_figure(figures.importance_figure(out.importance), "figures/feature_importance.png")
    return metrics


def _card_facts(
    out: FamilyOutcome,
    *,
    run_id: str,
    dataset_digest: str,
    source: str,
    cohort: Cohort,
    n_excluded: int,
    X_train: pd.DataFrame,
    y_by_split: Mapping[str, np.ndarray],
    config: TrainConfig,
    lr_test: Mapping[str, float] | None,
    patients_y: Mapping[str, np.ndarray],
    notes: tuple[str, ...] = (),
    version: str | None = None,
):
    """The model card's facts; counts are of patients (``patients_y``: one target per
    patient and split), a landmark model's stacked rows (``y_by_split``) are counted apart."""
    from training.artifact.risk_model import MARKER_INPUTS, MODEL_INPUTS
    from training.tracking import model_card as mc

    rows = []
    for name in HEADLINE:
        est = out.test.metrics.get(name, float("nan"))
        iv = out.test.intervals.get(name)
        rows.append(
            {
                "metric": name,
                "cv_mean": out.cv.get(f"cv_{name}_mean", float("nan")),
                "cv_sd": out.cv.get(f"cv_{name}_sd", float("nan")),
                "estimate": est,
                "lo": iv.lo if iv else float("nan"),
                "hi": iv.hi if iv else float("nan"),
            }
        )
    for h in config.horizons_months:
        for name in (
            f"calibration_slope_{h}m",
            f"ici_{h}m",
            f"calibration_in_the_large_{h}m",
            f"brier_{h}m",
        ):
            if name not in HEADLINE and name in out.test.metrics:
                rows.append(
                    {
                        "metric": name,
                        "cv_mean": out.cv.get(f"cv_{name}_mean", float("nan")),
                        "cv_sd": out.cv.get(f"cv_{name}_sd", float("nan")),
                        "estimate": out.test.metrics[name],
                        "lo": float("nan"),
                        "hi": float("nan"),
                    }
                )
    inputs = MODEL_INPUTS + (MARKER_INPUTS if out.model.include_marker else ())
    missing = {c: float(X_train[c].isna().mean()) for c in inputs}
    counts = {
        split: {
            "n": int(len(yy)),
            "bone_metastasis": int(np.sum(yy["cause"] == 1)),
            "death": int(np.sum(yy["cause"] == 2)),
            "censored": int(np.sum(yy["cause"] == 0)),
        }
        for split, yy in patients_y.items()
    }
    landmark_rows = (
        {split: int(len(yy)) for split, yy in y_by_split.items()} if config.landmark_days else None
    )
    settings_seen = ", ".join(sorted(set(cohort.patients["disease_setting"].dropna())))
    grid = FAMILIES[out.family].grid[: config.max_grid]
    space: dict[str, list] = {}
    for g in grid:
        for k, v in g.items():
            space.setdefault(k, [])
            if v not in space[k]:
                space[k].append(v)
    return mc.ModelCardFacts(
        model_name=MODEL_NAME,
        family=out.family,
        model_version=version,
        run_id=run_id,
        git_commit=git_commit(),
        training_date=datetime.now(UTC).strftime("%Y-%m-%d"),
        data_digest=dataset_digest,
        contract_version=CONTRACT_VERSION,
        data_source=source,
        simulated=("demo" in source or "simulat" in source) or None,
        setting=settings_seen,
        n_patients=int(sum(len(yy) for yy in patients_y.values())),
        n_excluded_bone_met_at_enrollment=n_excluded,
        horizons_months=tuple(config.horizons_months),
        median_follow_up_months=float(np.median(patients_y["train"]["time"]) / DAYS_PER_MONTH),
        landmark_days=tuple(config.landmark_days),
        landmark_rows=landmark_rows,
        competing_death=out.model.competing_death,
        modelling_notes=notes,
        input_columns=tuple(inputs),
        engineered_features=tuple(str(n) for n in out.model.pipeline[0].get_feature_names_out()),
        missing_share=missing,
        split_counts=counts,
        hyperparameter_search=(
            f"grid of {len(grid)} configurations, ranked by inner "
            f"{config.inner_folds}-fold CV Uno's C (60 months)"
        ),
        search_space=space,
        selected_params=out.params,
        cv_scheme=(
            f"nested CV on the training split: {config.outer_folds} outer folds x "
            f"{config.inner_folds} inner folds, stratified by outcome and setting"
        ),
        evaluation=(
            f"held-out test split ({config.test_size:.0%}, stratified), percentile "
            f"bootstrap 95 % intervals ({config.n_bootstrap} resamples)"
        ),
        risk_cutoffs=tuple(out.model.risk_cutoffs),
        performance=pd.DataFrame(rows),
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
            "features; paired bootstrap of the test split"
            if out.model.include_marker
            else "not measured: the cohort has no marker values (clinical-only model)"
        ),
    )


def cohort_dataset(cohort: Cohort, source: str):
    """The patients table as an MLflow dataset (name, digest, source, schema)."""
    import mlflow

    with warnings.catch_warnings():
        # A local path matches two equivalent MLflow source types; MLflow picks one and warns.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        return mlflow.data.from_pandas(cohort.patients, source=source, name="patients")


def family_outcomes(
    config: TrainConfig,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    progress: Progress,
) -> Iterator[FamilyOutcome | FamilySkipped]:
    """Run every family, in order (:func:`run_family_or_skip`); with ``config.n_jobs`` > 1 in
    parallel worker processes.

    Workers run with one BLAS/OpenMP thread each: on this project's 2-core machines OpenMP
    code with more threads than cores was erratically 10-100x slower.
    """
    total = sum(
        n_fits(min(len(FAMILIES[f].grid), config.max_grid), config.outer_folds, config.inner_folds)
        + 1
        for f in config.families
    )
    progress.start(total, "training")
    if config.n_jobs == 1 or len(config.families) == 1:
        for name in config.families:
            yield run_family_or_skip(name, config, X_train, y_train, X_test, y_test, progress)
        return
    import multiprocessing
    import threading

    from joblib import Parallel, delayed, parallel_config

    # Workers report each fit through a managed queue; a thread here moves the bar.
    with multiprocessing.Manager() as manager:
        queue = manager.Queue()
        relay = threading.Thread(target=_relay, args=(queue, progress), daemon=True)
        relay.start()
        try:
            with parallel_config(backend="loky", inner_max_num_threads=1):
                results = Parallel(n_jobs=config.n_jobs, return_as="generator")(
                    delayed(run_family_or_skip)(
                        name, config, X_train, y_train, X_test, y_test, _QueueProgress(queue)
                    )
                    for name in config.families
                )
                yield from results
        finally:
            queue.put(None)
            relay.join(timeout=10)


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


def train(
    cohort: Cohort,
    config: TrainConfig,
    settings: Settings,
    *,
    source: str = "cohort",
    progress: Progress | None = None,
) -> TrainResult:
    """Train every configured family and register each as a version of the model.

    For each family: bounded hyperparameter search nested in cross-validation on the training
    split (each final-search trial a child run), a final fit, the evaluation suite on the
    held-out test split with bootstrap intervals, calibration, decision curve and subgroups,
    the same family without the osteocalcin features (incremental value), figures, a model
    card, and a registered version tagged with its headline metrics. The best version by
    ``config.selection_metric`` gets the ``challenger`` alias.

    Parameters
    ----------
    cohort : features.contract.Cohort
        A validated cohort with outcomes.
    config : TrainConfig
        Families, search sizes, seed, split.
    settings : Settings
        The MLflow store.
    source : str
        Where the cohort came from (a path), recorded with the dataset.
    progress : Progress, optional
        Receives one ``advance`` per fitted model.

    Returns
    -------
    TrainResult
    """
    import mlflow

    from training.tracking import gates, registry
    from training.tracking import model_card as mc
    from training.tracking import store as tracking

    progress = progress or _Silent()
    notes = []
    if config.include_marker and not has_marker_values(cohort):
        config = replace(config, include_marker=False)
        notes.append(
            "clinical-only model: the cohort has no osteocalcin marker value (no marker column "
            "or all missing), so the marker features, the marker's incremental value and its "
            "likelihood-ratio test are left out"
        )
    rows, n_excluded = time_to_event_rows(cohort)
    X_train, X_test, y_train, y_test = split(rows, config)
    patients_y = {"train": y_train, "test": y_test}
    if config.landmark_days:
        # Split by patient first, then stack: a patient's landmark rows stay on one side.
        X_train, y_train = landmark_rows(X_train, cohort.measurements, config.landmark_days)
        X_test, y_test = landmark_rows(X_test, cohort.measurements, config.landmark_days)
    check_events(y_train, "training split")
    check_events(y_test, "test split", minimum=2)
    # Deaths are counted per patient (a landmark model stacks a patient's rows).
    _, _, death_note = competing_deaths(patients_y["train"], patients_y["test"])
    if death_note:
        notes.append(death_note)
        y_train, y_test = censor_deaths(y_train), censor_deaths(y_test)
        patients_y = {k: censor_deaths(v) for k, v in patients_y.items()}

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(config.experiment, settings)
    dataset = cohort_dataset(cohort, source)
    # Runs left RUNNING by a killed training are marked failed before this one starts.
    tracking.reap_stale_runs()
    candidates = []
    # The run is created with its owner's tags: a kill at any later point can be detected.
    with mlflow.start_run(
        experiment_id=experiment_id, run_name="train", tags=tracking.owner_tags()
    ) as parent:
        # Under `mlflow run` the project's run is resumed as the parent: children follow it.
        experiment_id = parent.info.experiment_id
        tracking.mark_training_experiment(experiment_id)
        mlflow.log_params(config.to_params())
        mlflow.log_dict(asdict(config), "config.yaml")
        tracking.log_input(dataset, "training")
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "contract_version": str(CONTRACT_VERSION),
                "dataset_digest": dataset.digest,
                "seed": str(config.seed),
                **model_notes(config, death_note),
            }
        )
        if notes:
            mlflow.log_text("\n".join(notes) + "\n", "notes.txt")
        counts = {
            "n_train": len(X_train),
            "n_test": len(X_test),
            "n_train_patients": len(patients_y["train"]),
            "n_test_patients": len(patients_y["test"]),
            "n_excluded_bone_met_at_enrollment": n_excluded,
            "n_bone_met_events_train": int(np.sum(y_train["cause"] == 1)),
            "n_death_events_train": int(np.sum(y_train["cause"] == 2)),
            "n_bone_met_events_test": int(np.sum(y_test["cause"] == 1)),
        }
        mlflow.log_metrics(counts)
        lr_test = marker_lr_test(X_train, y_train) if config.include_marker else None
        if lr_test:
            lr_test = {k: v for k, v in lr_test.items() if np.isfinite(v)} or None
        if lr_test:
            mlflow.log_metrics(lr_test)
        outcomes = family_outcomes(config, X_train, y_train, X_test, y_test, progress)
        skipped = []
        for name, out in zip(config.families, outcomes, strict=True):
            if isinstance(out, FamilySkipped):
                skipped.append(out)
                with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True):
                    mlflow.set_tags({"family": name, "skipped": "true", "skip_reason": out.reason})
                continue
            with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True) as child:
                mlflow.log_params({**config.to_params(), "family": name})
                tracking.log_input(dataset, "training")
                mlflow.set_tags(
                    {
                        "family": name,
                        "git_commit": git_commit(),
                        "dataset_digest": dataset.digest,
                        **model_notes(config, death_note),
                    }
                )
                metrics = _log_family(out, config, y_test, X_test)
                is_cox = name in ("cox_ridge", "cox_elasticnet")
                if lr_test and is_cox:
                    mlflow.log_metrics(lr_test)
                    metrics.update(lr_test)
                card_args = dict(
                    run_id=child.info.run_id,
                    dataset_digest=dataset.digest,
                    source=source,
                    cohort=cohort,
                    n_excluded=n_excluded,
                    X_train=X_train,
                    y_by_split={"train": y_train, "test": y_test},
                    config=config,
                    lr_test=lr_test if is_cox else None,
                    patients_y=patients_y,
                    notes=tuple(notes),
                )
                card = mc.render_model_card(_card_facts(out, **card_args))
                info = log_risk_model(out.model, model_card=card)
                mlflow.log_dict(
                    {
                        "risk_cutoffs": list(out.model.risk_cutoffs),
                        "selected_params": out.params,
                        "feature_names": out.model.pipeline[0].get_feature_names_out().tolist(),
                        "max_follow_up_months": out.model.max_follow_up_months,
                    },
                    "model_summary.json",
                )
            # Registered only once the family's run finished, with every tag in the create
            # request: a training killed at any point leaves no version without its metrics.
            tags = registry.version_tags(
                name,
                metrics,
                dataset.digest,
                child.info.run_id,
                config.selection_metric,
                landmark_days=config.landmark_days,
                training_run_id=parent.info.run_id,
            )
            version = registry.register_version(info.model_uri, tags)
            card = mc.render_model_card(_card_facts(out, version=version, **card_args))
            registry.describe_version(
                version, card, child.info.run_id, name, metrics, config.selection_metric
            )
            candidates.append(CandidateResult(name, child.info.run_id, version, metrics))
        if skipped:
            mlflow.set_tag(
                "skipped_families", "; ".join(f"{s.family}: {s.reason}" for s in skipped)[:4900]
            )
        if not candidates:
            raise TrainingDataError(
                "no model family could be fitted on this cohort: "
                + "; ".join(f"{s.family}: {s.reason}" for s in skipped)
            )
        best = gates.choose_challenger(candidates, config.selection_metric)
        mlflow.set_tag("challenger_version", best.version)
        table = pd.DataFrame(
            [
                {
                    "family": c.family,
                    "version": c.version,
                    **{k: c.metrics.get(k) for k in COMPARISON_METRICS},
                }
                for c in candidates
            ]
        )
        mlflow.log_table(table, "tables/candidates.json")
    return TrainResult(
        parent_run_id=parent.info.run_id,
        experiment_id=experiment_id,
        candidates=tuple(candidates),
        challenger_version=best.version,
        selection_metric=config.selection_metric,
        n_train=len(X_train),
        n_test=len(X_test),
        n_excluded_bone_met_at_enrollment=n_excluded,
        dataset_digest=dataset.digest,
        notes=tuple(notes),
        skipped=tuple(skipped),
        n_train_patients=len(patients_y["train"]),
        n_test_patients=len(patients_y["test"]),
        landmark_days=tuple(config.landmark_days),
    )


def model_notes(config: TrainConfig, death_note: str | None) -> dict[str, str]:
    """Run tags saying how the outcome and the marker were modelled."""
    return {
        "competing_death": "zero hazard (incidence = 1 - S(t))" if death_note else "modelled",
        "marker": "used" if config.include_marker else "none (clinical-only model)",
    }


#: Columns of the closing table of ``bonemet train`` (test split, with 95 % intervals).
TABLE_METRICS = (
    ("test_uno_c", "Uno C"),
    ("test_td_auc_24m", "AUC 24m"),
    ("test_brier_24m", "Brier 24m"),
    ("test_calibration_slope_24m", "slope 24m"),
    ("test_calibration_in_the_large_24m", "CITL 24m"),
)


#: Short names of the promotion gates in tables.
GATE_LABELS = {
    "discrimination": "C vs champion",
    "calibration_slope": "slope",
    "calibration_in_the_large": "CITL",
}


def candidate_table(result: TrainResult) -> pd.DataFrame:
    """The candidates of a training run, for people: one row per family.

    Columns: ``""`` (``* challenger`` on the challenger), family, version, the selection metric, the
    :data:`TABLE_METRICS` as ``estimate [lo, hi]`` and ``gates``: ``pass`` or ``FAIL`` with
    the promotion gates (``training.tracking.gates.check_gates``, against the current champion)
    the version would fail.
    """
    from training.tracking import gates, registry

    champion = registry.alias_version(registry.CHAMPION)
    champion_tags = None
    if champion is not None:
        champion_tags = registry.resolve(f"models:/{MODEL_NAME}/{champion}").tags

    def cell(metrics: Mapping[str, float], name: str) -> str:
        est = metrics.get(name, float("nan"))
        if not np.isfinite(est):
            return ""
        lo, hi = metrics.get(f"{name}_lo", np.nan), metrics.get(f"{name}_hi", np.nan)
        # The interval on a second line keeps the table narrow enough for a terminal.
        interval = f"\n[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
        return f"{est:.3f}{interval}"

    rows = []
    for c in result.candidates:
        tags = {k: str(v) for k, v in c.metrics.items()}
        other = champion_tags if c.version != champion else None
        failed = [
            g.name
            for g in gates.check_gates(tags, other, gates.PromotionPolicy())
            if not g.passed
        ]
        row = {
            "": "* challenger" if c.version == result.challenger_version else "",
            "family": c.family,
            "version": c.version,
            result.selection_metric: cell(c.metrics, result.selection_metric),
        }
        row.update({label: cell(c.metrics, name) for name, label in TABLE_METRICS})
        row["gates"] = (
            "FAIL:\n" + "\n".join(GATE_LABELS.get(f, f) for f in failed) if failed else "pass"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def summary_json(result: TrainResult) -> str:
    """A JSON summary for the command line."""
    return json.dumps(
        {
            "parent_run_id": result.parent_run_id,
            "challenger_version": result.challenger_version,
            "selection_metric": result.selection_metric,
            "n_train": result.n_train,
            "n_test": result.n_test,
            "n_train_patients": result.n_train_patients,
            "n_test_patients": result.n_test_patients,
            "notes": list(result.notes),
            "skipped": [{"family": s.family, "reason": s.reason} for s in result.skipped],
            "candidates": [
                {
                    "family": c.family,
                    "version": c.version,
                    result.selection_metric: c.metrics.get(result.selection_metric),
                }
                for c in result.candidates
            ],
        },
        indent=2,
    )


@dataclass(frozen=True)
class EvaluationResult:
    """What ``evaluate_model`` measured and where it logged it."""

    run_id: str
    model_uri: str
    version: str | None
    metrics: dict[str, float]


def evaluate_model(
    cohort: Cohort,
    model_uri: str,
    settings: Settings,
    *,
    experiment: str = "bone-metastasis-evaluation",
    source: str = "cohort",
    n_bootstrap: int = 200,
    seed: int = 42,
) -> EvaluationResult:
    """Evaluate a registered model on a cohort with outcomes (e.g. external validation).

    The whole cohort (free of bone metastasis at enrollment) is the evaluation split; its own
    censoring distribution is used for the IPCW metrics. Logs an ``evaluate`` run with
    ``eval_*`` metrics, intervals, calibration and decision-curve tables and figures.

    A landmark model is evaluated as it was tested in training: on the stacked landmark rows
    of the cohort (each patient still at risk at each of the model's landmarks, with the draws
    known by then; pooled ``eval_*`` metrics) and at each landmark on its own
    (``eval_landmark_<day>_*``: patients at risk, events, and the point metrics).
    """
    import mlflow

    from training.evaluation import figures
    from training.scoring.predict import ScoringError, load_model
    from training.tracking import registry
    from training.tracking import store as tracking

    rows, n_excluded = time_to_event_rows(cohort)
    n_patients = len(rows)
    tracking.configure(settings)
    version = None
    if model_uri.startswith("models:/"):
        try:
            version = registry.resolve(model_uri).version
        except registry.RegistryError as err:
            raise ScoringError(str(err)) from err
    risk_model = load_model(model_uri).unwrap_python_model().risk_model
    horizons = tuple(risk_model.horizons_months)
    if risk_model.landmark_days:
        rows, y = landmark_rows(rows, cohort.measurements, risk_model.landmark_days)
    else:
        y = make_target(
            rows["event"].to_numpy(dtype=object), rows["time_days"].to_numpy(dtype=float)
        )
    check_events(y, "evaluation cohort", minimum=2)
    if not risk_model.competing_death:
        y = censor_deaths(y)  # evaluated as it was trained: death hazard zero
    risk, cif = predict_pipeline(risk_model.pipeline, rows, horizons)
    cif_by_h = {h: cif[:, j] for j, h in enumerate(horizons)}
    ev = evaluate_split(y, y, risk, cif_by_h, rows, n_boot=n_bootstrap, seed=seed)
    metrics = ev.flat("eval_")
    if risk_model.landmark_days:
        metrics.update(per_landmark_metrics(rows, y, risk, cif_by_h, "eval_landmark_"))
    experiment_id = tracking.ensure_experiment(experiment, settings)
    dataset = cohort_dataset(cohort, source)
    with mlflow.start_run(experiment_id=experiment_id, run_name="evaluate") as run:
        tracking.log_input(dataset, "evaluation")
        mlflow.set_tags(
            {
                "model_uri": model_uri,
                "model_version": version or "",
                "family": risk_model.family,
                "dataset_digest": dataset.digest,
            }
        )
        mlflow.log_metrics(
            {
                **metrics,
                "n_eval": len(rows),
                "n_eval_patients": n_patients,
                "n_excluded_bone_met_at_enrollment": n_excluded,
            }
        )
        for h, table in ev.calibration.items():
            mlflow.log_table(table, f"tables/calibration_{h}m.json")
        mlflow.log_figure(figures.calibration_figure(ev.calibration), "figures/calibration.png")
        if ev.decision_curve is not None:
            mlflow.log_table(ev.decision_curve, "tables/decision_curve_24m.json")
            mlflow.log_figure(
                figures.decision_curve_figure(ev.decision_curve, 24),
                "figures/decision_curve_24m.png",
            )
        if ev.subgroups is not None:
            mlflow.log_table(ev.subgroups, "tables/subgroups.json")
    return EvaluationResult(run.info.run_id, model_uri, version, metrics)
