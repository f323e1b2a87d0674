"""MLflow run of a ``bonemet cytometry`` batch: provenance, the gating file and QC figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from features.contract import CONTRACT_VERSION
from features.cytometry.gating import KEPT_KEYWORDS, CytometryResult
from training.config import Settings

DEFAULT_EXPERIMENT = "bone-metastasis-cytometry"


def qc_sample(result: CytometryResult, n: int, seed: int = 0) -> list[int]:
    """Rows (0-based) of the draws drawn for QC figures: ``n`` of them, seeded, in file order."""
    n_files = len(result.files)
    if n <= 0 or n_files == 0:
        return []
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_files, size=min(n, n_files), replace=False).tolist())


def log_cytometry_run(
    result: CytometryResult,
    paths: dict[str, Path],
    settings: Settings,
    experiment: str = DEFAULT_EXPERIMENT,
    n_figures: int = 4,
    seed: int = 0,
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

    Notes
    -----
    Params and tags carry only the gating file's name and digest, gate paths, versions and
    counts; from the FCS headers only the keywords of ``KEPT_KEYWORDS`` reach the run (inside the
    provenance table). Figure titles name the draw by patient id and day, which the output table
    already holds.
    """
    import flowkit as fk
    import mlflow

    from features.cytometry.figures import gate_figure
    from features.cytometry.strategy import load_strategy
    from training.tracking import store as tracking

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(experiment, settings)
    prov = result.provenance
    with mlflow.start_run(experiment_id=experiment_id, run_name="cytometry") as run:
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
        rows = qc_sample(result, n_figures, seed)
        if rows:
            strategy = load_strategy(result.gating_file)
            for i in rows:
                pid, day = prov["patient_id"].iloc[i], float(prov["day"].iloc[i])
                title = f"patient {pid}, day {day:g}"
                fig = gate_figure(
                    result.files[i], strategy, result.pbmc_gate, result.oc_gate, title, seed
                )
                mlflow.log_figure(fig, f"qc/{pid}_day{day:g}.png")
        return run.info.run_id
