"""Validator of data contract v1 (``shared/data-contract.md``).

Loading a cohort validates all of it before anything else runs: every violation of both tables is
collected and raised at once in a :class:`ContractError`, each naming the table, the row (1-based,
header excluded), the ``patient_id``, the column, the offending value and the rule, so that a data
manager can fix the file in one pass.

The column rules (names, kinds, bounds, allowed values, tolerances, the id pattern) live in
:mod:`features.schema`; this module only applies them. Values are accepted in every representation
the contract's tables arrive in: CSV text (``"54"``, ``"TRUE"``, ``""`` for missing), Parquet typed
columns (float64 with NaN for missing, bool, int64, string) and JSON records (int, float, bool, str,
None). Tables come as pandas DataFrames (files) or as lists of records (JSON requests:
:func:`check_patient_records`, :func:`check_measurement_records`, which skip pandas, the cost
that dominates for one patient); both run the same column and cross-column rules, so the
prediction service checks its request records with the code that checks the files.

Each column is checked vectorised; :class:`Violation` objects are built only for the offending rows.
A value that breaks a rule of its own column (type, range, allowed values) is reported once and is
left out of the rules across columns, so one mistake never cascades into several messages.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.schema import (
    CONTRACT_VERSION,
    MAX_INTEGER,
    MEASUREMENT_COLUMNS,
    OUTCOME_COLUMNS,
    PATIENT_COLUMNS,
    PATIENT_ID_PATTERN,
    PERCENT_ABS_TOL,
    PERCENT_REL_TOL,
    ColumnSpec,
    integral,
)

__all__ = [
    "Cohort",
    "ContractError",
    "Violation",
    "check_measurement_records",
    "check_measurements",
    "check_patient_records",
    "check_patients",
    "load_cohort",
    "read_table",
    "validate_cohort",
]

PATIENTS_TABLE = "patients"
MEASUREMENTS_TABLE = "oc_measurements"

# Rule texts. Tests and clients match on them: change them only with care.
RULE_UNKNOWN_COLUMN = f"unknown column: not in data contract v{CONTRACT_VERSION}"
RULE_OUTCOME_NOT_ACCEPTED = "unknown column: an outcome (time_days, event) is not accepted here"
RULE_DUPLICATE_COLUMN = "duplicate column: a column name may appear only once"
RULE_EMPTY_HEADER = "column without a name: the header cell is empty"
RULE_MISSING_COLUMN = "required column missing"
RULE_REQUIRED = "required value missing"
RULE_NUMBER = "must be a number"
RULE_FINITE = "must be a finite number"
RULE_INTEGER = "must be an integer"
RULE_MAX_INTEGER = f"must be <={MAX_INTEGER} (the largest integer a float64 holds exactly)"
RULE_STRING = "must be a string"
RULE_PATIENT_ID = "must be 1-64 characters of A-Z a-z 0-9 _ -"
RULE_UNIQUE_ID = "must be unique, already in row {first}"
RULE_UNKNOWN_PATIENT = "must exist in patients"
RULE_UNIQUE_DRAW = "(patient_id, day) must be unique, already in row {first}"
RULE_EVENTS_LE_PBMC = "must be <= pbmc_events ({pbmc})"
RULE_PERCENT_AGREES = (
    "must agree with 100 * oc_positive_events / pbmc_events = {expected}"
    f" (within {PERCENT_REL_TOL:.0%} relative or {PERCENT_ABS_TOL:g} absolute)"
)
RULE_MEASUREMENT_VALUE = (
    "value missing: a measurement carries oc_positive_percent, or both oc_positive_events and"
    " pbmc_events, or all three"
)
RULE_VISCERAL_EARLY = "must not be true when disease_setting is early"
RULE_BONE_MET_EARLY = "must be false when disease_setting is early"
RULE_OUTCOME_BONE_MET = "must be empty when bone_metastasis_at_enrollment is true"
RULE_OUTCOME_PAIR = "required when {other} is given: time_days and event come together"
RULE_OUTCOME_MIXED = (
    "outcome missing while other rows carry one: a cohort is either for training (all outcomes)"
    " or for scoring (none)"
)
RULE_READ = "cannot read file: {problem}"
RULE_NO_ROWS = "no rows: the table has a header but no patient (a cohort needs at least one)"

#: Rows listed in a ContractError's message for one rule broken in many rows of a column.
FIRST_ROWS_SHOWN = 3

_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: ``DataFrame.attrs`` key of a table read from a typed file (Parquet), whose text values are not
#: parsed as numbers or booleans.
TYPED_FILE = "bonemet_typed_file"
_BOOLEAN_TEXT = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0}
_PATIENT_ID = re.compile(PATIENT_ID_PATTERN)
_NON_FINITE_TEXT = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
)

# How a raw value was given.
_MISSING, _TEXT, _BOOL, _NUM, _OTHER = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Violation:
    """One break of the data contract.

    Parameters
    ----------
    table : str
        ``"patients"``, ``"oc_measurements"`` or a caller-given name such as ``"request"``.
    row : int or None
        1-based row number, header excluded; None for a problem of the whole table (missing or
        unknown column, unreadable file).
    patient_id : str or None
        The row's ``patient_id`` when it is a well-formed id, else None.
    column : str or None
        The column at fault, None when the problem concerns no single column.
    value : object
        The offending value as read (a string for CSV), None when there is none.
    rule : str
        The rule broken, as a sentence a person can act on, e.g. ``"must be 18-100"``.
    """

    table: str
    row: int | None
    patient_id: str | None
    column: str | None
    value: object
    rule: str

    def __str__(self) -> str:
        where = self.table
        if self.row is not None:
            where += f" row {self.row}"
        if self.patient_id is not None:
            where += f" (patient_id {self.patient_id})"
        parts = [where]
        if self.column is not None:
            parts.append(f"column {self.column}")
        if self.value is not None:
            parts.append(f"value {self.value!r}")
        return ", ".join(parts) + f": {self.rule}"

    def as_dict(self) -> dict[str, object]:
        """Return the fields as a plain dictionary (for JSON answers and logs).

        Returns
        -------
        dict
            Keys ``table``, ``row``, ``patient_id``, ``column``, ``value``, ``rule``.
        """
        return {
            "table": self.table,
            "row": self.row,
            "patient_id": self.patient_id,
            "column": self.column,
            "value": self.value,
            "rule": self.rule,
        }


class ContractError(ValueError):
    """Raised with every violation at once.

    Parameters
    ----------
    violations : iterable of Violation
        All violations found, in report order.
    subject : str, default "cohort"
        What was validated, for the first line of the message.

    Attributes
    ----------
    violations : list of Violation
        All violations found.
    """

    def __init__(self, violations: Iterable[Violation], subject: str = "cohort") -> None:
        self.violations: list[Violation] = list(violations)
        self.subject = subject
        lines = [
            f"{subject} breaks data contract v{CONTRACT_VERSION}: "
            f"{len(self.violations)} violation(s)"
        ]
        lines += _message_lines(self.violations)
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[type[ContractError], tuple[list[Violation], str]]:
        return (type(self), (self.violations, self.subject))


def _message_lines(violations: Sequence[Violation]) -> list[str]:
    """One line per violation, except a rule broken in many rows of one column: one paragraph.

    A column of the wrong type (a unit in every cell, text in a Parquet number column) breaks
    its rule in every row; the message then gives the rule once with the number of rows and
    the first :data:`FIRST_ROWS_SHOWN` of them, not hundreds of lines. The violations
    themselves (``ContractError.violations``) stay complete.
    """
    groups: dict[tuple, list[Violation]] = {}
    for v in violations:
        groups.setdefault(_group_key(v), []).append(v)
    lines = []
    for v in violations:
        group = groups[_group_key(v)]
        if len(group) <= FIRST_ROWS_SHOWN:
            lines.append(str(v))
        elif v is group[0]:
            lines.append(_paragraph(group))
    return lines


def _group_key(v: Violation) -> tuple:
    return (v.table, v.column, v.rule) if v.row is not None else (id(v),)


def _paragraph(group: Sequence[Violation]) -> str:
    first = group[0]
    column = f", column {first.column}" if first.column is not None else ""
    shown = []
    for v in group[:FIRST_ROWS_SHOWN]:
        text = f"row {v.row}"
        if v.patient_id is not None:
            text += f" (patient_id {v.patient_id})"
        if v.value is not None:
            text += f" value {v.value!r}"
        shown.append(text)
    return f"{first.table}{column}: {first.rule}, in {len(group)} rows; first: " + "; ".join(shown)


@dataclass(frozen=True, eq=False)
class Cohort:
    """A validated cohort with typed tables.

    Parameters
    ----------
    patients : pandas.DataFrame
        One row per patient in the original row order, every column of
        ``schema.PATIENT_COLUMNS`` in contract order. Numbers, integers and booleans are float64
        (booleans 1.0/0.0) with NaN for missing; categories and strings are object columns of
        ``str`` with None for missing.
    measurements : pandas.DataFrame or None
        The ``oc_measurements`` table typed the same way, or None when not given.
    """

    patients: pd.DataFrame
    measurements: pd.DataFrame | None = None

    @property
    def has_outcome(self) -> bool:
        """Whether the rows free of bone metastasis at enrollment carry ``time_days`` and ``event``.

        True for a training or evaluation cohort, False for a cohort to score (and for a cohort
        where every patient already has bone metastasis at enrollment).
        """
        frame = self.patients
        if not all(c in frame.columns for c in OUTCOME_COLUMNS):
            return False
        free = frame["bone_metastasis_at_enrollment"].to_numpy(dtype=float) != 1.0
        if not free.any():
            return False
        return bool(
            frame["time_days"].notna().to_numpy()[free].all()
            and frame["event"].notna().to_numpy()[free].all()
        )


# --------------------------------------------------------------------------------------------
# Reading


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


# --------------------------------------------------------------------------------------------
# Column parsing


@dataclass
class _Parsed:
    """One column after its own rules: typed values and which rows are present and valid."""

    values: np.ndarray  # float64, or object (str/None) for category and string columns
    raw: np.ndarray | None  # values as read (object), None when the column is absent
    present: np.ndarray  # not missing as read
    valid: np.ndarray  # present and every rule of the column itself holds


class _Report:
    """Collects violations of one table."""

    def __init__(self, table: str, n_rows: int) -> None:
        self.table = table
        self.items: list[Violation] = []
        self.ids: np.ndarray = np.full(n_rows, None, dtype=object)

    def table_level(self, column: str | None, rule: str) -> None:
        self.items.append(Violation(self.table, None, None, column, None, rule))

    def rows(
        self,
        mask: np.ndarray,
        column: str | None,
        raw: np.ndarray | None,
        rule: str | Callable[[int], str],
    ) -> None:
        if not mask.any():
            return
        for i in np.flatnonzero(mask):
            text = rule(int(i)) if callable(rule) else rule
            value = None if raw is None else _python_value(raw[i])
            self.items.append(Violation(self.table, int(i) + 1, self.ids[i], column, value, text))

    def sorted(self, columns: Sequence[str]) -> list[Violation]:
        order = {name: k for k, name in enumerate(columns)}

        def key(v: Violation) -> tuple[int, int]:
            if v.row is None:
                return (0, 0)  # table-level first, in the order found
            return (v.row, order.get(v.column, len(order)) if v.column is not None else len(order))

        return sorted(self.items, key=key)


def _python_value(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _classify(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return how each value was given (``_MISSING`` ... ``_OTHER``) and the values as objects."""
    dtype = column.dtype
    missing = column.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype):
        return np.where(missing, _MISSING, _BOOL), column.to_numpy(dtype=object)
    if pd.api.types.is_numeric_dtype(dtype):
        return np.where(missing, _MISSING, _NUM), column.to_numpy(dtype=object)
    raw = column.to_numpy(dtype=object)
    inferred = pd.api.types.infer_dtype(raw, skipna=True)
    if inferred == "empty":
        return np.full(len(raw), _MISSING), raw
    if inferred == "string":
        empty = np.zeros(len(raw), dtype=bool)
        empty[~missing] = raw[~missing] == ""
        return np.where(missing | empty, _MISSING, _TEXT), raw
    if inferred == "boolean":
        return np.where(missing, _MISSING, _BOOL), raw
    if inferred in ("integer", "floating", "mixed-integer-float"):
        return np.where(missing, _MISSING, _NUM), raw
    codes = np.fromiter((_code(v) for v in raw), dtype=np.int64, count=len(raw))
    codes[missing] = _MISSING
    return codes, raw


