"""Quality-control figures: the PBMC and OC gates drawn on a file's events.

Each figure has two panels: all events on the PBMC gate's dimensions, then the PBMC events on
the OC gate's dimensions (a histogram for a one-dimensional gate). Colours are FlowKit's own
gate membership, so a figure shows exactly what was counted; rectangle and polygon boundaries
are drawn on top. Values are shown on the scale the gate uses (its GatingML transform and
compensation). The axes span every event of the panel and the gate, so the events a gate
leaves out are drawn beside it. Scatter panels draw at most 20,000 events: half of them on
each side of the gate (all of a side's events when fewer: rare positives are all drawn), and
the legend says how many of each side were drawn. Figures are built on
their own Agg canvas, never through ``pyplot``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from features.cytometry.strategy import GateRef

_IN, _OUT = "#D55E00", "#7F7F7F"  # Okabe-Ito vermillion and grey
#: Most events drawn in a quality-control scatter (both sides of the gate kept).
MAX_QC_POINTS = 20_000


def _dimension_values(sample, strategy, dim) -> np.ndarray:
    """One gate dimension's values for every event: compensated and transformed as gated."""
    ref = dim.compensation_ref
    source = "raw"
    if ref == "FCS":
        spill = sample.metadata.get("spillover", sample.metadata.get("spill"))
        if spill is not None:
            sample.apply_compensation(spill)
            source = "comp"
    elif ref not in (None, "uncompensated"):
        sample.apply_compensation(strategy.get_comp_matrix(ref))
        source = "comp"
    values = np.asarray(sample.get_channel_events(dim.id, source=source), dtype=float)
    if dim.transformation_ref is not None:
        xform = strategy.get_transform(dim.transformation_ref)
        values = xform.apply(values.reshape(-1, 1)).ravel()
    return values


def _draw_gate(
    ax: Axes,
    sample,
    strategy,
    gate,
    members: np.ndarray,
    parent: np.ndarray,
    rng: np.random.Generator,
) -> None:
    dims = list(getattr(gate, "dimensions", []))
    shown = np.flatnonzero(parent)
    n_in, n_out = int(members[shown].sum()), int((~members[shown]).sum())
    if len(dims) > 1 and len(shown) > MAX_QC_POINTS:
        shown = subsample_both_sides(shown, members[shown], rng)
    values = [_dimension_values(sample, strategy, d) for d in dims[:2]]
    # The axes span every event of the panel (drawn or not) and the gate, never only the gate.
    limits = [_span(v[np.flatnonzero(parent)]) for v in values]
    cols = [v[shown] for v in values]
    inside = members[shown]
    drawn_in, drawn_out = int(inside.sum()), int((~inside).sum())
    label_in = _legend("inside", drawn_in, n_in)
    label_out = _legend("outside", drawn_out, n_out)
    if len(cols) == 1:
        bins = np.linspace(np.nanmin(cols[0]), np.nanmax(cols[0]), 80) if len(shown) else 10
        ax.hist(cols[0][~inside], bins=bins, color=_OUT, label=label_out)
        ax.hist(cols[0][inside], bins=bins, color=_IN, label=label_in)
        ax.set_yscale("log")
        ax.set_ylabel("events")
        lo, hi = getattr(dims[0], "min", None), getattr(dims[0], "max", None)
        for edge in (lo, hi):
            if edge is not None:
                ax.axvline(edge, color="black", lw=1)
    else:
        ax.scatter(cols[0][~inside], cols[1][~inside], s=1, color=_OUT, label=label_out)
        ax.scatter(cols[0][inside], cols[1][inside], s=1, color=_IN, label=label_in)
        ax.set_ylabel(_label(dims[1]))
        vertices = getattr(gate, "vertices", None)
        if vertices is not None:
            v = np.asarray(vertices, dtype=float)
            ax.plot(*np.vstack([v, v[:1]]).T, color="black", lw=1)
        elif all(
            getattr(d, "min", None) is not None or getattr(d, "max", None) is not None
            for d in dims[:2]
        ):
            x0, x1 = _bounds(dims[0], cols[0])
            y0, y1 = _bounds(dims[1], cols[1])
            ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="black", lw=1)
        # Every event's range and the gate's outline (matplotlib's autoscale holds the latter).
        axes = ((ax.get_xlim, ax.set_xlim), (ax.get_ylim, ax.set_ylim))
        for limit, (get, put) in zip(limits, axes, strict=True):
            if limit is not None:
                lo, hi = get()
                put(min(lo, limit[0]), max(hi, limit[1]))
    if dims:
        ax.set_xlabel(_label(dims[0]))
    ax.legend(loc="upper right", fontsize=7, markerscale=6)


