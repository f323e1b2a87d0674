"""A validated cohort: both tables checked together, read from files or given as frames."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from features.contract.files import (
    read_table,
)
from features.contract.tables import (
    check_measurements,
    check_patients,
)
from features.contract.violations import (
    MEASUREMENTS_TABLE,
    PATIENTS_TABLE,
    RULE_NO_ROWS,
    ContractError,
    Violation,
)
from features.schema import (
    OUTCOME_COLUMNS,
)


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
    return validate_cohort(*read_cohort_tables(patients_path, measurements_path))


def read_cohort_tables(
    patients_path: str | os.PathLike[str],
    measurements_path: str | os.PathLike[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read a cohort's files as raw tables, not yet validated (:func:`load_cohort` validates).

    Raises
    ------
    ContractError
        When a file cannot be read; both files are tried, every problem reported at once.
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
    return patients, measurements
