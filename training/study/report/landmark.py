"""One landmark analysis of the monitoring section: at a landmark day, the patients still at
risk, their draws up to that day, cause-specific Cox models of the latest value, change and
slope, and the incidence after the landmark by rising versus not rising marker."""

from __future__ import annotations

from typing import Any

import numpy as np

from features.contract import Cohort
from features.landmark import TRAJECTORY_FEATURES, landmark_dataset
from features.vocabulary import BONE_METASTASIS, DEATH
from training.study.report.config import StudyConfig
from training.study.report.covariates import event_codes
from training.study.report.figures import incidence_figure
from training.study.report.parts import Part, p_words, regression_numbers
from training.study.stats.competing import gray_test
from training.study.stats.regression import cox_fit

__all__ = ["landmark_analysis"]


def landmark_analysis(
    part: Part, cohort: Cohort, months: int, day: float, config: StudyConfig, rows: list
) -> dict[str, Any]:
    """One landmark's analyses into ``part`` (table rows appended to ``rows``); its numbers."""
    ds = landmark_dataset(cohort.patients, cohort.measurements, day)
    cause = event_codes(ds) if len(ds) else np.zeros(0, dtype=int)
    with_draw = ds["oc_n_draws"].to_numpy() >= 1
    two = ds["oc_n_draws"].to_numpy() >= 2
    out: dict[str, Any] = {
        "landmark_day": day,
        "n_at_risk": len(ds),
        "n_bone_metastasis_after": int((cause == BONE_METASTASIS).sum()),
        "n_death_after": int((cause == DEATH).sum()),
        "n_without_draw": int((~with_draw).sum()),
        "n_with_two_or_more_draws": int(two.sum()),
    }
    where = f"Landmark {months} months (day {day:.0f})"
    if len(ds) == 0:
        part.missing(where, "no patient is still at risk at this landmark")
        return out
    time = ds["time_days"].to_numpy(dtype=float)
    event = (cause == BONE_METASTASIS).astype(float)
    feats = ds[list(TRAJECTORY_FEATURES)]
    models = {
        "latest": (with_draw, ["oc_latest_log2"]),
        "change": (two, ["oc_baseline_log2", "oc_change_log2"]),
        "slope": (
            two & np.isfinite(feats["oc_slope_log2_per_year"].to_numpy()),
            ["oc_baseline_log2", "oc_slope_log2_per_year"],
        ),
    }
    for name, (mask, terms) in models.items():
        fit = part.attempt(
            f"{where}, {name}",
            lambda m=mask, t=terms: cox_fit(
                time[m], event[m], feats.loc[m, t].reset_index(drop=True)
            ),
        )
        if fit is None:
            continue
        j = len(terms) - 1
        out[f"cox_{name}"] = regression_numbers(fit)
        rows.append(
            {
                "landmark": f"{months} months",
                "model": name,
                "term": terms[j],
                "hazard ratio": float(np.exp(fit.coef[j])),
                "95 % CI": f"{np.exp(fit.lo[j]):.2f}-{np.exp(fit.hi[j]):.2f}",
                "p": float(fit.p_value[j]),
                "n": fit.n,
                "events": fit.n_events,
                "n left out": int((~mask).sum()),
            }
        )
    rising = np.where(
        feats["oc_change_log2"].to_numpy() >= config.rise_log2, "rising", "not rising"
    ).astype(object)
    rising[~two] = None
    n_two = int(two.sum())
    test = part.attempt(
        f"{where}, Gray test rising vs not",
        lambda: gray_test(
            time[two], cause[two], rising[two], n_perm=config.n_perm, seed=config.seed
        ),
    )
    words = ""
    if test is not None:
        out["gray_test_rising"] = test
        words = f" Gray-score permutation test {p_words(test.p_value)}."
    out["n_rising"] = int(np.sum(rising == "rising"))
    if n_two and int((cause[two] == BONE_METASTASIS).sum()) > 0:
        part.figure(
            f"monitoring_landmark_{months}m",
            incidence_figure(
                time[two],
                cause[two],
                rising[two],
                f"After the {months}-month landmark: rising vs not rising marker",
                "months since the landmark",
            ),
            f"{where}: incidence of bone metastasis after the landmark among the {n_two} patients "
            f"at risk with two or more draws by then ({out['n_rising']} rising; "
            f"{int((cause[two] == BONE_METASTASIS).sum())} bone metastases, "
            f"{int((cause[two] == DEATH).sum())} "
            f"deaths competing); {len(ds) - n_two} at risk with fewer draws left out.{words}",
        )
    else:
        part.missing(
            f"{where}, incidence by rising marker",
            f"{n_two} patients with two or more draws, and no bone metastasis after the "
            "landmark among them",
        )
    return out
