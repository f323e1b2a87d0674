"""The osteocalcin study report: one self-contained HTML file answering the study's questions.

:func:`build_study` computes the three parts from a validated cohort with the functions of
:mod:`training.study.stats` and :mod:`features.landmark`:

1. Aim 1, group difference (metastatic patients): the enrollment marker with versus without bone
   metastasis: distributions, rank test with Hodges-Lehmann shift, ROC, Youden cut-off with a
   bootstrap interval, and the difference adjusted for age and bone-targeted therapy.
2. Aim 2, time to bone metastasis (patients free of it at enrollment, with an outcome):
   Aalen-Johansen incidence by marker group (cut-off, tertiles) with Gray-score tests, and the
   cause-specific hazard ratio per doubling of the marker, unadjusted and adjusted, with a
   proportional hazards check.
3. Monitoring: marker trajectories over repeated draws, and landmark analyses at 3, 6 and 12
   months using only the draws up to the landmark.

A part (or one analysis in it) that the data cannot support is reported as not computed, with
the reason, instead of failing. :func:`write_study` writes ``report.html`` (figures embedded as
PNG), ``study.json`` (every number) and ``figures/*.png``; :func:`log_study` logs them as an
MLflow run; :func:`run_study` does all three.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.contract import Cohort
from features.landmark import TRAJECTORY_FEATURES, draw_table, landmark_dataset, trajectory_features
from features.schema import CONTRACT_VERSION
from features.simulate import MARKER_CUTOFF_PERCENT
from training.config import Settings
from training.evaluation.figures import incidence_by_group_figure, new_figure
from training.models.competing import DAYS_PER_MONTH, make_target
from training.study.stats import (
    Regression,
    StudyError,
    cox_fit,
    gray_test,
    incidence_by_group,
    json_ready,
    linear_regression,
    rank_comparison,
    roc_analysis,
    youden_cutoff,
)

__all__ = [
    "StudyConfig",
    "Study",
    "StudyResult",
    "build_study",
    "write_study",
    "log_study",
    "run_study",
]

T = TypeVar("T")

_BLUE, _ORANGE, _GREY = "#0072B2", "#D55E00", "#7F7F7F"


@dataclass(frozen=True)
class StudyConfig:
    """Choices of the study report (logged with the run).

    Parameters
    ----------
    seed : int
        Seed of the bootstrap and permutation resampling.
    n_boot : int
        Bootstrap resamples of the cut-off interval.
    n_perm : int
        Permutations of each Gray-score test.
    landmarks_months : tuple of int
        Landmarks in months of 365.25 / 12 days, rounded to whole days (3, 6, 12 -> 91, 183,
        365).
    horizons_months : tuple of int
        Horizons of the cumulative incidence tables.
    rise_log2 : float
        A marker counts as rising at a landmark when its change from baseline is at least this
        (log2; 0.5 = +41 %). Fixed in advance, not optimised on the data.
    experiment : str
        MLflow experiment of the run.
    """

    seed: int = 42
    n_boot: int = 500
    n_perm: int = 2000
    landmarks_months: tuple[int, ...] = (3, 6, 12)
    horizons_months: tuple[int, ...] = (12, 24, 36)
    rise_log2: float = 0.5
    experiment: str = "bone-metastasis-study"

    def __post_init__(self) -> None:
        if not 20 <= self.n_boot <= 10000:
            raise ValueError(f"n_boot must be 20-10000, got {self.n_boot}")
        if not 99 <= self.n_perm <= 100000:
            raise ValueError(f"n_perm must be 99-100000, got {self.n_perm}")
        if not self.landmarks_months or any(not 1 <= m <= 60 for m in self.landmarks_months):
            raise ValueError("landmarks_months must be 1-60 months each")
        if not self.horizons_months or any(not 1 <= m <= 120 for m in self.horizons_months):
            raise ValueError("horizons_months must be 1-120 months each")

    @property
    def landmark_days(self) -> tuple[float, ...]:
        return tuple(float(round(m * DAYS_PER_MONTH)) for m in self.landmarks_months)


# --------------------------------------------------------------------------------------------
# Report parts


@dataclass
class Part:
    """One section of the report: HTML blocks, figures (PNG bytes) and its numbers."""

    key: str
    title: str
    blocks: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)
    not_computed: dict[str, str] = field(default_factory=dict)

    def text(self, words: str) -> None:
        self.blocks.append(f"<p>{html.escape(words)}</p>")

    def heading(self, words: str) -> None:
        self.blocks.append(f"<h3>{html.escape(words)}</h3>")

    def table(self, rows: list[dict[str, object]], caption: str) -> None:
        if not rows:
            return
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in r.values()) + "</tr>"
            for r in rows
        )
        self.blocks.append(
            f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>"
        )

    def figure(self, name: str, fig: Figure, caption: str) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        png = buffer.getvalue()
        self.figures[name] = png
        data = base64.b64encode(png).decode("ascii")
        self.blocks.append(
            f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )

    def missing(self, what: str, reason: str) -> None:
        self.not_computed[what] = reason
        self.blocks.append(
            f'<p class="na"><b>{html.escape(what)}: not computed.</b> {html.escape(reason)}</p>'
        )

    def attempt(self, what: str, fn: Callable[[], T]) -> T | None:
        """Run one analysis; on :class:`StudyError` record why it could not be computed."""
        try:
            return fn()
        except StudyError as err:
            self.missing(what, str(err))
            return None


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return "-"
        if v != 0 and (abs(v) < 0.001 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(value)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _ci(est: float, lo: float, hi: float, digits: int = 2) -> str:
    return f"{est:.{digits}f} (95 % CI {lo:.{digits}f}-{hi:.{digits}f})"


def _hr(fit: Regression, j: int) -> str:
    """Hazard ratio of term ``j`` with its interval, in words."""
    return _ci(float(np.exp(fit.coef[j])), float(np.exp(fit.lo[j])), float(np.exp(fit.hi[j])))


@dataclass
class Study:
    """The computed report: the config and the parts in order."""

    config: StudyConfig
    parts: list[Part]

    @property
    def numbers(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "contract_version": CONTRACT_VERSION,
            "config": asdict(self.config),
        }
        for part in self.parts:
            out[part.key] = {**part.numbers, "not_computed": dict(part.not_computed)}
        return json_ready(out)  # type: ignore[return-value]


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` wrote: file paths, the MLflow run id and the numbers."""

    paths: dict[str, Path]
    run_id: str | None
    numbers: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Data


