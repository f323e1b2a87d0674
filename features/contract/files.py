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
#: Widest header a contract CSV may have: the contract has a few dozen columns; a file of a
#: million columns is refused before it is parsed (it took minutes and gigabytes).
MAX_COLUMNS = 256
#: Longest CSV cell: contract values are ids of 64 characters, categories and numbers.
MAX_CELL_CHARS = 1024


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
    # Cells longer than csv's default limit are read so that their length can be reported as
    # _read_csv reports it (the limit is the module's, only ever raised here).
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(_without_nul(handle))
        header = next((record for record in reader if record), None)
        if header is None:
            raise pd.errors.EmptyDataError("No columns to parse from file")
        _check_header(header)
        width = len(header)
        rows: list[list[str]] = []
        first = True
        n = 0
        for record in reader:
            if not record:
                continue
            if len(record) > width:
                raise pd.errors.ParserError(
                    "Error tokenizing data. C error: Expected "
                    f"{width} fields in line {reader.line_num}, saw {len(record)}"
                )
            n += 1
            if max(map(len, record)) > MAX_CELL_CHARS:
                column = next(i for i, cell in enumerate(record) if len(cell) > MAX_CELL_CHARS)
                raise _long_cell(len(record[column]), n, header[column])
            rows.append(record + [""] * (width - len(record)))
            if len(rows) == chunk_size:
                yield _text_frame(rows, header)
                rows, first = [], False
        if rows or first:
            yield _text_frame(rows, header)


def _without_nul(lines: Iterator[str]) -> Iterator[str]:
    """The lines of a CSV text, refused at the first holding a NUL character."""
    for number, line in enumerate(lines, start=1):
        if "\x00" in line:
            raise _nul(number)
        yield line


def _nul(line: int) -> pd.errors.ParserError:
    # Binary, not text: pandas' reader would silently cut the cell at the NUL ("P\0001" read
    # as "P"), so both readers refuse the file, with the same words.
    return pd.errors.ParserError(f"a NUL byte on line {line}: not CSV text")


def _long_cell(length: int, row: int, column: str) -> pd.errors.ParserError:
    name = column if len(column) <= 80 else column[:80] + "..."
    return pd.errors.ParserError(
        f"a cell of {length:,} characters in row {row}, column {name}: at most "
        f"{MAX_CELL_CHARS:,} (contract values are short)"
    )


def _check_header(header: list[str]) -> None:
    """Refuse a header wider than :data:`MAX_COLUMNS` or with a cell too long."""
    if len(header) > MAX_COLUMNS:
        raise pd.errors.ParserError(
            f"the header has {len(header):,} columns; a contract table has at most "
            f"{MAX_COLUMNS}"
        )
    for cell in header:
        if len(cell) > MAX_CELL_CHARS:
            raise _long_cell(len(cell), 0, "(header)")


def _precheck_csv(path: Path) -> None:
    """What pandas' reader would not see or would take minutes on: a NUL byte anywhere (as
    :func:`_without_nul`) and the header's width (:func:`_check_header`), checked first."""
    with open(path, "rb") as handle:
        newlines = 0
        for block in iter(lambda: handle.read(1 << 20), b""):
            at = block.find(b"\x00")
            if at >= 0:
                raise _nul(newlines + block.count(b"\n", 0, at) + 1)
            newlines += block.count(b"\n")
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next((record for record in csv.reader(handle) if record), None)
    if header is not None:
        _check_header(header)


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
    _precheck_csv(path)
    # The header is read as a data row so that a data row longer than the header is an error:
    # with header=0 pandas silently turns the extra leading cells into an index.
    cells = pd.read_csv(
        path, header=None, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8"
    )
    header = [str(c) for c in cells.iloc[0]] if len(cells) else []
    body = cells.iloc[1:].reset_index(drop=True)
    body.columns = header
    # Cells longer than the bound, reported as _csv_chunks reports them (first by row, then
    # by column).
    first: tuple[int, int, int] | None = None
    for k in range(body.shape[1]):
        lengths = body.iloc[:, k].str.len().to_numpy()
        over = (lengths > MAX_CELL_CHARS).nonzero()[0]
        if len(over) and (first is None or over[0] < first[0]):
            first = (int(over[0]), k, int(lengths[over[0]]))
    if first is not None:
        raise _long_cell(first[2], first[0] + 1, header[first[1]])
    return body


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
