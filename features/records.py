"""Typed frames back to contract rows, as a client would send them."""

from __future__ import annotations

import math

import pandas as pd

from features.schema import MEASUREMENT_SPECS, PATIENT_SPECS


def _value(kind: str, v: object) -> object:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if kind == "boolean":
        return bool(v)
    if kind == "integer":
        return int(v)
    if kind == "number":
        return float(v)
    return str(v)


def contract_rows(typed: pd.DataFrame, table: str = "patients") -> pd.DataFrame:
    """Rows of a typed frame with contract values: ``bool``, ``int``, ``float``, ``str``, None.

    The inverse of the validator's typing (booleans become ``True``/``False`` again, integer
    columns ``int``); used for input examples and for the records a client sends.
    """
    specs = PATIENT_SPECS if table == "patients" else MEASUREMENT_SPECS
    data = {
        column: pd.Series([_value(specs[column].kind, v) for v in typed[column]], dtype=object)
        for column in typed.columns
    }
    return pd.DataFrame(data, index=range(len(typed)))
