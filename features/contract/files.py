"""Reading a contract table from a file (CSV as text, Parquet typed), without interpreting it."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from contextlib import contextmanager
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
    fmt = _format(p, path, name)
    with _read_errors(path, name):
        frame = _read_csv(p) if fmt == "csv" else pd.read_parquet(p)
    frame = frame.reset_index(drop=True)
    if fmt == "parquet":
        # A typed file: a text value in a number or boolean column is the wrong type, as the
        # same value is in a JSON request ("54" is not a number there); only CSV is all text.
        frame.attrs[TYPED_FILE] = True
    return frame


def read_chunks(
    path: str | os.PathLike[str], chunk_size: int, *, table: str | None = None
) -> Iterator[pd.DataFrame]:
    """Read one contract table in chunks of rows, as :func:`read_table` reads it whole.

    The chunks, concatenated, are :func:`read_table`'s frame (same columns, values and types);
    each has a RangeIndex from 0. The first chunk is always yielded, empty for a table with a
    header and no row, so that the header can be checked; later chunks are never empty. A CSV
    file is streamed by pandas' reader, a Parquet file batch by batch (pyarrow), so memory
    holds one chunk at a time.

    Parameters
    ----------
    path : str or os.PathLike
        File to read; the extension selects the format.
    chunk_size : int
        Rows per chunk (>= 1).
    table : str, optional
        Table name used in a violation; defaults to the file name.

    Yields
    ------
    pandas.DataFrame
        The raw rows of one chunk, in file order.

    Raises
    ------
    ContractError
        As :func:`read_table`, when the file cannot be read (raised when the chunk that cannot
        be read is reached).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    p = Path(path)
    name = table if table is not None else p.name
    fmt = _format(p, path, name)
    chunks = _csv_chunks(p, chunk_size) if fmt == "csv" else _parquet_chunks(p, chunk_size)
    first = True
    while True:
        with _read_errors(path, name):
            frame = next(chunks, None)
        if frame is None:
            return
        if fmt == "parquet":
            frame.attrs[TYPED_FILE] = True
        if first or len(frame):
            yield frame
        first = False


def _csv_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    # Python's csv reader, not pandas' chunked one: pandas re-infers the number of fields at
    # each chunk and silently drops the extra cells of a long row that starts a chunk. The
    # text is read as _read_csv reads it: a UTF-8 byte-order mark dropped, blank lines
    # skipped, every cell a string, a short row padded with "", a long row an error (with
    # pandas' words, so that both readers report it alike).
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next((record for record in reader if record), None)
        if header is None:
            raise pd.errors.EmptyDataError("No columns to parse from file")
        width = len(header)
        rows: list[list[str]] = []
        first = True
        for record in reader:
            if not record:
                continue
            if len(record) > width:
                raise pd.errors.ParserError(
                    "Error tokenizing data. C error: Expected "
                    f"{width} fields in line {reader.line_num}, saw {len(record)}"
                )
            rows.append(record + [""] * (width - len(record)))
            if len(rows) == chunk_size:
                yield _text_frame(rows, header)
                rows, first = [], False
        if rows or first:
            yield _text_frame(rows, header)


def _text_frame(rows: list[list[str]], header: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=range(len(header)), dtype=object)
    frame.columns = header
    return frame


def _parquet_chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as source:
        # The file's schema carries pandas' metadata, so each batch converts as the whole
        # file does with pandas.read_parquet (a stored index back as an index, then dropped).
        schema = source.schema_arrow
        empty = True
        for batch in source.iter_batches(batch_size=chunk_size):
            empty = False
            yield pa.Table.from_batches([batch], schema=schema).to_pandas().reset_index(drop=True)
        if empty:
            yield schema.empty_table().to_pandas().reset_index(drop=True)


def _format(p: Path, path: str | os.PathLike[str], name: str) -> str:
    """The file's format (``csv`` or ``parquet``), or a ContractError if it cannot be read."""
    fmt = _EXTENSIONS.get(p.suffix.lower())
    if fmt is None:
        expected = ", ".join(sorted(_EXTENSIONS))
        raise _unreadable(path, name, f"unknown extension {p.suffix!r} (expected {expected})")
    if not p.exists():
        raise _unreadable(path, name, "no such file")
    if p.is_dir():
        raise _unreadable(path, name, "is a directory")
    return fmt


def _unreadable(path: str | os.PathLike[str], name: str, problem: str) -> ContractError:
    violation = Violation(name, None, None, None, str(path), RULE_READ.format(problem=problem))
    return ContractError([violation])


@contextmanager
def _read_errors(path: str | os.PathLike[str], name: str) -> Iterator[None]:
    """Turn the errors of reading a file into a ContractError naming the file and the problem."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise _unreadable(path, name, "not UTF-8 text") from exc
    except pd.errors.EmptyDataError as exc:
        raise _unreadable(path, name, "empty file (a header row is required)") from exc
    except pd.errors.ParserError as exc:
        raise _unreadable(path, name, f"malformed CSV ({_first_line(exc)})") from exc
    except OSError as exc:
        raise _unreadable(path, name, exc.strerror or _first_line(exc)) from exc
    except ValueError as exc:  # pyarrow.ArrowInvalid and kin derive from ValueError
        raise _unreadable(path, name, f"not a readable Parquet file ({_first_line(exc)})") from exc


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
