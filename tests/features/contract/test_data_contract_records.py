"""Data contract v1 on JSON-style records: the same rules and messages as on frames.

``check_patient_records`` / ``check_measurement_records`` are the service's hot path (no pandas);
they must report exactly what ``check_patients`` / ``check_measurements`` report for the same
rows, and type the values the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    RULE_MAX_INTEGER,
    check_measurement_records,
    check_measurements,
    check_patient_records,
    check_patients,
    read_table,
)
from features.schema import MEASUREMENT_COLUMNS, PATIENT_COLUMNS, PREDICTOR_COLUMNS

BAD = Path(__file__).parent / "bad"
GOOD = Path(__file__).parent / "good"


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """Rows of a frame as records, missing cells as None (JSON null)."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({k: (None if v is pd.NA or v != v else v) for k, v in row.items()})
    return out


def _same_typed(frame: pd.DataFrame | dict, columns: dict[str, np.ndarray]) -> None:
    """The same columns, in the same order, with the same values and kinds (object or float)."""
    assert list(columns) == list(frame if isinstance(frame, dict) else frame.columns)
    for name, values in columns.items():
        expected = np.asarray(frame[name])
        if expected.dtype == object:
            assert values.dtype == object, name
            assert list(values) == list(expected), name
        else:
            np.testing.assert_array_equal(values, expected, err_msg=name)


def _unique_header(path: Path) -> bool:
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    return len(header) == len(set(header)) and all(h.strip() for h in header)


# Files refused before validation (duplicate or empty header cells, a row longer than the
# header) have no records to compare, nor has a header without rows.
PATIENT_FILES = sorted(
    p
    for p in BAD.glob("patients_*.csv")
    if _unique_header(p) and p.name not in ("patients_row_too_long.csv", "patients_header_only.csv")
) + [GOOD / "patients.csv", BAD / "patients_typed_columns.parquet"]


@pytest.mark.parametrize("path", PATIENT_FILES, ids=lambda p: p.name)
def test_patient_records_report_what_the_frame_reports(path: Path) -> None:
    frame = read_table(path, table="patients")
    records = _records(frame)
    typed, violations = check_patients(frame)
    columns, found = check_patient_records(records, table="patients", allow_outcome=True)
    assert [str(v) for v in found] == [str(v) for v in violations]
    _same_typed(typed, columns)


MEASUREMENT_FILES = sorted(p for p in BAD.glob("oc_measurements_*") if _unique_header(p)) + [
    GOOD / "oc_measurements.csv"
]


@pytest.mark.parametrize("path", MEASUREMENT_FILES, ids=lambda p: p.name)
def test_measurement_records_report_what_the_frame_reports(path: Path) -> None:
    frame = read_table(path, table="oc_measurements")
    ids = set(check_patients(read_table(GOOD / "patients.csv"))[0]["patient_id"].dropna())
    typed, violations = check_measurements(frame, ids)
    columns, found = check_measurement_records(_records(frame), ids, table="oc_measurements")
    assert [str(v) for v in found] == [str(v) for v in violations]
    _same_typed(typed, columns)


def test_json_typed_request_records() -> None:
    """Numbers, booleans and nulls as JSON gives them; absent keys are missing values."""
    records = [
        {
            "patient_id": "P1",
            "age_years": 54,
            "disease_setting": "metastatic",
            "bone_metastasis_at_enrollment": False,
            "oc_positive_events": 30,
            "pbmc_events": 100000,
            "histologic_grade": 2,
            "er_status": None,
        },
        {
            "patient_id": "P2",
            "age_years": 61.5,
            "disease_setting": "early",
            "bone_metastasis_at_enrollment": True,
            "visceral_metastasis": True,
            "oc_positive_percent": 0.05,
            "oc_positive_events": 70,
            "pbmc_events": 100000,
        },
        {"patient_id": "P1", "age_years": 17, "disease_setting": "early", "time_days": 10},
    ]
    columns, violations = check_patient_records(records)
    assert list(columns) == list(PREDICTOR_COLUMNS)
    assert columns["oc_positive_percent"][0] == pytest.approx(0.03)  # derived from the counts
    assert columns["histologic_grade"][0] == 2.0 and columns["age_years"][1] == 61.5
    assert columns["er_status"][0] is None and np.isnan(columns["ki67_percent"][0])
    messages = sorted((v.row, v.column, v.rule) for v in violations if v.row)
    table_level = [(v.column, v.rule) for v in violations if v.row is None]
    assert table_level == [
        ("time_days", "unknown column: an outcome (time_days, event) is not accepted here")
    ]
    rules = {(row, column): rule for row, column, rule in messages}
    assert (
        rules[(2, "bone_metastasis_at_enrollment")] == "must be false when disease_setting is early"
    )
    assert rules[(2, "visceral_metastasis")] == "must not be true when disease_setting is early"
    assert rules[(2, "oc_positive_percent")].startswith("must agree with")
    assert rules[(3, "patient_id")] == "must be unique, already in row 1"
    assert rules[(3, "age_years")].startswith("must be")
    assert rules[(3, "bone_metastasis_at_enrollment")] == "required value missing"


