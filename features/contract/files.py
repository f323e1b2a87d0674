"""Reading a contract table from a file (CSV as text, Parquet typed), without interpreting it."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from features.contract.columns import (
    TYPED_FILE,
)
from features.contract.violations import (
    RULE_READ,
    ContractError,
    Violation,
)

_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | os.PathLike[str], *, table: str | None = None) -> pd.DataFrame:
    """Read one contract table from CSV or Parquet, without interpreting its values.

    CSV (``.csv``) is read as UTF-8 text: every cell stays a string and an empty cell is ``""``
    (no type coercion, no ``"NA"`` guessing). Parquet (``.parquet``, ``.pq``) keeps its column
    types. The validator accepts both.

    Parameters
    ----------
    path : str or os.PathLike
        File to read; the extension selects the format.
    table : str, optional
        Table name used in a violation; defaults to the file name.

    Returns
    -------
    pandas.DataFrame
        The raw table with a RangeIndex.

    Raises
    ------
    ContractError
        With one table-level violation naming the path and the problem when the file does not
        exist, has an unknown extension, or cannot be read.
    """
    p = Path(path)
    name = table if table is not None else p.name

    def fail(problem: str) -> ContractError:
        violation = Violation(name, None, None, None, str(path), RULE_READ.format(problem=problem))
        return ContractError([violation])

    fmt = _EXTENSIONS.get(p.suffix.lower())
    if fmt is None:
        expected = ", ".join(sorted(_EXTENSIONS))
        raise fail(f"unknown extension {p.suffix!r} (expected {expected})")
    if not p.exists():
        raise fail("no such file")
    if p.is_dir():
        raise fail("is a directory")
    try:
        if fmt == "csv":
            frame = _read_csv(p)
        else:
            frame = pd.read_parquet(p)
    except UnicodeDecodeError as exc:
        raise fail("not UTF-8 text") from exc
    except pd.errors.EmptyDataError as exc:
        raise fail("empty file (a header row is required)") from exc
    except pd.errors.ParserError as exc:
        raise fail(f"malformed CSV ({_first_line(exc)})") from exc
    except OSError as exc:
        raise fail(exc.strerror or _first_line(exc)) from exc
    except ValueError as exc:  # pyarrow.ArrowInvalid and kin derive from ValueError
        raise fail(f"not a readable Parquet file ({_first_line(exc)})") from exc
    frame = frame.reset_index(drop=True)
    if fmt == "parquet":
        # A typed file: a text value in a number or boolean column is the wrong type, as the
        # same value is in a JSON request ("54" is not a number there); only CSV is all text.
        frame.attrs[TYPED_FILE] = True
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    # The header is read as a data row so that a data row longer than the header is an error:
    # with header=0 pandas silently turns the extra leading cells into an index.
    cells = pd.read_csv(
        path, header=None, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8"
    )
    header = [str(c) for c in cells.iloc[0]] if len(cells) else []
    body = cells.iloc[1:].reset_index(drop=True)
    body.columns = header
    return body


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
