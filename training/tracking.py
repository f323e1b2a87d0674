"""MLflow store set-up: tracking URI, experiments with a project-local artifact location."""

from __future__ import annotations

import subprocess
from pathlib import Path

from training.config import Settings


def configure(settings: Settings) -> str:
    """Point MLflow (tracking and registry) at the configured store; return the URI."""
    import mlflow

    if not settings.tracking_uri_override:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return settings.tracking_uri


def ensure_experiment(name: str, settings: Settings) -> str:
    """Experiment id of ``name``, created with its artifacts under the data folder.

    Without an explicit ``artifact_location`` MLflow writes artifacts to ``./mlruns`` of
    whatever directory the command runs in, even with an SQLite store.
    """
    import mlflow

    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = None
    if not settings.tracking_uri_override or settings.tracking_uri_override.startswith("sqlite"):
        location = (settings.artifact_root / name).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


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
