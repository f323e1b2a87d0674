"""Aim 1: the enrollment marker with versus without bone metastasis (metastatic patients):
distributions, rank test with Hodges-Lehmann shift, ROC, Youden cut-off with a bootstrap
interval, and the difference adjusted for age and bone-targeted therapy."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.simulate import MARKER_CUTOFF_PERCENT
from training.study.report.config import StudyConfig
from training.study.report.covariates import is_value, numeric
from training.study.report.figures import distribution_figure, roc_figure
from training.study.report.parts import Part, ci_words, p_words, regression_numbers
from training.study.stats.comparisons import rank_comparison, roc_analysis, youden_cutoff
from training.study.stats.regression import linear_regression

__all__ = ["aim1_part"]


def aim1_part(
    cohort: Cohort, log2_marker: np.ndarray, config: StudyConfig
) -> tuple[Part, float | None]:
    """The Aim 1 section, and its Youden cut-off (percent) for Aim 2 (None if not computed)."""
    part = Part("aim1", "Aim 1: marker with versus without bone metastasis (metastatic patients)")
    p = cohort.patients
    meta = is_value(p, "disease_setting", "metastatic") == 1.0
    status = numeric(p, "bone_metastasis_at_enrollment")
    have = meta & np.isfinite(log2_marker)
    with_bm = have & (status == 1.0)
    without = have & (status == 0.0)
    counts = {
        "n_metastatic": int(meta.sum()),
        "n_with_bone_metastasis": int(with_bm.sum()),
        "n_without_bone_metastasis": int(without.sum()),
        "n_missing_marker": int((meta & ~np.isfinite(log2_marker)).sum()),
    }
    part.numbers["counts"] = counts
    who = (
        f"{counts['n_with_bone_metastasis']} with and {counts['n_without_bone_metastasis']} "
        f"without bone metastasis; {counts['n_missing_marker']} metastatic patients without an "
        "enrollment marker left out"
    )
    part.text(f"Metastatic patients at enrollment: {who}.")
    if min(counts["n_with_bone_metastasis"], counts["n_without_bone_metastasis"]) < 3:
        part.missing(
            "Aim 1",
            "needs at least 3 metastatic patients with an enrollment marker in each group "
            f"(with bone metastasis: {counts['n_with_bone_metastasis']}, without: "
            f"{counts['n_without_bone_metastasis']})",
        )
        return part, None

    x_with, x_without = log2_marker[with_bm], log2_marker[without]
    rank = part.attempt("Rank test", lambda: rank_comparison(x_with, x_without))
    roc = part.attempt("ROC", lambda: roc_analysis(status[have], 2.0 ** log2_marker[have]))
    cut = part.attempt(
        "Cut-off",
        lambda: youden_cutoff(
            status[have], 2.0 ** log2_marker[have], n_boot=config.n_boot, seed=config.seed
        ),
    )
    part.figure(
        "aim1_distribution",
        distribution_figure(2.0**x_with, 2.0**x_without, None if cut is None else cut.cutoff),
        f"Enrollment osteocalcin-positive percent (log scale), metastatic patients: {who}. "
        "Boxes: quartiles; dashed line: the Youden cut-off.",
    )
    if rank is not None:
        part.numbers["rank_test"] = rank
        part.text(
            "Mann-Whitney test: "
            f"{p_words(rank.p_value)}. Median marker {2**rank.median_a:.4f} % with versus "
            f"{2**rank.median_b:.4f} % without bone metastasis. Hodges-Lehmann shift "
            f"{ci_words(rank.shift, rank.shift_lo, rank.shift_hi)} doublings, i.e. a ratio of "
            f"{ci_words(2**rank.shift, 2**rank.shift_lo, 2**rank.shift_hi)}. Probability that a "
            f"patient with bone metastasis has the higher marker (AUC): "
            f"{ci_words(rank.auc, rank.auc_lo, rank.auc_hi)} (DeLong)."
        )
    if roc is not None:
        part.numbers["roc"] = {
            "auc": roc.auc,
            "auc_lo": roc.auc_lo,
            "auc_hi": roc.auc_hi,
            "n_pos": roc.n_pos,
            "n_neg": roc.n_neg,
        }
        part.figure(
            "aim1_roc",
            roc_figure(roc, cut),
            f"ROC of the enrollment marker for bone metastasis at enrollment: {roc.n_pos} with, "
            f"{roc.n_neg} without; {counts['n_missing_marker']} missing marker left out.",
        )
    if cut is not None:
        part.numbers["cutoff"] = cut
        part.text(
            f"Youden cut-off: {cut.cutoff:.4f} % (bootstrap 95 % interval {cut.lo:.4f}-"
            f"{cut.hi:.4f} %, {cut.n_boot_used} of {cut.n_boot} resamples), sensitivity "
            f"{cut.sensitivity:.2f}, specificity {cut.specificity:.2f}. The published study's "
            f"cut-off was about {MARKER_CUTOFF_PERCENT} %."
        )

    # Adjusted comparison: log2 marker on status, age and bone-targeted therapy.
    sub = p.loc[have]
    design = pd.DataFrame(
        {
            "bone_metastasis": status[have],
            "age_per_10y": numeric(sub, "age_years") / 10.0,
            "bisphosphonate": is_value(sub, "bone_targeted_therapy", "bisphosphonate"),
            "denosumab": is_value(sub, "bone_targeted_therapy", "denosumab"),
        }
    )
    y = log2_marker[have]
    unadj = part.attempt(
        "Unadjusted regression", lambda: linear_regression(y, design[["bone_metastasis"]])
    )
    adj = part.attempt("Adjusted regression", lambda: linear_regression(y, design))
    rows = []
    for label, fit in (("unadjusted", unadj), ("adjusted for age and bone-targeted therapy", adj)):
        if fit is None:
            continue
        for term in fit.terms[1:]:
            t = fit.term(term)
            rows.append(
                {
                    "model": label,
                    "term": term,
                    "ratio of geometric means": 2 ** t["coef"],
                    "95 % CI": f"{2 ** t['lo']:.2f}-{2 ** t['hi']:.2f}",
                    "p": t["p_value"],
                    "n": fit.n,
                    "n missing (left out)": fit.n_dropped,
                }
            )
        part.numbers[f"regression_{label.split()[0]}"] = regression_numbers(fit)
    part.table(
        rows,
        "Linear regression of log2 marker: ratio of the marker's geometric mean per unit of each "
        "term (bone metastasis yes vs no; per 10 years of age; each therapy vs none). Complete "
        "cases.",
    )
    if adj is not None:
        t = adj.term("bone_metastasis")
        part.text(
            "Adjusted for age and bone-targeted therapy (which lowers the marker and is given "
            "mostly to patients with bone metastasis), the marker is "
            f"{ci_words(2 ** t['coef'], 2 ** t['lo'], 2 ** t['hi'])} times higher with bone "
            f"metastasis ({p_words(t['p_value'])}; n = {adj.n}, {adj.n_dropped} with a missing "
            "covariate left out)."
        )
    return part, None if cut is None else cut.cutoff
