"""What the commands show a person: tables that fit the terminal, summaries, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from training.evaluation.names import (
    COMPARE,
    EVALUATION,
    HEADLINE_TEST,
    LABELS,
    PER_LANDMARK,
    label,
)

if TYPE_CHECKING:
    from training.registry.compare import VersionComparison

#: Columns of the closing table of ``bonemet train`` (test split, with 95 % intervals).
TABLE_METRICS = tuple((name, LABELS[name]) for name in HEADLINE_TEST)



def gate_label(gate: str) -> str:
    """Short name of a promotion gate in tables: ``C vs champion``, ``slope 12m``, ``CITL 24m``
    (the metric's label, :func:`training.evaluation.names.label`)."""
    return "C vs champion" if gate == "discrimination" else label(gate)


def console():
    """A rich console as wide as the terminal; a pipe or a test gets $COLUMNS or 100."""
    import shutil

    from rich.console import Console

    return Console(width=shutil.get_terminal_size((100, 24)).columns, soft_wrap=False)


def _words(text: str) -> list[str]:
    return text.split()


def _wrap(text: str, width: int) -> str:
    """``text`` wrapped at spaces to ``width`` (its lines kept); a word is never broken."""
    import textwrap

    return "\n".join(
        "\n".join(
            textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False) or [""]
        )
        for line in text.split("\n")
    )


def _column_widths(cells: pd.DataFrame) -> tuple[list[int], list[int]]:
    """Per column (header included): the longest word (the narrowest it may be) and the
    longest line (its natural width)."""
    narrow, natural = [], []
    for column in cells.columns:
        texts = [str(column), *cells[column].tolist()]
        narrow.append(max((len(w) for t in texts for w in _words(t)), default=1))
        natural.append(max((len(line) for t in texts for line in t.split("\n")), default=1))
    return narrow, natural


