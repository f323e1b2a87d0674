"""What the commands show a person: tables that fit the terminal, summaries, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training.evaluation.names import HEADLINE_SUFFIX, HEADLINE_TEST, PER_LANDMARK

if TYPE_CHECKING:
    from training.tracking.compare import VersionComparison

#: Short labels of the :data:`training.evaluation.names.HEADLINE_TEST` metrics in tables.
_LABELS = {
    "test_uno_c": "Uno C",
    f"test_td_auc_{HEADLINE_SUFFIX}": f"AUC {HEADLINE_SUFFIX}",
    f"test_brier_{HEADLINE_SUFFIX}": f"Brier {HEADLINE_SUFFIX}",
    f"test_calibration_slope_{HEADLINE_SUFFIX}": f"slope {HEADLINE_SUFFIX}",
    f"test_calibration_in_the_large_{HEADLINE_SUFFIX}": f"CITL {HEADLINE_SUFFIX}",
}
#: Columns of the closing table of ``bonemet train`` (test split, with 95 % intervals).
TABLE_METRICS = tuple((name, _LABELS[name]) for name in HEADLINE_TEST)

#: Short names of the promotion gates in tables.
GATE_LABELS = {
    "discrimination": "C vs champion",
    "calibration_slope": "slope",
    "calibration_in_the_large": "CITL",
}


def console():
    """A rich console as wide as the terminal; a pipe or a test gets $COLUMNS or 100."""
    import shutil

    from rich.console import Console

    return Console(width=shutil.get_terminal_size((100, 24)).columns, soft_wrap=False)


def table(frame, title: str | None = None) -> None:
    """Print a frame as a table that fits the terminal's width (cells wrap)."""
    import pandas as pd
    from rich import box
    from rich.table import Table

    cells = frame.map(
        lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
    )
    shown = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in cells.columns:
        # Short single-line columns (names, versions) never wrap; the others may.
        values = cells[column].tolist()
        short = max((len(v) for v in values), default=0) <= 20 and not any(
            "\n" in v for v in values
        )
        shown.add_column(str(column), overflow="fold", no_wrap=short)
    for row in cells.itertuples(index=False):
        shown.add_row(*row)
    console().print(shown)


def print_transposed(frame, key: str, title: str | None = None) -> None:
    """One column per row of ``frame`` (headed by its ``key``), in blocks that fit the width."""
    import pandas as pd

    rows = frame.set_index(key).T
    per_block = max(1, (console().width - 30) // 18)
    for start in range(0, rows.shape[1], per_block):
        block = rows.iloc[:, start : start + per_block]
        label = pd.Series(block.index, index=block.index, name=key)
        table(pd.concat([label, block], axis=1), title=title if start == 0 else None)


class Bars:
    """Progress bar on stderr for ``train`` (one step per fitted model)."""

    def __enter__(self) -> Bars:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),  # the real stream, outside library_output
            transient=False,
        )
        self._progress.__enter__()
        self._task = None
        return self

    def start(self, total: int, description: str) -> None:
        self._task = self._progress.add_task(description, total=total)

    def advance(self, description: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=1, description=description[:60])

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)


def with_interval(metrics: dict, name: str) -> str:
    """``estimate [lo, hi]`` of a metric (the interval when ``<name>_lo``/``_hi`` exist)."""
    lo, hi = metrics.get(name + "_lo"), metrics.get(name + "_hi")
    text = f"{metrics[name]:.3f}"
    return text + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")


def evaluation_by_landmark(metrics: dict):
    """One row per landmark of ``eval_landmark_<day>_*`` metrics (a frame)."""
    import re

    import pandas as pd

    rows: dict[float, dict] = {}
    for key, value in metrics.items():
        found = re.fullmatch(r"eval_landmark_([0-9.]+)_(.+)", key)
        if found:
            day = float(found.group(1))
            rows.setdefault(day, {"landmark_day": f"{day:g}"})[found.group(2)] = (
                f"{value:g}" if found.group(2) in ("n", "bone_met_events") else f"{value:.3f}"
            )
    columns = ["landmark_day", *PER_LANDMARK]
    frame = pd.DataFrame([rows[d] for d in sorted(rows)])
    return frame[[c for c in columns if c in frame.columns]]


