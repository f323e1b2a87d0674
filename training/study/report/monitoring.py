"""Monitoring: marker trajectories over repeated draws, then the landmark analyses
(:mod:`training.study.report.landmark`) at each landmark of the config."""

from __future__ import annotations

from typing import Any

from features.contract import Cohort
from features.landmark import draw_table
from training.study.report.config import StudyConfig
from training.study.report.covariates import numeric
from training.study.report.figures import trajectory_figure
from training.study.report.landmark import landmark_analysis
from training.study.report.parts import Part

__all__ = ["monitoring_part"]


def monitoring_part(cohort: Cohort, config: StudyConfig) -> Part:
    """The monitoring section: trajectories and the landmark analyses of ``config``."""
    part = Part("monitoring", "Monitoring: repeated draws and landmark analyses")
    p = cohort.patients
    if cohort.measurements is None or cohort.measurements.empty:
        part.missing(
            "Monitoring",
            "the cohort has no oc_measurements table (repeated draws): trajectories and "
            "landmark analyses of change need it",
        )
        return part
    if not p["event"].notna().any():
        part.missing("Monitoring", "the cohort has no outcomes (time_days, event)")
        return part
    free = (numeric(p, "bone_metastasis_at_enrollment") == 0.0) & p["event"].notna().to_numpy()
    sub = p.loc[free].reset_index(drop=True)
    draws = draw_table(sub, cohort.measurements)
    per_patient = draws.groupby("patient_id").size()
    repeated = per_patient[per_patient >= 2].index
    n_rep = len(repeated)
    part.numbers["trajectories"] = {
        "n_patients": len(sub),
        "n_with_repeated_draws": n_rep,
        "n_draws": len(draws),
        "median_draws_per_patient": float(per_patient.median()) if len(per_patient) else None,
    }
    if n_rep >= 2:
        fig, caption = trajectory_figure(sub, draws, repeated)
        part.figure("monitoring_trajectories", fig, caption)
    else:
        part.missing(
            "Marker trajectories",
            f"only {n_rep} patient(s) free of bone metastasis at enrollment have two or more draws",
        )

    part.heading("Landmark analyses")
    part.text(
        "At each landmark the analysis keeps the patients still free of bone metastasis, alive "
        "and under follow-up, and uses only the draws taken on or before the landmark: the "
        "latest value, its change from the enrollment draw and the least-squares slope (log2 "
        "per year). Time restarts at the landmark. A marker is called rising when its change is "
        f"at least {config.rise_log2} log2 (a {2**config.rise_log2 - 1:.0%} increase)."
    )
    rows: list[dict[str, object]] = []
    results: dict[str, Any] = {}
    for months, day in zip(config.landmarks_months, config.landmark_days, strict=True):
        results[f"{months}m"] = landmark_analysis(part, cohort, months, day, config, rows)
    part.numbers["landmarks"] = results
    part.table(
        rows,
        "Cause-specific Cox models after each landmark (death censored; residual time). latest: "
        "all at risk with a draw; change and slope: adjusted for the baseline value, among "
        "patients with two or more draws by the landmark.",
    )
    return part