def subsample_both_sides(
    shown: np.ndarray, inside: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """At most :data:`MAX_QC_POINTS` of the ``shown`` events, both sides of the gate drawn: each
    side gets half of the points, or all its events when fewer (the rest go to the other
    side), so that rare events (the positives, or the few a wide gate leaves out) are all
    drawn."""
    sides = [shown[inside], shown[~inside]]
    half = MAX_QC_POINTS // 2
    quota = [min(len(side), half) for side in sides]
    quota = [
        min(len(side), MAX_QC_POINTS - other)
        for side, other in zip(sides, quota[::-1], strict=True)
    ]
    kept = [
        side if len(side) <= k else rng.choice(side, k, replace=False)
        for side, k in zip(sides, quota, strict=True)
    ]
    return np.sort(np.concatenate(kept))


def _span(values: np.ndarray) -> tuple[float, float] | None:
    """The finite range of ``values`` with a 2 % margin (None when none is finite)."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return None
    lo, hi = float(finite.min()), float(finite.max())
    margin = 0.02 * (hi - lo) if hi > lo else 1.0
    return lo - margin, hi + margin


def _legend(side: str, drawn: int, total: int) -> str:
    return f"{side}: {total:,}" if drawn == total else f"{side}: {drawn:,} of {total:,} drawn"


def _label(dim) -> str:
    ref = dim.transformation_ref
    return dim.id if ref is None else f"{dim.id} ({ref})"


def _bounds(dim, values: np.ndarray) -> tuple[float, float]:
    lo = dim.min if dim.min is not None else float(np.nanmin(values))
    hi = dim.max if dim.max is not None else float(np.nanmax(values))
    return lo, hi


def gate_figure(
    fcs_path: str | Path,
    strategy,
    pbmc: GateRef,
    oc: GateRef,
    title: str,
    seed: int = 0,
) -> Figure:
    """Two panels for one FCS file: the PBMC gate on all events, the OC gate on PBMC events.

    Parameters
    ----------
    fcs_path : path
        The file (already through quality control).
    strategy : flowkit.GatingStrategy
    pbmc, oc : GateRef
    title : str
        Figure title; callers pass the draw (patient and day), never FCS header text.
    seed : int
        Seed of the subsample of plotted events (at most 20,000 per panel).
    """
    import flowkit as fk

    with open(fcs_path, "rb") as fh:
        sample = fk.Sample(fh, sample_id="qc", subsample=0)
    results = strategy.gate_sample(sample)
    in_pbmc = np.asarray(results.get_gate_membership(pbmc.name, pbmc.path), dtype=bool)
    in_oc = np.asarray(results.get_gate_membership(oc.name, oc.path), dtype=bool)
    oc_parent_ref = GateRef(oc.path[-1], oc.path[:-1]) if len(oc.path) > 1 else None
    if oc_parent_ref is None or oc_parent_ref == pbmc:
        oc_parent = in_pbmc
    else:
        oc_parent = np.asarray(
            results.get_gate_membership(oc_parent_ref.name, oc_parent_ref.path), dtype=bool
        )
    rng = np.random.default_rng(seed)
    fig = Figure(figsize=(10, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    everything = np.ones(sample.event_count, dtype=bool)
    _draw_gate(
        ax1, sample, strategy, strategy.get_gate(pbmc.name, pbmc.path), in_pbmc, everything, rng
    )
    ax1.set_title(f"{pbmc}: {int(in_pbmc.sum()):,} of {sample.event_count:,} events", fontsize=9)
    _draw_gate(ax2, sample, strategy, strategy.get_gate(oc.name, oc.path), in_oc, oc_parent, rng)
    ax2.set_title(f"{oc}: {int(in_oc.sum()):,} of {int(oc_parent.sum()):,} events", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