def print_comparison(compared, history, as_json: bool) -> None:
    """What ``bonemet compare`` prints: the versions side by side (``registry.compare``) and
    the latest training runs (``registry.training_history``), as tables or one JSON document.

    For a terminal: one column per version (metrics as rows, intervals under their
    estimates), in as many blocks of versions as the width needs.
    """
    import typer

    if as_json:
        typer.echo(
            json.dumps(
                {
                    "versions": json.loads(compared.to_json(orient="records")),
                    "training_runs": json.loads(history.to_json(orient="records")),
                },
                indent=2,
            )
        )
        return
    frame = compared.copy()
    frame["data_digest"] = frame["data_digest"].str[:8]
    metric, _, value = (frame["selection"].str.partition("=")[i] for i in (0, 1, 2))
    frame["selection"] = [f"{v}\n({m})" if v else m for m, v in zip(metric, value, strict=True)]
    frame["gates"] = frame["gates"].str.replace("FAIL ", "FAIL:\n").str.replace(",", "\n")
    frame = frame.map(lambda v: v.replace(" [", "\n[") if isinstance(v, str) else v)
    frame.columns = [str(c).removeprefix("test_").replace("_", " ") for c in frame.columns]
    print_transposed(frame, "version")
    console().print(
        "gates: promotion gates against the champion; ! = metric outside its gate "
        "(bonemet promote --help)",
        markup=False,
    )
    if not history.empty:
        table(history, title="training runs (newest first)")


def candidate_table(result):
    """The candidates of a training run (a ``TrainResult``), for people: one row per family.

    Columns: ``""`` (``* challenger`` on the challenger), family, version, the selection metric, the
    :data:`TABLE_METRICS` as ``estimate [lo, hi]`` and ``gates``: ``pass`` or ``FAIL`` with
    the promotion gates (``training.tracking.gates.check_gates``, against the current champion)
    the version would fail.
    """
    import pandas as pd

    from training.config import MODEL_NAME
    from training.tracking import gates, registry

    champion = registry.alias_version(registry.CHAMPION)
    champion_tags = None
    if champion is not None:
        champion_tags = registry.resolve(f"models:/{MODEL_NAME}/{champion}").tags

    def cell(metrics: Mapping[str, float], name: str) -> str:
        est = metrics.get(name, float("nan"))
        if not np.isfinite(est):
            return ""
        lo, hi = metrics.get(f"{name}_lo", np.nan), metrics.get(f"{name}_hi", np.nan)
        # The interval on a second line keeps the table narrow enough for a terminal.
        interval = f"\n[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
        return f"{est:.3f}{interval}"

    rows = []
    for c in result.candidates:
        tags = {k: str(v) for k, v in c.metrics.items()}
        other = champion_tags if c.version != champion else None
        failed = [
            g.name for g in gates.check_gates(tags, other, gates.PromotionPolicy()) if not g.passed
        ]
        row = {
            "": "* challenger" if c.version == result.challenger_version else "",
            "family": c.family,
            "version": c.version,
            result.selection_metric: cell(c.metrics, result.selection_metric),
        }
        row.update({label: cell(c.metrics, name) for name, label in TABLE_METRICS})
        row["gates"] = (
            "FAIL:\n" + "\n".join(GATE_LABELS.get(f, f) for f in failed) if failed else "pass"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def summary_json(result) -> str:
    """A JSON summary of a training run (a ``TrainResult``) for machines."""
    return json.dumps(
        {
            "parent_run_id": result.parent_run_id,
            "challenger_version": result.challenger_version,
            "selection_metric": result.selection_metric,
            "n_train": result.n_train,
            "n_test": result.n_test,
            "n_train_patients": result.n_train_patients,
            "n_test_patients": result.n_test_patients,
            "notes": list(result.notes),
            "skipped": [{"family": s.family, "reason": s.reason} for s in result.skipped],
            "candidates": [
                {
                    "family": c.family,
                    "version": c.version,
                    result.selection_metric: c.metrics.get(result.selection_metric),
                }
                for c in result.candidates
            ],
        },
        indent=2,
    )


def comparison_rows_text(rows: Sequence[VersionComparison]) -> pd.DataFrame:
    """The command line's text of :func:`compare` (``bonemet compare`` and its ``--json``).

    ``selection`` is ``<metric>=<value>``, ``gates`` is
    ``pass`` or ``FAIL`` with the failing gates, a metric reads ``estimate [lo, hi]`` (three
    decimals) and one outside its gate has ``" !"`` after its estimate.

    Returns
    -------
    pandas.DataFrame
        One row of strings per version, in the order given.
    """
    table = []
    for r in rows:
        row = {
            "version": r.version,
            "family": r.family,
            "alias": ",".join(r.aliases),
            "data_digest": r.data_digest,
            "state": "complete" if r.complete else "incomplete",
            "selection": (
                f"{r.selection_metric}={r.selection_value:.3f}"
                if r.selection_value is not None
                else r.selection_metric
            ),
            "gates": "FAIL " + ",".join(r.failed_gates) if r.failed_gates else "pass",
        }
        for name, m in r.metrics.items():
            if m is None:
                row[name] = ""
                continue
            mark = " !" if m.flagged else ""
            row[name] = f"{m.estimate:.3f}{mark}"
            if m.lo is not None and m.hi is not None:
                row[name] += f" [{m.lo:.3f}, {m.hi:.3f}]"
        table.append(row)
    return pd.DataFrame(table)
