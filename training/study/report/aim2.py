"""Aim 2: time to bone metastasis (patients free of it at enrollment, with an outcome):
Aalen-Johansen incidence by marker group (cut-off, tertiles) with Gray-score tests, and the
cause-specific hazard ratio per doubling of the marker, unadjusted and adjusted, with a
proportional hazards check."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.simulate import MARKER_CUTOFF_PERCENT
from features.vocabulary import BONE_METASTASIS, CENSORED, DEATH
from training.models.competing import DAYS_PER_MONTH
from training.study.report.config import StudyConfig
from training.study.report.covariates import (
    ADJUSTMENT_TERMS,
    clinical_design,
    event_codes,
    numeric,
)
from training.study.report.figures import incidence_figure
from training.study.report.parts import Part, hr_words, p_words, regression_numbers
from training.study.stats.competing import gray_test, incidence_by_group
from training.study.stats.regression import cox_fit

__all__ = ["aim2_part"]


def _cif_rows(
    time: np.ndarray, cause: np.ndarray, groups: np.ndarray, order: list[str], config: StudyConfig
) -> list[dict]:
    grid = np.array(config.horizons_months, dtype=float) * DAYS_PER_MONTH
    curves = incidence_by_group(time, cause, groups, grid, order=order)
    rows = []
    for g in order:
        row: dict[str, object] = {
            "group": g,
            "n": curves.n[g],
            "bone metastases": curves.n_events[g],
            "deaths (competing)": curves.n_competing[g],
        }
        for j, m in enumerate(config.horizons_months):
            row[f"{m} months"] = (
                f"{curves.cif[g][j]:.3f} ({curves.lo[g][j]:.3f}-{curves.hi[g][j]:.3f})"
            )
        rows.append(row)
    return rows


def aim2_part(
    cohort: Cohort, log2_marker: np.ndarray, cutoff: float | None, config: StudyConfig
) -> Part:
    """The Aim 2 section; ``cutoff`` (percent) splits the marker, the published one if None."""
    part = Part("aim2", "Aim 2: time to bone metastasis (patients free of it at enrollment)")
    p = cohort.patients
    free = (numeric(p, "bone_metastasis_at_enrollment") == 0.0) & p["event"].notna().to_numpy()
    have = free & np.isfinite(log2_marker)
    n_missing = int((free & ~np.isfinite(log2_marker)).sum())
    sub = p.loc[have].reset_index(drop=True)
    x = log2_marker[have]
    if len(sub) == 0:
        part.missing(
            "Aim 2",
            "no patient free of bone metastasis at enrollment has both an outcome (time_days, "
            "event) and an enrollment marker",
        )
        return part
    time = numeric(sub, "time_days")
    cause = event_codes(sub)
    n_ev = int((cause == BONE_METASTASIS).sum())
    part.numbers["counts"] = {
        "n": len(sub),
        "n_bone_metastasis": n_ev,
        "n_death": int((cause == DEATH).sum()),
        "n_censored": int((cause == CENSORED).sum()),
        "n_missing_marker": n_missing,
    }
    who = (
        f"n = {len(sub)} ({n_ev} bone metastases, {int((cause == DEATH).sum())} deaths without "
        "bone "
        f"metastasis as competing events); {n_missing} without an enrollment marker left out"
    )
    part.text(f"Patients free of bone metastasis at enrollment with follow-up: {who}.")
    if cutoff is None:
        cutoff = MARKER_CUTOFF_PERCENT
        source = f"the published study's {MARKER_CUTOFF_PERCENT} % (no Aim 1 cut-off)"
    else:
        source = "the Aim 1 Youden cut-off"
    above = np.where(2.0**x >= cutoff, "above cut-off", "below cut-off")
    tertile_edges = np.quantile(x, [1 / 3, 2 / 3])
    tertile = np.array(["T1 (lowest)", "T2", "T3 (highest)"], dtype=object)[
        np.searchsorted(tertile_edges, x, side="right")
    ]
    part.numbers["cutoff_percent"] = cutoff
    part.numbers["tertile_edges_percent"] = (2.0**tertile_edges).tolist()
    xlabel = "months since enrollment"
    for key, groups, order, label in (
        (
            "cutoff",
            above,
            ["below cut-off", "above cut-off"],
            f"above vs below {cutoff:.4f} % ({source})",
        ),
        (
            "tertiles",
            tertile,
            ["T1 (lowest)", "T2", "T3 (highest)"],
            "marker tertiles (edges " + ", ".join(f"{v:.4f} %" for v in 2.0**tertile_edges) + ")",
        ),
    ):
        part.heading(f"Cumulative incidence by {label}")
        test = part.attempt(
            f"Gray test ({key})",
            lambda g=groups: gray_test(time, cause, g, n_perm=config.n_perm, seed=config.seed),
        )
        rows = _cif_rows(time, cause, groups, order, config)
        part.numbers[f"incidence_{key}"] = rows
        test_words = (
            ""
            if test is None
            else (
                f" Gray-score permutation test: statistic {test.statistic:.2f} on {test.df} df, "
                f"{p_words(test.p_value)} ({test.n_perm} permutations)."
            )
        )
        if test is not None:
            part.numbers[f"gray_test_{key}"] = test
        if n_ev > 0:
            part.figure(
                f"aim2_incidence_{key}",
                incidence_figure(
                    time,
                    cause,
                    groups,
                    f"Cumulative incidence of bone metastasis by {key}\n"
                    "(Aalen-Johansen, death competing)",
                    xlabel,
                ),
                "Aalen-Johansen incidence of bone metastasis, death as a competing event, by "
                f"{label}; {who}.{test_words}",
            )
        part.table(rows, f"Cumulative incidence (95 % CI) by {label}.{test_words}")

    part.heading("Cause-specific hazard ratio per doubling of the marker")
    event = (cause == BONE_METASTASIS).astype(float)
    clinical = clinical_design(sub)
    unadj = part.attempt(
        "Unadjusted Cox model", lambda: cox_fit(time, event, pd.DataFrame({"log2_marker": x}))
    )
    adj = part.attempt(
        "Adjusted Cox model",
        lambda: cox_fit(
            time, event, pd.concat([pd.DataFrame({"log2_marker": x}), clinical], axis=1)
        ),
    )
    binary = part.attempt(
        "Cox model above vs below the cut-off",
        lambda: cox_fit(
            time, event, pd.DataFrame({"above_cutoff": (above == "above cut-off") * 1.0})
        ),
    )
    rows = []
    for label, fit in (
        ("unadjusted", unadj),
        ("adjusted", adj),
        ("above vs below cut-off", binary),
    ):
        if fit is None:
            continue
        part.numbers[f"cox_{label.split()[0]}"] = regression_numbers(fit)
        for j, term in enumerate(fit.terms):
            rows.append(
                {
                    "model": label,
                    "term": term,
                    "hazard ratio": float(np.exp(fit.coef[j])),
                    "95 % CI": f"{np.exp(fit.lo[j]):.2f}-{np.exp(fit.hi[j]):.2f}",
                    "p": float(fit.p_value[j]),
                    "PH check p": float(fit.extra["ph_p_value"][j]),
                    "n": fit.n,
                    "events": fit.n_events,
                    "n missing (left out)": fit.n_dropped,
                }
            )
    part.table(
        rows,
        "Cause-specific Cox models for bone metastasis (death censored), Breslow ties, Wald "
        "95 % CIs. Adjusted for "
        + ", ".join(ADJUSTMENT_TERMS)
        + " (complete cases). PH check: Grambsch-Therneau test on Schoenfeld residuals against "
        "the rank of event time.",
    )
    if unadj is not None:
        part.text(
            f"Hazard ratio per doubling of the enrollment marker: unadjusted {hr_words(unadj, 0)}"
            + (
                ""
                if adj is None
                else "; adjusted "
                f"{hr_words(adj, 0)}"
                f" (n = {adj.n}, {adj.n_events} events, {adj.n_dropped} with a missing covariate "
                f"left out; global PH check {p_words(adj.extra['ph_global_p_value'])})"
            )
            + "."
        )
    return part
