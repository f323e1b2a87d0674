"""Data contract v1 on frames: typed output, every input representation, request records, scale."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import (
    Cohort,
    ContractError,
    Violation,
    check_measurements,
    check_patients,
    load_cohort,
    validate_cohort,
)
from features.schema import MEASUREMENT_COLUMNS, PATIENT_COLUMNS, PREDICTOR_COLUMNS

GOOD = Path(__file__).parent / "good"

BASE = {
    "patient_id": "P0001",
    "age_years": "54",
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": "false",
}


def _frame(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame([{**BASE, "patient_id": f"P{k:04d}", **row} for k, row in enumerate(rows)])


def _messages(violations: list[Violation]) -> list[str]:
    return [str(v) for v in violations]


def test_typed_frames_have_contract_columns_dtypes_and_range_index() -> None:
    cohort = load_cohort(GOOD / "patients.csv", GOOD / "oc_measurements.csv")
    assert cohort.measurements is not None
    for frame, specs in (
        (cohort.patients, PATIENT_COLUMNS),
        (cohort.measurements, MEASUREMENT_COLUMNS),
    ):
        assert list(frame.columns) == [s.name for s in specs]
        assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
        for spec in specs:
            column = frame[spec.name]
            if spec.kind in ("category", "string"):
                assert column.dtype == object, spec.name
                assert all(v is None or type(v) is str for v in column), spec.name
            else:
                assert column.dtype == np.float64, spec.name
    assert cohort.patients.loc[4, "er_status"] is None


def test_absent_optional_columns_are_added_all_missing() -> None:
    typed, violations = check_patients(_frame({}, {"ki67_percent": "20"}))
    assert violations == []
    assert list(typed.columns) == [s.name for s in PATIENT_COLUMNS]
    assert typed["menopausal_status"].tolist() == [None, None]
    assert typed["ki67_percent"].tolist()[1] == 20.0
    assert typed[["tumor_size_mm", "visceral_metastasis", "time_days"]].isna().all().all()


def test_scoring_cohort_has_no_outcome() -> None:
    assert not validate_cohort(_frame({}, {})).has_outcome
    # Every patient with bone metastasis at enrollment: nothing to follow up either.
    assert not validate_cohort(_frame({"bone_metastasis_at_enrollment": "true"})).has_outcome


TRUE_FORMS = ["true", "TRUE", "True", "1", True, np.True_, 1, 1.0]
FALSE_FORMS = ["false", "FALSE", "False", "0", False, np.False_, 0, 0.0]
MISSING_FORMS = ["", None, math.nan]


@pytest.mark.parametrize(
    ("given", "typed"),
    [(v, 1.0) for v in TRUE_FORMS]
    + [(v, 0.0) for v in FALSE_FORMS]
    + [(v, None) for v in MISSING_FORMS],
)
def test_boolean_forms(given: object, typed: float | None) -> None:
    raw = _frame({})
    raw["chemotherapy"] = pd.Series([given], dtype=object)
    out, violations = check_patients(raw)
    assert violations == []
    value = out.loc[0, "chemotherapy"]
    assert math.isnan(value) if typed is None else value == typed


@pytest.mark.parametrize("given", ["yes", "t", " true", "1.0", 2, -1, 0.5, "Y"])
def test_not_a_boolean(given: object) -> None:
    raw = _frame({})
    raw["chemotherapy"] = pd.Series([given], dtype=object)
    _, violations = check_patients(raw)
    assert [(v.column, v.value, v.rule) for v in violations] == [
        ("chemotherapy", given, "must be true or false")
    ]


def test_parquet_typed_columns_round_trip(tmp_path: Path) -> None:
    """A cohort stored with native column types (bool, nullable int, string) reads the same."""
    expected = load_cohort(GOOD / "patients.csv").patients
    native = expected.copy()
    native["patient_id"] = native["patient_id"].astype("string")
    native["bone_metastasis_at_enrollment"] = native["bone_metastasis_at_enrollment"].astype(bool)
    native["chemotherapy"] = native["chemotherapy"].astype("boolean")
    native["histologic_grade"] = native["histologic_grade"].astype("Int64")
    native["pbmc_events"] = native["pbmc_events"].astype("Int64")
    path = tmp_path / "patients.pq"
    native.to_parquet(path, index=False)
    pd.testing.assert_frame_equal(load_cohort(path).patients, expected)


def test_typed_output_validates_again_unchanged() -> None:
    cohort = load_cohort(GOOD / "patients.csv", GOOD / "oc_measurements.csv")
    again = validate_cohort(cohort.patients, cohort.measurements)
    pd.testing.assert_frame_equal(again.patients, cohort.patients)
    assert again.measurements is not None and cohort.measurements is not None
    pd.testing.assert_frame_equal(again.measurements, cohort.measurements)


def test_request_records_with_json_values() -> None:
    records = [
        {
            "patient_id": "P0001",
            "age_years": 54,
            "disease_setting": "metastatic",
            "bone_metastasis_at_enrollment": False,
            "er_status": "positive",
            "oc_positive_percent": 0.061,
            "chemotherapy": True,
            "histologic_grade": 2,
        },
        {
            "patient_id": "P0002",
            "age_years": "61.5",
            "disease_setting": "early",
            "bone_metastasis_at_enrollment": "FALSE",
            "oc_positive_events": 40,
            "pbmc_events": 100000,
            "time_days": 30,
        },
    ]
    typed, violations = check_patients(pd.DataFrame(records), table="request", allow_outcome=False)
    assert _messages(violations) == [
        "request, column time_days: unknown column: an outcome (time_days, event) is not accepted"
        " here"
    ]
    assert list(typed.columns) == list(PREDICTOR_COLUMNS)
    assert typed["age_years"].tolist() == [54.0, 61.5]
    assert typed["bone_metastasis_at_enrollment"].tolist() == [0.0, 0.0]
    assert typed["chemotherapy"].tolist()[0] == 1.0
    assert typed["histologic_grade"].tolist()[0] == 2.0
    assert typed["oc_positive_percent"].tolist() == pytest.approx([0.061, 0.04])
    assert typed["er_status"].tolist() == ["positive", None]


def test_request_values_of_the_wrong_json_type() -> None:
    records = [
        {
            "patient_id": 17,
            "age_years": True,
            "disease_setting": 1,
            "bone_metastasis_at_enrollment": "no",
            "ki67_percent": math.inf,
            "positive_lymph_nodes": 2.5,
            "tumor_size_mm": 10**400,
            "er_status": ["positive"],
        },
    ]
    # dtype=object keeps each JSON value as sent: pandas 2.3 cannot infer a column holding 10**400
    # (OverflowError), pandas 3 makes it object anyway.
    frame = pd.DataFrame(records, dtype=object)
    _, violations = check_patients(frame, table="request", allow_outcome=False)
    assert [(v.column, v.value, v.rule) for v in violations] == [
        ("patient_id", 17, "must be a string"),
        ("age_years", True, "must be a number"),
        ("er_status", ["positive"], "must be one of positive, negative"),
        ("ki67_percent", math.inf, "must be a finite number"),
        ("tumor_size_mm", 10**400, "must be a finite number"),
        ("positive_lymph_nodes", 2.5, "must be an integer"),
        ("disease_setting", 1, "must be one of early, metastatic"),
        ("bone_metastasis_at_enrollment", "no", "must be true or false"),
    ]
    assert all(v.table == "request" and v.row == 1 and v.patient_id is None for v in violations)


def test_pyfunc_records_with_an_integer_beyond_float_range_are_a_contract_error() -> None:
    """Records given to the pyfunc as a list are checked, not crashed on (pandas 2.3 overflow)."""
    from types import SimpleNamespace

    from mlflow.exceptions import MlflowException

    from training.artifact.adapter import predict_records_frame

    record = {
        "patient_id": "P1",
        "age_years": 54,
        "disease_setting": "metastatic",
        "bone_metastasis_at_enrollment": False,
        "tumor_size_mm": 10**400,
    }
    model = SimpleNamespace(horizons_months=(12,))
    with pytest.raises(MlflowException, match="column tumor_size_mm.*must be a finite number"):
        predict_records_frame(model, [record])


def test_one_mistake_gives_one_violation() -> None:
    """A broken value is named once: not also out of range, nor in the rules across columns."""
    raw = _frame(
        {"age_years": "abc"},
        {"oc_positive_events": "many", "pbmc_events": "100", "oc_positive_percent": "5"},
        {"disease_setting": "early", "visceral_metastasis": "maybe"},
    )
    _, violations = check_patients(raw)
    assert _messages(violations) == [
        "patients row 1 (patient_id P0000), column age_years, value 'abc': must be a number",
        "patients row 2 (patient_id P0001), column oc_positive_events, value 'many':"
        " must be an integer",
        "patients row 3 (patient_id P0002), column visceral_metastasis, value 'maybe':"
        " must be true or false",
    ]


def test_bad_values_are_missing_in_the_typed_frame() -> None:
    typed, violations = check_patients(_frame({"ki67_percent": "120", "er_status": "pos"}))
    assert len(violations) == 2
    assert math.isnan(typed.loc[0, "ki67_percent"]) and typed.loc[0, "er_status"] is None


def test_measurements_without_patients_skip_the_id_lookup() -> None:
    raw = pd.DataFrame(
        {"patient_id": ["P1", "P2"], "day": [0, 30], "oc_positive_percent": [0.1, 0.2]}
    )
    typed, violations = check_measurements(raw, None)
    assert violations == []
    assert typed["day"].tolist() == [0.0, 30.0]
    _, violations = check_measurements(raw, ["P1"], table="draws")
    assert _messages(violations) == [
        "draws row 2 (patient_id P2), column patient_id, value 'P2': must exist in patients"
    ]


def test_violation_fields() -> None:
    violation = Violation("patients", 3, "P0003", "age_years", "17", "must be 18-100")
    assert str(violation) == (
        "patients row 3 (patient_id P0003), column age_years, value '17': must be 18-100"
    )
    assert violation.as_dict() == {
        "table": "patients",
        "row": 3,
        "patient_id": "P0003",
        "column": "age_years",
        "value": "17",
        "rule": "must be 18-100",
    }
    assert str(Violation("patients", None, None, "age", None, "required column missing")) == (
        "patients, column age: required column missing"
    )


def test_cohort_error_lists_everything_in_its_message() -> None:
    with pytest.raises(
        ContractError,
        match=r"^cohort breaks data contract v1.2: 2 violation\(s\)\n"
        r"patients, column bone_metastasis_at_enrollment: required column missing\n"
        r"patients row 1 \(patient_id P0000\), column age_years, value '1':",
    ):
        validate_cohort(_frame({"age_years": "1"}).drop(columns="bone_metastasis_at_enrollment"))


def _large_cohort(n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    ids = np.char.add("P", np.arange(n).astype(str))
    events = rng.integers(0, 100, n)
    pbmc = rng.integers(50_000, 200_000, n)
    patients = pd.DataFrame(
        {
            "patient_id": ids,
            "age_years": rng.uniform(25, 90, n).round(1).astype(str),
            "disease_setting": np.where(rng.random(n) < 0.5, "early", "metastatic"),
            "bone_metastasis_at_enrollment": "false",
            "er_status": np.where(rng.random(n) < 0.7, "positive", "negative"),
            "chemotherapy": np.where(rng.random(n) < 0.4, "TRUE", "0"),
            "histologic_grade": rng.integers(1, 4, n).astype(str),
            "oc_positive_events": events.astype(str),
            "pbmc_events": pbmc.astype(str),
            "oc_positive_percent": (100 * events / pbmc).astype(str),
            "time_days": rng.uniform(1, 3000, n).round(1).astype(str),
            "event": rng.choice(["bone_metastasis", "death", "censored"], n),
        }
    )
    draws = pd.DataFrame(
        {
            "patient_id": np.repeat(ids, 2),
            "day": np.tile(["0", "90"], n),
            "oc_positive_percent": rng.uniform(0, 0.2, 2 * n).astype(str),
        }
    )
    return patients, draws


def test_large_cohort_is_checked_in_full() -> None:
    patients, draws = _large_cohort(100_000)
    cohort = validate_cohort(patients, draws)
    assert isinstance(cohort, Cohort) and cohort.has_outcome
    assert len(cohort.patients) == 100_000 and len(cohort.measurements) == 200_000
    patients.loc[73_456, "histologic_grade"] = "4"
    draws.loc[199_999, "day"] = "0"
    with pytest.raises(ContractError) as caught:
        validate_cohort(patients, draws)
    assert _messages(caught.value.violations) == [
        "patients row 73457 (patient_id P73456), column histologic_grade, value '4': must be 1-3",
        "oc_measurements row 200000 (patient_id P99999), column day, value '0':"
        " (patient_id, day) must be unique, already in row 199999",
    ]
