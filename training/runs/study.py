"""The study as an MLflow run: build the report, write its files and log them
(:func:`run_study`); the statistics and the report builder import no MLflow."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from features.contract import Cohort
from features.schema import CONTRACT_VERSION
from training.config import Settings
from training.study.report.build import build_study, write_study
from training.study.report.config import StudyConfig
from training.study.report.parts import Study

__all__ = ["StudyResult", "headline_metrics", "log_study", "run_study"]


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` wrote: file paths, the MLflow run id and the numbers."""

    paths: dict[str, Path]
    run_id: str | None
    numbers: dict[str, Any]


def headline_metrics(numbers: dict[str, Any]) -> dict[str, float]:
    """The main numbers as flat MLflow metrics (only those computed and finite)."""
    picks = {
        "aim1_auc": ("aim1", "roc", "auc"),
        "aim1_rank_p_value": ("aim1", "rank_test", "p_value"),
        "aim1_hl_shift_log2": ("aim1", "rank_test", "shift"),
        "aim1_cutoff_percent": ("aim1", "cutoff", "cutoff"),
        "aim1_cutoff_lo": ("aim1", "cutoff", "lo"),
        "aim1_cutoff_hi": ("aim1", "cutoff", "hi"),
        "aim1_adjusted_log2_ratio": (
            "aim1",
            "regression_adjusted",
            "terms",
            "bone_metastasis",
            "coef",
        ),
        "aim2_n": ("aim2", "counts", "n"),
        "aim2_n_bone_metastasis": ("aim2", "counts", "n_bone_metastasis"),
        "aim2_gray_p_cutoff": ("aim2", "gray_test_cutoff", "p_value"),
        "aim2_gray_p_tertiles": ("aim2", "gray_test_tertiles", "p_value"),
        "aim2_log_hr_unadjusted": ("aim2", "cox_unadjusted", "terms", "log2_marker", "coef"),
        "aim2_log_hr_adjusted": ("aim2", "cox_adjusted", "terms", "log2_marker", "coef"),
        "aim2_ph_global_p_adjusted": ("aim2", "cox_adjusted", "ph_global_p_value"),
    }
    out: dict[str, float] = {}
    for name, path in picks.items():
        value: Any = numbers
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and math.isfinite(value):
            out[name] = float(value)
    for key, lm in (numbers.get("monitoring", {}).get("landmarks") or {}).items():
        for model, term in (("latest", "oc_latest_log2"), ("change", "oc_change_log2")):
            coef = (lm.get(f"cox_{model}") or {}).get("terms", {}).get(term, {}).get("coef")
            if isinstance(coef, int | float) and math.isfinite(coef):
                out[f"landmark_{key}_log_hr_{model}"] = float(coef)
    return out


def log_study(study: Study, paths: dict[str, Path], settings: Settings, source: str = "") -> str:
    """Log the report as an MLflow run (params, headline metrics, report, numbers, figures)."""
    import mlflow

    from training.store import backend as tracking

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(study.config.experiment, settings)
    numbers = study.numbers
    with mlflow.start_run(experiment_id=experiment_id, run_name="study") as run:
        params = {k: str(v) for k, v in asdict(study.config).items()}
        mlflow.log_params({**params, "source": source[:500]})
        mlflow.set_tags(
            {
                "git_commit": tracking.git_commit(),
                "contract_version": str(CONTRACT_VERSION),
                "report": "study",
            }
        )
        counts = {
            f"cohort_{k}": float(v)
            for k, v in numbers["cohort"].items()
            if isinstance(v, int | float)
        }
        mlflow.log_metrics({**counts, **headline_metrics(numbers)})
        mlflow.log_artifact(str(paths["report"]))
        mlflow.log_artifact(str(paths["numbers"]))
        mlflow.log_artifacts(str(paths["figures"]), artifact_path="figures")
        return run.info.run_id


def run_study(
    cohort: Cohort,
    out_dir: str | Path,
    settings: Settings | None,
    config: StudyConfig | None = None,
    source: str = "",
) -> StudyResult:
    """Build the report, write it under ``out_dir`` and log it to MLflow (unless no settings).

    Returns
    -------
    StudyResult
    """
    study = build_study(cohort, config)
    paths = write_study(study, out_dir, source)
    run_id = None if settings is None else log_study(study, paths, settings, source)
    return StudyResult(paths=paths, run_id=run_id, numbers=study.numbers)
