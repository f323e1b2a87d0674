"""Every CSV the project writes neutralises spreadsheet formulas (issue 20.8)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd

from features.csv_output import FORMULA_STARTS, neutralise, neutralise_frame, write_csv

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "training", "serving")
#: The only places allowed to produce CSV text themselves: the shared writer, and the
#: simulator's formatter, which neutralises every text cell with the same function.
WRITERS = {"features/csv_output.py", "features/simulate/tables.py"}


def test_formula_cells_get_an_apostrophe_numbers_do_not():
    frame = pd.DataFrame(
        {
            "instrument": ['=HYPERLINK("http://x")', "+1 555", "-A1-B1", "@SUM(A1)", "FACS"],
            "delta": [-0.5, 1.0, -2.0, np.nan, 3.0],
            "mixed": ["=cmd|' /C calc'!A0", None, 7, "\tx", "ok"],
        }
    )
    out = neutralise_frame(frame)
    assert out["instrument"].tolist() == [
        "'=HYPERLINK(\"http://x\")",
        "'+1 555",
        "'-A1-B1",
        "'@SUM(A1)",
        "FACS",
    ]
    assert out["delta"].tolist()[:3] == [-0.5, 1.0, -2.0]
    assert out["mixed"].tolist()[:4] == ["'=cmd|' /C calc'!A0", None, 7, "'\tx"]
    assert frame["instrument"].iloc[0].startswith("=")  # the input is not modified
    assert all(neutralise(s + "x").startswith("'") for s in FORMULA_STARTS)


def test_written_cells_never_start_a_formula(tmp_path):
    frame = pd.DataFrame({"=name": ["=1+1", "-2", "x"], "n": [-1, 2, 3]})
    write_csv(frame, tmp_path / "t.csv")
    back = pd.read_csv(tmp_path / "t.csv", dtype=str)
    assert list(back.columns) == ["'=name", "n"]
    assert back["'=name"].tolist() == ["'=1+1", "'-2", "x"]
    assert back["n"].tolist() == ["-1", "2", "3"]  # numbers stay numbers


def _csv_writes(tree: ast.AST):
    """Calls that write CSV text: ``.to_csv(...)``, ``csv.writer``/``DictWriter``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("to_csv", "writer", "DictWriter"):
                owner = node.func.value
                if node.func.attr == "to_csv" or (
                    isinstance(owner, ast.Name) and owner.id == "csv"
                ):
                    yield node.lineno


def test_every_csv_writer_goes_through_the_shared_one():
    # A sweep, not a list: a new CSV writer anywhere in the packages fails here until it
    # uses features.csv_output.write_csv.
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if rel in WRITERS:
                continue
            lines = list(_csv_writes(ast.parse(path.read_text(), rel)))
            offenders += [f"{rel}:{line}" for line in lines]
    assert offenders == []
