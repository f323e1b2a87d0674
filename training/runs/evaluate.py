"""The MLflow evaluation run: a registered model measured on a cohort with outcomes."""

from __future__ import annotations

from dataclasses import dataclass

from features.contract import Cohort
from training.config import Settings
from training.evaluation.names import EVALUATION
from training.evaluation.suite import evaluate_split
from training.fitting.data import censor_deaths, check_events, time_to_event_rows
from training.fitting.landmarks import landmark_rows, per_landmark_metrics
from training.models.competing import make_target
from training.runs.logged import (
    cohort_dataset,
    log_decision_curve_figure,
    log_run_metrics,
    log_split_tables,
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
    bootstrap_max_patients: int | None = None,
) -> EvaluationResult:
    """Evaluate a registered model on a cohort with outcomes (e.g. external validation).

    The whole cohort (free of bone metastasis at enrollment) is the evaluation split; its own
    censoring distribution is used for the IPCW metrics. Logs an ``evaluate`` run with
    ``eval_*`` metrics, intervals, calibration and decision-curve tables and figures.

    A landmark model is evaluated as it was tested in training: on the stacked landmark rows
    of the cohort (each patient still at risk at each of the model's landmarks, with the draws
    known by then; pooled ``eval_*`` metrics) and at each landmark on its own
    (``eval_landmark_<day>_*``: patients at risk, events, and the point metrics).

    On a cohort of more than ``bootstrap_max_patients`` rows (default: training's
    ``TrainConfig.bootstrap_max_patients``; 0 for no bound) each bootstrap resample draws that
    many rows and the intervals are rescaled (the m-out-of-n bootstrap,
    :mod:`training.evaluation.bootstrap`); the run's ``bootstrap_resample_size`` param says so.
    """
    import mlflow

    from training.config import TrainConfig
    from training.evaluation import figures
    from training.registry import versions as registry
    from training.scoring.predict import ScoringError, load_risk_model
    from training.store import backend as tracking

    rows, n_excluded = time_to_event_rows(cohort)
    n_patients = len(rows)
    tracking.configure(settings)
    version = None
    if model_uri.startswith("models:/"):
        try:
            version = registry.resolve(model_uri).version
        except registry.RegistryError as err:
            raise ScoringError(str(err)) from err
    risk_model = load_risk_model(model_uri)
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
    risk, cif = risk_model.predict_arrays(rows, horizons)  # recalibrated when stored
    cif_by_h = {h: cif[:, j] for j, h in enumerate(horizons)}
    if bootstrap_max_patients is None:
        bootstrap_max_patients = TrainConfig().bootstrap_max_patients
    bound = bootstrap_max_patients if 0 < bootstrap_max_patients < len(rows) else None
    ev = evaluate_split(
        y, y, risk, cif_by_h, rows, n_boot=n_bootstrap, seed=seed, max_resample=bound
    )
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
        metrics = log_run_metrics(
            metrics,
            headline=[f"eval_{name}" for name in EVALUATION],
            counts={
                "n_eval": len(rows),
                "n_eval_patients": n_patients,
                "n_excluded_bone_met_at_enrollment": n_excluded,
            },
        )
        mlflow.log_params(
            {"n_bootstrap": n_bootstrap, "bootstrap_resample_size": bound or len(rows)}
        )
        log_split_tables(ev)
        mlflow.log_figure(figures.calibration_figure(ev.calibration), "figures/calibration.png")
        log_decision_curve_figure(ev)
    return EvaluationResult(run.info.run_id, model_uri, version, metrics)