def _enrollment_log2(cohort: Cohort) -> np.ndarray:
    """log2 enrollment marker per patients row (day-0 draw; counts preferred, see landmark)."""
    return trajectory_features(cohort.patients, cohort.measurements, 0.0)[
        "oc_latest_log2"
    ].to_numpy()


def _is(frame: pd.DataFrame, column: str, value: str) -> np.ndarray:
    col = frame[column]
    return np.where(col.isna().to_numpy(), np.nan, (col.to_numpy(dtype=object) == value) * 1.0)


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(dtype=float)


#: Clinical covariates of the adjusted Aim 2 model (complete cases).
ADJUSTMENT_TERMS = (
    "age_per_10y",
    "er_positive",
    "her2_positive",
    "grade_3",
    "nodes_over_4",
    "metastatic",
    "visceral",
    "bone_targeted_therapy",
)


def clinical_design(patients: pd.DataFrame) -> pd.DataFrame:
    """Clinical covariates of the adjusted models, NaN where the input is missing.

    Visceral metastasis is 0 in early disease (known absent there, by the contract).
    """
    metastatic = _is(patients, "disease_setting", "metastatic")
    visceral = np.where(metastatic == 0.0, 0.0, _num(patients, "visceral_metastasis"))
    grade = _num(patients, "histologic_grade")
    nodes = _num(patients, "positive_lymph_nodes")
    btt = 1.0 - _is(patients, "bone_targeted_therapy", "none")
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(
            {
                "age_per_10y": _num(patients, "age_years") / 10.0,
                "er_positive": _is(patients, "er_status", "positive"),
                "her2_positive": _is(patients, "her2_status", "positive"),
                "grade_3": np.where(np.isnan(grade), np.nan, grade == 3),
                "nodes_over_4": np.where(np.isnan(nodes), np.nan, nodes > 4),
                "metastatic": metastatic,
                "visceral": visceral,
                "bone_targeted_therapy": btt,
            }
        )