def _text_cells(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.map(
        lambda v: "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
    )


#: Space between two columns of a table: padding, divider, padding.
_GAP = 3


def table(frame, title: str | None = None) -> None:
    """Print a frame as a table that fits the terminal's width.

    Cells wrap at spaces only: a column is never narrower than its longest word, so a word (a
    family name, a number, a run id) is never cut. The widest columns give up width first;
    when the columns' longest words alone are too wide, each row is printed as a block of
    ``column: value`` lines instead.
    """
    from rich import box
    from rich.table import Table

    cells = _text_cells(frame)
    narrow, widths = _column_widths(cells)
    available = console().width - _GAP * (len(widths) - 1)
    if sum(narrow) > available:
        _records(cells, title)  # too many columns for the width: one block per row
        return
    while sum(widths) > available:
        shrinkable = [i for i, (w, n) in enumerate(zip(widths, narrow, strict=True)) if w > n]
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    shown = Table(
        title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False, show_edge=False
    )
    for column, width in zip(cells.columns, widths, strict=True):
        shown.add_column(_wrap(str(column), width), width=width, no_wrap=True, overflow="ignore")
    for row in cells.itertuples(index=False):
        shown.add_row(*(_wrap(v, w) for v, w in zip(row, widths, strict=True)))
    console().print(shown)


def _records(cells: pd.DataFrame, title: str | None) -> None:
    """A table too wide for the terminal, one block of ``column: value`` lines per row."""
    width = console().width
    out = console()
    if title:
        out.print(title, markup=False)
    key_width = max(len(str(c)) for c in cells.columns)
    for row in cells.itertuples(index=False):
        out.print("", markup=False)
        for column, value in zip(cells.columns, row, strict=True):
            text = _wrap(value.replace("\n", " "), max(width - key_width - 2, 20))
            lines = text.split("\n")
            out.print(f"{str(column):<{key_width}}  {lines[0]}", markup=False, soft_wrap=True)
            for line in lines[1:]:
                out.print(" " * (key_width + 2) + line, markup=False, soft_wrap=True)


def print_transposed(frame, key: str, title: str | None = None) -> None:
    """One column per row of ``frame`` (headed by its ``key``), in blocks of as many columns
    as fit the width whole (no word is ever cut: :func:`table`)."""
    rows = frame.set_index(key).T
    label = pd.Series(rows.index, index=rows.index, name=key)
    narrow, _ = _column_widths(_text_cells(pd.concat([label, rows], axis=1)))
    available = console().width
    start, first = 0, True
    while start < rows.shape[1]:
        used, stop = narrow[0], start
        # At least one version per block; more while their narrowest widths fit.
        while stop < rows.shape[1] and (
            stop == start or used + _GAP + narrow[stop + 1] <= available
        ):
            used += _GAP + narrow[stop + 1]
            stop += 1
        block = rows.iloc[:, start:stop]
        table(pd.concat([label, block], axis=1), title=title if first else None)
        start, first = stop, False


class Bars:
    """Progress of ``train`` on stderr (one step per fitted model): a bar on a terminal; when
    stderr is not a terminal (a file, a pipe, CI) a plain line each time a family starts and
    one at the end, so that a log shows the training moving."""

    def __enter__(self) -> Bars:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._stream = sys.stderr  # the real stream, outside library_output
        self._lines = not self._stream.isatty()
        self._task = None
        self._total, self._done, self._seen = 0, 0, set()
        if self._lines:
            import time

            self._started = time.monotonic()
            return self
        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self._stream),
            transient=False,
        )
        self._progress.__enter__()
        return self

    def _line(self, text: str) -> None:
        import time

        elapsed = int(time.monotonic() - self._started)
        print(
            f"[{elapsed // 60:d}:{elapsed % 60:02d}] {self._done}/{self._total} fits: {text}",
            file=self._stream,
            flush=True,
        )

    def start(self, total: int, description: str) -> None:
        if self._lines:
            self._total = total
            self._line(f"{description} started")
            return
        self._task = self._progress.add_task(description, total=total)

    def advance(self, description: str) -> None:
        if self._lines:
            self._done += 1
            family = description.split(":", 1)[0]
            if family not in self._seen:
                self._seen.add(family)
                self._line(f"{family} started")
            return
        if self._task is not None:
            self._progress.update(self._task, advance=1, description=description[:60])

    def __exit__(self, *exc: object) -> None:
        if self._lines:
            if exc[0] is None and self._total:
                self._line("done")
            return
        self._progress.__exit__(*exc)


def with_interval(metrics: dict, name: str) -> str:
    """``estimate [lo, hi]`` of a metric (the interval when ``<name>_lo``/``_hi`` exist)."""
    lo, hi = metrics.get(name + "_lo"), metrics.get(name + "_hi")
    text = f"{metrics[name]:.3f}"
    return text + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "")


def evaluation_by_landmark(metrics: dict):
    """One row per landmark of ``eval_landmark_<day>_*`` metrics (a frame of text)."""
    rows = []
    for day, values in sorted(_per_landmark(metrics).items()):
        row = {"landmark_day": f"{day:g}"}
        for name, value in values.items():
            if value is not None:
                row[name] = f"{value:g}" if name in ("n", "bone_met_events") else f"{value:.3f}"
        rows.append(row)
    columns = ["landmark_day", *PER_LANDMARK]
    frame = pd.DataFrame(rows)
    return frame[[c for c in columns if c in frame.columns]]


