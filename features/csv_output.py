"""Every CSV bonemet writes goes through here: text cells a spreadsheet would run are
neutralised.

A spreadsheet opening a CSV reads a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and,
in some, a tab or carriage return) as a formula: ``=HYPERLINK(...)`` or ``=cmd|...`` copied
from an FCS keyword would run on the reader's machine. Such a text cell is written with a
leading apostrophe (``'=HYPERLINK(...)``), which spreadsheets show as text and which keeps
the original readable. Numbers are not text cells: ``-0.5`` in a numeric column stays a
number. Contract ids never begin with these characters (contract 1.2), so ids are written
unchanged.
"""

from __future__ import annotations

import os
from typing import IO

import pandas as pd

#: First characters that make a spreadsheet read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """``text`` with a leading apostrophe when a spreadsheet would read it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are :func:`neutralise`-d (other
    cells unchanged); ``frame`` itself is not modified."""
    out = frame.rename(columns=lambda c: neutralise(c) if isinstance(c, str) else c)
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if column.dtype == object or isinstance(column.dtype, pd.StringDtype):
            out.isetitem(i, column.map(lambda v: neutralise(v) if isinstance(v, str) else v))
    return out


def write_csv(frame: pd.DataFrame, target: str | os.PathLike[str] | IO[str], **to_csv) -> None:
    """:meth:`pandas.DataFrame.to_csv` of :func:`neutralise_frame` (``index=False`` unless
    given): the one way the project writes a table as CSV."""
    to_csv.setdefault("index", False)
    neutralise_frame(frame).to_csv(target, **to_csv)
