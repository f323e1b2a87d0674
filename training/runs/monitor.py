"""A monitoring run: predictions of a registered model, the checks of
:mod:`training.monitoring`, ``monitor.json``, ``report.html`` and an MLflow run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from features.contract import Cohort
from features.schema import CONTRACT_VERSION
from training.config import Settings
from training.monitoring.curves import MODEL_GRID_MONTHS
from training.monitoring.monitor import MonitorCohort, MonitorConfig, MonitorResult, run_checks
from training.monitoring.report import render_report
from training.monitoring.rules import RULES
from training.scoring.predict import ScoringError, load_risk_model, predict_patients
from training.study.stats.common import json_ready

__all__ = ["MonitorRun", "model_predictions", "run_monitor", "MONITOR_EXPERIMENT"]

MONITOR_EXPERIMENT = "bone-metastasis-monitoring"


@dataclass(frozen=True)
class MonitorRun:
    """What :func:`run_monitor` wrote and found."""

    paths: dict[str, Path]
    run_id: str | None
    alarms: list[dict]
    not_computed: dict[str, str]
    numbers: dict


def model_predictions(model_uri: str, cohorts: list[Cohort]) -> tuple[list[pd.DataFrame], object]:
    """Each cohort's predicted incidences at enrollment on the monthly grid
    (:data:`~training.monitoring.curves.MODEL_GRID_MONTHS`) by the model behind ``model_uri``.

    Raises
    ------
    ScoringError
        When the model cannot be loaded or cannot score a cohort.
    """
    risk_model = load_risk_model(model_uri)
    out = []
    for cohort in cohorts:
        try:
            out.append(
                predict_patients(
                    risk_model,
                    cohort.patients,
                    cohort.measurements,
                    horizons_months=MODEL_GRID_MONTHS,
                )
            )
        except ValueError as err:
            raise ScoringError(f"{model_uri} cannot score the cohort: {err}") from err
    return out, risk_model


def _metrics(result: MonitorResult) -> dict[str, float]:
    n = result.numbers
    out = {"alarms": float(len(result.alarms))}
    for rule in RULES:
        out[f"alarms_{rule.key}"] = float(sum(a["kind"] == rule.key for a in result.alarms))
    for row in n.get("observed_expected", []):
        if row["site_id"] == "all" and row["ratio"] is not None:
            out[f"oe_ratio_{row['months']:g}m"] = row["ratio"]
    if "prediction_drift" in n:
        out["predicted_mean_current"] = n["prediction_drift"]["current_mean"]
        out["predicted_mean_reference"] = n["prediction_drift"]["reference_mean"]
    if "cusum" in n:
        out["cusum_max_statistic"] = n["cusum"]["max_statistic"]
        out["cusum_limit"] = n["cusum"]["limit"]
    out.update({f"n_{k}": float(v) for k, v in n["counts"].items()})
    return out


def write_outputs(result: MonitorResult, out_dir: Path, sources: dict[str, str]) -> dict[str, Path]:
    """``monitor.json``, ``report.html`` and ``figures/*.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page, figures = render_report(result, "; ".join(f"{k}: {v}" for k, v in sources.items()))
    paths = {
        "numbers": out_dir / "monitor.json",
        "report": out_dir / "report.html",
        "figures": out_dir / "figures",
    }
    document = {
        "contract_version": str(CONTRACT_VERSION),
        "sources": sources,
        "alarm": bool(result.alarms),
        **result.numbers,
    }
    paths["numbers"].write_text(json.dumps(json_ready(document), indent=2) + "\n", encoding="utf-8")
    paths["report"].write_text(page, encoding="utf-8")
    paths["figures"].mkdir(exist_ok=True)
    for name, png in figures.items():
        (paths["figures"] / f"{name}.png").write_bytes(png)
    return paths


def log_monitor(
    result: MonitorResult,
    paths: dict[str, Path],
    settings: Settings,
    config: MonitorConfig,
    experiment: str,
    sources: dict[str, str],
) -> str:
    """The MLflow run of a monitoring run: settings, counts of alarms by kind, headline numbers,
    the report, ``monitor.json`` and the figures."""
    import mlflow

    from training.store import backend as tracking

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(experiment, settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name="monitor") as run:
        params = {
            k: ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
            for k, v in asdict(config).items()
        }
        mlflow.log_params({**params, **{k: v[:500] for k, v in sources.items()}})
        mlflow.set_tags(
            {
                "git_commit": tracking.git_commit(),
                "contract_version": str(CONTRACT_VERSION),
                "report": "monitor",
                "alarm": "yes" if result.alarms else "no",
            }
        )
        mlflow.log_metrics(_metrics(result))
        mlflow.log_artifact(str(paths["report"]))
        mlflow.log_artifact(str(paths["numbers"]))
        mlflow.log_artifacts(str(paths["figures"]), artifact_path="figures")
        return run.info.run_id


def run_monitor(
    reference: MonitorCohort,
    current: MonitorCohort,
    qc: pd.DataFrame | None,
    config: MonitorConfig,
    out_dir: str | Path,
    settings: Settings | None,
    experiment: str = MONITOR_EXPERIMENT,
    sources: dict[str, str] | None = None,
) -> MonitorRun:
    """Run every check, write the outputs and log the run (unless ``settings`` is None)."""
    sources = dict(sources or {})
    result = run_checks(reference, current, qc, config)
    paths = write_outputs(result, Path(out_dir), sources)
    run_id = (
        None
        if settings is None
        else log_monitor(result, paths, settings, config, experiment, sources)
    )
    return MonitorRun(paths, run_id, result.alarms, result.not_computed, result.numbers)
