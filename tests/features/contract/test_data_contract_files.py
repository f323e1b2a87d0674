"""Data contract v1 on files: the good cohort loads, every broken rule is caught and named.

``bad/`` holds one small file per contract rule, each built from a valid base row; ``EXPECTED``
below lists the exact violations each must raise. A ``patients_*`` file is loaded alone, an
``oc_measurements_*`` file together with ``good/patients.csv``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.contract import ContractError, Violation, load_cohort, read_table
from features.schema import MEASUREMENT_COLUMNS, PATIENT_COLUMNS

HERE = Path(__file__).parent
GOOD_PATIENTS = HERE / "good" / "patients.csv"
GOOD_MEASUREMENTS = HERE / "good" / "oc_measurements.csv"
BAD = HERE / "bad"

_AGREE = (
    "must agree with 100 * oc_positive_events / pbmc_events = 0.045"
    " (within 1% relative or 0.0001 absolute)"
)
_DRAW = (
    "value missing: a measurement carries oc_positive_percent, or both oc_positive_events and"
    " pbmc_events, or all three"
)
_EMPTY_WHEN_BONE_MET = "must be empty when bone_metastasis_at_enrollment is true"
_PATTERN = "must be 1-64 characters of A-Z a-z 0-9 _ -"
_LONG_ID = "P000000000100000000020000000003000000000400000000050000000006XXXX"  # 65 characters

# File name -> the exact violations, in report order; "{path}" stands for the file's path.
EXPECTED: dict[str, list[str]] = {
    # Table layout.
    "patients_unknown_column.csv": [
        "patients, column ki67_precent: unknown column: not in data contract v1.2"
        " (did you mean ki67_percent?)",
    ],
    # A header and no data row: one answer for validate, train and predict (issue 10.5).
    "patients_header_only.csv": [
        "patients: no rows: the table has a header but no patient (a cohort needs at least one)",
    ],
    "patients_missing_required_column.csv": [
        "patients, column disease_setting: required column missing",
    ],
    "patients_duplicate_column.csv": [
        "patients, column age_years: duplicate column: a column name may appear only once",
    ],
    "patients_empty_header.csv": [
        "patients: column without a name: the header cell is empty (column 5)",
    ],
    "patients_row_too_long.csv": [
        "patients, value '{path}': cannot read file: malformed CSV"
        " (Error tokenizing data. C error: Expected 4 fields in line 3, saw 5)",
    ],
    # Values of one column.
    "patients_required_value_missing.csv": [
        "patients row 2 (patient_id P0002), column age_years: required value missing",
        "patients row 3, column patient_id: required value missing",
        "patients row 3, column bone_metastasis_at_enrollment: required value missing",
    ],
    "patients_not_a_number.csv": [
        "patients row 2 (patient_id P0002), column age_years, value '54 years': must be a number",
        "patients row 2 (patient_id P0002), column ki67_percent, value '12,5': must be a number",
    ],
    "patients_not_finite.csv": [
        "patients row 2 (patient_id P0002), column tumor_size_mm, value 'inf':"
        " must be a finite number",
        "patients row 2 (patient_id P0002), column alkaline_phosphatase_u_per_l, value 'NaN':"
        " must be a finite number",
    ],
    "patients_not_an_integer.csv": [
        "patients row 2 (patient_id P0002), column histologic_grade, value '2.5':"
        " must be an integer",
        "patients row 2 (patient_id P0002), column positive_lymph_nodes, value 'three':"
        " must be an integer",
    ],
    "patients_not_a_boolean.csv": [
        "patients row 2 (patient_id P0002), column endocrine_therapy, value 'yes':"
        " must be true or false",
        "patients row 2 (patient_id P0002), column chemotherapy, value '2': must be true or false",
        "patients row 3 (patient_id P0003), column bone_metastasis_at_enrollment, value 'no':"
        " must be true or false",
    ],
    "patients_out_of_range.csv": [
        "patients row 2 (patient_id P0002), column age_years, value '17': must be 18-100",
        "patients row 2 (patient_id P0002), column ki67_percent, value '100.5': must be 0-100",
        "patients row 2 (patient_id P0002), column histologic_grade, value '4': must be 1-3",
        "patients row 2 (patient_id P0002), column positive_lymph_nodes, value '81': must be 0-80",
        "patients row 2 (patient_id P0002), column oc_positive_percent, value '-0.01':"
        " must be 0-100",
        "patients row 3 (patient_id P0003), column age_years, value '100.1': must be 18-100",
        "patients row 3 (patient_id P0003), column ki67_percent, value '-1': must be 0-100",
        "patients row 3 (patient_id P0003), column histologic_grade, value '0': must be 1-3",
        "patients row 3 (patient_id P0003), column positive_lymph_nodes, value '-1': must be 0-80",
    ],
    "patients_exclusive_minimum.csv": [
        "patients row 2 (patient_id P0002), column tumor_size_mm, value '0': must be >0 and <=300",
        "patients row 2 (patient_id P0002), column alkaline_phosphatase_u_per_l, value '0':"
        " must be >0 and <=5000",
        "patients row 2 (patient_id P0002), column pbmc_events, value '0': must be >0",
        "patients row 2 (patient_id P0002), column time_days, value '0': must be >0",
        "patients row 3 (patient_id P0003), column tumor_size_mm, value '300.5':"
        " must be >0 and <=300",
        "patients row 3 (patient_id P0003), column alkaline_phosphatase_u_per_l, value '5001':"
        " must be >0 and <=5000",
        "patients row 3 (patient_id P0003), column oc_positive_events, value '-1': must be >=0",
    ],
    "patients_category_not_allowed.csv": [
        "patients row 2 (patient_id P0002), column menopausal_status, value 'postmenopausal':"
        " must be one of pre, peri, post",
        "patients row 2 (patient_id P0002), column er_status, value 'Positive':"
        " must be one of positive, negative",
        "patients row 2 (patient_id P0002), column disease_setting, value 'Early':"
        " must be one of early, metastatic",
        "patients row 2 (patient_id P0002), column bone_targeted_therapy, value 'zoledronate':"
        " must be one of none, bisphosphonate, denosumab",
    ],
    "patients_id_pattern.csv": [
        f"patients row 2, column patient_id, value 'P 0002': {_PATTERN}",
        f"patients row 3, column patient_id, value 'PÜ003': {_PATTERN}",
        f"patients row 4, column patient_id, value '{_LONG_ID}': {_PATTERN}",
    ],
    "patients_id_duplicate.csv": [
        "patients row 3 (patient_id P0001), column patient_id, value 'P0001':"
        " must be unique, already in row 1",
        "patients row 4 (patient_id P0001), column patient_id, value 'P0001':"
        " must be unique, already in row 1",
    ],
    # Rules across columns.
    "patients_events_exceed_pbmc.csv": [
        "patients row 2 (patient_id P0002), column oc_positive_events, value '120':"
        " must be <= pbmc_events (100)",
    ],
    # Rows 1 and 2 are inside the tolerance (1 % relative, 0.0001 absolute); 3 and 4 are not.
    "patients_percent_disagrees.csv": [
        f"patients row 3 (patient_id P0003), column oc_positive_percent, value '0.0456': {_AGREE}",
        f"patients row 4 (patient_id P0004), column oc_positive_percent, value '0.45': {_AGREE}",
    ],
    "patients_visceral_when_early.csv": [
        "patients row 2 (patient_id P0002), column visceral_metastasis, value 'true':"
        " must not be true when disease_setting is early",
    ],
    # The contradicted bone status is reported once, not again as an outcome problem.
    "patients_bone_met_when_early.csv": [
        "patients row 2 (patient_id P0002), column bone_metastasis_at_enrollment, value 'true':"
        " must be false when disease_setting is early",
    ],
    "patients_outcome_with_bone_met.csv": [
        f"patients row 2 (patient_id P0002), column time_days, value '200': {_EMPTY_WHEN_BONE_MET}",
        "patients row 2 (patient_id P0002), column event, value 'bone_metastasis':"
        f" {_EMPTY_WHEN_BONE_MET}",
        f"patients row 3 (patient_id P0003), column event, value 'death': {_EMPTY_WHEN_BONE_MET}",
    ],
    "patients_outcome_half_filled.csv": [
        "patients row 2 (patient_id P0002), column event:"
        " required when time_days is given: time_days and event come together",
        "patients row 3 (patient_id P0003), column time_days:"
        " required when event is given: time_days and event come together",
    ],
    # Row 3 has bone metastasis at enrollment: no outcome is right for it.
    "patients_outcome_mixed.csv": [
        "patients row 2 (patient_id P0002): outcome missing while other rows carry one:"
        " a cohort is either for training (all outcomes) or for scoring (none)",
    ],
    # Parquet keeps its types: NaN is a missing value, inf is not a number, 2 is no boolean.
    "patients_typed_columns.parquet": [
        "patients row 1 (patient_id P0001), column ki67_percent, value inf:"
        " must be a finite number",
        "patients row 2 (patient_id P0002), column age_years: required value missing",
        "patients row 2 (patient_id P0002), column histologic_grade, value 2.5: must be an integer",
        "patients row 3 (patient_id P0003), column chemotherapy, value 2: must be true or false",
    ],
    # oc_measurements, checked against good/patients.csv.
    "oc_measurements_missing_required_column.csv": [
        "oc_measurements, column day: required column missing",
    ],
    "oc_measurements_unknown_patient.csv": [
        "oc_measurements row 2 (patient_id P9999), column patient_id, value 'P9999':"
        " must exist in patients",
        "oc_measurements row 3 (patient_id p0001), column patient_id, value 'p0001':"
        " must exist in patients",
    ],
    "oc_measurements_duplicate_draw.csv": [
        "oc_measurements row 3 (patient_id P0001), column day, value '90.0':"
        " (patient_id, day) must be unique, already in row 1",
    ],
    "oc_measurements_value_missing.csv": [
        f"oc_measurements row 2 (patient_id P0001), column oc_positive_percent: {_DRAW}",
        f"oc_measurements row 3 (patient_id P0001), column pbmc_events: {_DRAW}",
        f"oc_measurements row 4 (patient_id P0001), column oc_positive_events: {_DRAW}",
    ],
    "oc_measurements_events_exceed_pbmc.csv": [
        "oc_measurements row 2 (patient_id P0001), column oc_positive_events, value '1001':"
        " must be <= pbmc_events (1000)",
    ],
    "oc_measurements_percent_disagrees.csv": [
        f"oc_measurements row 2 (patient_id P0001), column oc_positive_percent, value '4.5':"
        f" {_AGREE}",
    ],
    # (1.2) The provenance columns are identifiers with the pattern of patient_id.
    "patients_provenance_pattern.csv": [
        f"patients row 1 (patient_id P0001), column site_id, value 'SITE A': {_PATTERN}",
        f"patients row 1 (patient_id P0001), column instrument_id, value 'CANTO II': {_PATTERN}",
        f"patients row 2 (patient_id P0002), column lab_id, value 'L\u00dcB': {_PATTERN}",
    ],
    "oc_measurements_provenance_pattern.csv": [
        f"oc_measurements row 1 (patient_id P0001), column lab_id, value 'LAB 1': {_PATTERN}",
        f"oc_measurements row 2 (patient_id P0002), column reagent_lot, value 'lot/2': {_PATTERN}",
    ],
    "oc_measurements_out_of_range.csv": [
        "oc_measurements row 2 (patient_id P0001), column day, value '-1': must be >=0",
        "oc_measurements row 2 (patient_id P0001), column alkaline_phosphatase_u_per_l,"
        " value '0': must be >0 and <=5000",
        "oc_measurements row 3 (patient_id P0001), column oc_positive_percent, value 'abc':"
        " must be a number",
    ],
}


def _load_bad(name: str) -> None:
    path = BAD / name
    if name.startswith("oc_measurements_"):
        load_cohort(GOOD_PATIENTS, path)
    else:
        load_cohort(path)


def test_every_bad_file_has_its_expectation() -> None:
    assert sorted(p.name for p in BAD.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_is_rejected_with_every_violation(name: str) -> None:
    with pytest.raises(ContractError) as caught:
        _load_bad(name)
    expected = [line.format(path=BAD / name) for line in EXPECTED[name]]
    assert [str(v) for v in caught.value.violations] == expected
    assert str(caught.value).splitlines() == [
        f"cohort breaks data contract v1.2: {len(expected)} violation(s)",
        *expected,
    ]


def test_parquet_case_really_has_typed_columns() -> None:
    dtypes = pd.read_parquet(BAD / "patients_typed_columns.parquet").dtypes
    assert dtypes["age_years"] == np.float64
    assert dtypes["bone_metastasis_at_enrollment"] == np.bool_
    assert dtypes["chemotherapy"] == np.int64
    assert isinstance(dtypes["patient_id"], pd.StringDtype)


def test_good_files_cover_every_contract_column() -> None:
    for path, specs in ((GOOD_PATIENTS, PATIENT_COLUMNS), (GOOD_MEASUREMENTS, MEASUREMENT_COLUMNS)):
        raw = read_table(path)
        assert list(raw.columns) == [s.name for s in specs]
        assert (raw != "").any().all(), f"{path.name}: a column never carries a value"


def test_good_cohort_loads_typed() -> None:
    cohort = load_cohort(GOOD_PATIENTS, GOOD_MEASUREMENTS)
    patients, draws = cohort.patients, cohort.measurements
    assert draws is not None
    assert patients["patient_id"].tolist() == ["P0001", "P0002", "P0003", "P0004", "P_0005-x"]
    assert cohort.has_outcome
    # Percent derived from the counts where missing: 100 * 120 / 150000 and 100 * 52 / 100000.
    assert patients["oc_positive_percent"].tolist()[:4] == pytest.approx([0.045, 0.08, 0.031, 0.12])
    assert np.isnan(patients.loc[4, "oc_positive_percent"])
    assert draws["oc_positive_percent"].tolist() == pytest.approx(
        [0.045, 0.052, 0.05, 0.08, 0.031, 0.02]
    )
    # "TRUE", "True", "true", "1" and their false forms all read as booleans.
    assert patients["visceral_metastasis"].tolist()[:4] == [0.0, 1.0, 0.0, 1.0]
    assert patients["endocrine_therapy"].tolist()[:4] == [1.0, 1.0, 1.0, 1.0]
    assert patients["chemotherapy"].tolist()[:4] == [0.0, 0.0, 0.0, 1.0]
    assert patients["time_days"].tolist()[2] == 2100.5
    assert draws["day"].tolist() == [0.0, 90.0, 180.0, 0.0, 0.0, 30.5]


def test_column_order_does_not_matter(tmp_path: Path) -> None:
    raw = read_table(GOOD_PATIENTS)
    shuffled = tmp_path / "patients.csv"
    raw[list(reversed(raw.columns))].to_csv(shuffled, index=False)
    expected = load_cohort(GOOD_PATIENTS).patients
    pd.testing.assert_frame_equal(load_cohort(shuffled).patients, expected)


def test_excel_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD_PATIENTS.read_bytes())
    assert load_cohort(path).patients["patient_id"].tolist()[0] == "P0001"


def test_violations_of_both_tables_are_reported_together(tmp_path: Path) -> None:
    patients = tmp_path / "patients.csv"
    patients.write_text(
        "patient_id,age_years,disease_setting,bone_metastasis_at_enrollment,er_status\n"
        "P0001,54,metastatic,false,positive\n"
        "P0002,abc,early,false,unknown\n"
        "P0001,61,early,true,negative\n",
        encoding="utf-8",
    )
    draws = tmp_path / "oc_measurements.parquet"
    pd.DataFrame(
        {"patient_id": ["P0001", "P0003"], "day": [-3.0, 0.0], "oc_positive_percent": [0.05, 0.04]}
    ).to_parquet(draws, index=False)
    with pytest.raises(
        ContractError, match=r"^cohort breaks data contract v1.2: 6 violation\(s\)\n"
    ) as caught:
        load_cohort(patients, draws)
    assert [str(v) for v in caught.value.violations] == [
        "patients row 2 (patient_id P0002), column age_years, value 'abc': must be a number",
        "patients row 2 (patient_id P0002), column er_status, value 'unknown':"
        " must be one of positive, negative",
        "patients row 3 (patient_id P0001), column patient_id, value 'P0001':"
        " must be unique, already in row 1",
        "patients row 3 (patient_id P0001), column bone_metastasis_at_enrollment, value 'true':"
        " must be false when disease_setting is early",
        "oc_measurements row 1 (patient_id P0001), column day, value -3.0: must be >=0",
        "oc_measurements row 2 (patient_id P0003), column patient_id, value 'P0003':"
        " must exist in patients",
    ]


def test_missing_file_is_a_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.csv"
    with pytest.raises(ContractError) as caught:
        load_cohort(path)
    assert caught.value.violations == [
        Violation("patients", None, None, None, str(path), "cannot read file: no such file")
    ]


def test_unknown_extension_is_a_contract_error(tmp_path: Path) -> None:
    path = tmp_path / "patients.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(ContractError) as caught:
        read_table(path)
    assert [str(v) for v in caught.value.violations] == [
        f"patients.xlsx, value '{path}': cannot read file:"
        " unknown extension '.xlsx' (expected .csv, .parquet, .pq)"
    ]


def test_both_unreadable_files_are_reported_together(tmp_path: Path) -> None:
    patients = tmp_path / "patients.parquet"
    patients.write_text("not parquet", encoding="utf-8")
    draws = tmp_path / "draws.csv"
    draws.write_bytes("patient_id,day\nP\xe9,0\n".encode("latin-1"))
    with pytest.raises(ContractError) as caught:
        load_cohort(patients, draws)
    tables = [(v.table, v.value) for v in caught.value.violations]
    assert tables == [("patients", str(patients)), ("oc_measurements", str(draws))]
    assert caught.value.violations[0].rule.startswith("cannot read file: not a readable Parquet")
    assert caught.value.violations[1].rule == "cannot read file: not UTF-8 text"


def test_empty_file_and_directory_are_contract_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(ContractError, match=r"empty\.csv': cannot read file: empty file"):
        read_table(empty)
    with pytest.raises(ContractError, match=r"folder\.csv': cannot read file: is a directory"):
        read_table(folder)


def test_contract_error_survives_pickling() -> None:
    with pytest.raises(ContractError) as caught:
        _load_bad("patients_id_duplicate.csv")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert copy.violations == caught.value.violations
    assert str(copy) == str(caught.value)