def test_record_values_of_the_wrong_kind_are_violations_not_crashes() -> None:
    records = [
        {
            "patient_id": ["P1"],
            "age_years": {"a": 1},
            "disease_setting": 3,
            "bone_metastasis_at_enrollment": "maybe",
            "ki67_percent": float("inf"),
            "tumor_size_mm": float("nan"),
            "positive_lymph_nodes": 2.5,
            "pbmc_events": 10**400,
        }
    ]
    columns, violations = check_patient_records(records)
    by_column = {v.column: v.rule for v in violations}
    assert by_column["patient_id"] == "must be a string"
    assert by_column["age_years"] == "must be a number"
    assert by_column["disease_setting"].startswith("must be one of")
    assert by_column["bone_metastasis_at_enrollment"].startswith("must be")
    assert by_column["ki67_percent"] == "must be a finite number"
    assert by_column["positive_lymph_nodes"] == "must be an integer"
    assert "tumor_size_mm" not in by_column  # a NaN float is a missing value
    # An integer beyond float range is an integer out of range (issue 10.3), not a type error.
    assert by_column["pbmc_events"] == RULE_MAX_INTEGER
    assert np.isnan(columns["tumor_size_mm"][0])


def test_empty_records() -> None:
    columns, violations = check_patient_records([])
    assert all(len(v) == 0 for v in columns.values())
    assert [v.column for v in violations] == [
        s.name for s in PATIENT_COLUMNS if s.required and s.name not in ("time_days", "event")
    ]
    columns, violations = check_measurement_records([], {"P1"})
    assert list(columns) == [s.name for s in MEASUREMENT_COLUMNS]


def _json_records(typed: pd.DataFrame, table: str) -> list[dict[str, object]]:
    from features.records import contract_rows

    return contract_rows(typed, table).to_dict(orient="records")


def test_validated_records_skip_only_the_column_rules() -> None:
    """``validated=True`` (values already checked by the API's models) runs the rules across
    columns exactly as the full check does."""
    patients = check_patients(read_table(GOOD / "patients.csv"))[0]
    draws = check_measurements(read_table(GOOD / "oc_measurements.csv"), None)[0]
    records = _json_records(patients, "patients")
    # Break rules across columns (the column values themselves stay valid).
    records[0] = {**records[0], "oc_positive_events": 90, "pbmc_events": 40}
    records[1] = {**records[1], "disease_setting": "early", "visceral_metastasis": True}
    records[2] = {**records[2], "patient_id": records[0]["patient_id"]}
    records[3] = {
        **records[3],
        "oc_positive_percent": 50.0,
        "oc_positive_events": 1,
        "pbmc_events": 1000,
    }
    full = check_patient_records(records, table="patients", allow_outcome=True)
    fast = check_patient_records(records, table="patients", allow_outcome=True, validated=True)
    assert [str(v) for v in fast[1]] == [str(v) for v in full[1]]
    assert len(full[1]) >= 4
    _same_typed(full[0], fast[0])
    ids = {r["patient_id"] for r in records}
    rows = _json_records(draws, "oc_measurements")
    rows[1] = {**rows[1], "day": rows[0]["day"], "patient_id": rows[0]["patient_id"]}
    full = check_measurement_records(rows, ids)
    fast = check_measurement_records(rows, ids, validated=True)
    assert [str(v) for v in fast[1]] == [str(v) for v in full[1]] and full[1]
    _same_typed(full[0], fast[0])
