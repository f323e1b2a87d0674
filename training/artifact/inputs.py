"""The one input check of a prediction: the service's API and the logged pyfunc's ``predict``.

Both refuse the same patient rows with the same words: :func:`check_prediction_rows` runs the
data contract's rules on the rows (a DataFrame for the pyfunc, JSON records for the API,
outcome columns refused, at least one row), and :func:`refusals` words each violation once, at
its 0-based position in the input (``loc`` and ``msg``, as the API's 400 lists them);
:func:`refusal_text` joins them into the message of the pyfunc's error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from features.contract import Violation, check_patient_records, check_patients
from features.contract.violations import shown_value
from features.schema import CONTRACT_VERSION

__all__ = [
    "RULE_NO_PATIENTS",
    "TABLE",
    "check_prediction_rows",
    "refusal_text",
    "refusals",
    "rule_at",
]

#: The table name of a prediction's rows in the contract's violations.
TABLE = "request"
#: A prediction needs a patient to answer for.
RULE_NO_PATIENTS = "at least one patient row is required"
_FIRST_ROW = re.compile(r"already in row (\d+)$")


def check_prediction_rows(
    rows: pd.DataFrame | Sequence[Mapping[str, Any]], *, validated: bool = False
) -> tuple[Any, list[Violation]]:
    """The data contract's rules on a prediction's patient rows.

    Parameters
    ----------
    rows : pandas.DataFrame or sequence of mapping
        Contract rows without outcome: a frame (the pyfunc) or JSON records (the API, no
        pandas on its hot path); the same rules run on both.
    validated : bool, default False
        Records only: True when every value already passed the rules of its own column
        (the API's pydantic models, generated from the same specs).

    Returns
    -------
    typed : pandas.DataFrame or dict of numpy.ndarray
        The typed rows (a frame for a frame, column arrays for records).
    violations : list of Violation
        Empty when the rows may be predicted.
    """
    if len(rows) == 0:
        return rows, [Violation(TABLE, None, None, None, None, RULE_NO_PATIENTS)]
    if isinstance(rows, pd.DataFrame):
        return check_patients(rows, table=TABLE, allow_outcome=False)
    return check_patient_records(rows, table=TABLE, allow_outcome=False, validated=validated)


def rule_at(rule: str) -> str:
    """A contract rule worded for an input whose rows are 0-based positions."""
    return _FIRST_ROW.sub(lambda m: f"already at position {int(m.group(1)) - 1}", rule)


def refusals(violations: Sequence[Violation]) -> list[dict[str, Any]]:
    """Each violation of the patient rows as ``{"loc": ["patients", position, column], "msg":
    rule}`` (position and column None/absent for a rule of the whole input)."""
    return [
        {
            "loc": ["patients", (v.row - 1) if v.row else None] + ([v.column] if v.column else []),
            "msg": rule_at(v.rule),
        }
        for v in violations
    ]


def refusal_text(violations: Sequence[Violation]) -> str:
    """The refusal as one message: a header, then per violation its :func:`refusals` location
    and rule, with the offending value where there is one."""
    lines = []
    for v, item in zip(violations, refusals(violations), strict=True):
        where = "patients" if v.row is None else f"patients position {v.row - 1}"
        if v.patient_id is not None:
            where += f" (patient_id {v.patient_id})"
        parts = [where] + ([f"column {v.column}"] if v.column else [])
        if v.value is not None:
            parts.append(f"value {shown_value(v.value)}")
        lines.append(", ".join(parts) + f": {item['msg']}")
    return (
        f"input breaks data contract v{CONTRACT_VERSION}: {len(violations)} violation(s)\n"
        + "\n".join(lines)
    )