def _code(value: object) -> int:
    if value is None:
        return _MISSING
    if isinstance(value, str):
        return _MISSING if value == "" else _TEXT
    if isinstance(value, bool | np.bool_):
        return _BOOL
    if isinstance(value, float | np.floating):
        return _MISSING if value != value else _NUM  # a NaN float is missing, as in pandas
    if isinstance(value, int | np.integer):
        return _NUM
    return _OTHER


def _classify_values(raw: np.ndarray) -> np.ndarray:
    """How each value of an object array (JSON record values) was given."""
    return np.fromiter((_code(v) for v in raw), dtype=np.int64, count=len(raw))


def _to_float(values: np.ndarray) -> np.ndarray:
    try:
        return values.astype(float)
    except OverflowError:  # a Python int beyond float range
        return np.array([_int_to_float(v) for v in values], dtype=float)


def _int_to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _parse_column(
    spec: ColumnSpec,
    column: pd.Series | np.ndarray | None,
    n_rows: int,
    report: _Report,
    parse_text: bool = True,
) -> _Parsed:
    if column is None:
        absent = np.zeros(n_rows, dtype=bool)
        if spec.kind in ("category", "string"):
            empty = np.full(n_rows, None, dtype=object)
        else:
            empty = np.full(n_rows, np.nan)
        return _Parsed(empty, None, absent, absent.copy())
    if isinstance(column, pd.Series):
        codes, raw = _classify(column)
    else:
        raw = column
        codes = _classify_values(raw)
    present = codes != _MISSING
    if not parse_text and spec.kind in ("number", "integer", "boolean"):
        codes = np.where(codes == _TEXT, _OTHER, codes)  # text is the wrong type here
    if spec.required:
        report.rows(~present, spec.name, None, RULE_REQUIRED)
    if not present.any():  # nothing given: nothing to check
        values = (
            np.full(n_rows, None, dtype=object)
            if spec.kind in ("category", "string")
            else (np.full(n_rows, np.nan))
        )
        return _Parsed(values, raw, present, present.copy())
    if spec.kind in ("category", "string"):
        values, valid = _parse_text(spec, codes, raw, report)
    elif spec.kind == "boolean":
        values, valid = _parse_boolean(spec, codes, raw, report)
    else:
        values, valid = _parse_numeric(spec, codes, raw, report)
    return _Parsed(values, raw, present, valid)


