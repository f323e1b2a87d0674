"""The report's last section: the limits of the analysis, in words."""

from __future__ import annotations

import html

from training.study.report.parts import Part

__all__ = ["LIMITS", "limits_part"]


LIMITS = (
    "Observational data: differences in the marker and in the risk of bone metastasis are "
    "associations, not effects of the marker.",
    "If the cohort was made by the simulator (bonemet simulate), every number describes the "
    "simulator's assumptions (docs/simulator.md), not patients.",
    "Confounding: bone-targeted therapy is given mostly because of bone metastasis and lowers the "
    "marker; age raises it. The adjusted analyses account for the measured covariates only, and "
    "complete cases only (the number left out is given with each model).",
    "Multiple testing: the report runs many tests without correction; read the p values as "
    "descriptive, and the confidence intervals as the main result.",
    "Cut-off optimism: the Youden cut-off is chosen on the same patients it is evaluated on, so "
    "its sensitivity and specificity, and the incidence split at it, are optimistic. The "
    "bootstrap interval shows how unstable it is; it needs external validation.",
    "Landmark selection: each landmark analysis keeps only the patients still at risk then, and "
    "the number and timing of draws differ between patients (those followed longer have more "
    "draws). Draws after the landmark are never used.",
    "Counting noise: a draw of about 100,000 PBMC events holds only tens of osteocalcin-positive "
    "events, so single values are noisy; changes between two draws are noisier still.",
    "The incidence tests use Gray's score with a permutation p value, which assumes that the "
    "groups would share the same death and censoring patterns under the null hypothesis.",
    "The time-to-event population mixes early and metastatic disease; the adjusted model includes "
    "the setting, but the effect of the marker may differ between them.",
    "Hazard ratios assume proportional hazards; a small PH check p value means the ratio changes "
    "over follow-up and the single number is an average.",
)


def limits_part() -> Part:
    """The limits section (:data:`LIMITS` as a list)."""
    part = Part("limits", "Limits of this analysis")
    part.blocks.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in LIMITS) + "</ul>")
    part.numbers["limits"] = list(LIMITS)
    return part
