"""Violations of the data contract: the rule texts, :class:`Violation`, :class:`ContractError`.

Every check of :mod:`features.contract` reports through a :class:`Report`, which turns masks of
offending rows into :class:`Violation` objects; a :class:`ContractError` carries them all at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.schema import (
    CONTRACT_VERSION,
    MAX_INTEGER,
    PERCENT_ABS_TOL,
    PERCENT_REL_TOL,
)

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
RULE_PATIENT_ID = (
    "must be 1-64 characters of A-Z a-z 0-9 _ -, not beginning with - (a spreadsheet reads "
    "it as a formula)"
)
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
#: Lines of a ContractError's message after its first; the rest are counted, not printed
#: (``ContractError.violations`` keeps them all).
MAX_LINES_SHOWN = 100
#: Characters of an offending value echoed in a message; a longer one is cut and its length
#: given (a 50 MB cell is not printed back).
MAX_VALUE_SHOWN = 80


def shown_value(value: object) -> str:
    """``repr(value)``, a long text cut to :data:`MAX_VALUE_SHOWN` characters with its length."""
    if isinstance(value, str) and len(value) > MAX_VALUE_SHOWN:
        return f"{value[:MAX_VALUE_SHOWN]!r}... ({len(value):,} characters)"
    return repr(value)


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
            parts.append(f"value {shown_value(self.value)}")
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
    themselves (``ContractError.violations``) stay complete; the message shows at most
    :data:`MAX_LINES_SHOWN` lines and values cut to :data:`MAX_VALUE_SHOWN` characters.
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
    if len(lines) > MAX_LINES_SHOWN:
        hidden = len(lines) - MAX_LINES_SHOWN
        lines = lines[:MAX_LINES_SHOWN] + [f"... and {hidden:,} more line(s) of violations"]
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
            text += f" value {shown_value(v.value)}"
        shown.append(text)
    return f"{first.table}{column}: {first.rule}, in {len(group)} rows; first: " + "; ".join(shown)


class Report:
    """Collects violations of one table."""

    def __init__(self, table: str, n_rows: int) -> None:
        self.table = table
        self.n_rows = n_rows
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
            value = None if raw is None else python_value(raw[i])
            self.items.append(Violation(self.table, int(i) + 1, self.ids[i], column, value, text))

    def sorted(self, columns: Sequence[str]) -> list[Violation]:
        return in_report_order(self.items, columns)


def in_report_order(violations: Iterable[Violation], columns: Sequence[str]) -> list[Violation]:
    """Violations of one table as a report lists them: table-level first, then by row.

    Within a row, by the column's place in ``columns`` (a violation of no column last); ties
    keep the order given.
    """
    order = {name: k for k, name in enumerate(columns)}

    def key(v: Violation) -> tuple[int, int]:
        if v.row is None:
            return (0, 0)  # table-level first, in the order found
        return (v.row, order.get(v.column, len(order)) if v.column is not None else len(order))

    return sorted(violations, key=key)


def python_value(value: object) -> object:
    """A value as read, as a plain Python object (None for every kind of missing)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