def _parse_text(
    spec: ColumnSpec, codes: np.ndarray, raw: np.ndarray, report: _Report
) -> tuple[np.ndarray, np.ndarray]:
    is_text = codes == _TEXT
    texts = raw[is_text]
    ok = np.zeros(len(raw), dtype=bool)
    if spec.kind == "category":
        allowed = frozenset(spec.allowed)
        ok[is_text] = [t in allowed for t in texts]
        report.rows((codes != _MISSING) & ~ok, spec.name, raw, f"must be {spec.range_text()}")
    else:
        if spec.name == "patient_id":
            ok[is_text] = [_PATIENT_ID.fullmatch(t) is not None for t in texts]
            report.rows(is_text & ~ok, spec.name, raw, RULE_PATIENT_ID)
        else:
            ok[is_text] = True
        report.rows((codes != _MISSING) & ~is_text, spec.name, raw, RULE_STRING)
    values = np.full(len(raw), None, dtype=object)
    values[ok] = raw[ok]
    return values, ok


def _parse_boolean(
    spec: ColumnSpec, codes: np.ndarray, raw: np.ndarray, report: _Report
) -> tuple[np.ndarray, np.ndarray]:
    values = np.full(len(raw), np.nan)
    is_text = codes == _TEXT
    values[is_text] = [_BOOLEAN_TEXT.get(t.lower(), np.nan) for t in raw[is_text]]
    is_bool = codes == _BOOL
    values[is_bool] = raw[is_bool].astype(bool).astype(float)
    # A number 1/0 is the numeric form of the CSV's "1"/"0" (and of this module's typed output).
    is_num = codes == _NUM
    numbers = _to_float(raw[is_num])
    values[is_num] = np.where((numbers == 0.0) | (numbers == 1.0), numbers, np.nan)
    valid = ~np.isnan(values)
    report.rows((codes != _MISSING) & ~valid, spec.name, raw, f"must be {spec.range_text()}")
    return values, valid


