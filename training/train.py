"""Fit, evaluate, log and register every candidate model family on a validated cohort."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from features.contract import Cohort, check_patients
from features.draws import enrollment_view
from features.records import contract_rows
from features.schema import CONTRACT_VERSION, PREDICTOR_COLUMNS
from features.transformers import make_feature_pipeline
from training.config import MODEL_NAME, Settings, TrainConfig
from training.evaluate import evaluate
from training.models import (
    DAYS_PER_MONTH,
    CauseSpecificCox,
    IPCWHorizonClassifier,
    make_target,
)
from training.risk_model import RiskModel

NUMERIC_RANGE_INPUTS = (
    "age_years",
    "ki67_percent",
    "tumor_size_mm",
    "positive_lymph_nodes",
    "alkaline_phosphatase_u_per_l",
)


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
class TrainResult:
    """What ``train`` did: the parent run, each candidate, and the new challenger."""

    parent_run_id: str
    experiment_id: str
    candidates: tuple[CandidateResult, ...]
    challenger_version: str
    selection_metric: str
    n_train: int
    n_test: int
    n_excluded_bone_met_at_enrollment: int
    dataset_digest: str


def make_estimator(family: str, config: TrainConfig):
    """Unfitted estimator of a family."""
    if family == "cox_ridge":
        return CauseSpecificCox(alpha=config.cox_alpha)
    if family == "cox_elasticnet":
        return CauseSpecificCox(alpha=config.coxnet_alpha, l1_ratio=config.coxnet_l1_ratio)
    if family == "logistic_ipcw":
        return IPCWHorizonClassifier(horizons_months=config.horizons_months, C=config.logistic_c)
    raise ValueError(f"unknown model family: {family}")


def time_to_event_rows(cohort: Cohort) -> tuple[pd.DataFrame, int]:
    """Rows eligible for time-to-event models: free of bone metastasis at enrollment."""
    if not cohort.has_outcome:
        raise TrainingDataError(
            "the cohort has no outcomes (time_days, event): it can be scored, not trained on"
        )
    p = enrollment_view(cohort.patients, cohort.measurements)
    eligible = p["bone_metastasis_at_enrollment"].to_numpy(dtype=float) != 1.0
    return p.loc[eligible].reset_index(drop=True), int((~eligible).sum())


def fit_risk_model(family: str, config: TrainConfig, X: pd.DataFrame, y: np.ndarray) -> RiskModel:
    """Fit features and estimator of one family on typed rows ``X`` and target ``y``."""
    pipeline = Pipeline(
        [
            ("features", make_feature_pipeline(include_marker=config.include_marker)),
            ("model", make_estimator(family, config)),
        ]
    )
    pipeline.fit(X, y)
    score = pipeline.predict(X)
    cutoffs = tuple(float(c) for c in np.quantile(score, [1 / 3, 2 / 3]))
    ranges = {}
    inputs = NUMERIC_RANGE_INPUTS + (("oc_positive_percent",) if config.include_marker else ())
    for column in inputs:
        values = X[column].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        if values.size:
            ranges[column] = (float(values.min()), float(values.max()))
    follow_up = float(np.quantile(y["time"], 0.9)) / DAYS_PER_MONTH
    return RiskModel(
        family=family,
        pipeline=pipeline,
        risk_cutoffs=cutoffs,  # type: ignore[arg-type]
        horizons_months=tuple(config.horizons_months),
        max_follow_up_months=follow_up,
        include_marker=config.include_marker,
        training_ranges=ranges,
    )


def split(
    rows: pd.DataFrame, config: TrainConfig
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Held-out test split, stratified by outcome and disease setting."""
    y = make_target(rows["event"].to_numpy(dtype=object), rows["time_days"].to_numpy(dtype=float))
    strata = rows["event"].astype(str) + "|" + rows["disease_setting"].astype(str)
    counts = strata.value_counts()
    strata = strata.where(strata.map(counts) >= 2, "other")
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
    """Refuse to train on too few events of either cause."""
    for code, name in ((1, "bone_metastasis"), (2, "death")):
        n = int(np.sum(y["cause"] == code))
        if n < minimum:
            raise TrainingDataError(
                f"{where}: only {n} {name} event(s); at least {minimum} are needed to fit "
                "and evaluate the models"
            )


def _input_example(rows: pd.DataFrame) -> pd.DataFrame:
    """A few contract rows, as a client would send them (booleans as booleans)."""
    return contract_rows(rows.head(3)[list(PREDICTOR_COLUMNS)])


