"""The report's opening summary: the key findings, each with its interval and the section it
comes from, read from the numbers the other parts computed (nothing is computed here)."""

from __future__ import annotations

import math

from features.simulate import MARKER_CUTOFF_PERCENT
from training.study.report.parts import Part, ci_words, p_words

__all__ = ["findings_part"]

#: Horizon of the incidence by tertile in the summary (months), when the report has it.
SUMMARY_HORIZON_MONTHS = 24


def _finite(*values: object) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in values)


def findings_part(parts: list[Part]) -> Part:
    """A ``findings`` part: one row per key finding (what, estimate with 95 % interval, the
    section it comes from, linked). A finding whose analysis was not computed says so."""
    by_key = {part.key: part for part in parts}
    rows: list[tuple[str, str, str]] = []

    def add(section: str, what: str, words: str | None) -> None:
        if section in by_key:
            rows.append((what, words or "not computed (see the section)", section))

    aim1 = by_key.get("aim1", Part("aim1", "")).numbers
    roc = aim1.get("roc")
    add(
        "aim1",
        "Marker discriminates bone metastasis at enrollment (ROC AUC)",
        ci_words(roc["auc"], roc["auc_lo"], roc["auc_hi"])
        if roc and _finite(roc["auc"], roc["auc_lo"], roc["auc_hi"])
        else None,
    )
    cut = aim1.get("cutoff")
    add(
        "aim1",
        f"Youden cut-off of the marker (published study: {MARKER_CUTOFF_PERCENT} %)",
        f"{cut.cutoff:.4f} % (95 % CI {cut.lo:.4f}-{cut.hi:.4f} %) vs the published "
        f"{MARKER_CUTOFF_PERCENT} %"
        if cut is not None and _finite(cut.cutoff, cut.lo, cut.hi)
        else None,
    )
    adjusted = aim1.get("regression_adjusted", {}).get("terms", {}).get("bone_metastasis")
    add(
        "aim1",
        "Marker ratio with vs without bone metastasis, adjusted for age and bone-targeted "
        "therapy",
        f"{ci_words(2 ** adjusted['coef'], 2 ** adjusted['lo'], 2 ** adjusted['hi'])}, "
        f"{p_words(adjusted['p_value'])}"
        if adjusted
        else None,
    )
    aim2 = by_key.get("aim2", Part("aim2", "")).numbers
    for key, label in (("unadjusted", "unadjusted"), ("adjusted", "adjusted")):
        term = aim2.get(f"cox_{key}", {}).get("terms", {}).get("log2_marker")
        add(
            "aim2",
            f"Hazard ratio of bone metastasis per doubling of the marker ({label})",
            f"{ci_words(math.exp(term['coef']), math.exp(term['lo']), math.exp(term['hi']))}, "
            f"{p_words(term['p_value'])}"
            if term
            else None,
        )
    tertiles = aim2.get("incidence_tertiles") or []
    column = f"{SUMMARY_HORIZON_MONTHS} months"
    if tertiles and column in tertiles[0]:
        for row in (tertiles[0], tertiles[-1]):
            add(
                "aim2",
                f"Incidence of bone metastasis by {SUMMARY_HORIZON_MONTHS} months, marker "
                f"tertile {row['group']}",
                row[column].replace("(", "(95 % CI ", 1),
            )
    elif "aim2" in by_key:
        add("aim2", "Incidence of bone metastasis by marker tertile", None)

    part = Part("findings", "Key findings")
    titles = {p.key: p.title for p in parts}
    part.text(
        "Each estimate with its 95 % confidence interval; the section it comes from gives the "
        "method, the patients counted and the other analyses. Research software, simulated or "
        "study data: not for patient care."
    )
    part.linked_table(
        [
            {"finding": what, "estimate (95 % CI)": words, "from": (titles[s], s)}
            for what, words, s in rows
        ],
        "Key findings of this report.",
    )
    part.numbers["findings"] = [
        {"finding": what, "estimate": words, "section": s} for what, words, s in rows
    ]
    return part
