"""Evaluation figures (the model card's tests are in tests/tracking/test_model_card.py).

Figures are checked by structure (axes, lines, error bars, bars), by a PNG round trip through
Pillow, and on degenerate inputs (a group without events, NaN rows).
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure
from PIL import Image

from training.evaluation.figures import (
    auc_over_time_figure,
    calibration_figure,
    decision_curve_figure,
    importance_figure,
    incidence_by_group_figure,
)
from training.evaluation.metrics import (
    aalen_johansen,
    calibration_table,
    decision_curve,
)
from training.models.competing import DAYS_PER_MONTH, make_target

REPO = Path(__file__).resolve().parents[2]
EVENTS = np.array(["censored", "bone_metastasis", "death"])
HORIZONS = (12, 24, 36)


@pytest.fixture(scope="module")
def cohort():
    """400 patients with exponential competing hazards; bone metastasis hazard rises with x.

    Returns the target, a predicted incidence by horizon (the true one, so the tables are
    sensible), the risk score x and tertile risk groups.
    """
    rng = np.random.default_rng(11)
    n = 400
    x = rng.normal(size=n)
    l1, l2 = 6e-4 * np.exp(x), np.full(n, 3e-4)
    t_bm, t_death = rng.exponential(1 / l1), rng.exponential(1 / l2)
    t_cens = rng.uniform(300, 2500, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    cause = np.where(time == t_cens, 0, np.where(time == t_bm, 1, 2))
    y = make_target(EVENTS[cause], time)
    p = {h: l1 / (l1 + l2) * (1 - np.exp(-(l1 + l2) * h * DAYS_PER_MONTH)) for h in HORIZONS}
    groups = np.array(["low", "intermediate", "high"], dtype=object)[
        np.searchsorted(np.quantile(x, [1 / 3, 2 / 3]), x)
    ]
    return y, p, x, groups


def save_png(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=80)
    assert path.stat().st_size > 0
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size[0] > 100 and img.size[1] > 100
    return path


def figures(cohort) -> dict[str, Figure]:
    """One of each figure from the synthetic cohort."""
    y, p, x, groups = cohort
    tables = {h: calibration_table(y, p[h], h) for h in HORIZONS}
    return {
        "calibration": calibration_figure(tables, {12: "slope 0.98, ICI 0.010"}),
        "incidence": incidence_by_group_figure(y, groups),
        "auc": auc_over_time_figure(
            np.array(HORIZONS),
            np.array([0.74, 0.72, 0.70]),
            "clinical + marker",
            other={"clinical only": (np.array(HORIZONS), np.array([0.68, 0.67, 0.66]))},
        ),
        "decision": decision_curve_figure(decision_curve(y, p[24], 24), 24),
        "importance": importance_figure(
            pd.Series(np.linspace(-0.2, 0.5, 25), index=[f"f{i}" for i in range(25)])
        ),
    }


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def test_every_figure_is_a_figure_and_saves_as_png(cohort, tmp_path):
    for name, fig in figures(cohort).items():
        assert isinstance(fig, Figure)
        for ax in fig.axes:
            assert ax.get_title() or ax is not fig.axes[0]
        save_png(fig, tmp_path / f"{name}.png")


def test_calibration_one_panel_per_horizon_with_diagonal_and_error_bars(cohort):
    y, p, _, _ = cohort
    tables = {h: calibration_table(y, p[h], h) for h in HORIZONS}
    fig = calibration_figure(tables, annotations={24: "slope 0.93, ICI 0.012"})
    assert len(fig.axes) == len(HORIZONS)
    for ax, h in zip(fig.axes, HORIZONS, strict=True):
        assert ax.get_title() == f"{h} months"
        assert ax.get_xlabel() == "predicted cumulative incidence"
        assert ax.get_ylabel() == "observed (Aalen-Johansen)"
        diagonal = [
            line
            for line in ax.lines
            if np.array_equal(line.get_xdata(), line.get_ydata()) and len(line.get_xdata()) == 2
        ]
        assert len(diagonal) == 1
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 1
        points = bars[0].lines[0]
        np.testing.assert_allclose(points.get_xdata(), tables[h]["mean_predicted"])
        np.testing.assert_allclose(points.get_ydata(), tables[h]["observed"])
        assert ax.get_legend() is not None
    texts = [t.get_text() for t in fig.axes[1].texts]
    assert "slope 0.93, ICI 0.012" in texts


def test_calibration_survives_nan_rows_and_an_empty_table(cohort, tmp_path):
    y, p, _, _ = cohort
    table = calibration_table(y, p[12], 12)
    table.loc[0, ["observed_lo", "observed_hi"]] = np.nan  # no interval: no bar, point kept
    table.loc[1, "observed"] = np.nan  # not estimable: point left out
    empty = table.assign(mean_predicted=np.nan)
    fig = calibration_figure({12: table, 60: empty})
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert bars[0].lines[0].get_xdata().shape == (len(table) - 1,)
    assert not fig.axes[1].containers  # nothing estimable at 60 months: a note, no points
    assert any("no estimable" in t.get_text() for t in fig.axes[1].texts)
    save_png(fig, tmp_path / "calibration_nan.png")


def test_calibration_rejects_empty_and_malformed_tables():
    with pytest.raises(ValueError, match="tables is empty"):
        calibration_figure({})
    with pytest.raises(ValueError, match=r"tables\[12\] lacks column\(s\) observed_lo"):
        calibration_figure(
            {12: pd.DataFrame(columns=["mean_predicted", "observed", "observed_hi"])}
        )


def test_incidence_one_step_line_per_group_matching_aalen_johansen(cohort):
    y, _, _, groups = cohort
    fig = incidence_by_group_figure(y, groups, max_months=60)
    ax, table = fig.axes
    assert [line.get_label().split(" (")[0] for line in ax.lines] == [
        "low",
        "intermediate",
        "high",
    ]
    for line, g in zip(ax.lines, ("low", "intermediate", "high"), strict=True):
        assert line.get_drawstyle() == "steps-post"
        months, cif = line.get_xdata(), line.get_ydata()
        assert months[0] == 0 and cif[0] == 0 and np.all(np.diff(cif) >= 0)
        expected = aalen_johansen(y[groups == g], months[-1] * DAYS_PER_MONTH)[0][0]
        assert cif[-1] == pytest.approx(expected)
    assert "months" in ax.get_xlabel()
    # Numbers at risk at 0, 12, ..., 60 months for each group; at 0 everyone is at risk.
    assert len(table.texts) == 3 * 6
    at_zero = {t.get_text() for t in table.texts if t.get_position()[0] == 0}
    assert at_zero == {str(int(np.sum(groups == g))) for g in ("low", "intermediate", "high")}


def test_incidence_group_without_events_and_unlabelled_patients(cohort, tmp_path):
    y, _, _, groups = cohort
    y = y.copy()
    y["cause"][groups == "low"] = 0  # the low group: censored only, no event at all
    labels = groups.copy()
    labels[:5] = None
    fig = incidence_by_group_figure(y, labels, max_months=36)
    low = fig.axes[0].lines[0]
    assert low.get_label().startswith("low") and np.all(low.get_ydata() == 0)
    assert len(fig.axes[1].texts) == 3 * 4  # 0, 12, 24, 36 months
    save_png(fig, tmp_path / "incidence_no_events.png")


def test_incidence_rejects_labels_that_do_not_match(cohort):
    y, _, _, groups = cohort
    with pytest.raises(ValueError, match="groups has 3 labels for 400 patients"):
        incidence_by_group_figure(y, groups[:3])
    with pytest.raises(ValueError, match="max_months must be a positive number"):
        incidence_by_group_figure(y, groups, max_months=0)


def test_auc_over_time_overlays_curves_and_chance_line(tmp_path):
    months = np.array([12, 24, 36, 60])
    fig = auc_over_time_figure(
        months,
        np.array([0.75, np.nan, 0.71, 0.70]),  # a horizon without an estimate leaves a gap
        "with marker",
        other={"without marker": (months, [0.70, 0.69, 0.68, 0.66])},
    )
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == [
        "with marker",
        "without marker",
        "chance (0.5)",
    ]
    assert ax.get_ylim()[1] == 1.0
    save_png(fig, tmp_path / "auc.png")
    with pytest.raises(ValueError, match="months and auc of 'x' differ in length: 2 and 3"):
        auc_over_time_figure([12, 24], [0.7, 0.7, 0.7], "x")


def test_decision_curve_three_lines_and_clipped_treat_all(cohort, tmp_path):
    y, p, _, _ = cohort
    dc = decision_curve(y, p[24], 24)
    fig = decision_curve_figure(dc, 24)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["model", "treat all", "treat none"]
    bottom, top = ax.get_ylim()
    assert dc["net_benefit_all"].min() < bottom < 0  # the steep negative tail is cut off
    assert top >= dc[["net_benefit_model", "net_benefit_all"]].to_numpy().max()
    assert "24 months" in ax.get_title()
    dc.loc[3, "net_benefit_model"] = np.nan
    save_png(decision_curve_figure(dc, 24), tmp_path / "decision_nan.png")


def test_importance_top_bars_largest_first(tmp_path):
    values = pd.Series(
        [0.1, -0.6, 0.3, np.nan, 0.05, 0.4], index=["a", "b", "c", "d", "e", "f"], name="|coef|"
    )
    fig = importance_figure(values, top=3)
    (ax,) = fig.axes
    assert len(ax.patches) == 3
    # barh draws bottom-up: the top label is the largest absolute value.
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c", "f", "b"]
    assert ax.get_xlabel() == "|coef|"
    save_png(importance_figure(pd.Series(dtype=float)), tmp_path / "importance_empty.png")
    with pytest.raises(ValueError, match="top must be a positive integer, got 0"):
        importance_figure(values, top=0)


def test_figures_can_be_built_in_threads(cohort, tmp_path):
    y, _, _, groups = cohort

    def build(k: int) -> int:
        fig = incidence_by_group_figure(y, groups, max_months=24 + 12 * k)
        return save_png(fig, tmp_path / f"thread_{k}.png").stat().st_size

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(size > 0 for size in pool.map(build, range(4)))


def test_importing_figures_does_not_load_pyplot():
    code = "import sys, training.evaluation.figures; sys.exit('matplotlib.pyplot' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120)
    assert proc.returncode == 0
