"""The monitor's inputs beyond the data contract, checked like the contract's tables.

* ``enrollment_date`` (optional column of the ``patients`` table the monitor reads, ISO 8601
  ``YYYY-MM-DD``): the calendar day each patient was enrolled. A draw's date is its patient's
  enrollment date plus its ``day``. The monitor removes the column before the contract's
  validation (the contract itself has no enrollment date), so the same files still pass
  ``bonemet validate`` without it. Without it, nothing that needs calendar time is computed
  (onset dates, windows, the CUSUM) and the report says so.
* the ``qc`` table of control-material results (:data:`features.monitor_schema.QC_COLUMNS`).

Every problem is collected and raised at once in :class:`MonitorInputError`, each naming the
table, the row (1-based, header excluded), the column, the value and the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.monitor_schema import ENROLLMENT_DATE, QC_COLUMNS, QC_TABLE
from features.vocabulary import PROBABILITY_COLUMN

__all__ = [
    "ENROLLMENT_DATE",
    "QC_COLUMNS",
    "QC_TABLE",
    "MonitorInputError",
    "Problem",
    "parse_dates",
    "split_enrollment",
    "check_qc",
]

_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Problem:
    """One problem of an input: table, row (1-based), column, value, rule."""

    table: str
    row: int | None
    column: str | None
    value: object
    rule: str

    def __str__(self) -> str:
        where = [self.table]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column}")
        value = "" if self.value is None else f" (value {self.value!r})"
        return f"{', '.join(where)}: {self.rule}{value}"


class MonitorInputError(ValueError):
    """Inputs the monitor cannot use; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem] | str):
        self.problems = (
            [Problem("input", None, None, None, problems)]
            if isinstance(problems, str)
            else list(problems)
        )
        shown = self.problems[:50]
        more = len(self.problems) - len(shown)
        text = "\n".join(str(p) for p in shown)
        if more:
            text += f"\n... and {more} more"
        super().__init__(text)


def parse_dates(values: pd.Series, table: str, column: str) -> tuple[np.ndarray, list[Problem]]:
    """ISO dates as ``datetime64[D]`` (NaT for empty cells) and the problems of bad ones."""
    out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[D]")
    problems: list[Problem] = []
    for i, raw in enumerate(values.tolist()):
        if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NaT:
            continue
        if isinstance(raw, pd.Timestamp | np.datetime64):
            out[i] = np.datetime64(pd.Timestamp(raw).date(), "D")
            continue
        text = str(raw).strip()
        if text == "":
            continue
        try:
            if not _DATE.match(text):
                raise ValueError(text)
            out[i] = np.datetime64(text, "D")
        except ValueError:
            problems.append(Problem(table, i + 1, column, raw, "not a date YYYY-MM-DD"))
    return out, problems


