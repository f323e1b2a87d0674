"""Multi-site external validation: per-group metrics, pooled evidence, report, MLflow run.

``bonemet evaluate --by COLUMN --out DIR`` calls :func:`validate_by_group`: the model is scored
once on the cohort (as :func:`training.runs.evaluate.evaluate_model` scores it),
:func:`training.validation.groups.group_metrics` measures it in each group,
:func:`training.validation.pooling.pool_table` pools the groups, and everything is written to
``DIR`` (``by_<group>.csv``, ``pooled.json``, ``report.html``) and logged to one MLflow run
tagged with the model version (and, for a registered model, the version tagged with the run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.contract import Cohort
from features.csv_output import write_csv
from features.vocabulary import BONE_METASTASIS
from training.config import Settings
from training.evaluation.calibration import calibration_table
from training.fitting.data import censor_deaths, time_to_event_rows
from training.fitting.landmarks import landmark_rows
from training.models.competing import make_target
from training.runs.logged import cohort_dataset
from training.validation.groups import (
    VALIDATION_HORIZONS,
    check_group_column,
    group_file_name,
    group_metrics,
)
from training.validation.pooling import pool_table
from training.validation.report import calibration_figures, forest_figure, render_report

__all__ = ["GroupValidation", "validate_by_group"]

#: Columns of the report's per-group table (all columns are in the CSV).
_SHOWN = (
    "n_patients", "n_bone_metastasis", "n_death", "c_index", "c_index_low", "c_index_high",
    "oe_ratio_24m", "oe_ratio_24m_low", "oe_ratio_24m_high", "calibration_slope_24m",
    "calibration_slope_24m_low", "calibration_slope_24m_high", "calibration_intercept_24m",
    "ici_24m", "flagged", "note",
)


@dataclass(frozen=True)
class GroupValidation:
    """Where the validation went: the run, the files, the table and the pooled summaries."""

    run_id: str
    model_uri: str
    version: str | None
    paths: dict[str, Path]
    table: object
    pooled: dict


def validate_by_group(
    cohort: Cohort,
    model_uri: str,
    settings: Settings,
    by: str,
    out_dir: str | Path,
    *,
    experiment: str = "bone-metastasis-evaluation",
    source: str = "cohort",
    method: str = "REML",
    hartung_knapp: bool = True,
    n_bootstrap: int = 200,
    seed: int = 42,
) -> GroupValidation:
    """Validate ``model_uri`` on ``cohort`` group by group (module docstring).

    Raises
    ------
    ValueError
        ``by`` does not group patients, or no eligible patient has a value in it.
    training.scoring.predict.ScoringError
        The model cannot be loaded or resolved.
    """
    import mlflow

    from training.registry import versions as registry
    from training.registry.gates import PromotionPolicy
    from training.scoring.predict import ScoringError, load_risk_model
    from training.store import backend as tracking

    check_group_column(by)
    rows, _ = time_to_event_rows(cohort)
    if rows[by].isna().all():
        raise ValueError(f"--by {by}: no patient free of bone metastasis at enrollment has a {by}")
    tracking.configure(settings)
    version = name = None
    if model_uri.startswith("models:/"):
        try:
            resolved = registry.resolve(model_uri)
        except registry.RegistryError as err:
            raise ScoringError(str(err)) from err
        version, name = resolved.version, resolved.name
    risk_model = load_risk_model(model_uri)
    if risk_model.landmark_days:
        rows, y = landmark_rows(rows, cohort.measurements, risk_model.landmark_days)
    else:
        y = make_target(
            rows["event"].to_numpy(dtype=object), rows["time_days"].to_numpy(dtype=float)
        )
    if not risk_model.competing_death:
        y = censor_deaths(y)
    horizons = tuple(sorted(set(risk_model.horizons_months) | set(VALIDATION_HORIZONS)))
    risk, cif = risk_model.predict_arrays(rows, horizons)  # recalibrated when stored
    cif_by_h = {h: cif[:, j] for j, h in enumerate(horizons)}
    band = PromotionPolicy().slope_band
    labels = rows[by].to_numpy(dtype=object)
    table = group_metrics(y, risk, cif_by_h, labels, by=by, slope_band=band,
                          n_boot=n_bootstrap, seed=seed)
    pooled = pool_table(table, by, method=method, hartung_knapp=hartung_knapp)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table": out / group_file_name(by),
        "pooled": out / "pooled.json",
        "report": out / "report.html",
    }
    write_csv(table, paths["table"], float_format="%.6g", lineterminator="\n")
    document = {
        "by": by,
        "model_uri": model_uri,
        "model_version": version,
        "method": method,
        "hartung_knapp": hartung_knapp,
        "level": 0.95,
        "slope_band": list(band),
        "n_groups": len(table),
        "flagged": table.loc[table["flagged"], by].tolist(),
        "metrics": pooled,
    }
    paths["pooled"].write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    figures = {
        "C-index by group": forest_figure(table, by, "c_index", pooled.get("c_index"),
                                          reference=0.5, label="Harrell's C (death censored)"),
        "O/E at 24 months by group": forest_figure(
            table, by, "oe_ratio_24m", pooled.get("oe_ratio_24m"), reference=1.0,
            log_scale=True, label="observed / expected incidence of bone metastasis by 24 months",
        ),
    }
    calib = {}
    notes = {}
    for label, idx in _indices(labels).items():
        p = cif_by_h[24][idx]
        if len(idx) >= 2 and np.any(y["cause"][idx] == BONE_METASTASIS):
            try:
                calib[label] = calibration_table(y[idx], p, 24, n_groups=min(5, len(idx)))
            except ValueError:  # a group too small to split: its row in the table says so
                continue
            row = table.loc[table[by] == label].iloc[0]
            notes[label] = (
                f"{label}: slope {row['calibration_slope_24m']:.2f}, ICI {row['ici_24m']:.3f}"
            )
    experiment_id = tracking.ensure_experiment(experiment, settings)
    dataset = cohort_dataset(cohort, source)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"validate-by-{by}") as run:
        facts = {
            "model": model_uri + (f" (version {version})" if version else ""),
            "family": risk_model.family,
            "cohort": source,
            "grouped by": by,
            "pooling": f"{method}" + (" with Hartung-Knapp" if hartung_knapp else ""),
            "MLflow run": run.info.run_id,
        }
        html_text = render_report(
            title=f"External validation by {by}",
            facts=facts,
            table=table,
            by=by,
            shown_columns=(by, *_SHOWN),
            pooled=pooled,
            figures=figures,
            calibration=calibration_figures(calib, 24, notes),
        )
        paths["report"].write_text(html_text, encoding="utf-8")
        tracking.log_input(dataset, "evaluation")
        mlflow.set_tags({
            "model_uri": model_uri,
            "model_version": version or "",
            "family": risk_model.family,
            "dataset_digest": dataset.digest,
            "validation_by": by,
            "flagged_groups": ",".join(document["flagged"]),
        })
        mlflow.log_params({"by": by, "method": method, "hartung_knapp": hartung_knapp,
                           "n_bootstrap": n_bootstrap})
        metrics = {"n_groups": float(len(table)), "n_flagged": float(len(document["flagged"]))}
        for metric, entry in pooled.items():
            for key in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "tau2",
                        "i2_percent"):
                value = entry.get(key)
                if isinstance(value, int | float):
                    metrics[f"pooled_{metric}_{key}"] = float(value)
        mlflow.log_metrics(metrics)
        for path in paths.values():
            mlflow.log_artifact(str(path), "validation")
        for title, fig in figures.items():
            mlflow.log_figure(fig, f"validation/figures/{title.replace(' ', '_')}.png")
    if version and name:
        client = registry.mlflow_client()
        tags = client.get_model_version(name, version).tags or {}
        # In the version's facts: its row in the registry's table stays two lines.
        for key, value in registry.validation_tags(tags, by, run.info.run_id).items():
            if value is None:
                client.delete_model_version_tag(name, version, key)
            else:
                client.set_model_version_tag(name, version, key, value)
    return GroupValidation(run.info.run_id, model_uri, version, paths, table, pooled)


def _indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    import pandas as pd

    series = pd.Series(labels, dtype=object).where(lambda s: s.notna(), "(missing)")
    return {str(k): v for k, v in series.groupby(series, sort=False).indices.items()}