def print_comparison(rows: Sequence[VersionComparison], history, as_json: bool) -> None:
    """What ``bonemet compare`` prints: the versions side by side (``tracking.compare``) and
    the latest training runs (``registry.training_history``), as tables or one JSON document
    (:func:`comparison_json`, schema ``docs/schemas/compare.schema.json``).

    For a terminal: one column per version (metrics as rows, intervals under their
    estimates), in as many blocks of versions as the width needs.
    """
    import typer

    if as_json:
        typer.echo(json.dumps(comparison_json(rows, history), indent=2))
        return
    frame = comparison_rows_text(rows)
    champion = rows[0].champion if rows else None
    frame["data_digest"] = frame["data_digest"].str[:8]
    metric, _, value = (frame["selection"].str.partition("=")[i] for i in (0, 1, 2))
    frame["selection"] = [f"{v}\n({m})" if v else m for m, v in zip(metric, value, strict=True)]
    frame["gates"] = frame["gates"].str.replace("FAIL ", "FAIL:\n").str.replace(",", "\n")
    frame = frame.rename(columns={"gates": gates_heading(champion)})
    frame = frame.map(lambda v: v.replace(" [", "\n[") if isinstance(v, str) else v)
    frame.columns = [str(c).removeprefix("test_").replace("_", " ") for c in frame.columns]
    print_transposed(frame, "version")
    console().print(
        f"{gates_heading(champion)}: the promotion gates checked against the champion of this "
        "moment (a version that passed when trained fails once a better one is champion); "
        "! = metric outside its gate (bonemet promote --help)",
        markup=False,
    )
    if not history.empty:
        table(history, title="training runs (newest first)")


def gates_heading(champion: str | None) -> str:
    """Heading of the gate verdicts: what they are relative to."""
    return f"gates vs champion v{champion} now" if champion else "gates (no champion yet)"


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def interval_json(metrics: Mapping[str, float], name: str) -> dict | None:
    """``{"estimate", "low", "high"}`` of a metric (bounds from ``<name>_lo``/``_hi``, null
    when not computed), or None when the metric is not recorded."""
    estimate = _finite(metrics.get(name))
    if estimate is None:
        return None
    low, high = _finite(metrics.get(name + "_lo")), _finite(metrics.get(name + "_hi"))
    return {"estimate": estimate, "low": low, "high": high}


def gates_json(verdicts, champion: str | None) -> dict:
    """The promotion gates' verdicts as fields: against which champion (None: none yet),
    passed or not, the failing gates' names, and every gate's detail."""
    return {
        "champion_version": champion,
        "passed": all(g.passed for g in verdicts),
        "failed": [g.name for g in verdicts if not g.passed],
        "verdicts": [
            {"gate": g.name, "passed": g.passed, "metric": g.metric, "detail": g.detail}
            for g in verdicts
        ],
    }


def comparison_json(rows: Sequence[VersionComparison], history) -> dict:
    """The ``bonemet compare --json`` document (``docs/schemas/compare.schema.json``)."""
    versions = []
    for r in rows:
        metrics = {}
        for name, m in r.metrics.items():
            metrics[name] = (
                None
                if m is None
                else {"estimate": m.estimate, "low": m.lo, "high": m.hi, "outside_gate": m.flagged}
            )
        versions.append(
            {
                "version": r.version,
                "family": r.family,
                "aliases": list(r.aliases),
                "data_digest": r.data_digest,
                "state": "complete" if r.complete else "incomplete",
                "selection": {"metric": r.selection_metric, "value": r.selection_value},
                "gates": gates_json(r.gates, r.champion),
                "metrics": metrics,
            }
        )
    return {
        "champion_version": rows[0].champion if rows else None,
        "versions": versions,
        "training_runs": json.loads(history.to_json(orient="records")) if len(history) else [],
    }


def candidate_gates(result) -> tuple[str | None, dict[str, list]]:
    """The champion of this moment and, per candidate version, the promotion gates' verdicts
    against it (``training.registry.gates.check_gates``)."""
    from training.config import MODEL_NAME
    from training.registry import gates
    from training.registry import versions as registry

    champion = registry.alias_version(registry.CHAMPION)
    champion_tags = None
    if champion is not None:
        champion_tags = gates.gate_values(
            registry.mlflow_client().get_model_version(MODEL_NAME, champion)
        )
    verdicts = {}
    for c in result.candidates:
        tags = {k: str(v) for k, v in c.metrics.items()}
        other = champion_tags if c.version != champion else None
        verdicts[c.version] = gates.check_gates(tags, other, gates.PromotionPolicy())
    return champion, verdicts


