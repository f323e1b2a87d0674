"""(1.2) Provenance columns: validated like every column, accepted by the API, never predictors.

``site_id`` (patients) and ``lab_id``, ``instrument_id``, ``reagent_lot`` (both tables) are
identifiers with the pattern of ``patient_id`` in every representation (CSV text, Parquet types,
JSON records, the chunked reader, the request models); and a model trained on a cohort whose
site says who has the event predicts the same whatever site a patient comes from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.contract import (
    CONTRACT_VERSION,
    ContractError,
    check_measurements,
    check_patients,
    iter_cohort,
    load_cohort,
)
from features.schema import MEASUREMENT_SPECS, PATIENT_SPECS, PROVENANCE_COLUMNS

_PATTERN = (
    "must be 1-64 characters of A-Z a-z 0-9 _ -, not beginning with - (a spreadsheet reads it "
    "as a formula)"
)
_BASE = {
    "patient_id": ["P1", "P2"],
    "age_years": [54.0, 61.0],
    "disease_setting": ["metastatic", "early"],
    "bone_metastasis_at_enrollment": [False, False],
}


def test_contract_version_is_the_string_1_2() -> None:
    assert CONTRACT_VERSION == "1.2"


def test_provenance_columns_are_optional_strings_of_both_tables() -> None:
    for name in PROVENANCE_COLUMNS:
        assert PATIENT_SPECS[name].kind == "string" and not PATIENT_SPECS[name].required
    assert [n for n in PROVENANCE_COLUMNS if n in MEASUREMENT_SPECS] == [
        "lab_id",
        "instrument_id",
        "reagent_lot",
    ]


def test_parquet_provenance_must_be_text(tmp_path: Path) -> None:
    path = tmp_path / "patients.parquet"
    pd.DataFrame({**_BASE, "site_id": [7, 8], "reagent_lot": ["LOT_1", None]}).to_parquet(path)
    with pytest.raises(ContractError) as caught:
        load_cohort(path)
    assert [str(v) for v in caught.value.violations] == [
        "patients row 1 (patient_id P1), column site_id, value 7: must be a string",
        "patients row 2 (patient_id P2), column site_id, value 8: must be a string",
    ]
    good = tmp_path / "good.parquet"
    pd.DataFrame({**_BASE, "site_id": ["S1", "S2"], "lab_id": ["L", None]}).to_parquet(good)
    typed = load_cohort(good).patients
    assert typed["site_id"].tolist() == ["S1", "S2"]
    assert typed["lab_id"].tolist() == ["L", None]
    assert typed["instrument_id"].tolist() == [None, None]


def test_json_records_follow_the_same_rules() -> None:
    raw = pd.DataFrame(
        {**_BASE, "site_id": ["S 1", "S2"], "instrument_id": [None, 3]}, dtype=object
    )
    _, violations = check_patients(raw)
    assert [str(v) for v in violations] == [
        f"patients row 1 (patient_id P1), column site_id, value 'S 1': {_PATTERN}",
        "patients row 2 (patient_id P2), column instrument_id, value 3: must be a string",
    ]
    draws = pd.DataFrame(
        {"patient_id": ["P1"], "day": [0.0], "oc_positive_percent": [0.05], "lab_id": ["L/1"]},
        dtype=object,
    )
    _, violations = check_measurements(draws, {"P1"})
    assert [str(v) for v in violations] == [
        f"oc_measurements row 1 (patient_id P1), column lab_id, value 'L/1': {_PATTERN}"
    ]


def test_site_id_is_not_a_draw_column(tmp_path: Path) -> None:
    draws = pd.DataFrame(
        {"patient_id": ["P1"], "day": [0.0], "oc_positive_percent": [0.05], "site_id": ["S1"]}
    )
    _, violations = check_measurements(draws, {"P1"})
    assert [v.rule.split(" (")[0] for v in violations] == [
        "unknown column: not in data contract v1.2"
    ]


def test_chunked_reader_carries_the_provenance(tmp_path: Path) -> None:
    patients = tmp_path / "patients.csv"
    pd.DataFrame({**_BASE, "site_id": ["S1", "S2"], "lab_id": ["L1", ""]}).to_csv(
        patients, index=False
    )
    draws = tmp_path / "draws.csv"
    pd.DataFrame(
        {"patient_id": ["P1", "P2"], "day": [0, 0], "oc_positive_percent": [0.05, 0.04]}
        | {"reagent_lot": ["LOT-1", "LOT 2"]}
    ).to_csv(draws, index=False)
    with pytest.raises(ContractError) as caught:
        list(iter_cohort(patients, draws, chunk_size=1))
    assert [str(v) for v in caught.value.violations] == [
        f"oc_measurements row 2 (patient_id P2), column reagent_lot, value 'LOT 2': {_PATTERN}"
    ]
    draws.write_text(draws.read_text().replace("LOT 2", "LOT_2"))
    chunks = list(iter_cohort(patients, draws, chunk_size=1))
    assert [c.patients["site_id"].tolist() for c in chunks] == [["S1"], ["S2"]]
    assert [c.patients["lab_id"].tolist() for c in chunks] == [["L1"], [None]]
    assert [c.measurements["reagent_lot"].tolist() for c in chunks] == [["LOT-1"], ["LOT_2"]]


def test_request_models_accept_provenance_and_check_its_pattern() -> None:
    from serving.schemas import PatientRecord

    record = {**{k: v[0] for k, v in _BASE.items()}, "site_id": "S1", "lab_id": "LAB_2"}
    record["oc_measurements"] = [{"day": 0, "oc_positive_percent": 0.05, "reagent_lot": "L-3"}]
    parsed = PatientRecord.model_validate(record)
    assert parsed.site_id == "S1" and parsed.oc_measurements[0].reagent_lot == "L-3"
    with pytest.raises(ValidationError) as caught:
        PatientRecord.model_validate({**record, "instrument_id": "FACS Canto"})
    assert [e["loc"] for e in caught.value.errors()] == [("instrument_id",)]


def test_no_model_learns_the_site() -> None:
    """Sites that say who has the event, and labs that say who dies: a model reading them would
    separate patients by them; every family predicts the same whatever the provenance."""
    from tests.models.data import training_rows
    from training.config import TrainConfig
    from training.fitting.family_run import fit_risk_model
    from training.models.catalog import FAMILIES

    X, y, rows = training_rows(300, seed=5)
    event = X["event"].to_numpy(dtype=object)
    X = X.assign(
        site_id=np.where(event == "bone_metastasis", "S_BM", "S_OTHER"),
        lab_id=np.where(event == "death", "L_DEATH", "L_OTHER"),
        instrument_id="CYT1",
        reagent_lot=np.where(event == "censored", None, "LOT9"),
    )
    other = rows.assign(site_id="S_BM", lab_id="L_DEATH", instrument_id="X", reagent_lot="Y")
    plain = rows.assign(**{c: None for c in PROVENANCE_COLUMNS})
    for name in FAMILIES:
        model = fit_risk_model(name, FAMILIES[name].grid[0], TrainConfig(), X, y)
        assert not set(PROVENANCE_COLUMNS) & set(model.inputs), name
        pd.testing.assert_frame_equal(model.predict_frame(other), model.predict_frame(plain))
