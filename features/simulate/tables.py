"""The simulated cohort as contract tables (typed frames) and as CSV files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.csv_output import neutralise
from features.schema import PATIENT_COLUMNS, PROVENANCE_COLUMNS
from features.simulate.config import (
    STR_DTYPE,
)
from features.vocabulary import CAUSE_CODES

#: The contract's ``event`` words indexed by cause code.
_EVENT_WORDS = tuple(sorted(CAUSE_CODES, key=CAUSE_CODES.__getitem__))


def patient_ids(n: int) -> np.ndarray:
    width = max(6, len(str(n)))
    return np.array([f"P{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def _str_column(values: np.ndarray, labels: tuple[str, ...], missing: np.ndarray) -> pd.Series:
    text = np.asarray(labels, dtype=object)[values]
    text[missing] = None
    return pd.Series(pd.array(text, dtype=STR_DTYPE))


def _bool_column(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    arr = pd.array(values.astype(bool), dtype="boolean")
    arr[missing] = pd.NA
    return pd.Series(arr)


def int_column(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    arr = pd.array(values.astype(np.int64), dtype="Int64")
    arr[missing] = pd.NA
    return pd.Series(arr)


#: The provenance columns of a draw (``oc_measurements``): all but the patient's ``site_id``.
DRAW_PROVENANCE = tuple(c for c in PROVENANCE_COLUMNS if c != "site_id")


def provenance_columns(n: int, names: tuple[str, ...] = PROVENANCE_COLUMNS) -> dict:
    """The (1.2) provenance columns, all missing: a cohort of one unnamed site and lab."""
    return {name: pd.Series(pd.array([None] * n, dtype=STR_DTYPE)) for name in names}


def patients_frame(
    ids: np.ndarray,
    cov: dict[str, np.ndarray],
    miss: dict[str, np.ndarray],
    percent0: np.ndarray,
    events0: np.ndarray,
    pbmc0: np.ndarray,
    counts_kept0: np.ndarray,
    out: dict[str, np.ndarray],
) -> pd.DataFrame:
    n = len(ids)
    none = np.zeros(n, dtype=bool)
    pos_neg = ("negative", "positive")
    event_missing = out["event"] < 0
    data = {
        "patient_id": pd.Series(pd.array(ids, dtype=STR_DTYPE)),
        "age_years": pd.Series(cov["age"]),
        "menopausal_status": _str_column(cov["meno"], ("pre", "peri", "post"), miss["meno"]),
        "er_status": _str_column(cov["er"].astype(int), pos_neg, miss["er"]),
        "pr_status": _str_column(cov["pr"].astype(int), pos_neg, miss["pr"]),
        "her2_status": _str_column(cov["her2"].astype(int), pos_neg, miss["her2"]),
        "ki67_percent": pd.Series(np.where(miss["ki67"], np.nan, cov["ki67"])),
        "histologic_grade": int_column(cov["grade"], miss["grade"]),
        "tumor_size_mm": pd.Series(np.where(miss["size"], np.nan, cov["size"])),
        "positive_lymph_nodes": int_column(cov["nodes"], miss["nodes"]),
        "disease_setting": _str_column(cov["met"].astype(int), ("early", "metastatic"), none),
        "visceral_metastasis": _bool_column(cov["visceral"], miss["visceral"]),
        "bone_metastasis_at_enrollment": _bool_column(cov["bone"], none),
        "bone_targeted_therapy": _str_column(
            cov["btt"], ("none", "bisphosphonate", "denosumab"), miss["btt"]
        ),
        "endocrine_therapy": _bool_column(cov["endocrine"], miss["endocrine"]),
        "chemotherapy": _bool_column(cov["chemo"], miss["chemo"]),
        "alkaline_phosphatase_u_per_l": pd.Series(np.where(miss["alp"], np.nan, cov["alp"])),
        "oc_positive_percent": pd.Series(percent0),
        "oc_positive_events": int_column(events0, ~counts_kept0),
        "pbmc_events": int_column(pbmc0, ~counts_kept0),
        **provenance_columns(n),
        "time_days": pd.Series(out["time_days"]),
        "event": _str_column(
            np.maximum(out["event"], 0), _EVENT_WORDS, event_missing
        ),
    }
    frame = pd.DataFrame(data)
    return frame[[c.name for c in PATIENT_COLUMNS]]


def _text(column: pd.Series, float_format: str) -> list[str]:
    """Cells of one column as CSV text: booleans ``true``/``false``, missing values empty."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=object, na_value=None).tolist()
        return ["" if v is None else ("true" if v else "false") for v in values]
    if pd.api.types.is_float_dtype(dtype):
        numbers = column.to_numpy(dtype=float, na_value=np.nan).tolist()
        return ["" if v != v else float_format % v for v in numbers]
    if pd.api.types.is_integer_dtype(dtype):
        missing = column.isna().to_numpy().tolist()
        ints = column.to_numpy(dtype=np.int64, na_value=0).tolist()
        return ["" if na else str(v) for na, v in zip(missing, ints, strict=True)]
    return [
        "" if v is None else neutralise(str(v))
        for v in column.to_numpy(dtype=object, na_value=None)
    ]


def write_csv(frame: pd.DataFrame, path: Path, float_format: str, block: int = 16384) -> None:
    """Write ``frame`` as CSV with a fixed float format (no quoting: no value holds a comma).

    Formatting is done here rather than by :meth:`pandas.DataFrame.to_csv` so that booleans are
    written ``true``/``false`` and the output does not depend on pandas' float printing. Rows are
    written in blocks to keep memory bounded. Text cells are neutralised as in every CSV the
    project writes (:func:`features.csv_output.neutralise`).
    """
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(neutralise(str(c)) for c in frame.columns) + "\n")
        for start in range(0, len(frame), block):
            part = frame.iloc[start : start + block]
            cells = [_text(part[name], float_format) for name in part.columns]
            fh.write("\n".join(",".join(row) for row in zip(*cells, strict=True)))
            fh.write("\n")