def log_risk_model(
    model: RiskModel, example: pd.DataFrame, registered_model_name: str | None = MODEL_NAME
):
    """Log a fitted RiskModel as an MLflow pyfunc (models-from-code) in the active run.

    Parameters
    ----------
    model : RiskModel
        The fitted model; pickled into the ``risk_model`` artifact.
    example : pandas.DataFrame
        Contract rows used as input example and to infer the signature.
    registered_model_name : str or None
        Register the logged model as a new version of this name.

    Returns
    -------
    mlflow.models.model.ModelInfo
    """
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    from training import registry

    model_code = str(Path(__file__).with_name("pyfunc_model.py"))
    typed, _ = check_patients(example, table="example", allow_outcome=False)
    output = model.predict_frame(typed, model.horizons_months)
    signature = infer_signature(
        example, output, params={"horizons_months": [float(h) for h in model.horizons_months]}
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk_model.joblib"
        joblib.dump(model, path)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=model_code,
            artifacts={"risk_model": str(path)},
            signature=registry.relax_input_schema(signature),
            input_example=example,
            pip_requirements=registry.pip_requirements(),
            registered_model_name=registered_model_name,
        )


def train(
    cohort: Cohort,
    config: TrainConfig,
    settings: Settings,
    *,
    source: str = "cohort",
) -> TrainResult:
    """Train every configured family, log each as a child run, register each as a version.

    Parameters
    ----------
    cohort : features.contract.Cohort
        A validated cohort with outcomes.
    config : TrainConfig
        Families, hyperparameters, seed, split.
    settings : Settings
        The MLflow store.
    source : str
        Where the cohort came from (a path), recorded with the dataset.

    Returns
    -------
    TrainResult
    """
    import mlflow

    from training import registry, tracking

    rows, n_excluded = time_to_event_rows(cohort)
    X_train, X_test, y_train, y_test = split(rows, config)
    check_events(y_train, "training split")
    check_events(y_test, "test split", minimum=2)

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(config.experiment, settings)
    dataset = mlflow.data.from_pandas(cohort.patients, source=source, name="patients")
    example = _input_example(X_train)
    candidates = []
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as parent:
        mlflow.log_params(config.to_params())
        mlflow.log_input(dataset, context="training")
        mlflow.set_tags(
            {
                "git_commit": tracking.git_commit(),
                "contract_version": str(CONTRACT_VERSION),
                "dataset_digest": dataset.digest,
            }
        )
        mlflow.log_metrics(
            {
                "n_train": len(X_train),
                "n_test": len(X_test),
                "n_excluded_bone_met_at_enrollment": n_excluded,
                "n_bone_met_events_train": int(np.sum(y_train["cause"] == 1)),
                "n_death_events_train": int(np.sum(y_train["cause"] == 2)),
            }
        )
        for family in config.families:
            model = fit_risk_model(family, config, X_train, y_train)
            score_test, cif_test = model.predict_arrays(X_test, config.horizons_months)
            metrics = evaluate(
                y_train,
                y_test,
                score_test,
                {h: cif_test[:, j] for j, h in enumerate(config.horizons_months)},
            )
            with mlflow.start_run(
                experiment_id=experiment_id, run_name=family, nested=True
            ) as child:
                mlflow.log_params({**config.to_params(), "family": family})
                mlflow.log_input(dataset, context="training")
                mlflow.set_tags(
                    {
                        "family": family,
                        "git_commit": tracking.git_commit(),
                        "dataset_digest": dataset.digest,
                    }
                )
                mlflow.log_metrics({k: v for k, v in metrics.items() if np.isfinite(v)})
                info = log_risk_model(model, example, registered_model_name=MODEL_NAME)
                mlflow.log_dict(
                    {
                        "risk_cutoffs": list(model.risk_cutoffs),
                        "feature_names": model.pipeline[0].get_feature_names_out().tolist(),
                        "max_follow_up_months": model.max_follow_up_months,
                    },
                    "model_summary.json",
                )
            version = str(info.registered_model_version)
            registry.tag_version(
                version, family, metrics, dataset.digest, child.info.run_id, config.selection_metric
            )
            candidates.append(CandidateResult(family, child.info.run_id, version, metrics))
        best = registry.choose_challenger(candidates, config.selection_metric)
        mlflow.set_tag("challenger_version", best.version)
        mlflow.log_dict(
            {c.family: {"version": c.version, "run_id": c.run_id, **c.metrics} for c in candidates},
            "candidates.json",
        )
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
    )


def summary_json(result: TrainResult) -> str:
    """A JSON summary for the command line."""
    return json.dumps(
        {
            "parent_run_id": result.parent_run_id,
            "challenger_version": result.challenger_version,
            "selection_metric": result.selection_metric,
            "n_train": result.n_train,
            "n_test": result.n_test,
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