def candidate_table(result):
    """The candidates of a training run (a ``TrainResult``), for people: one row per family.

    Columns: ``""`` (``* challenger`` on the challenger), family, version, the selection metric, the
    :data:`TABLE_METRICS` as ``estimate [lo, hi]`` and the gates (headed by
    :func:`gates_heading`): ``pass`` or ``FAIL`` with the promotion gates
    (:func:`candidate_gates`, against the champion of this moment) the version would fail.
    """

    def cell(metrics: Mapping[str, float], name: str) -> str:
        value = interval_json(metrics, name)
        if value is None:
            return ""
        lo, hi = value["low"], value["high"]
        # The interval on a second line keeps the table narrow enough for a terminal.
        interval = f"\n[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
        return f"{value['estimate']:.3f}{interval}"

    champion, verdicts = candidate_gates(result)
    rows = []
    for c in result.candidates:
        failed = [g.name for g in verdicts[c.version] if not g.passed]
        row = {
            "": "* challenger" if c.version == result.challenger_version else "",
            "family": c.family,
            "version": c.version,
            result.selection_metric: cell(c.metrics, result.selection_metric),
        }
        row.update({label: cell(c.metrics, name) for name, label in TABLE_METRICS})
        row[gates_heading(champion)] = (
            "FAIL:\n" + "\n".join(gate_label(f) for f in failed) if failed else "pass"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def summary_json(result) -> str:
    """The ``bonemet train --json`` document (``docs/schemas/train.schema.json``)."""
    champion, verdicts = candidate_gates(result)
    shown = dict.fromkeys((result.selection_metric, *COMPARE))
    return json.dumps(
        {
            "parent_run_id": result.parent_run_id,
            "experiment_id": result.experiment_id,
            "challenger_version": result.challenger_version,
            "champion_version": champion,
            "selection_metric": result.selection_metric,
            "dataset_digest": result.dataset_digest,
            "n_train": result.n_train,
            "n_test": result.n_test,
            "n_train_patients": result.n_train_patients,
            "n_test_patients": result.n_test_patients,
            "landmark_days": list(result.landmark_days),
            "notes": list(result.notes),
            "skipped": [{"family": s.family, "reason": s.reason} for s in result.skipped],
            "candidates": [
                {
                    "family": c.family,
                    "version": c.version,
                    "run_id": c.run_id,
                    "challenger": c.version == result.challenger_version,
                    "selection": interval_json(c.metrics, result.selection_metric),
                    "metrics": {name: interval_json(c.metrics, name) for name in shown},
                    "gates": gates_json(verdicts[c.version], champion),
                }
                for c in result.candidates
            ],
        },
        indent=2,
    )


def evaluation_json(result) -> str:
    """The ``bonemet evaluate --json`` document (``docs/schemas/evaluate.schema.json``): the
    headline metrics with their intervals and, for a landmark model, one row per landmark."""
    landmarks = []
    for day, values in sorted(_per_landmark(result.metrics).items()):
        landmarks.append({"landmark_day": day, **{k: values.get(k) for k in PER_LANDMARK}})
    return json.dumps(
        {
            "run_id": result.run_id,
            "model_uri": result.model_uri,
            "version": result.version,
            "metrics": {
                f"eval_{name}": interval_json(result.metrics, f"eval_{name}") for name in EVALUATION
            },
            "landmarks": landmarks,
        },
        indent=2,
    )


def _per_landmark(metrics: Mapping[str, float]) -> dict[float, dict[str, float | None]]:
    """``eval_landmark_<day>_<name>`` metrics by day, then name."""
    import re

    rows: dict[float, dict[str, float | None]] = {}
    for key, value in metrics.items():
        found = re.fullmatch(r"eval_landmark_([0-9.]+)_(.+)", key)
        if found:
            rows.setdefault(float(found.group(1)), {})[found.group(2)] = _finite(value)
    return rows


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
