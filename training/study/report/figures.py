"""The study report's figures (matplotlib, no pyplot): each function returns a Figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.marker import log2_percent
from training.evaluation.figures import incidence_by_group_figure, new_figure
from training.models.competing import DAYS_PER_MONTH, make_target
from training.study.stats.comparisons import Cutoff, RocAnalysis

__all__ = ["distribution_figure", "roc_figure", "incidence_figure", "trajectory_figure"]

_BLUE, _ORANGE, _GREY = "#0072B2", "#D55E00", "#7F7F7F"


def distribution_figure(with_bm: np.ndarray, without: np.ndarray, cut: float | None) -> Figure:
    """Enrollment marker (percent, log scale) with versus without bone metastasis."""
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


def roc_figure(roc: RocAnalysis, cut: Cutoff | None) -> Figure:
    """ROC curve of the marker with its AUC, and the cut-off as a point."""
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


def incidence_figure(
    time: np.ndarray, cause: np.ndarray, groups: np.ndarray, title: str, xlabel: str
) -> Figure:
    """Aalen-Johansen incidence of bone metastasis by group (``cause`` coded 0/1/2)."""
    events = np.array(["censored", "bone_metastasis", "death"])[cause]
    fig = incidence_by_group_figure(make_target(events, time), groups, max_months=60)
    ax = fig.axes[0]
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    return fig


def trajectory_figure(
    sub: pd.DataFrame, draws: pd.DataFrame, repeated: pd.Index
) -> tuple[Figure, str]:
    """Marker trajectories and the median change before the outcome, with its caption."""
    info = sub.set_index("patient_id")
    n_fewer = len(sub) - len(repeated)
    d = draws[draws["patient_id"].isin(repeated)].copy()
    d["log2"] = log2_percent(d["percent"].to_numpy())
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