# --------------------------------------------------------------------------------------------
# Cohort


def _cohort_part(cohort: Cohort, log2_marker: np.ndarray) -> Part:
    p = cohort.patients
    part = Part("cohort", "Cohort")
    meta = _is(p, "disease_setting", "metastatic") == 1.0
    bone = _num(p, "bone_metastasis_at_enrollment") == 1.0
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


# --------------------------------------------------------------------------------------------
# Aim 1


def _aim1(
    cohort: Cohort, log2_marker: np.ndarray, config: StudyConfig
) -> tuple[Part, float | None]:
    part = Part("aim1", "Aim 1: marker with versus without bone metastasis (metastatic patients)")
    p = cohort.patients
    meta = _is(p, "disease_setting", "metastatic") == 1.0
    status = _num(p, "bone_metastasis_at_enrollment")
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
        _distribution_figure(2.0**x_with, 2.0**x_without, None if cut is None else cut.cutoff),
        f"Enrollment osteocalcin-positive percent (log scale), metastatic patients: {who}. "
        "Boxes: quartiles; dashed line: the Youden cut-off.",
    )
    if rank is not None:
        part.numbers["rank_test"] = rank
        part.text(
            "Mann-Whitney test: "
            f"{_p(rank.p_value)}. Median marker {2**rank.median_a:.4f} % with versus "
            f"{2**rank.median_b:.4f} % without bone metastasis. Hodges-Lehmann shift "
            f"{_ci(rank.shift, rank.shift_lo, rank.shift_hi)} doublings, i.e. a ratio of "
            f"{_ci(2**rank.shift, 2**rank.shift_lo, 2**rank.shift_hi)}. Probability that a "
            f"patient with bone metastasis has the higher marker (AUC): "
            f"{_ci(rank.auc, rank.auc_lo, rank.auc_hi)} (DeLong)."
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
            _roc_figure(roc, cut),
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
            "age_per_10y": _num(sub, "age_years") / 10.0,
            "bisphosphonate": _is(sub, "bone_targeted_therapy", "bisphosphonate"),
            "denosumab": _is(sub, "bone_targeted_therapy", "denosumab"),
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
        part.numbers[f"regression_{label.split()[0]}"] = _regression_numbers(fit)
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
            f"{_ci(2 ** t['coef'], 2 ** t['lo'], 2 ** t['hi'])} times higher with bone "
            f"metastasis ({_p(t['p_value'])}; n = {adj.n}, {adj.n_dropped} with a missing "
            "covariate left out)."
        )
    return part, None if cut is None else cut.cutoff


def _regression_numbers(fit: Regression) -> dict[str, Any]:
    return {
        "terms": {name: fit.term(name) for name in fit.terms},
        "n": fit.n,
        "n_dropped": fit.n_dropped,
        "n_events": fit.n_events,
        **fit.extra,
    }