def split_enrollment(
    raw: pd.DataFrame, table: str = "patients"
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The raw patients table without ``enrollment_date`` and the dates (None when absent).

    Raises
    ------
    MonitorInputError
        When a date is not ``YYYY-MM-DD`` or some rows have one and others none.
    """
    if ENROLLMENT_DATE not in [str(c) for c in raw.columns]:
        return raw, None
    dates, problems = parse_dates(raw[ENROLLMENT_DATE], table, ENROLLMENT_DATE)
    missing = np.isnat(dates)
    bad_rows = {p.row for p in problems}
    if missing.any() and not missing.all():
        problems += [
            Problem(
                table,
                i + 1,
                ENROLLMENT_DATE,
                None,
                "missing: give every patient an enrollment date or leave the column out",
            )
            for i in np.flatnonzero(missing)
            if i + 1 not in bad_rows
        ]
    if problems:
        raise MonitorInputError(sorted(problems, key=lambda p: p.row or 0))
    return raw.drop(columns=[ENROLLMENT_DATE]), None if missing.all() else dates


def check_qc(raw: pd.DataFrame) -> pd.DataFrame:
    """The ``qc`` table typed: id columns str, ``date`` datetime64[D], numbers float.

    Raises
    ------
    MonitorInputError
        Listing every problem: unknown or missing columns, no rows, bad ids, dates, numbers.
    """
    problems: list[Problem] = []
    columns = [str(c) for c in raw.columns]
    known = {c.name for c in QC_COLUMNS}
    for c in columns:
        if c not in known:
            problems.append(
                Problem(
                    QC_TABLE,
                    None,
                    c,
                    None,
                    "unknown column (allowed: " + ", ".join(sorted(known)) + ")",
                )
            )
    for spec in QC_COLUMNS:
        if spec.required and spec.name not in columns:
            problems.append(Problem(QC_TABLE, None, spec.name, None, "required column missing"))
    if len(raw) == 0:
        problems.append(Problem(QC_TABLE, None, None, None, "the table has no rows"))
    if problems:
        raise MonitorInputError(problems)
    typed = pd.DataFrame(index=raw.index)
    for spec in QC_COLUMNS:
        if spec.name not in columns:
            if not spec.required:
                typed[spec.name] = np.nan
            continue
        values = raw[spec.name]
        if spec.kind == "date":
            dates, found = parse_dates(values, QC_TABLE, spec.name)
            problems += found
            bad = {p.row for p in found}
            problems += [
                Problem(QC_TABLE, i + 1, spec.name, None, "required value missing")
                for i in np.flatnonzero(np.isnat(dates))
                if i + 1 not in bad
            ]
            typed[spec.name] = dates
        elif spec.kind == "id":
            text = values.map(
                lambda v: (
                    "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()
                )
            )
            for i, v in enumerate(text.tolist()):
                if v == "":
                    problems.append(
                        Problem(QC_TABLE, i + 1, spec.name, None, "required value missing")
                    )
                elif not _ID.match(v):
                    problems.append(
                        Problem(
                            QC_TABLE,
                            i + 1,
                            spec.name,
                            v,
                            "1-64 characters of A-Z a-z 0-9 _ -, not beginning with -",
                        )
                    )
            typed[spec.name] = text.astype(object)
        else:
            numbers = pd.to_numeric(
                values.map(lambda v: np.nan if isinstance(v, str) and v.strip() == "" else v),
                errors="coerce",
            )
            for i, (v, x) in enumerate(zip(values.tolist(), numbers.tolist(), strict=True)):
                empty = (
                    v is None
                    or (isinstance(v, float) and np.isnan(v))
                    or (isinstance(v, str) and v.strip() == "")
                )
                if empty:
                    if spec.required:
                        problems.append(
                            Problem(QC_TABLE, i + 1, spec.name, None, "required value missing")
                        )
                elif not np.isfinite(x) or x <= 0:
                    problems.append(
                        Problem(QC_TABLE, i + 1, spec.name, v, "must be a finite number > 0")
                    )
            typed[spec.name] = numbers.astype(float)
    if problems:
        raise MonitorInputError(sorted(problems, key=lambda p: (p.row or 0, p.column or "")))
    return typed.reset_index(drop=True)


def cohort_files(path, measurements=None) -> tuple:
    """The patients and measurements files of ``path``: a patients table, or a folder holding
    ``patients.csv`` (or ``.parquet``) and optionally ``oc_measurements.csv`` (or
    ``.parquet``), the layout ``bonemet simulate`` writes. ``measurements`` overrides.

    Raises
    ------
    MonitorInputError
        When the path does not exist or the folder has no patients table.
    """
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise MonitorInputError(f"{p}: no such file or folder")
    if p.is_dir():
        found = [
            p / f"patients.{ext}"
            for ext in ("csv", "parquet", "pq")
            if (p / f"patients.{ext}").exists()
        ]
        if not found:
            raise MonitorInputError(f"{p}: the folder has no patients.csv or patients.parquet")
        if measurements is None:
            extra = [
                p / f"oc_measurements.{ext}"
                for ext in ("csv", "parquet", "pq")
                if (p / f"oc_measurements.{ext}").exists()
            ]
            measurements = extra[0] if extra else None
        return found[0], measurements
    return p, measurements


def load_monitor_cohort(patients_path, measurements_path=None):
    """A cohort for the monitor: the contract's validation after :func:`split_enrollment`.

    Returns
    -------
    (features.contract.Cohort, numpy.ndarray of datetime64[D] or None)

    Raises
    ------
    features.contract.ContractError, MonitorInputError
    """
    from features.contract import validate_cohort
    from features.contract.cohort import read_cohort_tables

    raw, measurements = read_cohort_tables(patients_path, measurements_path)
    raw, dates = split_enrollment(raw)
    return validate_cohort(raw, measurements), dates


__all__ += ["cohort_files", "load_monitor_cohort"]


def check_predictions(frame: pd.DataFrame, patient_ids, free, table: str) -> pd.DataFrame:
    """A batch-scoring output (``bonemet predict``) for the monitor: ``patient_id`` and
    ``p_bone_met_<h>m`` columns (``p_death_<h>m`` optional), a row for every patient free of
    bone metastasis at enrollment, probabilities in [0, 1].

    Raises
    ------
    MonitorInputError
        Naming the missing columns, patients or bad values.
    """
    problems: list[Problem] = []
    columns = [str(c) for c in frame.columns]
    event = {c: m.group(1) for c in columns if (m := PROBABILITY_COLUMN.match(c))}
    horizons = [c for c in columns if event.get(c) == "bone_met"]
    if "patient_id" not in columns:
        problems.append(Problem(table, None, "patient_id", None, "required column missing"))
    if not horizons:
        problems.append(
            Problem(
                table,
                None,
                "p_bone_met_<h>m",
                None,
                "no predicted incidence column (the layout of bonemet predict)",
            )
        )
    if problems:
        raise MonitorInputError(problems)
    prob_cols = horizons + [c for c in columns if event.get(c) == "death"]
    out = pd.DataFrame({"patient_id": frame["patient_id"].astype(str).str.strip()})
    for c in prob_cols:
        values = pd.to_numeric(
            frame[c].map(lambda v: np.nan if isinstance(v, str) and v.strip() == "" else v),
            errors="coerce",
        )
        bad = values.notna() & ~values.between(0.0, 1.0)
        raw_text = frame[c].astype(str).str.strip()
        bad |= values.isna() & ~raw_text.isin(["", "nan", "None", "<NA>"])
        problems += [
            Problem(table, i + 1, c, frame[c].iloc[i], "must be a probability in [0, 1]")
            for i in np.flatnonzero(bad.to_numpy())[:20]
        ]
        out[c] = values.to_numpy(dtype=float)
    dup = out["patient_id"].duplicated().to_numpy()
    problems += [
        Problem(table, i + 1, "patient_id", out["patient_id"].iloc[i], "duplicate patient_id")
        for i in np.flatnonzero(dup)[:20]
    ]
    needed = {str(p) for p, f in zip(patient_ids, free, strict=True) if f}
    have = set(out["patient_id"])
    missing = sorted(needed - have)
    if missing:
        problems.append(
            Problem(
                table,
                None,
                "patient_id",
                ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""),
                f"{len(missing)} patient(s) of the cohort have no prediction",
            )
        )
    lacking = out.loc[out["patient_id"].isin(needed), horizons].isna().any(axis=1).to_numpy()
    problems += [
        Problem(
            table,
            i + 1,
            "p_bone_met_<h>m",
            None,
            "missing prediction for a patient free of bone metastasis at enrollment",
        )
        for i in np.flatnonzero(lacking)[:20]
    ]
    if problems:
        raise MonitorInputError(problems)
    return out


__all__ += ["check_predictions"]
