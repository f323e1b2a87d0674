"""One answer for one input (issues 9.3 and 10.5): files and requests follow the same rules.

- an integer column: ``2.0`` is the integer 2 and ``2.5`` is rejected, in a CSV cell, a Parquet
  float column and a request (the API's model is generated from the same spec and calls the
  same rule, :func:`features.schema.integer_value`);
- a number stored as text in a Parquet file is the wrong type, as the same text is in a request;
- a rule broken in a whole column is one paragraph of the error message, not a line per row;
- a header-only ``patients`` file gets the same answer from ``validate``, ``train`` and
  ``predict`` (all read it through :func:`features.contract.load_cohort`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from features.contract import (
    RULE_INTEGER,
    RULE_MAX_INTEGER,
    RULE_NO_ROWS,
    RULE_NUMBER,
    ContractError,
    load_cohort,
)
from features.schema import MAX_INTEGER
from serving.schemas import PatientRecord

REPO = Path(__file__).resolve().parents[3]
BASE = {
    "patient_id": "P0001",
    "age_years": 54.0,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
}


def _file_rules(tmp_path: Path, column: str, value: object, fmt: str) -> list[str]:
    """The rules a one-row patients file breaks when ``column`` holds ``value``."""
    frame = pd.DataFrame([{**BASE, column: value}])
    path = tmp_path / f"patients.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    try:
        load_cohort(path)
    except ContractError as err:
        return [v.rule for v in err.violations if v.column == column]
    return []


def _request_accepts(column: str, value: object) -> bool:
    try:
        PatientRecord.model_validate_json(json.dumps({**BASE, column: value}))
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("column", ["histologic_grade", "positive_lymph_nodes", "pbmc_events"])
def test_integral_number_is_an_integer_in_files_and_requests(tmp_path, column):
    assert _file_rules(tmp_path, column, 2.0, "csv") == []
    assert _file_rules(tmp_path, column, 2.0, "parquet") == []
    assert load_cohort(tmp_path / "patients.parquet").patients[column].tolist() == [2.0]
    assert _request_accepts(column, 2.0) and _request_accepts(column, 2)
    record = PatientRecord.model_validate_json(json.dumps({**BASE, column: 2.0}))
    assert getattr(record, column) == 2 and type(getattr(record, column)) is int


@pytest.mark.parametrize("column", ["histologic_grade", "positive_lymph_nodes", "pbmc_events"])
def test_fraction_is_no_integer_in_files_and_requests(tmp_path, column):
    assert _file_rules(tmp_path, column, 2.5, "csv") == [RULE_INTEGER]
    assert _file_rules(tmp_path, column, 2.5, "parquet") == [RULE_INTEGER]
    assert not _request_accepts(column, 2.5)


def test_count_beyond_float_precision_is_out_of_range_in_files_and_requests(tmp_path):
    # JSON has no limit on an integer's size; a float64 holds integers exactly up to 2**53.
    assert _file_rules(tmp_path, "pbmc_events", str(10**400), "csv") == [RULE_INTEGER]
    assert _file_rules(tmp_path, "pbmc_events", MAX_INTEGER * 4, "parquet") == [RULE_MAX_INTEGER]
    assert _file_rules(tmp_path, "pbmc_events", MAX_INTEGER, "parquet") == []
    assert _request_accepts("pbmc_events", MAX_INTEGER)
    for value in (MAX_INTEGER * 4, 10**400):
        assert not _request_accepts("pbmc_events", value)


@pytest.mark.parametrize(
    ("column", "text", "rule"),
    [
        ("age_years", "54", RULE_NUMBER),
        ("histologic_grade", "2", RULE_INTEGER),
        ("chemotherapy", "true", "must be true or false"),
    ],
)
def test_text_in_a_parquet_column_follows_the_request_rule(tmp_path, column, text, rule):
    """A CSV is all text, and "54" there is the number 54; Parquet and JSON carry types."""
    assert _file_rules(tmp_path, column, text, "csv") == []
    frame = pd.DataFrame([{**BASE, "age_years": 54.0, column: text}])
    frame[column] = frame[column].astype(object)
    path = tmp_path / "typed.parquet"
    frame.to_parquet(path, index=False)
    with pytest.raises(ContractError) as caught:
        load_cohort(path)
    assert [(v.column, v.rule) for v in caught.value.violations] == [(column, rule)]
    assert not _request_accepts(column, text)


def test_a_rule_broken_in_a_whole_column_is_one_paragraph(tmp_path):
    rows = [
        {**BASE, "patient_id": f"P{k:04d}", "age_years": f"{50 + k % 30} y"} for k in range(400)
    ]
    rows[5]["tumor_size_mm"] = "-1"
    path = tmp_path / "patients.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(ContractError) as caught:
        load_cohort(path)
    assert len(caught.value.violations) == 401  # every violation stays available
    assert str(caught.value).splitlines() == [
        "cohort breaks data contract v1.2: 401 violation(s)",
        "patients, column age_years: must be a number, in 400 rows; first: row 1 (patient_id "
        "P0000) value '50 y'; row 2 (patient_id P0001) value '51 y'; row 3 (patient_id P0002) "
        "value '52 y'",
        "patients row 6 (patient_id P0005), column tumor_size_mm, value '-1': must be >0 and <=300",
    ]


def test_header_only_file_gets_one_answer_from_validate_train_and_predict(tmp_path):
    good = Path(__file__).parent / "good" / "patients.csv"
    header_only = tmp_path / "patients.csv"
    header_only.write_text(good.read_text().splitlines()[0] + "\n")
    with pytest.raises(ContractError) as caught:
        load_cohort(header_only)
    assert [v.rule for v in caught.value.violations] == [RULE_NO_ROWS]
    env = {"BONEMET_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    answers = []
    for command in (
        ["validate"],
        ["train", "--families", "cox_ridge"],
        ["predict", "--out", str(tmp_path / "out.csv")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "training.cli", *command, "--patients", str(header_only)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        answers.append(proc.stderr.strip())
    assert (
        answers
        == [f"cohort breaks data contract v1.2: 1 violation(s)\npatients: {RULE_NO_ROWS}"] * 3
    )
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "data" / "mlflow.db").exists()