def _distribution_figure(with_bm: np.ndarray, without: np.ndarray, cut: float | None) -> Figure:
    fig = new_figure(6.0, 4.5)
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    for k, (values, colour) in enumerate(((without, _BLUE), (with_bm, _ORANGE))):
        ax.boxplot([values], positions=[k], widths=0.5, showfliers=False)
        ax.scatter(k + rng.uniform(-0.18, 0.18, values.size), values, s=10, alpha=0.5, color=colour)
    if cut is not None:
        ax.axhline(cut, ls="--", color=_GREY, lw=1)
    ax.set_yscale("log")
    ax.set_xticks(
        [0, 1],
        [f"no bone metastasis\n(n={without.size})", f"bone metastasis\n(n={with_bm.size})"],
    )
    ax.set_ylabel("osteocalcin-positive cells (% of PBMC)")
    ax.set_title("Enrollment marker by bone metastasis status")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def _roc_figure(roc: Any, cut: Any) -> Figure:
    fig = new_figure(5.0, 5.0)
    ax = fig.add_subplot()
    ax.plot(
        roc.fpr,
        roc.tpr,
        color=_BLUE,
        lw=2,
        label=f"AUC {roc.auc:.2f} ({roc.auc_lo:.2f}-{roc.auc_hi:.2f})",
    )
    ax.plot([0, 1], [0, 1], color=_GREY, lw=1, ls=":")
    if cut is not None:
        ax.plot(
            1 - cut.specificity,
            cut.sensitivity,
            "o",
            color=_ORANGE,
            label=f"cut-off {cut.cutoff:.4f} %",
        )
    ax.set_xlabel("1 - specificity")
    ax.set_ylabel("sensitivity")
    ax.set_title("ROC: marker for bone metastasis at enrollment")
    ax.legend(loc="lower right", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Aim 2


def _incidence_figure(
    time: np.ndarray, cause: np.ndarray, groups: np.ndarray, title: str, xlabel: str
) -> Figure:
    events = np.array(["censored", "bone_metastasis", "death"])[cause]
    fig = incidence_by_group_figure(make_target(events, time), groups, max_months=60)
    ax = fig.axes[0]
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    return fig


def _causes(frame: pd.DataFrame) -> np.ndarray:
    codes = {"censored": 0, "bone_metastasis": 1, "death": 2}
    return np.array([codes[e] for e in frame["event"].to_numpy(dtype=object)], dtype=int)


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


def _aim2(
    cohort: Cohort, log2_marker: np.ndarray, cutoff: float | None, config: StudyConfig
) -> Part:
    part = Part("aim2", "Aim 2: time to bone metastasis (patients free of it at enrollment)")
    p = cohort.patients
    free = (_num(p, "bone_metastasis_at_enrollment") == 0.0) & p["event"].notna().to_numpy()
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
    time = _num(sub, "time_days")
    cause = _causes(sub)
    n_ev = int((cause == 1).sum())
    part.numbers["counts"] = {
        "n": len(sub),
        "n_bone_metastasis": n_ev,
        "n_death": int((cause == 2).sum()),
        "n_censored": int((cause == 0).sum()),
        "n_missing_marker": n_missing,
    }
    who = (
        f"n = {len(sub)} ({n_ev} bone metastases, {int((cause == 2).sum())} deaths without bone "
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
                f"{_p(test.p_value)} ({test.n_perm} permutations)."
            )
        )
        if test is not None:
            part.numbers[f"gray_test_{key}"] = test
        if n_ev > 0:
            part.figure(
                f"aim2_incidence_{key}",
                _incidence_figure(
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
    event = (cause == 1).astype(float)
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
        part.numbers[f"cox_{label.split()[0]}"] = _regression_numbers(fit)
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
            f"Hazard ratio per doubling of the enrollment marker: unadjusted {_hr(unadj, 0)}"
            + (
                ""
                if adj is None
                else "; adjusted "
                f"{_hr(adj, 0)}"
                f" (n = {adj.n}, {adj.n_events} events, {adj.n_dropped} with a missing covariate "
                f"left out; global PH check {_p(adj.extra['ph_global_p_value'])})"
            )
            + "."
        )
    return part


# --------------------------------------------------------------------------------------------
# Monitoring


def _monitoring(cohort: Cohort, config: StudyConfig) -> Part:
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
    free = (_num(p, "bone_metastasis_at_enrollment") == 0.0) & p["event"].notna().to_numpy()
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
        fig, caption = _trajectory_figure(sub, draws, repeated)
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
        results[f"{months}m"] = _landmark(part, cohort, months, day, config, rows)
    part.numbers["landmarks"] = results
    part.table(
        rows,
        "Cause-specific Cox models after each landmark (death censored; residual time). latest: "
        "all at risk with a draw; change and slope: adjusted for the baseline value, among "
        "patients with two or more draws by the landmark.",
    )
    return part


def _landmark(
    part: Part, cohort: Cohort, months: int, day: float, config: StudyConfig, rows: list
) -> dict[str, Any]:
    ds = landmark_dataset(cohort.patients, cohort.measurements, day)
    cause = _causes(ds) if len(ds) else np.zeros(0, dtype=int)
    with_draw = ds["oc_n_draws"].to_numpy() >= 1
    two = ds["oc_n_draws"].to_numpy() >= 2
    out: dict[str, Any] = {
        "landmark_day": day,
        "n_at_risk": len(ds),
        "n_bone_metastasis_after": int((cause == 1).sum()),
        "n_death_after": int((cause == 2).sum()),
        "n_without_draw": int((~with_draw).sum()),
        "n_with_two_or_more_draws": int(two.sum()),
    }
    where = f"Landmark {months} months (day {day:.0f})"
    if len(ds) == 0:
        part.missing(where, "no patient is still at risk at this landmark")
        return out
    time = ds["time_days"].to_numpy(dtype=float)
    event = (cause == 1).astype(float)
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
        out[f"cox_{name}"] = _regression_numbers(fit)
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
        words = f" Gray-score permutation test {_p(test.p_value)}."
    out["n_rising"] = int(np.sum(rising == "rising"))
    if n_two and int((cause[two] == 1).sum()) > 0:
        part.figure(
            f"monitoring_landmark_{months}m",
            _incidence_figure(
                time[two],
                cause[two],
                rising[two],
                f"After the {months}-month landmark: rising vs not rising marker",
                "months since the landmark",
            ),
            f"{where}: incidence of bone metastasis after the landmark among the {n_two} patients "
            f"at risk with two or more draws by then ({out['n_rising']} rising; "
            f"{int((cause[two] == 1).sum())} bone metastases, {int((cause[two] == 2).sum())} "
            f"deaths competing); {len(ds) - n_two} at risk with fewer draws left out.{words}",
        )
    else:
        part.missing(
            f"{where}, incidence by rising marker",
            f"{n_two} patients with two or more draws, and no bone metastasis after the "
            "landmark among them",
        )
    return out


def _trajectory_figure(
    sub: pd.DataFrame, draws: pd.DataFrame, repeated: pd.Index
) -> tuple[Figure, str]:
    info = sub.set_index("patient_id")
    n_fewer = len(sub) - len(repeated)
    d = draws[draws["patient_id"].isin(repeated)].copy()
    d["log2"] = np.log2(np.maximum(d["percent"].to_numpy(), 1e-4))
    d["event"] = info["event"].reindex(d["patient_id"]).to_numpy(dtype=object)
    d["time_days"] = info["time_days"].reindex(d["patient_id"]).to_numpy(dtype=float)
    baseline = d.groupby("patient_id")["log2"].transform("first")
    d["change"] = d["log2"] - baseline
    d["before_months"] = (d["day"] - d["time_days"]) / DAYS_PER_MONTH
    fig = new_figure(11.0, 4.5)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    rng = np.random.default_rng(0)
    shown = {}
    for label, colour, is_bm in (
        ("no bone metastasis", _BLUE, False),
        ("bone metastasis", _ORANGE, True),
    ):
        ids = d.loc[(d["event"] == "bone_metastasis") == is_bm, "patient_id"].unique()
        pick = rng.choice(ids, size=min(30, ids.size), replace=False) if ids.size else ids
        shown[label] = (pick.size, ids.size)
        for pid in pick:
            mine = d[d["patient_id"] == pid]
            ax1.plot(mine["day"] / DAYS_PER_MONTH, mine["log2"], color=colour, lw=0.7, alpha=0.5)
        group = d[(d["event"] == "bone_metastasis") == is_bm]
        bins = np.floor(group["before_months"].to_numpy() / 3.0) * 3.0 + 1.5
        med = group.groupby(bins)["change"].median()
        med = med[(med.index >= -36) & (med.index <= 0)]
        ax2.plot(med.index, med.to_numpy(), "o-", color=colour, label=f"{label} (n={ids.size})")
    ax1.set_xlabel("months since enrollment")
    ax1.set_ylabel("log2 osteocalcin-positive %")
    ax1.set_title("Trajectories (random sample)")
    ax1.grid(True, alpha=0.3)
    ax2.axhline(0.0, color=_GREY, lw=1)
    ax2.set_xlabel("months before bone metastasis (or end of follow-up)")
    ax2.set_ylabel("median change from enrollment (log2)")
    ax2.set_title("Change from enrollment, aligned at the outcome")
    ax2.legend(fontsize=9)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    caption = (
        "Patients free of bone metastasis at enrollment with two or more draws "
        f"(n = {len(repeated)}; "
        f"{shown['bone metastasis'][1]} later developed bone metastasis). Left: "
        f"{shown['no bone metastasis'][0]} and {shown['bone metastasis'][0]} patients drawn at "
        "random from each group. Right: median change from the enrollment draw in 3-month bins "
        "before bone metastasis (orange) or the end of follow-up or death (blue). Draws on or "
        f"after the outcome are not used; {n_fewer} patients with fewer than two draws left "
        "out."
    )
    return fig, caption


# --------------------------------------------------------------------------------------------
# Limits


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


def _limits_part() -> Part:
    part = Part("limits", "Limits of this analysis")
    part.blocks.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in LIMITS) + "</ul>")
    part.numbers["limits"] = list(LIMITS)
    return part


