"""Typed contract rows as the feature builders read them: named columns, NaN or None missing.

Rows come from :func:`features.contract.check_patients` (a DataFrame) or
:func:`features.contract.check_patient_records` (a mapping of column arrays, the cheaper form
for a few rows on the serving path); these helpers read a column from either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

__all__ = ["Rows", "equals", "is_missing", "numeric", "require_columns", "require_fitted"]


#: Typed contract rows: a DataFrame, or a mapping of column name to a 1-D array (numbers and
#: booleans float with NaN, categories object with None), the cheaper form for a few rows.
Rows = pd.DataFrame | Mapping[str, np.ndarray]


def require_columns(X: Rows, columns: Sequence[str], who: str) -> None:
    """Refuse input that is not contract rows, naming the columns ``who`` lacks."""
    if not isinstance(X, pd.DataFrame | Mapping):
        raise TypeError(
            f"{who} expects a pandas DataFrame or a mapping of column arrays of contract rows, "
            f"got {type(X).__name__}"
        )
    missing = [c for c in columns if c not in X]
    if missing:
        raise KeyError(f"{who}: input lacks contract column(s): {', '.join(missing)}")


def require_fitted(estimator: object, attribute: str = "feature_names_out_") -> None:
    """scikit-learn's ``check_is_fitted(estimator, attribute)``, its tag lookups skipped when
    the fitted attribute is there (the serving hot path); otherwise its own error."""
    if not hasattr(estimator, attribute):
        check_is_fitted(estimator, attribute)


def numeric(X: Rows, column: str) -> np.ndarray:
    """One column as float64, NaN where missing (or not a number)."""
    values = X[column]
    if isinstance(values, pd.Series):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def is_missing(values: pd.Series | np.ndarray) -> np.ndarray:
    """Boolean mask of missing values (NaN, None, NA) of one column."""
    if isinstance(values, pd.Series):
        return values.isna().to_numpy()
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.isnan(values)
    # Every value text or None (a validated request): pd.isna's answer, one comparison. The
    # types are collected in C (no Python frame per value: the serving hot path).
    if values.dtype.kind == "O" and set(map(type, values.ravel().tolist())) <= _TEXT_OR_NONE:
        return values == None  # noqa: E711
    return pd.isna(values)


_TEXT_OR_NONE = frozenset((str, type(None)))


def equals(X: Rows, column: str, value: str, missing: np.ndarray | None = None) -> np.ndarray:
    """1.0 where ``column == value``, 0.0 where another value, NaN where missing.

    ``missing`` is the column's :func:`is_missing` mask when the caller has it already.
    """
    col = X[column]
    if missing is None:
        missing = is_missing(col)
    out = (np.asarray(col, dtype=object) == value).astype(float)
    out[missing] = np.nan
    return out
