"""Synthetic contract rows: input examples and smoke cases that carry no patient's data.

A logged model's input example travels wherever the model goes (registry, Bento, container, a
colleague's download), so it must not be rows of the training cohort. These rows are built from
the contract alone (:mod:`features.schema`): every predictor column, categories taken from the
allowed values, numbers typical of the contract's clinical ranges, ids that say what they are.
"""

from __future__ import annotations

import pandas as pd

from features.schema import PATIENT_SPECS, PREDICTOR_COLUMNS

#: Typical values inside each numeric column's contract range: (first row, second row). The
#: third row leaves every optional column missing, as a client may.
_TYPICAL_NUMBERS: dict[str, tuple[float, float]] = {
    "age_years": (55.0, 67.0),
    "ki67_percent": (20.0, 35.0),
    "histologic_grade": (2, 3),
    "tumor_size_mm": (22.0, 41.0),
    "positive_lymph_nodes": (1, 4),
    "alkaline_phosphatase_u_per_l": (80.0, 140.0),
    "oc_positive_percent": (0.05, 0.08),
    "oc_positive_events": (50, 80),
    "pbmc_events": (100_000, 100_000),
}
#: The second row is a metastatic patient (visceral disease, bone-targeted therapy allowed).
_SETTINGS = ("early", "metastatic", "early")


def synthetic_patient_rows() -> pd.DataFrame:
    """Three synthetic contract rows (every predictor column, contract values, no outcome).

    Ids are ``SYNTHETIC-1`` to ``SYNTHETIC-3``. The rows pass the contract's rules across
    columns (early disease without visceral or bone metastasis, the marker percent agreeing
    with its counts); the third has only the required columns.

    Returns
    -------
    pandas.DataFrame
        Object columns holding ``str``, ``float``, ``int``, ``bool`` or None, as a JSON
        client sends them.
    """
    rows = []
    for i, setting in enumerate(_SETTINGS):
        full = i < 2
        row: dict[str, object] = {}
        for name in PREDICTOR_COLUMNS:
            spec = PATIENT_SPECS[name]
            if name == "patient_id":
                value: object = f"SYNTHETIC-{i + 1}"
            elif name == "disease_setting":
                value = setting
            elif name == "bone_metastasis_at_enrollment":
                value = False
            elif name == "visceral_metastasis":
                value = setting == "metastatic" if full else None
            elif not full and not spec.required:
                value = None
            elif spec.kind == "string":  # (1.2) provenance: accepted, never a predictor
                value = f"SYNTHETIC-{name}"
            elif spec.kind == "category":
                value = spec.allowed[i % len(spec.allowed)]
            elif spec.kind == "boolean":
                value = i % 2 == 0
            elif spec.kind == "integer":
                value = int(_TYPICAL_NUMBERS[name][i])
            else:
                value = float(_TYPICAL_NUMBERS[name][i if full else 0])
            row[name] = value
        if full:
            row["oc_positive_percent"] = 100.0 * row["oc_positive_events"] / row["pbmc_events"]
        rows.append(row)
    return pd.DataFrame(rows, columns=list(PREDICTOR_COLUMNS), dtype=object)
