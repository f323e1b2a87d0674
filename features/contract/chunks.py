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

The ``oc_measurements`` table is read and checked whole, before the first chunk (its own rules
across rows, unique ``(patient_id, day)``, need every draw), and kept typed: each chunk comes
with the draws of its patients, in file order. Memory therefore holds one chunk of patients,
the ids seen and the typed draws table (about 100 bytes per draw).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from features.contract.files import read_chunks, read_table
from features.contract.tables import check_measurements, check_patients
from features.contract.violations import (
    MEASUREMENTS_TABLE,
    PATIENTS_TABLE,
    RULE_NO_ROWS,
    RULE_OUTCOME_MIXED,
    RULE_UNIQUE_ID,
    RULE_UNKNOWN_PATIENT,
    ContractError,
    Violation,
    in_report_order,
)
from features.schema import MEASUREMENT_COLUMNS, PATIENT_COLUMNS

#: Patients per chunk of :func:`iter_cohort` by default.
DEFAULT_CHUNK_SIZE = 50_000

# A chunk's own "already in row N" names a row of the chunk: replaced by the cohort's.
_CHUNK_REPEAT = re.compile(re.escape(RULE_UNIQUE_ID).replace(re.escape("{first}"), r"\d+"))


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
        The ``oc_measurements`` table, read whole.
    chunk_size : int, default 50,000
        Patients per chunk.

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
    draw_violations: list[Violation] = []
    if measurements_path is not None:
        try:
            raw = read_table(measurements_path, table=MEASUREMENTS_TABLE)
        except ContractError as exc:
            unreadable = exc.violations
        else:
            typed, draw_violations = check_measurements(raw, None)
            del raw
            draws = _DrawsByPatient(typed)
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
        if len(typed) and not (draw_violations or rules.failed):
            mine = None if draws is None else draws.of(typed["patient_id"])
            yield CohortChunk(first_row, typed, mine)
    if unreadable:
        raise ContractError(unreadable)
    violations = rules.violations()
    if draws is not None:
        if rules.has_ids:
            draw_violations = in_report_order(
                draw_violations + draws.unknown(rules.first_row), _names(MEASUREMENT_COLUMNS)
            )
        violations += draw_violations
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


class _DrawsByPatient:
    """The typed draws table, from which each chunk takes its patients' draws."""

    def __init__(self, typed: pd.DataFrame) -> None:
        self.frame = typed
        codes, uniques = pd.factorize(typed["patient_id"], use_na_sentinel=True)
        self._codes = codes
        self._ids = pd.Index(uniques, dtype=object)

    def of(self, patient_ids: pd.Series) -> pd.DataFrame:
        """The draws of these patients, in file order."""
        found = self._ids.get_indexer(patient_ids.to_numpy(dtype=object))
        member = np.zeros(len(self._ids) + 1, dtype=bool)  # the last place: no valid id
        member[found[found >= 0]] = True
        mask = member[np.where(self._codes >= 0, self._codes, len(self._ids))]
        return self.frame.loc[mask].reset_index(drop=True)

    def unknown(self, patients: dict[str, int]) -> list[Violation]:
        """A violation for each draw whose (well-formed) patient_id is not a patient's."""
        known = np.fromiter((pid in patients for pid in self._ids), dtype=bool)
        known = np.append(known, True)  # draws without a valid id are not checked
        rows = np.flatnonzero(~known[np.where(self._codes >= 0, self._codes, len(self._ids))])
        ids = self.frame["patient_id"].to_numpy(dtype=object)
        rule = RULE_UNKNOWN_PATIENT
        return [
            Violation(MEASUREMENTS_TABLE, int(i) + 1, ids[i], "patient_id", ids[i], rule)
            for i in rows
        ]