# --------------------------------------------------------------------------------------------
# Entry points


def build_study(cohort: Cohort, config: StudyConfig | None = None) -> Study:
    """Compute every part of the report from a validated cohort.

    Parameters
    ----------
    cohort : Cohort
        From :func:`features.contract.load_cohort`.
    config : StudyConfig, optional

    Returns
    -------
    Study
        Parts in report order; a part the data cannot support says why instead.
    """
    config = config or StudyConfig()
    log2_marker = _enrollment_log2(cohort)
    cohort_part = _cohort_part(cohort, log2_marker)
    aim1, cutoff = _aim1(cohort, log2_marker, config)
    if not cohort.patients["event"].notna().any():
        aim2 = Part("aim2", "Aim 2: time to bone metastasis (patients free of it at enrollment)")
        aim2.missing("Aim 2", "the cohort has no outcomes (time_days, event)")
    else:
        aim2 = _aim2(cohort, log2_marker, cutoff, config)
    monitoring = _monitoring(cohort, config)
    return Study(config, [cohort_part, aim1, aim2, monitoring, _limits_part()])


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}caption{text-align:left;
font-style:italic;padding:.3em 0;caption-side:bottom}td,th{border:1px solid #ccc;padding:.25em .5em}
th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%}figcaption{font-size:.9em;
color:#444}p.na{background:#fff4e5;border-left:4px solid #D55E00;padding:.4em .8em}
"""


def render_html(study: Study, source: str = "") -> str:
    """The whole report as one HTML document (figures embedded, no external resources)."""
    parts_html = []
    toc = []
    for part in study.parts:
        toc.append(f'<li><a href="#{part.key}">{html.escape(part.title)}</a></li>')
        parts_html.append(
            f'<section id="{part.key}"><h2>{html.escape(part.title)}</h2>'
            f"{''.join(part.blocks)}</section>"
        )
    cfg = html.escape(json.dumps(asdict(study.config)))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Osteocalcin-positive cells and bone metastasis: study report</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Circulating osteocalcin-positive cells and bone metastasis: study report</h1>"
        f"<p>Cohort: {html.escape(source or 'in memory')}; data contract v{CONTRACT_VERSION}. "
        f"Settings: <code>{cfg}</code>. Research software, not for patient care.</p>"
        f"<ul>{''.join(toc)}</ul>{''.join(parts_html)}</body></html>"
    )


def write_study(study: Study, out_dir: str | Path, source: str = "") -> dict[str, Path]:
    """Write ``report.html``, ``study.json`` and ``figures/*.png`` under ``out_dir``."""
    out = Path(out_dir)
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for part in study.parts:
        for name, png in part.figures.items():
            path = figures / f"{name}.png"
            path.write_bytes(png)
            paths[f"figure:{name}"] = path
    report = out / "report.html"
    report.write_text(render_html(study, source), encoding="utf-8")
    numbers = out / "study.json"
    numbers.write_text(json.dumps(study.numbers, indent=2, allow_nan=False), encoding="utf-8")
    paths["report"] = report
    paths["numbers"] = numbers
    paths["figures"] = figures
    return paths


def headline_metrics(numbers: dict[str, Any]) -> dict[str, float]:
    """The main numbers as flat MLflow metrics (only those computed and finite)."""
    picks = {
        "aim1_auc": ("aim1", "roc", "auc"),
        "aim1_rank_p_value": ("aim1", "rank_test", "p_value"),
        "aim1_hl_shift_log2": ("aim1", "rank_test", "shift"),
        "aim1_cutoff_percent": ("aim1", "cutoff", "cutoff"),
        "aim1_cutoff_lo": ("aim1", "cutoff", "lo"),
        "aim1_cutoff_hi": ("aim1", "cutoff", "hi"),
        "aim1_adjusted_log2_ratio": (
            "aim1",
            "regression_adjusted",
            "terms",
            "bone_metastasis",
            "coef",
        ),
        "aim2_n": ("aim2", "counts", "n"),
        "aim2_n_bone_metastasis": ("aim2", "counts", "n_bone_metastasis"),
        "aim2_gray_p_cutoff": ("aim2", "gray_test_cutoff", "p_value"),
        "aim2_gray_p_tertiles": ("aim2", "gray_test_tertiles", "p_value"),
        "aim2_log_hr_unadjusted": ("aim2", "cox_unadjusted", "terms", "log2_marker", "coef"),
        "aim2_log_hr_adjusted": ("aim2", "cox_adjusted", "terms", "log2_marker", "coef"),
        "aim2_ph_global_p_adjusted": ("aim2", "cox_adjusted", "ph_global_p_value"),
    }
    out: dict[str, float] = {}
    for name, path in picks.items():
        value: Any = numbers
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float) and math.isfinite(value):
            out[name] = float(value)
    for key, lm in (numbers.get("monitoring", {}).get("landmarks") or {}).items():
        for model, term in (("latest", "oc_latest_log2"), ("change", "oc_change_log2")):
            coef = (lm.get(f"cox_{model}") or {}).get("terms", {}).get(term, {}).get("coef")
            if isinstance(coef, int | float) and math.isfinite(coef):
                out[f"landmark_{key}_log_hr_{model}"] = float(coef)
    return out


def log_study(study: Study, paths: dict[str, Path], settings: Settings, source: str = "") -> str:
    """Log the report as an MLflow run (params, headline metrics, report, numbers, figures)."""
    import mlflow

    from training.tracking import store as tracking

    tracking.configure(settings)
    experiment_id = tracking.ensure_experiment(study.config.experiment, settings)
    numbers = study.numbers
    with mlflow.start_run(experiment_id=experiment_id, run_name="study") as run:
        params = {k: str(v) for k, v in asdict(study.config).items()}
        mlflow.log_params({**params, "source": source[:500]})
        mlflow.set_tags(
            {
                "git_commit": tracking.git_commit(),
                "contract_version": str(CONTRACT_VERSION),
                "report": "study",
            }
        )
        counts = {
            f"cohort_{k}": float(v)
            for k, v in numbers["cohort"].items()
            if isinstance(v, int | float)
        }
        mlflow.log_metrics({**counts, **headline_metrics(numbers)})
        mlflow.log_artifact(str(paths["report"]))
        mlflow.log_artifact(str(paths["numbers"]))
        mlflow.log_artifacts(str(paths["figures"]), artifact_path="figures")
        return run.info.run_id


def run_study(
    cohort: Cohort,
    out_dir: str | Path,
    settings: Settings | None,
    config: StudyConfig | None = None,
    source: str = "",
) -> StudyResult:
    """Build the report, write it under ``out_dir`` and log it to MLflow (unless no settings).

    Returns
    -------
    StudyResult
    """
    study = build_study(cohort, config)
    paths = write_study(study, out_dir, source)
    run_id = None if settings is None else log_study(study, paths, settings, source)
    return StudyResult(paths=paths, run_id=run_id, numbers=study.numbers)
