"""The multi-site validation report: forest plots, per-group calibration, one HTML file.

:func:`forest_figure` draws one metric per group with its interval, the pooled estimate as a
diamond (its confidence interval) and the prediction interval for a new group as a line below
it. :func:`render_report` writes a self-contained HTML page (figures embedded as PNG) a
data scientist can hand to a reviewer (TRIPOD-Cluster: performance per cluster, its
heterogeneity, and what to expect at a new cluster).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from training.evaluation.figures import calibration_figure, new_figure

__all__ = ["forest_figure", "render_report", "calibration_figures"]


def forest_figure(
    table: pd.DataFrame,
    by: str,
    metric: str,
    pooled: Mapping[str, object] | None,
    *,
    reference: float | None = None,
    log_scale: bool = False,
    label: str = "",
) -> Figure:
    """One row per group (estimate and interval), then the pooled diamond and its prediction
    interval; a dotted vertical line at ``reference`` (1 for O/E)."""
    groups = table[by].astype(str).tolist()
    est = table[metric].to_numpy(dtype=float)
    lo = table[f"{metric}_low"].to_numpy(dtype=float)
    hi = table[f"{metric}_high"].to_numpy(dtype=float)
    n_rows = len(groups) + 2
    fig = new_figure(6.5, 0.8 + 0.32 * n_rows)
    ax = fig.add_subplot(1, 1, 1)
    ys = np.arange(len(groups), 0, -1) + 1.0
    ok = np.isfinite(est)
    ax.errorbar(
        est[ok], ys[ok],
        xerr=[
            np.where(np.isfinite(lo), est - lo, 0)[ok],
            np.where(np.isfinite(hi), hi - est, 0)[ok],
        ],
        fmt="s", color="black", markersize=4, capsize=2,
    )
    for y, g, e in zip(ys, groups, est, strict=True):
        if not math.isfinite(e):
            ax.text(0.02, y, "not estimable", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="grey")
    ticks, names = list(ys), list(groups)
    if pooled and pooled.get("estimate") is not None:
        m = float(pooled["estimate"])
        c_lo, c_hi = pooled.get("ci_low"), pooled.get("ci_high")
        if c_lo is not None and c_hi is not None:
            ax.fill([c_lo, m, c_hi, m], [1, 1.25, 1, 0.75], color="tab:blue")
        p_lo, p_hi = pooled.get("pi_low"), pooled.get("pi_high")
        if p_lo is not None and p_hi is not None:
            ax.plot([p_lo, p_hi], [0.4, 0.4], color="tab:blue", lw=2)
            ticks.append(0.4)
            names.append("prediction interval (new site)")
        ticks.append(1.0)
        names.append(f"pooled ({pooled.get('method', '')}, k={pooled.get('k', '')})")
    if reference is not None:
        ax.axvline(reference, ls=":", color="grey")
    if log_scale:
        ax.set_xscale("log")
    ax.set_yticks(ticks, names, fontsize=8)
    ax.set_ylim(0, n_rows + 0.5)
    ax.set_xlabel(label or metric)
    fig.tight_layout()
    return fig


def calibration_figures(
    tables: Mapping[str, pd.DataFrame], horizon: int, notes: Mapping[str, str] | None = None
) -> dict[str, Figure]:
    """One calibration figure per group (:func:`training.evaluation.figures.calibration_figure`)
    from its calibration table at ``horizon``."""
    return {
        g: calibration_figure({horizon: t}, {horizon: (notes or {}).get(g, f"{g}")})
        for g, t in tables.items()
    }


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{value:.3f}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(
    *,
    title: str,
    facts: Mapping[str, object],
    table: pd.DataFrame,
    by: str,
    shown_columns: Sequence[str],
    pooled: Mapping[str, Mapping[str, object]],
    figures: Mapping[str, Figure],
    calibration: Mapping[str, Figure],
) -> str:
    """The report as one HTML document (figures embedded)."""
    rows = []
    for name, entry in pooled.items():
        rows.append(
            {
                "metric": name,
                "scale pooled on": entry.get("scale"),
                "sites": entry.get("k"),
                "estimate": entry.get("estimate"),
                "CI": _interval(entry.get("ci_low"), entry.get("ci_high")),
                "prediction interval (new site)": _interval(
                    entry.get("pi_low"), entry.get("pi_high")
                ),
                "tau^2": entry.get("tau2"),
                "I^2 (%)": entry.get("i2_percent"),
                "note": entry.get("note") or "",
            }
        )
    pooled_frame = pd.DataFrame(rows)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 6px}th{background:#eee}.flag{color:#a00}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<ul>"
        + "".join(
            f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>"
            for k, v in facts.items()
        )
        + "</ul>",
        f"<h2>Per {html.escape(by)}</h2>",
        "<p>A row is <b>flagged</b> when the interval of its observed/expected ratio at the "
        "headline horizon excludes 1, or when the interval of its calibration slope lies wholly "
        "outside the promotion band. Empty cells could not be estimated (the note says why).</p>",
        _table(table[[c for c in shown_columns if c in table]]),
        "<h2>Pooled (random effects)</h2>",
        "<p>The C-index is pooled on the logit scale, O/E on the log scale, and shown back on "
        "their own scales. The prediction interval is where the value at a new site is expected "
        "to lie; it, not the confidence interval of the mean, says whether the model can be "
        "used at a hospital not yet seen.</p>",
        _table(pooled_frame),
    ]
    for name, fig in figures.items():
        parts.append(f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' "
                     f"src='data:image/png;base64,{_png(fig)}'>")
    parts.append(f"<h2>Calibration per {html.escape(by)}</h2>")
    for group, fig in calibration.items():
        parts.append(f"<h3>{html.escape(group)}</h3><img alt='calibration {html.escape(group)}' "
                     f"src='data:image/png;base64,{_png(fig)}'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _interval(lo: object, hi: object) -> str:
    if lo is None or hi is None:
        return ""
    return f"{float(lo):.3f} - {float(hi):.3f}"
