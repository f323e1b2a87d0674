"""MLflow store set-up: tracking URI, experiments with a project-local artifact location, the
owner of a training run and the reaping of runs whose process was killed, dataset inputs.

The commands that serve a store (team tracking server, local UI) are in
:mod:`training.store.server`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from training.config import Settings

#: The experiment tag that says what kind of runs an experiment holds (values
#: ``genai_development`` or ``custom_model_development``): every bonemet experiment holds
#: model-training runs. MLflow 3.17.2's UI does not read it when it opens an experiment: it
#: opens every experiment on the view of its sidebar's workflow switch (``?workflowType=`` in
#: the address, else the choice remembered by the browser, GenAI by default), which
#: :func:`training.store.server.mlflow_ui_address` sets (docs/comparing-versions.md).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


def database_uri(uri: str) -> str:
    """``uri`` with PostgreSQL URIs bound to psycopg 3 (SQLAlchemy would pick psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    return uri


def configure(settings: Settings) -> str:
    """Point MLflow (tracking and registry) at the configured store; return the URI.

    A local SQLite store is created under a file lock: MLflow creates and migrates the
    database when it first opens it, and two commands doing that at once (two trainings
    started together on a new store) would race in the migration.
    """
    import mlflow

    if not settings.tracking_uri_override:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    uri = database_uri(settings.tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if uri.startswith("sqlite:///"):
        _open_store_locked(uri, Path(uri[len("sqlite:///") :]).with_suffix(".lock"))
    return uri


def _open_store_locked(uri: str, lock_path: Path) -> None:
    """Open (create, migrate) the tracking and registry stores of ``uri`` holding a file lock."""
    import fcntl

    from mlflow.tracking._model_registry.utils import _get_store as registry_store
    from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            tracking_store(uri)
            registry_store(uri)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


OWNER_HOST, OWNER_PID, OWNER_STARTED = "bonemet.host", "bonemet.pid", "bonemet.pid_started"
INTERRUPTED = "bonemet.interrupted"


def owner_tags() -> dict[str, str]:
    """Tags naming the process that runs a training (host, pid, the process's start time).

    :func:`reap_stale_runs` uses them to tell a run still in progress from one whose process
    was killed (the start time guards against a reused pid).
    """
    import os
    import socket

    import psutil

    return {
        OWNER_HOST: socket.gethostname(),
        OWNER_PID: str(os.getpid()),
        OWNER_STARTED: f"{psutil.Process().create_time():.3f}",
    }


def _process_alive(pid: str, started: str) -> bool:
    import psutil

    try:
        return abs(psutil.Process(int(pid)).create_time() - float(started)) < 1.0
    except (psutil.Error, ValueError):
        return False


def reap_stale_runs() -> list[str]:
    """Mark FAILED the runs left RUNNING by a training process that no longer exists.

    A training killed at any point (``kill -9``, a lost machine) cannot end its runs. Its
    top-level run carries :func:`owner_tags`; when that process is gone from this host, the run
    and every run under it still RUNNING are ended as FAILED with a ``bonemet.interrupted``
    tag saying so. Runs of other hosts are left alone (their process cannot be checked here).

    Returns
    -------
    list of str
        The ids of the runs marked failed.
    """
    import socket
    from datetime import UTC, datetime

    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    host = socket.gethostname()
    experiments = [e.experiment_id for e in client.search_experiments(max_results=1000)]
    if not experiments:
        return []
    running = client.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", max_results=5000
    )
    stale = set()
    for run in running:
        tags = run.data.tags
        if (
            tags.get(OWNER_HOST) == host
            and OWNER_PID in tags
            and not _process_alive(tags[OWNER_PID], tags.get(OWNER_STARTED, "nan"))
        ):
            stale.add(run.info.run_id)
    parents = {r.info.run_id: r.data.tags.get("mlflow.parentRunId") for r in running}
    grown = True
    while grown:
        below = {run for run, parent in parents.items() if parent in stale} - stale
        stale |= below
        grown = bool(below)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    done = []
    for run_id in sorted(stale):
        try:
            client.set_tag(
                run_id,
                INTERRUPTED,
                f"the training process ended without finishing this run; marked FAILED at {when}",
            )
            client.set_terminated(run_id, "FAILED")
        except MlflowException:
            # Another user's run on a server with permissions: theirs to end.
            continue
        done.append(run_id)
    return done


def ensure_experiment(name: str, settings: Settings) -> str:
    """Experiment id of ``name``, created with its artifacts under the data folder and tagged
    as a model-training experiment (:data:`EXPERIMENT_KIND`).

    Without an explicit ``artifact_location`` MLflow writes artifacts to ``./mlruns`` of
    whatever directory the command runs in, even with an SQLite store.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        mark_training_experiment(existing.experiment_id)
        return existing.experiment_id
    location = None
    if not settings.tracking_uri_override or settings.tracking_uri_override.startswith("sqlite"):
        location = (settings.artifact_root / name).as_uri()
    try:
        return mlflow.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
        )
    except MlflowException:
        # Another command created it in the meantime (two trainings started together).
        existing = mlflow.get_experiment_by_name(name)
        if existing is None:
            raise
        return existing.experiment_id


def mark_training_experiment(experiment_id: str) -> None:
    """Tag an experiment (one MLflow created, e.g. under ``mlflow run``) as holding training
    runs (:data:`EXPERIMENT_KIND`)."""
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


def log_input(dataset, context: str, attempts: int = 3) -> None:
    """``mlflow.log_input`` that survives a concurrent first logging of the same dataset.

    Two runs logging the same cohort into one experiment at the same moment race in MLflow's
    store (both insert the dataset row; PostgreSQL rejects the second as a duplicate key). The
    retry finds the row the other run created and links it.
    """
    import time

    import mlflow
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            mlflow.log_input(dataset, context=context)
            return
        except MlflowException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
