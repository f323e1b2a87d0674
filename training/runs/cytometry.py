"""MLflow run of a ``bonemet cytometry`` batch: provenance, the gating file and QC figures."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from features.contract import CONTRACT_VERSION
from features.cytometry import CytometryError, Problem, write_result
from features.cytometry.gating import KEPT_KEYWORDS, CytometryResult
from features.cytometry.problems import RULE_QC_FIGURE
from training.config import Settings

DEFAULT_EXPERIMENT = "bone-metastasis-cytometry"


def qc_sample(result: CytometryResult, n: int, seed: int = 0) -> list[int]:
    """Rows (0-based) of the draws drawn for QC figures: ``n`` of them, seeded, in file order."""
    n_files = len(result.files)
    if n <= 0 or n_files == 0:
        return []
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_files, size=min(n, n_files), replace=False).tolist())


def qc_figures(result: CytometryResult, n: int, seed: int = 0) -> dict[str, object]:
    """The QC figures of :func:`qc_sample`'s draws, by artifact path, drawn before anything is
    written (a figure that cannot be drawn stops the batch).

    Raises
    ------
    CytometryError
        Naming the draw whose figure failed and why.
    """
    from features.cytometry.figures import gate_figure
    from features.cytometry.strategy import load_strategy

    rows = qc_sample(result, n, seed)
    if not rows:
        return {}
    prov = result.provenance
    strategy = load_strategy(result.gating_file)
    figures = {}
    for i in rows:
        pid, day = prov["patient_id"].iloc[i], float(prov["day"].iloc[i])
        title = f"patient {pid}, day {day:g}"
        try:
            fig = gate_figure(
                result.files[i], strategy, result.pbmc_gate, result.oc_gate, title, seed
            )
        except (IndexError, ValueError, LookupError, ZeroDivisionError, OSError) as exc:
            problem = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
            where = {"fcs_file": prov["fcs_file"].iloc[i], "patient_id": pid}
            raise CytometryError([Problem(RULE_QC_FIGURE.format(problem=problem), **where)]) from exc
        figures[f"qc/{pid}_day{day:g}.png"] = fig
    return figures


def write_and_log(
    result: CytometryResult,
    out: str | os.PathLike[str],
    settings: Settings,
    experiment: str = DEFAULT_EXPERIMENT,
    n_figures: int = 4,
    seed: int = 0,
) -> tuple[dict[str, Path], str]:
    """Write a gated batch's tables and log its run, only once everything has succeeded.

    The QC figures are drawn first (:func:`qc_figures`); the tables are written to a staging
    folder beside ``out``, logged with the figures as one run, and moved into place only when
    the run has finished. A failure at any step leaves no table, no partial file and no run
    (:func:`log_cytometry_run` deletes a run it could not finish).

    Returns
    -------
    tuple
        The written paths (:func:`features.cytometry.write_result`'s keys) and the run id.
    """
    figures = qc_figures(result, n_figures, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        staged = write_result(result, staging / out.name)
        run_id = log_cytometry_run(
            result, staged, settings, experiment, n_figures, seed, figures=figures
        )
        written = {}
        for name, path in staged.items():
            written[name] = out.parent / path.name
            os.replace(path, written[name])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written, run_id


def log_cytometry_run(
    result: CytometryResult,
    paths: dict[str, Path],
    settings: Settings,
    experiment: str = DEFAULT_EXPERIMENT,
    n_figures: int = 4,
    seed: int = 0,
    figures: dict[str, object] | None = None,
) -> str:
    """Log a gated batch as an MLflow run; return its run id.

    Parameters
    ----------
    result : CytometryResult
        What :func:`features.cytometry.gate_batch` returned.
    paths : dict
        The written ``oc_measurements`` and ``provenance`` tables (:func:`write_result`).
    settings : Settings
        The MLflow store.
    experiment : str
        Experiment of the run.
    n_figures : int
        Files drawn (seeded) for the QC figures: the two gates on their events.
    seed : int
        Seed of that draw.
    figures : dict, optional
        The figures already drawn (:func:`qc_figures`; default: drawn here, before the run).

    Notes
    -----
    Params and tags carry only the gating file's name and digest, gate paths, versions and
    counts; from the FCS headers only the keywords of ``KEPT_KEYWORDS`` reach the run (inside the
    provenance table). Figure titles name the draw by patient id and day, which the output table
    already holds.
    """
    import mlflow

    from training.store import backend as tracking

    if figures is None:
        figures = qc_figures(result, n_figures, seed)
    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(experiment, settings)
    started: list[str] = []
    try:
        return _log_run(result, paths, experiment_id, figures, started)
    except BaseException:
        # No run left FAILED with half its artifacts: a run that did not finish is deleted.
        from mlflow.exceptions import MlflowException

        for run_id in started:
            try:
                mlflow.MlflowClient().delete_run(run_id)
            except MlflowException:
                pass
        raise


def _log_run(result, paths, experiment_id, figures, started: list[str]) -> str:
    """The run of :func:`log_cytometry_run`; its id goes into ``started`` once created."""
    import flowkit as fk
    import mlflow

    from training.store import backend as tracking

    prov = result.provenance
    with mlflow.start_run(experiment_id=experiment_id, run_name="cytometry") as run:
        started.append(run.info.run_id)
        mlflow.log_params(
            {
                "gating_file": result.gating_file.name,
                "gating_sha256": result.gating_sha256,
                "pbmc_gate": str(result.pbmc_gate),
                "oc_gate": str(result.oc_gate),
                "flowkit_version": fk.__version__,
                "n_files": len(result.files),
                "workers": result.workers,
            }
        )
        mlflow.set_tags(
            {
                "git_commit": tracking.git_commit(),
                "contract_version": str(CONTRACT_VERSION),
                "fcs_keywords_kept": ",".join("$" + k.upper() for k in KEPT_KEYWORDS),
            }
        )
        mlflow.log_metrics(
            {
                "total_events": float(result.total_events),
                "pbmc_events_total": float(prov["pbmc_events"].sum()),
                "oc_positive_events_total": float(prov["oc_positive_events"].sum()),
                "gating_seconds": result.seconds,
                "events_per_second": result.total_events / max(result.seconds, 1e-9),
            }
        )
        mlflow.log_artifact(str(result.gating_file), artifact_path="gating")
        mlflow.log_artifact(str(paths["oc_measurements"]))
        mlflow.log_artifact(str(paths["provenance"]))
        for artifact, fig in figures.items():
            mlflow.log_figure(fig, artifact)
        return run.info.run_id
