"""The command line's output: tables that fit the terminal and never cut a word, progress
lines when stderr is not a terminal (issue 23, points 2 and 3)."""

from __future__ import annotations

import pandas as pd
import pytest

from training.cli.output import Bars, gates_heading, print_transposed, table

FAMILIES = ("cox_ridge", "logistic_ipcw_spline", "xgboost_ipcw_classifier", "cox_spline")


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "version": [str(i + 1) for i in range(len(FAMILIES))],
            "family": list(FAMILIES),
            "selection": ["0.1421\n(cv_brier_headline_mean)"] * len(FAMILIES),
            gates_heading("3"): ["FAIL:\ndiscrimination\ncalibration_in_the_large", "pass"] * 2,
            "uno c": ["0.773 !\n[0.737, 0.818]"] * len(FAMILIES),
        }
    )


def _words(frame: pd.DataFrame) -> set[str]:
    texts = [*map(str, frame.columns), *(str(v) for v in frame.to_numpy().ravel())]
    return {w for t in texts for w in t.split()}


@pytest.mark.parametrize("columns", [60, 120])
def test_transposed_table_fits_and_keeps_every_word(capsys, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    print_transposed(_frame(), "version")
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= columns
    printed = {w for line in lines for w in line.split()}
    assert _words(_frame()) <= printed  # each word whole, on one line


def test_a_table_wider_than_the_terminal_wraps_at_spaces(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    frame = pd.DataFrame(
        {
            "run_id": ["0123456789abcdef"],
            "note": ["the training process ended without finishing this run; marked FAILED"],
        }
    )
    table(frame)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 50 and len(lines) > 4  # the note wrapped
    assert _words(frame) <= {w for line in lines for w in line.split()}


def test_progress_is_a_line_per_family_when_stderr_is_not_a_terminal(capsys):
    from training.cli.app import library_output

    with Bars() as bars, library_output():  # as train runs it: libraries' output dropped
        bars.start(6, "training")
        for step in ("fold 1", "fold 2", "final fit"):
            bars.advance(f"cox_ridge: {step}")
        for step in ("fold 1", "fold 2", "final fit"):
            bars.advance(f"xgboost_cox: {step}")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "0/6 fits: training started",
        "1/6 fits: cox_ridge started",
        "4/6 fits: xgboost_cox started",
        "6/6 fits: done",
    ]


def test_too_many_columns_for_the_width_print_one_block_per_row(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    frame = pd.DataFrame(
        {
            "run_id": ["0123456789abcdef0123456789abcdef"],
            "started": ["2026-12-07 16:22:01"],
            "status": ["FINISHED"],
            "versions": ["1,2"],
            "challenger": ["2"],
            "note": [""],
        }
    )
    table(frame, title="training runs")
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 60
    assert "run_id      0123456789abcdef0123456789abcdef" in lines
    assert _words(frame) <= {w for line in lines for w in line.split()}