def _parse_numeric(
    spec: ColumnSpec, codes: np.ndarray, raw: np.ndarray, report: _Report
) -> tuple[np.ndarray, np.ndarray]:
    values = np.full(len(raw), np.nan)
    is_text = codes == _TEXT
    if is_text.any():
        texts = pd.Series(raw[is_text], dtype=object)
        values[is_text] = pd.to_numeric(texts, errors="coerce").to_numpy(dtype=float)
    is_num = codes == _NUM
    values[is_num] = _to_float(raw[is_num])
    present = codes != _MISSING
    finite = np.isfinite(values)
    if spec.kind == "integer":
        # A number beyond float range (a huge JSON or Parquet integer) is an integer out of range.
        typed = integral(values) | (is_num & np.isinf(values))
        report.rows(present & ~typed, spec.name, raw, RULE_INTEGER)
    else:
        typed = finite
        # NaN or infinity given as a value (text such as "nan" or "inf", or an infinite float);
        # a NaN float is a missing value, as in Parquet and pandas.
        non_finite = (present & np.isinf(values)) | _non_finite_text(raw, is_text & ~finite)
        report.rows(non_finite, spec.name, raw, RULE_FINITE)
        report.rows(present & ~finite & ~non_finite, spec.name, raw, RULE_NUMBER)
    in_range = typed.copy()
    checked = values[typed]
    if spec.minimum is not None:
        too_low = checked <= spec.minimum if spec.exclusive_minimum else checked < spec.minimum
        in_range[typed] &= ~too_low
    if spec.maximum is not None:
        in_range[typed] &= ~(checked > spec.maximum)
    report.rows(typed & ~in_range, spec.name, raw, f"must be {spec.range_text()}")
    if spec.upper != spec.maximum:
        too_large = in_range & (np.where(in_range, values, 0.0) > spec.upper)
        report.rows(too_large, spec.name, raw, RULE_MAX_INTEGER)
        in_range &= ~too_large
    values[~in_range] = np.nan
    return values, in_range


