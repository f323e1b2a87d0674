"""What every run logs alike: its name, the cohort as an MLflow dataset, the evaluation's
tables and decision curve, and its metrics (rounded; the headline set as MLflow metrics, all of
them in the run's metrics table). Used by the training and the evaluation runs."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from features.contract import Cohort
from features.schema import HEADLINE_HORIZON_MONTHS
from training.evaluation.names import (
    HEADLINE_SUFFIX,
    LABELS,
    LOGGED_DIGITS,
    METRICS_TABLE,
    UI_GROUP,
    label,
)


def run_name(what: str, cohort: Cohort, digest: str) -> str:
    """A run's name in the MLflow UI: what it is (``train`` or the family) and the data it
    was trained on (patients, the dataset's digest), e.g. ``cox_ridge · 2000 patients ·
    data 2981c147``."""
    return f"{what} · {len(cohort.patients)} patients · data {digest}"


def cohort_dataset(cohort: Cohort, source: str):
    """The patients table as an MLflow dataset (name, digest, source, schema)."""
    import mlflow

    with warnings.catch_warnings():
        # A local path matches two equivalent MLflow source types; MLflow picks one and warns.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways")
        return mlflow.data.from_pandas(cohort.patients, source=source, name="patients")


def log_split_tables(evaluation) -> None:
    """Calibration, decision-curve and subgroup tables of a split's evaluation, in the
    active run (``tables/...``)."""
    import mlflow

    for h, table in evaluation.calibration.items():
        mlflow.log_table(table, f"tables/calibration_{h}m.json")
    if evaluation.decision_curve is not None:
        mlflow.log_table(evaluation.decision_curve, f"tables/decision_curve_{HEADLINE_SUFFIX}.json")
    if evaluation.subgroups is not None:
        mlflow.log_table(evaluation.subgroups, "tables/subgroups.json")


def log_decision_curve_figure(evaluation) -> None:
    """The decision curve at the headline horizon, when there is one, in the active run."""
    import mlflow

    from training.evaluation import figures

    if evaluation.decision_curve is not None:
        mlflow.log_figure(
            figures.decision_curve_figure(evaluation.decision_curve, HEADLINE_HORIZON_MONTHS),
            f"figures/decision_curve_{HEADLINE_SUFFIX}.png",
        )


def logged_value(value: float) -> float:
    """A metric as logged: :data:`LOGGED_DIGITS` significant digits (counts stay whole)."""
    value = float(value)
    if value.is_integer():
        return value
    return float(f"{value:.{LOGGED_DIGITS}g}")


def headline_metrics(
    metrics: dict[str, float], keys: Sequence[str] = tuple(LABELS)
) -> dict[str, float]:
    """The headline metrics ``keys`` under readable names (:func:`label`) in the UI's group,
    e.g. ``headline/Uno C``, with their interval bounds (``... low``, ``... high``)."""
    out = {}
    for key in keys:
        for suffix, words in (("", ""), ("_lo", " low"), ("_hi", " high")):
            value = metrics.get(key + suffix)
            if value is not None and np.isfinite(value):
                out[f"{UI_GROUP}/{label(key)}{words}"] = value
    return out


def log_run_metrics(
    metrics: dict[str, float],
    headline: Sequence[str] = tuple(LABELS),
    counts: dict[str, float] | None = None,
) -> dict[str, float]:
    """Log a run's metrics, rounded (:func:`logged_value`), into the active run: the headline
    set ``headline`` (and ``counts``) as MLflow metrics under readable names
    (:func:`headline_metrics`), every metric in the run's :data:`METRICS_TABLE` (tagged
    :data:`~training.registry.versions.METRICS_TABLE_TAG`; read back with
    :func:`training.registry.versions.run_metrics`). Returns the rounded metrics."""
    import mlflow

    from training.registry.versions import METRICS_TABLE_TAG, metrics_table

    metrics = {k: logged_value(v) for k, v in metrics.items()}
    mlflow.log_metrics({**headline_metrics(metrics, headline), **(counts or {})})
    mlflow.log_table(metrics_table(metrics), METRICS_TABLE)
    mlflow.set_tag(METRICS_TABLE_TAG, METRICS_TABLE)
    return metrics
