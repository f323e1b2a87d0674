"""The rules of one column: parse each value as given (CSV text, Parquet types, JSON values).

A column is parsed vectorised against its :class:`features.schema.ColumnSpec` (kind, bounds,
allowed values, the id pattern); a value that breaks a rule of its own column is reported once
and left out of the rules across columns. :func:`parse_table` applies this to a whole table:
its header (unknown, duplicate, missing columns) and every column.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contract.violations import (
    RULE_DUPLICATE_COLUMN,
    RULE_EMPTY_HEADER,
    RULE_FINITE,
    RULE_INTEGER,
    RULE_MAX_INTEGER,
    RULE_MISSING_COLUMN,
    RULE_NUMBER,
    RULE_OUTCOME_NOT_ACCEPTED,
    RULE_PATIENT_ID,
    RULE_REQUIRED,
    RULE_STRING,
    RULE_UNKNOWN_COLUMN,
    Report,
)
from features.schema import (
    PATIENT_ID_PATTERN,
    ColumnSpec,
    integral,
)

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


@dataclass
class Parsed:
    """One column after its own rules: typed values and which rows are present and valid."""

    values: np.ndarray  # float64, or object (str/None) for category and string columns
    raw: np.ndarray | None  # values as read (object), None when the column is absent
    present: np.ndarray  # not missing as read
    valid: np.ndarray  # present and every rule of the column itself holds


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
    report: Report,
    parse_text: bool = True,
) -> Parsed:
    if column is None:
        absent = np.zeros(n_rows, dtype=bool)
        if spec.kind in ("category", "string"):
            empty = np.full(n_rows, None, dtype=object)
        else:
            empty = np.full(n_rows, np.nan)
        return Parsed(empty, None, absent, absent.copy())
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
        return Parsed(values, raw, present, present.copy())
    if spec.kind in ("category", "string"):
        values, valid = _parse_text(spec, codes, raw, report)
    elif spec.kind == "boolean":
        values, valid = _parse_boolean(spec, codes, raw, report)
    else:
        values, valid = _parse_numeric(spec, codes, raw, report)
    return Parsed(values, raw, present, valid)


def _parse_text(
    spec: ColumnSpec, codes: np.ndarray, raw: np.ndarray, report: Report
) -> tuple[np.ndarray, np.ndarray]:
    is_text = codes == _TEXT
    texts = raw[is_text]
    ok = np.zeros(len(raw), dtype=bool)
    if spec.kind == "category":
        allowed = frozenset(spec.allowed)
        ok[is_text] = [t in allowed for t in texts]
        report.rows((codes != _MISSING) & ~ok, spec.name, raw, f"must be {spec.range_text()}")
    else:
        # Every string column of the contract is an identifier with the pattern of patient_id
        # (patient_id itself and, since 1.2, the provenance columns).
        ok[is_text] = [_PATIENT_ID.fullmatch(t) is not None for t in texts]
        report.rows(is_text & ~ok, spec.name, raw, RULE_PATIENT_ID)
        report.rows((codes != _MISSING) & ~is_text, spec.name, raw, RULE_STRING)
    values = np.full(len(raw), None, dtype=object)
    values[ok] = raw[ok]
    return values, ok


def _parse_boolean(
    spec: ColumnSpec, codes: np.ndarray, raw: np.ndarray, report: Report
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
    spec: ColumnSpec, codes: np.ndarray, raw: np.ndarray, report: Report
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


class Records:
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


def _column_at(raw: pd.DataFrame | Records, position: int) -> pd.Series | np.ndarray:
    if isinstance(raw, Records):
        return raw.column(position)
    return raw.iloc[:, position]


def _check_header(
    raw: pd.DataFrame | Records,
    specs: Sequence[ColumnSpec],
    report: Report,
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


def parse_table(
    raw: pd.DataFrame | Records,
    specs: Sequence[ColumnSpec],
    report: Report,
    not_accepted: Collection[str],
) -> dict[str, Parsed]:
    if isinstance(raw, Records) and raw.validated:
        parsed = {spec.name: _validated_column(spec, raw) for spec in specs}
        report.ids = parsed["patient_id"].values
        return parsed
    columns = _check_header(raw, specs, report, not_accepted)
    n_rows = len(raw)
    # Text is parsed as numbers and booleans (CSV cells, frames built from them); a typed
    # file (Parquet) gives text as text, the wrong type in a number or boolean column.
    parse_text = not (isinstance(raw, pd.DataFrame) and raw.attrs.get(TYPED_FILE, False))
    parsed: dict[str, Parsed] = {}
    for spec in specs:
        parsed[spec.name] = _parse_column(spec, columns.get(spec.name), n_rows, report, parse_text)
        if spec.name == "patient_id":
            # Later messages name the row's id when it is a well-formed one.
            report.ids = parsed[spec.name].values
    return parsed


def _validated_column(spec: ColumnSpec, raw: Records) -> Parsed:
    """A column whose values already passed its own rules: only typed (None/NaN missing)."""
    values = raw.values(spec.name)
    if spec.kind in ("category", "string"):
        present = values != None  # noqa: E711 - elementwise: the missing values are None
        return Parsed(values, values, present, present.copy())
    # numpy converts the validated values (int, float, bool; None to NaN) as float() does, in
    # one call rather than a Python generator.
    numbers = values.astype(float)
    present = ~np.isnan(numbers)
    return Parsed(numbers, values, present, present.copy())


def table_frame(parsed: dict[str, Parsed], specs: Sequence[ColumnSpec]) -> pd.DataFrame:
    data: dict[str, pd.Series | np.ndarray] = {}
    for spec in specs:
        values = parsed[spec.name].values
        if spec.kind in ("category", "string"):
            data[spec.name] = pd.Series(values, dtype=object)
        else:
            data[spec.name] = pd.Series(values, dtype="float64")
    return pd.DataFrame(data, columns=[s.name for s in specs])