def _non_finite_text(raw: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Mark the candidate texts that spell NaN or infinity ("nan", "-inf", "Infinity" ...)."""
    out = np.zeros(len(raw), dtype=bool)
    if candidates.any():
        texts = pd.Series(raw[candidates], dtype=object).str.strip().str.lower()
        out[candidates] = texts.isin(_NON_FINITE_TEXT).to_numpy()
    return out


# --------------------------------------------------------------------------------------------
# Tables


class _Records:
    """JSON-style records (one mapping per row) seen as columns of object arrays."""

    def __init__(self, records: Sequence[Mapping[str, object]], validated: bool = False) -> None:
        self.validated = validated
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record))
        self.columns = list(names)
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    def column(self, position: int) -> np.ndarray:
        return self.values(self.columns[position])

    def values(self, name: str) -> np.ndarray:
        """The values of one column (None where a record lacks the key)."""
        return np.fromiter(
            (r.get(name) for r in self._records), dtype=object, count=len(self._records)
        )


def _column_at(raw: pd.DataFrame | _Records, position: int) -> pd.Series | np.ndarray:
    if isinstance(raw, _Records):
        return raw.column(position)
    return raw.iloc[:, position]


def _check_header(
    raw: pd.DataFrame | _Records,
    specs: Sequence[ColumnSpec],
    report: _Report,
    not_accepted: Collection[str] = (),
) -> dict[str, pd.Series | np.ndarray]:
    """Report unknown, duplicate and missing required columns; return the known columns."""
    known = [s.name for s in specs]
    columns: dict[str, pd.Series | np.ndarray] = {}
    seen: set[str] = set()
    for position, label in enumerate(raw.columns):
        name = label if isinstance(label, str) else str(label)
        if name in seen:
            report.table_level(name, RULE_DUPLICATE_COLUMN)
            continue
        seen.add(name)
        if name in known:
            columns[name] = _column_at(raw, position)
        elif name.strip() == "":
            report.table_level(None, f"{RULE_EMPTY_HEADER} (column {position + 1})")
        elif name in not_accepted:
            report.table_level(name, RULE_OUTCOME_NOT_ACCEPTED)
        else:
            guess = difflib.get_close_matches(name.strip().lower(), known, n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            report.table_level(name, RULE_UNKNOWN_COLUMN + hint)
    for spec in specs:
        if spec.required and spec.name not in columns:
            report.table_level(spec.name, RULE_MISSING_COLUMN)
    return columns


def _parse_table(
    raw: pd.DataFrame | _Records,
    specs: Sequence[ColumnSpec],
    report: _Report,
    not_accepted: Collection[str],
) -> dict[str, _Parsed]:
    if isinstance(raw, _Records) and raw.validated:
        parsed = {spec.name: _validated_column(spec, raw) for spec in specs}
        report.ids = parsed["patient_id"].values
        return parsed
    columns = _check_header(raw, specs, report, not_accepted)
    n_rows = len(raw)
    # Text is parsed as numbers and booleans (CSV cells, frames built from them); a typed
    # file (Parquet) gives text as text, the wrong type in a number or boolean column.
    parse_text = not (isinstance(raw, pd.DataFrame) and raw.attrs.get(TYPED_FILE, False))
    parsed: dict[str, _Parsed] = {}
    for spec in specs:
        parsed[spec.name] = _parse_column(spec, columns.get(spec.name), n_rows, report, parse_text)
        if spec.name == "patient_id":
            # Later messages name the row's id when it is a well-formed one.
            report.ids = parsed[spec.name].values
    return parsed


def _validated_column(spec: ColumnSpec, raw: _Records) -> _Parsed:
    """A column whose values already passed its own rules: only typed (None/NaN missing)."""
    values = raw.values(spec.name)
    if spec.kind in ("category", "string"):
        present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
        return _Parsed(values, values, present, present.copy())
    numbers = np.fromiter(
        (np.nan if v is None else float(v) for v in values), dtype=float, count=len(values)
    )
    present = ~np.isnan(numbers)
    return _Parsed(numbers, values, present, present.copy())


def _check_counts(parsed: dict[str, _Parsed], report: _Report) -> None:
    """Events <= PBMC events; percent agrees with the counts; derive a missing percent."""
    events, pbmc, percent = (
        parsed["oc_positive_events"],
        parsed["pbmc_events"],
        parsed["oc_positive_percent"],
    )
    both = events.valid & pbmc.valid
    over = both & (events.values > pbmc.values)
    report.rows(
        over,
        "oc_positive_events",
        events.raw,
        lambda i: RULE_EVENTS_LE_PBMC.format(pbmc=_fmt_number(pbmc.values[i])),
    )
    usable = both & ~over
    expected = np.full(len(usable), np.nan)
    expected[usable] = 100.0 * events.values[usable] / pbmc.values[usable]
    compare = usable & percent.valid
    tolerance = np.maximum(PERCENT_REL_TOL * np.abs(expected), PERCENT_ABS_TOL)
    disagree = np.zeros(len(usable), dtype=bool)
    disagree[compare] = np.abs(percent.values[compare] - expected[compare]) > tolerance[compare]
    report.rows(
        disagree,
        "oc_positive_percent",
        percent.raw,
        lambda i: RULE_PERCENT_AGREES.format(expected=f"{expected[i]:.6g}"),
    )
    derive = usable & ~percent.present
    percent.values[derive] = expected[derive]


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _first_rows(keys: Sequence[object], rows: np.ndarray) -> tuple[np.ndarray, dict]:
    """Mark rows whose key was already seen; map each key to the 1-based row of its first use."""
    duplicated = np.zeros(len(keys), dtype=bool)
    first: dict = {}
    for k, (key, row) in enumerate(zip(keys, rows, strict=True)):
        if key in first:
            duplicated[k] = True
        else:
            first[key] = int(row) + 1
    return duplicated, first


def _table_frame(parsed: dict[str, _Parsed], specs: Sequence[ColumnSpec]) -> pd.DataFrame:
    data: dict[str, pd.Series | np.ndarray] = {}
    for spec in specs:
        values = parsed[spec.name].values
        if spec.kind in ("category", "string"):
            data[spec.name] = pd.Series(values, dtype=object)
        else:
            data[spec.name] = pd.Series(values, dtype="float64")
    return pd.DataFrame(data, columns=[s.name for s in specs])


def check_patients(
    raw: pd.DataFrame, *, table: str = PATIENTS_TABLE, allow_outcome: bool = True
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check a ``patients`` table against the contract and type its columns.

    Parameters
    ----------
    raw : pandas.DataFrame
        The table as read: CSV strings, Parquet-typed columns or JSON-typed records.
    table : str, default "patients"
        Name used in violations (the service uses ``"request"``).
    allow_outcome : bool, default True
        When False (prediction requests), ``time_days`` and ``event`` are not accepted and the
        returned frame holds only ``schema.PREDICTOR_COLUMNS``.

    Returns
    -------
    typed : pandas.DataFrame
        Every contract column in contract order (absent optional ones all missing), RangeIndex,
        typed as described in :class:`Cohort`; ``oc_positive_percent`` derived from the counts
        where missing. A value that breaks a rule of its own column is missing here.
    violations : list of Violation
        Every violation found, table-level ones first, then by row; empty when valid.
    """
    parsed, specs, violations = _check_patient_table(raw, table, allow_outcome)
    return _table_frame(parsed, specs), violations


def check_patient_records(
    records: Sequence[Mapping[str, object]],
    *,
    table: str = "request",
    allow_outcome: bool = False,
    validated: bool = False,
) -> tuple[dict[str, np.ndarray], list[Violation]]:
    """:func:`check_patients` for JSON-style records, without pandas (the serving hot path).

    Parameters
    ----------
    records : sequence of mapping
        One mapping per row, column name to value (int, float, bool, str or None); a key
        absent from a record is a missing value, a key that is no contract column a violation.
    table, allow_outcome
        As in :func:`check_patients` (defaults for prediction requests).
    validated : bool, default False
        True when every value already passed the rules of its own column (types, bounds,
        allowed values, pattern, required, no unknown keys): the prediction API's pydantic
        models, generated from the same :mod:`features.schema` specs, check exactly these.
        Then only the rules across columns run (uniqueness, counts, disease setting) - the
        serving hot path. Records that were not checked so must use the default.

    Returns
    -------
    typed : dict of str to numpy.ndarray
        Every contract column in contract order, one array per column typed as in
        :func:`check_patients` (float with NaN; object with str or None).
    violations : list of Violation
    """
    parsed, specs, violations = _check_patient_table(
        _Records(records, validated), table, allow_outcome
    )
    return {spec.name: parsed[spec.name].values for spec in specs}, violations


def _check_patient_table(
    raw: pd.DataFrame | _Records, table: str, allow_outcome: bool
) -> tuple[dict[str, _Parsed], list[ColumnSpec], list[Violation]]:
    specs = [s for s in PATIENT_COLUMNS if allow_outcome or s.name not in OUTCOME_COLUMNS]
    report = _Report(table, len(raw))
    parsed = _parse_table(raw, specs, report, () if allow_outcome else OUTCOME_COLUMNS)
    pid = parsed["patient_id"]
    rows = np.flatnonzero(pid.valid)
    duplicated, first = _first_rows(pid.values[rows], rows)
    is_duplicate = np.zeros(len(raw), dtype=bool)
    is_duplicate[rows[duplicated]] = True
    report.rows(
        is_duplicate,
        "patient_id",
        pid.raw,
        lambda i: RULE_UNIQUE_ID.format(first=first[pid.values[i]]),
    )
    _check_counts(parsed, report)

    setting = parsed["disease_setting"]
    early = setting.valid & (setting.values == "early")
    visceral = parsed["visceral_metastasis"]
    report.rows(
        early & visceral.valid & (visceral.values == 1.0),
        "visceral_metastasis",
        visceral.raw,
        RULE_VISCERAL_EARLY,
    )
    bone = parsed["bone_metastasis_at_enrollment"]
    bone_early = early & bone.valid & (bone.values == 1.0)
    report.rows(bone_early, "bone_metastasis_at_enrollment", bone.raw, RULE_BONE_MET_EARLY)
    if allow_outcome:
        # A row whose bone status is unknown or contradicted is left out of the outcome rules.
        known = bone.valid & ~bone_early
        _check_outcome(parsed, known & (bone.values == 1.0), known & (bone.values == 0.0), report)
    return parsed, specs, report.sorted([s.name for s in specs])


def _check_outcome(
    parsed: dict[str, _Parsed], bone_true: np.ndarray, bone_false: np.ndarray, report: _Report
) -> None:
    time, event = parsed["time_days"], parsed["event"]
    for name, col in (("time_days", time), ("event", event)):
        report.rows(bone_true & col.present, name, col.raw, RULE_OUTCOME_BONE_MET)
    report.rows(
        bone_false & event.present & ~time.present,
        "time_days",
        None,
        RULE_OUTCOME_PAIR.format(other="event"),
    )
    report.rows(
        bone_false & time.present & ~event.present,
        "event",
        None,
        RULE_OUTCOME_PAIR.format(other="time_days"),
    )
    if (bone_false & time.present & event.present).any():
        report.rows(bone_false & ~time.present & ~event.present, None, None, RULE_OUTCOME_MIXED)


def check_measurements(
    raw: pd.DataFrame,
    patient_ids: Collection[str] | None,
    *,
    table: str = MEASUREMENTS_TABLE,
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check an ``oc_measurements`` table against the contract and type its columns.

    Parameters
    ----------
    raw : pandas.DataFrame
        The table as read: CSV strings, Parquet-typed columns or JSON-typed records.
    patient_ids : collection of str or None
        The ids of the ``patients`` table; None skips the check that each id exists there.
    table : str, default "oc_measurements"
        Name used in violations.

    Returns
    -------
    typed : pandas.DataFrame
        Every column of ``schema.MEASUREMENT_COLUMNS`` in contract order, typed as in
        :func:`check_patients`, original row order, ``oc_positive_percent`` derived from the
        counts where missing.
    violations : list of Violation
        Every violation found, table-level ones first, then by row; empty when valid.
    """
    parsed, violations = _check_measurement_table(raw, patient_ids, table)
    return _table_frame(parsed, MEASUREMENT_COLUMNS), violations


def check_measurement_records(
    records: Sequence[Mapping[str, object]],
    patient_ids: Collection[str] | None,
    *,
    table: str = "request",
    validated: bool = False,
) -> tuple[dict[str, np.ndarray], list[Violation]]:
    """:func:`check_measurements` for JSON-style records, without pandas.

    Returns the typed columns as a dict of arrays (as :func:`check_patient_records`, whose
    ``validated`` flag this shares) and the violations.
    """
    parsed, violations = _check_measurement_table(_Records(records, validated), patient_ids, table)
    return {spec.name: parsed[spec.name].values for spec in MEASUREMENT_COLUMNS}, violations


def _check_measurement_table(
    raw: pd.DataFrame | _Records, patient_ids: Collection[str] | None, table: str
) -> tuple[dict[str, _Parsed], list[Violation]]:
    report = _Report(table, len(raw))
    parsed = _parse_table(raw, MEASUREMENT_COLUMNS, report, ())
    pid, day = parsed["patient_id"], parsed["day"]
    if patient_ids is not None:
        ids = frozenset(patient_ids)
        known = np.fromiter((v in ids for v in pid.values), dtype=bool, count=len(pid.values))
        report.rows(pid.valid & ~known, "patient_id", pid.raw, RULE_UNKNOWN_PATIENT)

    rows = np.flatnonzero(pid.valid & day.valid)
    keys = list(zip(pid.values[rows], day.values[rows].tolist(), strict=True))
    duplicated, first = _first_rows(keys, rows)
    is_duplicate = np.zeros(len(raw), dtype=bool)
    is_duplicate[rows[duplicated]] = True
    report.rows(
        is_duplicate,
        "day",
        day.raw,
        lambda i: RULE_UNIQUE_DRAW.format(first=first[(pid.values[i], day.values[i])]),
    )

    percent = parsed["oc_positive_percent"].present
    events = parsed["oc_positive_events"].present
    pbmc = parsed["pbmc_events"].present
    nothing = ~percent & ~events & ~pbmc
    report.rows(nothing, "oc_positive_percent", None, RULE_MEASUREMENT_VALUE)
    report.rows(events & ~pbmc, "pbmc_events", None, RULE_MEASUREMENT_VALUE)
    report.rows(pbmc & ~events, "oc_positive_events", None, RULE_MEASUREMENT_VALUE)
    _check_counts(parsed, report)
    return parsed, report.sorted([s.name for s in MEASUREMENT_COLUMNS])


def validate_cohort(patients: pd.DataFrame, measurements: pd.DataFrame | None = None) -> Cohort:
    """Validate a whole cohort and return it typed.

    Parameters
    ----------
    patients : pandas.DataFrame
        The raw ``patients`` table.
    measurements : pandas.DataFrame, optional
        The raw ``oc_measurements`` table.

    Returns
    -------
    Cohort
        The typed tables.

    Raises
    ------
    ContractError
        Listing every violation of both tables together (patients first, then by row).
    """
    typed_patients, violations = check_patients(patients)
    if len(patients) == 0:
        violations = [Violation(PATIENTS_TABLE, None, None, None, None, RULE_NO_ROWS), *violations]
    typed_measurements = None
    if measurements is not None:
        has_ids = "patient_id" in [str(c) for c in patients.columns]
        ids = set(typed_patients["patient_id"].dropna()) if has_ids else None
        typed_measurements, found = check_measurements(measurements, ids)
        violations = violations + found
    if violations:
        raise ContractError(violations)
    return Cohort(typed_patients, typed_measurements)


def load_cohort(
    patients_path: str | os.PathLike[str],
    measurements_path: str | os.PathLike[str] | None = None,
) -> Cohort:
    """Read and validate a cohort from its files.

    Parameters
    ----------
    patients_path : str or os.PathLike
        The ``patients`` table (``.csv``, ``.parquet`` or ``.pq``).
    measurements_path : str or os.PathLike, optional
        The ``oc_measurements`` table.

    Returns
    -------
    Cohort
        The typed tables.

    Raises
    ------
    ContractError
        When a file cannot be read (both files are tried) or the cohort breaks the contract.
    """
    unreadable: list[Violation] = []
    patients = measurements = None
    try:
        patients = read_table(patients_path, table=PATIENTS_TABLE)
    except ContractError as exc:
        unreadable += exc.violations
    if measurements_path is not None:
        try:
            measurements = read_table(measurements_path, table=MEASUREMENTS_TABLE)
        except ContractError as exc:
            unreadable += exc.violations
    if unreadable or patients is None:
        raise ContractError(unreadable)
    return validate_cohort(patients, measurements)
