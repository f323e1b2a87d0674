"""A cohort validated chunk by chunk: the rules of :func:`load_cohort`, in bounded memory.

:func:`iter_cohort` reads the ``patients`` table in chunks of rows and checks each with
:func:`~features.contract.tables.check_patients`, so that a population far larger than memory
can be scored chunk after chunk. The rules and their messages are :func:`load_cohort`'s: the
violations found, with the file's row numbers, are exactly the whole-file validation's, raised
in one :class:`ContractError` in the same order. The rules across rows that a chunk cannot see
alone are kept across chunks:

- a ``patient_id`` already used in an earlier chunk (a dictionary of the ids seen, with the row
  of each id's first use: the one structure that grows with the cohort, about 100 bytes per
  patient);
- an outcome missing while other rows carry one (the rows without outcome are remembered, row
  number and id, 16 bytes each, until the end shows whether any row carries one);
- every draw's patient must exist (checked at the end, against the ids seen).

The ``oc_measurements`` table is read and checked in chunks too, before the first patient.
Its rule across rows (unique ``(patient_id, day)``) and the check of each draw's patient run on
two compact arrays (a patient code and the day: 12 bytes per draw); each chunk of patients then
comes with the draws of its patients, in file order, taken from the draws kept typed and
compact (a code and five floats: 44 bytes per draw), all of them or, for a prediction at
enrollment, the day-0 ones only. Memory therefore holds one chunk of either table, the ids
seen (about 100 bytes per patient) and about 12 bytes per draw (56 with every draw kept).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.contract.files import read_chunks
from features.contract.tables import check_measurements, check_patients
from features.contract.violations import (
    MEASUREMENTS_TABLE,
    PATIENTS_TABLE,
    RULE_NO_ROWS,
    RULE_OUTCOME_MIXED,
    RULE_UNIQUE_DRAW,
    RULE_UNIQUE_ID,
    RULE_UNKNOWN_PATIENT,
    ContractError,
    Violation,
    in_report_order,
    python_value,
)
from features.schema import MEASUREMENT_COLUMNS, PATIENT_COLUMNS

#: Patients per chunk of :func:`iter_cohort` by default.
DEFAULT_CHUNK_SIZE = 50_000

#: Draws sorted at once when looking for repeated (patient_id, day) keys.
DRAWS_PER_SORT = 1_000_000

# A chunk's own "already in row N" names a row of the chunk: replaced by the cohort's.
_CHUNK_REPEAT = re.compile(re.escape(RULE_UNIQUE_ID).replace(re.escape("{first}"), r"\d+"))
_CHUNK_DRAW_REPEAT = re.compile(re.escape(RULE_UNIQUE_DRAW).replace(re.escape("{first}"), r"\d+"))


@dataclass(frozen=True, eq=False)
class CohortChunk:
    """Consecutive patients of a cohort, validated and typed, with their draws.

    Parameters
    ----------
    first_row : int
        The file's row number (1-based, header excluded) of the chunk's first patient.
    patients : pandas.DataFrame
        The chunk's patients typed as :attr:`features.contract.Cohort.patients` (RangeIndex).
    measurements : pandas.DataFrame or None
        The draws of these patients typed as :attr:`features.contract.Cohort.measurements`,
        in file order (possibly empty); None when no draws table was given.
    """

    first_row: int
    patients: pd.DataFrame
    measurements: pd.DataFrame | None


def iter_cohort(
    patients_path: str | os.PathLike[str],
    measurements_path: str | os.PathLike[str] | None = None,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    enrollment_draws_only: bool = False,
) -> Iterator[CohortChunk]:
    """Read and validate a cohort chunk by chunk, yielding each chunk while all is valid.

    Every chunk is checked; chunks are yielded only while no violation has been found, and
    when the iteration ends without error the whole cohort was valid. Any violation, in any
    chunk, is raised at the end with all the others (exactly the :class:`ContractError` of
    :func:`features.contract.load_cohort` on the same files), so a consumer that commits its
    work only after the last chunk commits nothing for a bad cohort.

    Parameters
    ----------
    patients_path : str or os.PathLike
        The ``patients`` table (``.csv``, ``.parquet`` or ``.pq``), read in chunks.
    measurements_path : str or os.PathLike, optional
        The ``oc_measurements`` table, read and checked in chunks before the first patient.
    chunk_size : int, default 50,000
        Rows per chunk (of either table).
    enrollment_draws_only : bool, default False
        Keep only the day-0 draws for the chunks (all a prediction at enrollment reads,
        :func:`features.draws.enrollment_view`); the others are checked, then dropped.

    Yields
    ------
    CohortChunk
        Consecutive chunks of patients, in file order, with their draws.

    Raises
    ------
    ContractError
        When a file cannot be read or the cohort breaks the contract.
    """
    unreadable: list[Violation] = []
    draws = None
    if measurements_path is not None:
        draws = _DrawsAcrossChunks(measurements_path, chunk_size, enrollment_draws_only)
        unreadable = draws.unreadable
    rules = _AcrossChunks()
    chunks = read_chunks(patients_path, chunk_size, table=PATIENTS_TABLE)
    while True:
        try:
            raw = next(chunks, None)
        except ContractError as exc:
            raise ContractError(exc.violations + unreadable) from exc
        if raw is None:
            break
        if unreadable:  # only reading on, to report every file that cannot be read
            continue
        first_row = rules.n_rows + 1
        typed = rules.check(raw)
        clean = not (rules.failed or (draws is not None and draws.failed))
        if len(typed) and clean:
            mine = None if draws is None else draws.of(typed["patient_id"])
            yield CohortChunk(first_row, typed, mine)
    if unreadable:
        raise ContractError(unreadable)
    violations = rules.violations()
    if draws is not None:
        violations += draws.violations(rules.first_row if rules.has_ids else None)
    if violations:
        raise ContractError(violations)


def _names(specs) -> list[str]:
    return [spec.name for spec in specs]


class _AcrossChunks:
    """The patients table's violations over its chunks, with the rules across chunks."""

    def __init__(self) -> None:
        self.n_rows = 0
        self.has_ids: bool | None = None
        self.first_row: dict[str, int] = {}
        self._table_level: list[Violation] = []
        self._rows: list[Violation] = []
        self._carried = False  # a row carries an outcome
        self._missing_rows: list[np.ndarray] = []  # rows free of bone metastasis, no outcome
        self._missing_ids: list[np.ndarray] = []

    @property
    def failed(self) -> bool:
        """Whether a violation has been found so far."""
        mixed = self._carried and any(len(rows) for rows in self._missing_rows)
        return bool(self._table_level or self._rows or mixed)

    def check(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Check the next chunk; return it typed."""
        offset = self.n_rows
        typed, found = check_patients(raw)
        first = self.has_ids is None
        if first:
            self.has_ids = "patient_id" in [str(c) for c in raw.columns]
        for v in found:
            if v.row is None:
                if first:  # the header is the same in every chunk
                    self._table_level.append(v)
            elif v.rule == RULE_OUTCOME_MIXED:
                continue  # a rule of the whole table: see violations()
            elif v.column == "patient_id" and _CHUNK_REPEAT.fullmatch(v.rule):
                continue  # replaced by the cohort's repeats below
            else:
                self._rows.append(replace(v, row=v.row + offset))
        ids = typed["patient_id"].to_numpy(dtype=object)
        self._repeats(ids, offset)
        self._outcomes(raw, typed, ids, offset)
        self.n_rows += len(raw)
        return typed

    def _repeats(self, ids: np.ndarray, offset: int) -> None:
        seen = self.first_row
        for i, pid in enumerate(ids):
            if pid is None:
                continue
            row = offset + i + 1
            first = seen.setdefault(pid, row)
            if first != row:
                rule = RULE_UNIQUE_ID.format(first=first)
                self._rows.append(Violation(PATIENTS_TABLE, row, pid, "patient_id", pid, rule))

    def _outcomes(
        self, raw: pd.DataFrame, typed: pd.DataFrame, ids: np.ndarray, offset: int
    ) -> None:
        # The rows the whole-table rule concerns: bone metastasis at enrollment known false.
        free = typed["bone_metastasis_at_enrollment"].to_numpy(dtype=float) == 0.0
        time, event = _given(raw, "time_days"), _given(raw, "event")
        self._carried |= bool((free & time & event).any())
        missing = np.flatnonzero(free & ~time & ~event)
        self._missing_rows.append(missing + offset + 1)
        self._missing_ids.append(ids[missing])

    def violations(self) -> list[Violation]:
        """Every violation of the table, in the whole-table validation's order."""
        rows = list(self._rows)
        if self._carried:
            for numbers, ids in zip(self._missing_rows, self._missing_ids, strict=True):
                rows += [
                    Violation(PATIENTS_TABLE, int(row), pid, None, None, RULE_OUTCOME_MIXED)
                    for row, pid in zip(numbers, ids, strict=True)
                ]
        found = self._table_level + in_report_order(rows, _names(PATIENT_COLUMNS))
        if self.n_rows == 0:
            found = [Violation(PATIENTS_TABLE, None, None, None, None, RULE_NO_ROWS), *found]
        return found


def _given(raw: pd.DataFrame, name: str) -> np.ndarray:
    """Which rows give a value in column ``name`` (its first column of that name)."""
    labels = [str(c) for c in raw.columns]
    if name not in labels:
        return np.zeros(len(raw), dtype=bool)
    column = raw.iloc[:, labels.index(name)]
    missing = column.isna().to_numpy()
    if column.dtype == object:
        missing |= (column == "").to_numpy(dtype=bool)
    return ~missing


class _DrawsAcrossChunks:
    """The ``oc_measurements`` table read and checked in chunks, kept compact for scoring.

    Per draw, a patient code (int32) and the day (float64) are kept for the rule across rows
    (unique ``(patient_id, day)``) and for the check that each draw's patient exists; the draws
    the chunks need (every draw, or the day-0 ones) are kept as a code and their float columns.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_size: int, day0_only: bool) -> None:
        self.path = path
        self.unreadable: list[Violation] = []
        self._table_level: list[Violation] = []
        self._rows: list[Violation] = []
        self._code_of: dict[str, int] = {}
        codes: list[np.ndarray] = []
        days: list[np.ndarray] = []
        kept: list[pd.DataFrame] = []
        n_rows = 0
        try:
            for raw in read_chunks(path, chunk_size, table=MEASUREMENTS_TABLE):
                typed, found = check_measurements(raw, None)
                for v in found:
                    if v.row is None:
                        if n_rows == 0:  # the header is the same in every chunk
                            self._table_level.append(v)
                    elif not (v.column == "day" and _CHUNK_DRAW_REPEAT.fullmatch(v.rule)):
                        self._rows.append(replace(v, row=v.row + n_rows))
                code = self._codes(typed["patient_id"].to_numpy(dtype=object))
                day = typed["day"].to_numpy(dtype=float)
                codes.append(code)
                days.append(day)
                keep = day == 0.0 if day0_only else np.ones(len(day), dtype=bool)
                kept.append(typed.loc[keep].assign(patient_id=code[keep]))
                n_rows += len(raw)
        except ContractError as exc:
            self.unreadable = exc.violations
            return
        self._ids = np.array(list(self._code_of), dtype=object)
        self._id_of_code = np.append(self._ids, None)  # code -1 (no valid id) reads None
        self._codes_all = np.concatenate(codes)
        del codes
        self._repeats(np.concatenate(days))
        del days
        self.frame = pd.concat(kept, ignore_index=True)

    def _codes(self, ids: np.ndarray) -> np.ndarray:
        """Each id's code (-1 for no valid id), numbering new ids in order of appearance."""
        local, uniques = pd.factorize(ids, use_na_sentinel=True)
        table = self._code_of
        mapped = np.array([table.setdefault(pid, len(table)) for pid in uniques], dtype=np.int32)
        return np.where(local >= 0, mapped[np.maximum(local, 0)] if len(mapped) else -1, -1)

    def _repeats(self, days: np.ndarray) -> None:
        """Every draw whose (patient_id, day) an earlier draw has: rows, and that first row.

        The draws are sorted by key in parts of patients (about a million draws each), so that
        the sort's working arrays stay small whatever the size of the table.
        """
        codes = self._codes_all
        valid = (codes >= 0) & ~np.isnan(days)
        parts = max(1, len(codes) // DRAWS_PER_SORT)
        repeated, firsts = [], []
        for part in range(parts):
            rows = np.flatnonzero(valid & (codes % parts == part))
            # A stable sort by (patient, day): within a key, the draws stay in file order.
            order = rows[np.lexsort((days[rows], codes[rows]))]
            key_codes, key_days = codes[order], days[order]
            same = np.zeros(len(order), dtype=bool)
            same[1:] = (key_codes[1:] == key_codes[:-1]) & (key_days[1:] == key_days[:-1])
            starts = np.maximum.accumulate(np.where(same, 0, np.arange(len(order))))
            repeated.append(order[same])
            firsts.append(order[starts][same])
        by_row = np.argsort(np.concatenate(repeated), kind="stable")
        self._repeated = np.concatenate(repeated)[by_row]
        self._first = np.concatenate(firsts)[by_row]

    @property
    def failed(self) -> bool:
        """Whether the table alone already breaks the contract."""
        return bool(self._table_level or self._rows or len(self._repeated))

    def of(self, patient_ids: pd.Series) -> pd.DataFrame:
        """The kept draws of these patients, in file order, typed as the whole table."""
        codes = self.frame["patient_id"].to_numpy()
        member = np.zeros(len(self._ids) + 1, dtype=bool)  # the last place: no valid id
        wanted = [self._code_of.get(pid) for pid in patient_ids.to_numpy(dtype=object)]
        member[[c for c in wanted if c is not None]] = True
        mine = self.frame.loc[member[np.where(codes >= 0, codes, len(self._ids))]]
        ids = self._id_of_code[mine["patient_id"].to_numpy()]
        mine = mine.assign(patient_id=pd.Series(ids, index=mine.index, dtype=object))
        return mine.reset_index(drop=True)

    def violations(self, patients: dict[str, int] | None) -> list[Violation]:
        """Every violation of the table, in the whole-table validation's order.

        ``patients`` maps the patients' ids (None: the patients table has no id column, and
        the draws' patients are not checked).
        """
        found = list(self._rows)
        ids = self._id_of_code
        codes = np.where(self._codes_all >= 0, self._codes_all, len(self._ids))
        if len(self._repeated):
            raw_days = _raw_values(self.path, self._repeated, "day", MEASUREMENTS_TABLE)
            for row, first, value in zip(self._repeated, self._first, raw_days, strict=True):
                rule = RULE_UNIQUE_DRAW.format(first=int(first) + 1)
                pid = ids[codes[row]]
                found.append(Violation(MEASUREMENTS_TABLE, int(row) + 1, pid, "day", value, rule))
        if patients is not None:
            known = np.fromiter((pid in patients for pid in self._ids), dtype=bool)
            known = np.append(known, True)  # draws without a valid id are not checked
            for row in np.flatnonzero(~known[codes]):
                pid, rule = ids[codes[row]], RULE_UNKNOWN_PATIENT
                found.append(
                    Violation(MEASUREMENTS_TABLE, int(row) + 1, pid, "patient_id", pid, rule)
                )
        return self._table_level + in_report_order(found, _names(MEASUREMENT_COLUMNS))


def _raw_values(
    path: str | os.PathLike[str], rows: np.ndarray, column: str, table: str
) -> list[object]:
    """The values as read of ``column`` at these 0-based rows (a second reading of the file)."""
    wanted = np.sort(rows)
    values: dict[int, object] = {}
    offset = 0
    for raw in read_chunks(path, DEFAULT_CHUNK_SIZE, table=table):
        labels = [str(c) for c in raw.columns]
        here = wanted[(wanted >= offset) & (wanted < offset + len(raw))]
        for row in here:
            values[int(row)] = python_value(raw.iloc[int(row) - offset, labels.index(column)])
        offset += len(raw)
    return [values[int(row)] for row in rows]
