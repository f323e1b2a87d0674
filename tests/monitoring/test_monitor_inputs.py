"""``bonemet monitor`` refuses bad or empty inputs with a clear message, exit 2, nothing written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import app

RUNNER = CliRunner()


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory, small_cohort):
    """Reference and current folders (copies of the session's small cohort) with dates."""
    import pandas as pd

    root = tmp_path_factory.mktemp("monitor-inputs")
    for name in ("reference", "current"):
        folder = root / name
        folder.mkdir()
        patients = pd.read_csv(small_cohort / "patients.csv", dtype=str, keep_default_na=False)
        patients.insert(1, "enrollment_date", "2025-01-01")
        patients.to_csv(folder / "patients.csv", index=False)
        shutil.copy(small_cohort / "oc_measurements.csv", folder / "oc_measurements.csv")
    return root


def _monitor(root: Path, *args: str):
    out = root / "out"
    # --verbose: the quiet mode of a real command would change this process's warning filters.
    result = RUNNER.invoke(
        app,
        ["--verbose", "monitor", "--out", str(out), *args],
        env={"BONEMET_DATA_DIR": str(root / "data")},
    )
    return result, out


def _refused(root: Path, *args: str) -> str:
    result, out = _monitor(root, *args)
    assert result.exit_code == 2, result.output
    assert not out.exists() and not (root / "data").exists()
    return result.output


def test_missing_and_empty_inputs(cohorts, tmp_path):
    ref = str(cohorts / "reference")
    text = _refused(
        cohorts, "--reference", ref, "--current", str(tmp_path / "nowhere"), "--no-model"
    )
    assert "nowhere: no such file or folder" in text
    (tmp_path / "patients.csv").write_text(
        "patient_id,age_years,disease_setting,bone_metastasis_at_enrollment\n"
    )
    text = _refused(cohorts, "--reference", ref, "--current", str(tmp_path), "--no-model")
    assert "--current" in text and "no rows" in text
    (tmp_path / "empty").mkdir()
    text = _refused(cohorts, "--reference", ref, "--current", str(tmp_path / "empty"), "--no-model")
    assert "the folder has no patients.csv" in text


def test_bad_enrollment_dates_and_bad_qc(cohorts, tmp_path):
    import pandas as pd

    patients = pd.read_csv(cohorts / "current" / "patients.csv", dtype=str, keep_default_na=False)
    patients.loc[2, "enrollment_date"] = "12/03/2025"
    patients.to_csv(tmp_path / "patients.csv", index=False)
    pd.DataFrame(
        {
            "lab_id": ["L1"],
            "instrument_id": ["C1"],
            "reagent_lot": ["X"],
            "date": ["2025-01-01"],
            "control_level": ["low"],
            "value": ["abc"],
        }
    ).to_csv(tmp_path / "qc.csv", index=False)
    text = _refused(
        cohorts,
        "--reference",
        str(cohorts / "reference"),
        "--current",
        str(tmp_path / "patients.csv"),
        "--qc",
        str(tmp_path / "qc.csv"),
        "--no-model",
    )
    assert "row 3, column enrollment_date: not a date YYYY-MM-DD (value '12/03/2025')" in text
    assert "qc, row 1, column value: must be a finite number > 0 (value 'abc')" in text


def test_bad_options_and_predictions(cohorts, tmp_path):
    ref, cur = str(cohorts / "reference"), str(cohorts / "current")
    text = _refused(
        cohorts, "--reference", ref, "--current", cur, "--by", "lab_id,colour", "--no-model"
    )
    assert "--by takes columns among site_id, lab_id, instrument_id, reagent_lot" in text
    text = _refused(cohorts, "--reference", ref, "--current", cur, "--reference-predictions", ref)
    assert "give both --reference-predictions and --current-predictions" in text
    (tmp_path / "pred.csv").write_text("patient_id,p_bone_met_24m\nP000001,0.2\nP000002,1.7\n")
    text = _refused(
        cohorts,
        "--reference",
        ref,
        "--current",
        cur,
        "--reference-predictions",
        str(tmp_path / "pred.csv"),
        "--current-predictions",
        str(tmp_path / "pred.csv"),
    )
    assert "row 2, column p_bone_met_24m: must be a probability in [0, 1]" in text
    assert "patient(s) of the cohort have no prediction" in text


def test_a_model_that_cannot_be_loaded_is_named(cohorts):
    text = _refused(
        cohorts,
        "--reference",
        str(cohorts / "reference"),
        "--current",
        str(cohorts / "current"),
        "--model-uri",
        str(cohorts / "no-such-model"),
    )
    assert f"cannot monitor: cannot load model {cohorts / 'no-such-model'}" in text
    assert "--no-model" in text
