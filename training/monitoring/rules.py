"""Every alarm the monitor can raise, with its test and false-alarm rate, declared once.

The report, ``monitor.json``, the MLflow run and ``docs/monitoring.md`` read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AlarmRule",
    "RULES",
    "RULE_BY_KEY",
    "DETECTION_EVENTS",
    "QUANTIFICATION_EVENTS",
    "QC_BASELINE_RESULTS",
    "MIN_GROUP_DRAWS",
]

#: Positive events a rare-population count needs (domain.md, "Many sites, many labs"): about
#: 20 to detect the population, 50-100 to quantify it (the lower bound is used).
DETECTION_EVENTS = 20
QUANTIFICATION_EVENTS = 50
#: Control results that establish a Levey-Jennings mean and SD when the qc table gives none
#: (CLSI C24: at least 20 results).
QC_BASELINE_RESULTS = 20
#: A group (lab, instrument, lot; site) is tested only with at least this many current draws
#: (or patients); fewer are listed as "too few to test".
MIN_GROUP_DRAWS = 10


@dataclass(frozen=True)
class AlarmRule:
    """One kind of alarm: what is tested, how, and its false-alarm rate per monitoring run."""

    key: str
    label: str
    test: str
    false_alarm: str


RULES: tuple[AlarmRule, ...] = (
    AlarmRule(
        "marker_shift",
        "marker shift (log percent) per lab/instrument/lot",
        "two-sided Mann-Whitney rank-sum test of the group's draws against its lab's reference "
        "draws, Holm-corrected over the groups",
        "family-wise alpha (default 0.01) over the groups of one run",
    ),
    AlarmRule(
        "below_quantification",
        "share of draws below the quantification limit",
        f"Fisher's exact test of the share of draws with fewer than {QUANTIFICATION_EVENTS} "
        "positive events against the lab's reference share (one-sided: more), Holm-corrected",
        "family-wise alpha over the groups",
    ),
    AlarmRule(
        "pbmc_counts",
        "PBMC events per draw",
        "two-sided Mann-Whitney test of gated PBMC events against the lab's reference, "
        "Holm-corrected",
        "family-wise alpha over the groups",
    ),
    AlarmRule(
        "westgard",
        "control material (Levey-Jennings, Westgard rules)",
        "1-3s, 2-2s, R-4s, 4-1s, 10x on each series (lab, instrument, control level)",
        "about 0.3 % of control results by 1-3s alone under control (Westgard 1981); more "
        "with every rule and every result: a lab's usual run rejection, not a per-run alpha",
    ),
    AlarmRule(
        "prediction_drift",
        "predicted 24-month incidence per site and lab",
        "two-sided Mann-Whitney test of the predicted incidence against the same site's or "
        "lab's reference patients, Holm-corrected over the groups",
        "family-wise alpha over the groups",
    ),
    AlarmRule(
        "observed_expected",
        "observed/expected incidence at 12 and 24 months",
        "Aalen-Johansen incidence (log-log interval) over the mean prediction; alarm when the "
        "interval at level 1 - alpha/m excludes 1 (Bonferroni over the m horizons and sites)",
        "family-wise alpha",
    ),
    AlarmRule(
        "calibration_window",
        "calibration slope and intercept in windows of enrollment date",
        "IPCW logistic recalibration per window, bootstrap standard error; alarm when a "
        "normal interval at level 1 - alpha/(2 w) excludes slope 1 or intercept 0 "
        "(Bonferroni over the w windows)",
        "family-wise alpha (conservative: windows overlap)",
    ),
    AlarmRule(
        "cusum",
        "risk-adjusted CUSUM of bone metastases",
        "Biswas-Kalbfleisch continuous-time CUSUM against the model's cause-specific hazard "
        "of bone metastasis, tuned to a hazard ratio; control limit simulated for the stated "
        "in-control average run length",
        "one false signal per in-control run length (in expected bone metastases)",
    ),
)

RULE_BY_KEY: dict[str, AlarmRule] = {r.key: r for r in RULES}
