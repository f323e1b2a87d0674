"""Evaluation figures for bone metastasis with death as a competing event.

Pure functions: arrays and the small DataFrames of :mod:`training.evaluation` (calibration
tables, decision curves) in, a :class:`matplotlib.figure.Figure` out, for the caller to log
(``mlflow.log_figure(fig, path)``) or save. Every figure is built on its own Agg canvas, never
through ``matplotlib.pyplot``: no global figure registry, no display, nothing to close, safe to
call from several threads. A figure is freed when the caller drops its last reference.

Conventions follow :mod:`training.evaluation.inputs` (see docs/modeling.md): targets ``y`` are
structured arrays with fields ``cause`` (0 censored, 1 bone metastasis, 2 death without bone
metastasis) and ``time`` (days); horizons are in months of ``DAYS_PER_MONTH`` days; observed
incidences are Aalen-Johansen estimates with death competing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from training.evaluation.incidence import aalen_johansen
from training.models.competing import BONE_METASTASIS, DAYS_PER_MONTH

__all__ = [
    "new_figure",
    "calibration_figure",
    "incidence_by_group_figure",
    "auc_over_time_figure",
    "decision_curve_figure",
    "importance_figure",
]

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
_BLUE, _ORANGE, _GREEN, _VERMILLION, _PURPLE, _SKY, _GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#7F7F7F",
)
_CYCLE = (_BLUE, _ORANGE, _GREEN, _VERMILLION, _PURPLE, _SKY)
_GROUP_ORDER = ("low", "intermediate", "high")
_GROUP_COLOURS = {"low": _GREEN, "intermediate": _ORANGE, "high": _VERMILLION}

_CALIBRATION_COLUMNS = ("mean_predicted", "observed", "observed_lo", "observed_hi")
_DECISION_COLUMNS = ("threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none")


def new_figure(width: float, height: float) -> Figure:
    """A Figure attached to its own Agg canvas (no pyplot, no GUI backend)."""
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {', '.join(missing)}")


def _as_float(values: object, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color=_GREY)


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def calibration_figure(
    tables: Mapping[int, pd.DataFrame],
    annotations: Mapping[int, str] | None = None,
) -> Figure:
    """Observed against predicted cumulative incidence, one panel per horizon.

    Each point is one quantile group of :func:`training.evaluation.calibration.calibration_table`
    (deciles by
    default): the group's mean predicted incidence of bone metastasis by the horizon against its
    Aalen-Johansen incidence with death competing, with the interval of the observed incidence
    as a vertical error bar. The dashed diagonal is perfect calibration. Groups whose predicted
    or observed value is NaN are left out; a NaN interval bound draws no bar on that side.

    Parameters
    ----------
    tables : mapping of int to pandas.DataFrame
        Horizon (months) to a calibration table with columns ``mean_predicted, observed,
        observed_lo, observed_hi`` (``group, n, events`` are not needed).
    annotations : mapping of int to str, optional
        Horizon to a short text shown in the panel's upper left corner, e.g.
        ``"slope 0.93, ICI 0.012"``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per horizon, in increasing order of horizon; each holds the diagonal (a line)
        and one errorbar container (none when no group is estimable).

    Raises
    ------
    ValueError
        ``tables`` is empty or a table lacks a column.
    """
    if not tables:
        raise ValueError("tables is empty: give at least one horizon's calibration table")
    horizons = sorted(tables)
    for h in horizons:
        _require_columns(tables[h], _CALIBRATION_COLUMNS, f"tables[{h}]")
    annotations = dict(annotations or {})

    ncols = min(len(horizons), 2)
    nrows = math.ceil(len(horizons) / ncols)
    fig = new_figure(4.2 * ncols, 4.2 * nrows + 0.4)
    for k, h in enumerate(horizons):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        table = tables[h]
        x = table["mean_predicted"].to_numpy(dtype=float)
        obs = table["observed"].to_numpy(dtype=float)
        lo = table["observed_lo"].to_numpy(dtype=float)
        hi = table["observed_hi"].to_numpy(dtype=float)
        ok = np.isfinite(x) & np.isfinite(obs)
        x, obs, lo, hi = x[ok], obs[ok], lo[ok], hi[ok]

        finite = np.concatenate([x, obs, hi[np.isfinite(hi)]])
        top = min(1.0, max(0.05, 1.1 * float(finite.max()) if finite.size else 0.0))
        ax.plot([0.0, top], [0.0, top], ls="--", lw=1, color=_GREY, label="perfect calibration")
        if x.size:
            # A NaN bound means no interval on that side; errorbar rejects NaN and negatives.
            below = np.clip(np.nan_to_num(obs - lo, nan=0.0), 0.0, None)
            above = np.clip(np.nan_to_num(hi - obs, nan=0.0), 0.0, None)
            ax.errorbar(
                x,
                obs,
                yerr=np.vstack([below, above]),
                fmt="o",
                ms=5,
                color=_BLUE,
                ecolor=_BLUE,
                elinewidth=1,
                capsize=3,
                label="quantile groups (95 % CI)",
            )
        else:
            _no_data(ax, "no estimable group")
        if h in annotations:
            ax.text(
                0.04,
                0.96,
                annotations[h],
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": _GREY},
            )
        ax.set_xlim(0.0, top)
        ax.set_ylim(0.0, top)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"{h} months")
        ax.set_xlabel("predicted cumulative incidence")
        ax.set_ylabel("observed (Aalen-Johansen)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Calibration: bone metastasis by horizon, death as a competing event")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Cumulative incidence by risk group
# --------------------------------------------------------------------------------------------


def _group_order(labels: Sequence[object]) -> list[object]:
    known = [g for g in _GROUP_ORDER if g in labels]
    return known + sorted((g for g in labels if g not in _GROUP_ORDER), key=str)


def incidence_by_group_figure(
    y: np.ndarray,
    groups: Sequence[object] | np.ndarray,
    max_months: float = 60,
) -> Figure:
    """Aalen-Johansen cumulative incidence of bone metastasis per risk group, numbers at risk.

    Each group's curve is the Aalen-Johansen step function with death competing, drawn from 0
    to the group's last observed time (at most ``max_months``). Below the plot, a table gives
    the number of patients still at risk (time >= t) at 0, 12, 24, ... months.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target with fields ``cause`` and ``time`` (days).
    groups : array-like
        Risk-group label per patient (``"low"``, ``"intermediate"``, ``"high"``; other labels
        are drawn after these in sorted order). Missing labels (None, NaN) are left out.
    max_months : float, default=60
        Right end of the time axis (months).

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the incidence plot (one step line per group) and the numbers-at-risk table.

    Raises
    ------
    ValueError
        ``groups`` does not have one label per patient, no patient has a label, or
        ``max_months`` is not a positive number.
    """
    labels = pd.Series(np.asarray(groups, dtype=object))
    n = int(np.asarray(y).shape[0])
    if labels.shape[0] != n:
        raise ValueError(f"groups has {labels.shape[0]} labels for {n} patients")
    if not (np.isfinite(max_months) and max_months > 0):
        raise ValueError(f"max_months must be a positive number, got {max_months}")
    present = labels.notna().to_numpy()
    if not present.any():
        raise ValueError("groups has no label: nothing to draw")
    order = _group_order(list(pd.unique(labels[present])))
    max_days = float(max_months) * DAYS_PER_MONTH
    ticks = np.arange(0.0, float(max_months) + 1e-9, 12.0)

    fig = new_figure(7.5, 5.5 + 0.25 * len(order))
    grid = fig.add_gridspec(2, 1, height_ratios=[4.0, 0.5 + 0.35 * len(order)])
    ax = fig.add_subplot(grid[0])
    tab = fig.add_subplot(grid[1], sharex=ax)
    top = 0.0
    for k, g in enumerate(order):
        yg = y[present & (labels == g).to_numpy()]
        end = min(max_days, float(yg["time"].max()))
        times = np.unique(yg["time"][yg["time"] <= end])
        grid_days = np.concatenate([[0.0], times, [end]])
        cif = aalen_johansen(yg, grid_days)[0]
        top = max(top, float(cif.max()))
        events = int(np.sum(yg["cause"] == BONE_METASTASIS))
        colour = _GROUP_COLOURS.get(str(g), _CYCLE[k % len(_CYCLE)])
        ax.step(
            grid_days / DAYS_PER_MONTH,
            cif,
            where="post",
            color=colour,
            lw=2,
            label=f"{g} (n={yg.shape[0]}, {events} bone metastases)",
        )
        for t in ticks:
            at_risk = int(np.sum(yg["time"] >= t * DAYS_PER_MONTH)) if t > 0 else yg.shape[0]
            tab.text(t, k, str(at_risk), ha="center", va="center", fontsize=9, color=colour)

    ax.set_xlim(0.0, float(max_months))
    ax.set_ylim(0.0, min(1.0, max(0.05, 1.15 * top)))
    ax.set_xticks(ticks)
    ax.tick_params(axis="x", labelbottom=True)
    ax.set_xlabel("months since enrollment")
    ax.set_ylabel("cumulative incidence of bone metastasis (proportion)")
    ax.set_title(
        "Cumulative incidence of bone metastasis by risk group\n"
        "(Aalen-Johansen, death as a competing event)",
        fontsize=11,
    )
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)

    tab.set_ylim(len(order) - 0.5, -0.5)
    tab.set_yticks(range(len(order)), [str(g) for g in order])
    tab.tick_params(axis="x", bottom=False, labelbottom=False)
    tab.tick_params(axis="y", left=False, pad=16)  # clear of the counts centred on month 0
    for spine in tab.spines.values():
        spine.set_visible(False)
    tab.set_title("number at risk", fontsize=9, loc="left")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Discrimination over time
# --------------------------------------------------------------------------------------------


def auc_over_time_figure(
    months: Sequence[float] | np.ndarray,
    auc: Sequence[float] | np.ndarray,
    label: str,
    other: Mapping[str, tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]]
    | None = None,
) -> Figure:
    """Time-dependent AUC against horizon, optionally for several models overlaid.

    Parameters
    ----------
    months : array-like
        Horizons (months).
    auc : array-like
        AUC at each horizon (NaN leaves a gap).
    label : str
        Legend label of this curve, e.g. ``"clinical + marker"``.
    other : mapping of str to (months, auc), optional
        Further curves by legend label, e.g. ``{"clinical only": (months, auc)}``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one line per curve and a dotted line at AUC 0.5 (chance).

    Raises
    ------
    ValueError
        A curve's ``months`` and ``auc`` differ in length or are not 1-D.
    """
    curves = {label: (months, auc), **dict(other or {})}
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    lowest = 0.5
    for k, (name, (m, a)) in enumerate(curves.items()):
        m = _as_float(m, f"months of {name!r}")
        a = _as_float(a, f"auc of {name!r}")
        if m.shape != a.shape:
            raise ValueError(
                f"months and auc of {name!r} differ in length: {m.shape[0]} and {a.shape[0]}"
            )
        order = np.argsort(m, kind="stable")
        ax.plot(m[order], a[order], marker="o", lw=2, color=_CYCLE[k % len(_CYCLE)], label=name)
        if np.isfinite(a).any():
            lowest = min(lowest, float(np.nanmin(a)))
    ax.axhline(0.5, ls=":", lw=1, color=_GREY, label="chance (0.5)")
    ax.set_ylim(max(0.0, min(0.45, lowest - 0.05)), 1.0)
    ax.set_xlabel("horizon (months since enrollment)")
    ax.set_ylabel("time-dependent AUC")
    ax.set_title("Discrimination of bone metastasis over time")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Decision curve
# --------------------------------------------------------------------------------------------


def decision_curve_figure(dc: pd.DataFrame, months: int) -> Figure:
    """Net benefit of the model, treat-all and treat-none against threshold probability.

    The y-axis runs from a small negative value (a tenth of the largest net benefit below 0) to
    just above the largest net benefit: treat-all falls steeply negative at thresholds above
    the incidence, and showing that tail would flatten the region where the curves differ.

    Parameters
    ----------
    dc : pandas.DataFrame
        Output of :func:`training.evaluation.accuracy.decision_curve`: columns ``threshold,
        net_benefit_model, net_benefit_all, net_benefit_none``.
    months : int
        Horizon of the predictions (months), for the title and axis label.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with three lines: model, treat all, treat none.

    Raises
    ------
    ValueError
        ``dc`` lacks a column.
    """
    _require_columns(dc, _DECISION_COLUMNS, "dc")
    frame = dc.sort_values("threshold")
    thr = frame["threshold"].to_numpy(dtype=float)
    model = frame["net_benefit_model"].to_numpy(dtype=float)
    treat_all = frame["net_benefit_all"].to_numpy(dtype=float)
    none = frame["net_benefit_none"].to_numpy(dtype=float)

    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    ax.plot(thr, model, lw=2, color=_BLUE, label="model")
    ax.plot(thr, treat_all, lw=1.5, color=_ORANGE, label="treat all")
    ax.plot(thr, none, lw=1.5, ls="--", color=_GREY, label="treat none")
    values = np.concatenate([model, treat_all, none])
    values = values[np.isfinite(values)]
    top = float(values.max()) if values.size else 0.0
    top = top * 1.1 if top > 0 else 0.01
    ax.set_ylim(-0.1 * top, top)
    finite_thr = thr[np.isfinite(thr)]
    if finite_thr.size > 1:
        ax.set_xlim(float(finite_thr.min()), float(finite_thr.max()))
    ax.set_xlabel(f"threshold probability (predicted incidence by {months} months)")
    ax.set_ylabel("net benefit (net true positives per patient)")
    ax.set_title(f"Decision curve: bone metastasis by {months} months")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Feature importance
# --------------------------------------------------------------------------------------------


def importance_figure(importance: pd.Series, top: int = 20, xlabel: str | None = None) -> Figure:
    """Horizontal bar chart of the features with the largest absolute importance.

    Parameters
    ----------
    importance : pandas.Series
        Importance by feature name (index). Negative values (e.g. coefficients, or a permutation
        importance below zero) are drawn to the left of 0; NaN values are left out.
    top : int, default=20
        Number of features shown, largest absolute value at the top.
    xlabel : str, optional
        Axis label with its unit, e.g. ``"drop in Uno's C when permuted"``; default the
        Series name, or ``"importance"``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with one bar per feature shown.

    Raises
    ------
    TypeError
        ``importance`` is not a pandas Series.
    ValueError
        ``top`` is not a positive integer.
    """
    if not isinstance(importance, pd.Series):
        raise TypeError(f"importance must be a pandas Series, got {type(importance).__name__}")
    if isinstance(top, bool) or int(top) != top or top < 1:
        raise ValueError(f"top must be a positive integer, got {top!r}")
    values = importance.astype(float).dropna()
    shown = values.reindex(values.abs().sort_values(ascending=False).index[: int(top)])
    label = xlabel or (str(importance.name) if importance.name is not None else "importance")

    fig = new_figure(7.0, 1.5 + 0.3 * max(len(shown), 3))
    ax = fig.add_subplot()
    if len(shown):
        rows = shown.iloc[::-1]  # barh draws bottom-up: put the largest at the top
        colours = [_BLUE if v >= 0 else _ORANGE for v in rows]
        ax.barh([str(i) for i in rows.index], rows.to_numpy(), color=colours)
        ax.axvline(0.0, lw=1, color=_GREY)
    else:
        _no_data(ax, "no importance to show")
    ax.set_xlabel(label)
    ax.set_ylabel("feature")
    ax.set_title(f"Feature importance (top {len(shown)} of {len(values)})")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
