"""The report's first section: who is in the cohort and what was measured."""

from __future__ import annotations

import numpy as np

from features.contract import Cohort
from training.study.report.covariates import is_value, numeric
from training.study.report.parts import Part

__all__ = ["cohort_part"]


def cohort_part(cohort: Cohort, log2_marker: np.ndarray) -> Part:
    """The cohort section: patients, settings, outcomes and draws, counted."""
    p = cohort.patients
    part = Part("cohort", "Cohort")
    meta = is_value(p, "disease_setting", "metastatic") == 1.0
    bone = numeric(p, "bone_metastasis_at_enrollment") == 1.0
    outcome = p["event"].notna().to_numpy()
    events = p["event"].to_numpy(dtype=object)
    n_meas = 0 if cohort.measurements is None else len(cohort.measurements)
    numbers = {
        "n_patients": len(p),
        "n_metastatic": int(meta.sum()),
        "n_early": int((~meta).sum()),
        "n_bone_metastasis_at_enrollment": int(bone.sum()),
        "n_with_outcome": int(outcome.sum()),
        "n_bone_metastasis_events": int(np.sum(events == "bone_metastasis")),
        "n_deaths_without_bone_metastasis": int(np.sum(events == "death")),
        "n_censored": int(np.sum(events == "censored")),
        "n_missing_enrollment_marker": int(np.isnan(log2_marker).sum()),
        "n_measurements": n_meas,
        "n_patients_with_repeated_draws": 0
        if cohort.measurements is None
        else int((cohort.measurements.groupby("patient_id").size() >= 2).sum()),
    }
    part.numbers.update(numbers)
    part.text(
        f"{numbers['n_patients']} patients ({numbers['n_metastatic']} metastatic, "
        f"{numbers['n_early']} early); {numbers['n_bone_metastasis_at_enrollment']} with bone "
        f"metastasis at enrollment; {numbers['n_with_outcome']} with follow-up "
        f"({numbers['n_bone_metastasis_events']} bone metastases, "
        f"{numbers['n_deaths_without_bone_metastasis']} deaths without bone metastasis, "
        f"{numbers['n_censored']} censored). Enrollment marker missing in "
        f"{numbers['n_missing_enrollment_marker']}. {n_meas} repeated-draw measurements, "
        f"{numbers['n_patients_with_repeated_draws']} patients with two or more."
    )
    part.text(
        "The marker is the osteocalcin-positive percent of gated PBMC events, taken from the "
        "counts with half an event of continuity correction where counts are given, else as "
        "reported; it is analysed on the log2 scale, so effects are per doubling."
    )
    return part
