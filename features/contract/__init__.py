"""Validator of data contract v1.2 (``shared/data-contract.md``).

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

Where each part lives: :mod:`~features.contract.violations` (the rule texts, :class:`Violation`,
:class:`ContractError`), :mod:`~features.contract.columns` (the rules of one column and a
table's header), :mod:`~features.contract.tables` (the rules of one table, from frames or
records), :mod:`~features.contract.files` (reading CSV and Parquet, whole or in chunks),
:mod:`~features.contract.cohort` (both tables together: :class:`Cohort`) and
:mod:`~features.contract.chunks` (the same, chunk by chunk in bounded memory). Import from here.
"""

from features.contract.chunks import DEFAULT_CHUNK_SIZE, CohortChunk, iter_cohort
from features.contract.cohort import Cohort, load_cohort, validate_cohort
from features.contract.columns import TYPED_FILE
from features.contract.files import read_chunks, read_table
from features.contract.tables import (
    check_measurement_records,
    check_measurements,
    check_patient_records,
    check_patients,
)
from features.contract.violations import (
    FIRST_ROWS_SHOWN,
    MEASUREMENTS_TABLE,
    PATIENTS_TABLE,
    RULE_BONE_MET_EARLY,
    RULE_DUPLICATE_COLUMN,
    RULE_EMPTY_HEADER,
    RULE_EVENTS_LE_PBMC,
    RULE_FINITE,
    RULE_INTEGER,
    RULE_MAX_INTEGER,
    RULE_MEASUREMENT_VALUE,
    RULE_MISSING_COLUMN,
    RULE_NO_ROWS,
    RULE_NUMBER,
    RULE_OUTCOME_BONE_MET,
    RULE_OUTCOME_MIXED,
    RULE_OUTCOME_NOT_ACCEPTED,
    RULE_OUTCOME_PAIR,
    RULE_PATIENT_ID,
    RULE_PERCENT_AGREES,
    RULE_READ,
    RULE_REQUIRED,
    RULE_STRING,
    RULE_UNIQUE_DRAW,
    RULE_UNIQUE_ID,
    RULE_UNKNOWN_COLUMN,
    RULE_UNKNOWN_PATIENT,
    RULE_VISCERAL_EARLY,
    ContractError,
    Violation,
)
from features.schema import CONTRACT_VERSION

__all__ = [
    "Cohort",
    "CohortChunk",
    "DEFAULT_CHUNK_SIZE",
    "ContractError",
    "Violation",
    "check_measurement_records",
    "check_measurements",
    "check_patient_records",
    "check_patients",
    "iter_cohort",
    "load_cohort",
    "read_chunks",
    "read_table",
    "validate_cohort",
    "CONTRACT_VERSION",
    "FIRST_ROWS_SHOWN",
    "MEASUREMENTS_TABLE",
    "PATIENTS_TABLE",
    "RULE_BONE_MET_EARLY",
    "RULE_DUPLICATE_COLUMN",
    "RULE_EMPTY_HEADER",
    "RULE_EVENTS_LE_PBMC",
    "RULE_FINITE",
    "RULE_INTEGER",
    "RULE_MAX_INTEGER",
    "RULE_MEASUREMENT_VALUE",
    "RULE_MISSING_COLUMN",
    "RULE_NO_ROWS",
    "RULE_NUMBER",
    "RULE_OUTCOME_BONE_MET",
    "RULE_OUTCOME_MIXED",
    "RULE_OUTCOME_NOT_ACCEPTED",
    "RULE_OUTCOME_PAIR",
    "RULE_PATIENT_ID",
    "RULE_PERCENT_AGREES",
    "RULE_READ",
    "RULE_REQUIRED",
    "RULE_STRING",
    "RULE_UNIQUE_DRAW",
    "RULE_UNIQUE_ID",
    "RULE_UNKNOWN_COLUMN",
    "RULE_UNKNOWN_PATIENT",
    "RULE_VISCERAL_EARLY",
    "TYPED_FILE",
]
