"""The monitoring report: one self-contained HTML page (figures embedded) from a
:class:`~training.monitoring.monitor.MonitorResult` (matplotlib without pyplot, no MLflow)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from features.schema import CONTRACT_VERSION
from training.monitoring.monitor import MonitorResult
from training.monitoring.rules import RULES
from training.study.report.parts import Part

__all__ = ["build_parts", "render_report"]

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}table{border-collapse:collapse;
margin:1em 0;font-size:.9em}caption{text-align:left;font-style:italic;caption-side:bottom;
padding:.3em 0}td,th{border:1px solid #ccc;padding:.25em .5em}th{background:#f3f3f3}
img{max-width:100%}
figcaption{font-size:.9em;color:#444}p.na{background:#fff4e5;border-left:4px solid #D55E00;
padding:.4em .8em}.alarm{background:#fdecea;border-left:4px solid #b00020;padding:.4em .8em}
.ok{background:#e8f5e9;border-left:4px solid #2e7d32;padding:.4em .8em}
"""
_COLORS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _dates(values) -> np.ndarray:
    return pd.to_datetime(pd.Series(values)).to_numpy()


def _marker_figure(draws: pd.DataFrame, flagged: set) -> Figure:
    labs = sorted(draws["lab_id"].unique())[:8]
    fig = Figure(figsize=(10, 2.4 * len(labs)), layout="constrained")
    axes = fig.subplots(len(labs), 1, squeeze=False)[:, 0]
    for ax, lab in zip(axes, labs, strict=False):
        d = draws.loc[draws["lab_id"] == lab]
        for i, (lot, g) in enumerate(d.groupby("reagent_lot", sort=True)):
            mark = "x" if (lab, lot) in flagged else "o"
            label = f"{lot}{' (alarm)' if (lab, lot) in flagged else ''}"
            ax.scatter(
                _dates(g["date"]),
                g["oc_positive_percent"].clip(lower=1e-4),
                s=8,
                marker=mark,
                color=_COLORS[i % len(_COLORS)],
                label=label,
                alpha=0.7,
            )
        ax.set_yscale("log")
        ax.set_ylabel("OC+ % of PBMC")
        ax.set_title(f"lab {lab}", loc="left", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _lj_figure(chart: pd.DataFrame, lab: str, instrument: str) -> Figure:
    d = chart.loc[(chart["lab_id"] == lab) & (chart["instrument_id"] == instrument)]
    levels = sorted(d["control_level"].unique())
    fig = Figure(figsize=(10, 2.3 * len(levels)), layout="constrained")
    axes = fig.subplots(len(levels), 1, squeeze=False)[:, 0]
    for ax, level in zip(axes, levels, strict=True):
        s = d.loc[d["control_level"] == level]
        for k, style in ((1, ":"), (2, "--"), (3, "-")):
            for sign in (1, -1):
                ax.axhline(sign * k, color="#999", linestyle=style, linewidth=0.8)
        ax.axhline(0, color="#555", linewidth=0.8)
        for i, (lot, g) in enumerate(s.groupby("reagent_lot", sort=True)):
            ax.plot(
                _dates(g["date"]),
                g["z"],
                marker="o",
                markersize=3,
                linewidth=0.6,
                color=_COLORS[i % len(_COLORS)],
                label=lot,
            )
        bad = s.loc[s["rules"] != ""]
        ax.scatter(
            _dates(bad["date"]),
            bad["z"],
            marker="x",
            color="#b00020",
            s=40,
            zorder=3,
            label="rule violated",
        )
        ax.set_ylabel("SD from mean")
        ax.set_title(f"{lab} {instrument}, control {level}", loc="left", fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _cusum_figure(result: MonitorResult) -> Figure:
    c = result.cusum
    days = result.origin + c.days.astype("timedelta64[D]")
    fig = Figure(figsize=(10, 5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(_dates(days), c.statistic, color="#0072B2")
    top.axhline(c.limit, color="#b00020", linestyle="--", label=f"control limit h = {c.limit}")
    if c.signal_day is not None:
        top.axvline(
            _dates([result.origin + np.timedelta64(int(c.signal_day), "D")])[0],
            color="#b00020",
            linewidth=0.8,
        )
    top.set_ylabel("CUSUM G")
    top.legend(fontsize=8)
    bottom.plot(_dates(days), c.observed, label="observed bone metastases", color="#D55E00")
    bottom.plot(_dates(days), c.expected, label="expected by the model", color="#009E73")
    bottom.set_ylabel("cumulative count")
    bottom.legend(fontsize=8)
    return fig


def _windows_figure(windows: list[dict]) -> Figure:
    done = [w for w in windows if w.get("slope") is not None]
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    x = _dates([w["start_date"] for w in done])
    for ax, key, ideal in ((left, "slope", 1.0), (right, "intercept", 0.0)):
        y = np.array([w[key] for w in done])
        lo = np.array([w.get(f"{key}_lo", np.nan) for w in done])
        hi = np.array([w.get(f"{key}_hi", np.nan) for w in done])
        ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o", color="#0072B2", capsize=3)
        ax.axhline(ideal, color="#555", linestyle="--")
        ax.set_title(f"calibration {key} by window start", fontsize=10)
    return fig


def _rows(rows: list[dict], keys: list[str]) -> list[dict]:
    return [{k: r.get(k) for k in keys} for r in rows]


def build_parts(result: MonitorResult) -> list[Part]:
    """The report's sections."""
    n = result.numbers
    parts = []
    summary = Part("alarms", "Alarms")
    if result.alarms:
        summary.blocks.append(f'<p class="alarm"><b>{len(result.alarms)} alarm(s).</b></p>')
        summary.table(
            _rows(result.alarms, ["kind", "message"]),
            "every alarm, with where and the day it began",
        )
    else:
        summary.blocks.append('<p class="ok"><b>No alarm.</b></p>')
    for what, why in result.not_computed.items():
        summary.missing(what, why)
    summary.table(
        [
            {"alarm": r.key, "what": r.label, "test": r.test, "false alarms": r.false_alarm}
            for r in RULES
        ],
        "the tests behind each alarm and their false-alarm rates",
    )
    parts.append(summary)
    marker = Part("marker", "The marker per lab, instrument and lot")
    if "marker" in n:
        by = list(n["config"]["by"])
        keys = [*by, "n", "n_reference", "reference", "current_value", "reference_value"]
        marker.table(
            _rows(n["marker"]["marker_shift"], [*keys, "ratio", "p_adjusted", "alarm", "began"]),
            "median marker (percent) of each group's draws against its lab's reference draws; "
            "ratio = current / reference; p Holm-adjusted over the groups",
        )
        marker.table(
            _rows(
                n["marker"]["groups"],
                [
                    *by,
                    "draws",
                    "with_counts",
                    "below_detection",
                    "below_quantification",
                    "median_pbmc_events",
                    "first",
                    "last",
                ],
            ),
            "share of draws below the detection (20 positive events) and quantification (50) "
            "limits and PBMC events per group (current draws with counts)",
        )
        marker.table(
            _rows(n["marker"]["below_quantification"], [*keys, "p_adjusted", "alarm", "began"]),
            "share of draws below 50 positive events against the lab's reference share",
        )
        marker.table(
            _rows(n["marker"]["pbmc_counts"], [*keys, "p_adjusted", "alarm", "began"]),
            "median gated PBMC events per draw against the lab's reference",
        )
        if (
            result.draws is not None
            and "lab_id" in result.draws
            and result.draws["date"].notna().any()
        ):
            flagged = {
                (a.get("lab_id"), a.get("reagent_lot"))
                for a in result.alarms
                if a["kind"] == "marker_shift"
            }
            marker.figure(
                "marker_by_lab",
                _marker_figure(result.draws, flagged),
                "current draws by date, one panel per lab, coloured by lot (x: lot in alarm)",
            )
    parts.append(marker)
    if result.qc_chart is not None:
        qc = Part("qc", "Control material: Levey-Jennings charts and Westgard rules")
        qc.table(
            n["qc"]["violations"],
            "Westgard rule violations (began: first result of the violating window)",
        )
        if not n["qc"]["violations"]:
            qc.text("No Westgard rule violated.")
        for note in n["qc"]["notes"]:
            qc.text(note)
        pairs = (
            result.qc_chart[["lab_id", "instrument_id"]].drop_duplicates().itertuples(index=False)
        )
        for lab, instrument in list(pairs)[:12]:
            qc.figure(
                f"levey_jennings_{lab}_{instrument}",
                _lj_figure(result.qc_chart, lab, instrument),
                f"Levey-Jennings chart of {lab} {instrument}: results in SD from the mean, by lot",
            )
        parts.append(qc)
    model = Part("model", "The model: predictions and outcomes")
    if "prediction_drift" in n:
        d = n["prediction_drift"]
        model.text(
            f"Mean predicted {d['months']:g}-month incidence: {d['current_mean']:.3f} now, "
            f"{d['reference_mean']:.3f} in the reference."
        )
        for by in ("site_id", "lab_id"):
            model.table(
                _rows(
                    d[by],
                    [
                        by,
                        "n",
                        "n_reference",
                        "reference",
                        "current_value",
                        "reference_value",
                        "p_adjusted",
                        "alarm",
                    ],
                ),
                f"median predicted incidence per {by} against the reference (Holm over the groups)",
            )
    if "observed_expected" in n:
        model.table(
            _rows(
                n["observed_expected"],
                [
                    "site_id",
                    "months",
                    "n",
                    "followed",
                    "events",
                    "observed",
                    "expected",
                    "ratio",
                    "ratio_lo",
                    "ratio_hi",
                    "conf_level",
                    "alarm",
                ],
            ),
            "observed (Aalen-Johansen, death competing) over expected (mean prediction) incidence; "
            "the interval's level is Bonferroni-corrected",
        )
    if "calibration_windows" in n:
        w = n["calibration_windows"]
        model.table(
            _rows(
                w["windows"],
                [
                    "start_date",
                    "end_date",
                    "n",
                    "events",
                    "slope",
                    "slope_lo",
                    "slope_hi",
                    "intercept",
                    "intercept_lo",
                    "intercept_hi",
                    "alarm",
                    "note",
                ],
            ),
            f"calibration at {w['months']:g} months by window of enrollment date",
        )
        if any(x.get("slope") is not None for x in w["windows"]):
            model.figure(
                "calibration_windows",
                _windows_figure(w["windows"]),
                "calibration slope (ideal 1) and intercept (ideal 0) per window, Bonferroni "
                "intervals",
            )
    if result.cusum is not None:
        c = n["cusum"]
        years = c["in_control_arl_years_at_current_rate"]
        model.text(
            f"Risk-adjusted CUSUM tuned to a hazard ratio of {c['hazard_ratio']:g}: control limit "
            f"h = {c['limit']} for an in-control average run length of "
            f"{c['in_control_arl_expected_events']:g} "
            f"expected bone metastases"
            + (
                f" (about {years:.1f} years at the current rate of "
                f"{c['expected_per_year']:.1f} a year)"
                if years
                else ""
            )
            + f"; a doubling is detected after about {c['detection_delay_expected_events']:.0f} "
            "expected ones. "
            f"Observed {c['observed_events']:.0f}, expected {c['expected_events']:.1f}. "
            + (
                f"Signal on {c['signal']}, excursion began {c['began']}."
                if c["signal"]
                else "No signal."
            )
        )
        model.figure(
            "cusum",
            _cusum_figure(result),
            "CUSUM statistic with its control limit; observed and "
            "expected bone metastases by calendar date",
        )
    parts.append(model)
    return parts


def render_report(result: MonitorResult, sources: str = "") -> tuple[str, dict[str, bytes]]:
    """The page and its figures (PNG bytes by name)."""
    parts = build_parts(result)
    body = "".join(
        f'<section id="{p.key}"><h2>{html.escape(p.title)}</h2>{"".join(p.blocks)}</section>'
        for p in parts
    )
    figures = {k: v for p in parts for k, v in p.figures.items()}
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>bonemet monitoring report"
        f"</title><style>{_STYLE}</style></head><body><h1>Monitoring: the marker and the model</h1>"
        f"<p>{html.escape(sources)}; data contract v{CONTRACT_VERSION}. Research software, not for "
        f"patient care.</p>{body}</body></html>"
    )
    return page, figures
