"""MLflow store set-up: tracking URI, experiments with a project-local artifact location."""

from __future__ import annotations

import subprocess
from pathlib import Path

from training.config import Settings

#: MLflow 3's UI opens an experiment in its GenAI view unless the experiment tag
#: ``mlflow.experimentKind`` says otherwise (read by the UI's experiment page; values
#: ``genai_development`` or ``custom_model_development``): every bonemet experiment holds
#: model-training runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def configure(settings: Settings) -> str:
    """Point MLflow (tracking and registry) at the configured store; return the URI."""
    import mlflow

    if not settings.tracking_uri_override:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return settings.tracking_uri


def ensure_experiment(name: str, settings: Settings) -> str:
    """Experiment id of ``name``, created with its artifacts under the data folder and tagged
    as a model-training experiment (:data:`EXPERIMENT_KIND`: the MLflow UI opens its runs).

    Without an explicit ``artifact_location`` MLflow writes artifacts to ``./mlruns`` of
    whatever directory the command runs in, even with an SQLite store.
    """
    import mlflow

    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        mark_training_experiment(existing.experiment_id)
        return existing.experiment_id
    location = None
    if not settings.tracking_uri_override or settings.tracking_uri_override.startswith("sqlite"):
        location = (settings.artifact_root / name).as_uri()
    return mlflow.create_experiment(
        name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    )


def mark_training_experiment(experiment_id: str) -> None:
    """Tag an experiment (one MLflow created, e.g. under ``mlflow run``) as holding training
    runs, so that the MLflow UI opens it on them (:data:`EXPERIMENT_KIND`)."""
    import mlflow

    client = mlflow.MlflowClient()
    if client.get_experiment(experiment_id).tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


def git_commit(path: Path | None = None) -> str:
    """Commit of the working tree the code runs from, or ``unknown``."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def mlflow_ui_command(settings: Settings) -> str:
    """The command that opens the MLflow UI on the same store."""
    return (
        f"mlflow ui --backend-store-uri '{settings.tracking_uri}' --workers 1 "
        "--host 127.0.0.1 --port 5000"
    )
