"""No patient record travels with a model or sits in a training run's artifacts.

Every patient id of the training cohort carries a marker string and a few patients get
covariate values with distinctive decimals (inside the cohort's range, away from its ends).
After a real ``bonemet train`` every file of the store (model artifacts with their input
examples, tables, figures, model cards, dataset metadata, the SQLite database) and the
command's output are searched for the marker and for the marked values, as text and as the
binary doubles a pickle or a database holds.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.tracking.conftest import fast_env, train_args

pytestmark = pytest.mark.slow
MARK = "Zq7Xv"
MARKED_COLUMNS = ("age_years", "ki67_percent", "tumor_size_mm", "alkaline_phosphatase_u_per_l")


def _marked_cohort(source: Path, out: Path) -> list[float]:
    """Copy of ``source`` with marked ids and marked values; returns the marked values."""
    out.mkdir()
    patients = pd.read_csv(source / "patients.csv", dtype={"patient_id": str})
    measurements = pd.read_csv(source / "oc_measurements.csv", dtype={"patient_id": str})
    patients["patient_id"] = MARK + patients["patient_id"]
    measurements["patient_id"] = MARK + measurements["patient_id"]
    marked = []
    rows = patients.index[patients["bone_metastasis_at_enrollment"].astype(str) == "False"]
    for k, row in enumerate(rows[5:10]):
        for j, column in enumerate(MARKED_COLUMNS):
            values = patients[column].dropna().to_numpy(dtype=float)
            # Between the 30th and 70th percentile: never a minimum, maximum or stored quantile.
            base = float(np.percentile(values, 30 + 8 * j))
            value = round(base, 0) + 0.0123457 + 0.0011 * k
            patients.loc[row, column] = value
            marked.append(value)
    patients.to_csv(out / "patients.csv", index=False)
    measurements.to_csv(out / "oc_measurements.csv", index=False)
    return marked


def test_no_patient_id_or_value_in_any_artifact(fault_cohort, tmp_path):
    cohort = tmp_path / "marked"
    marked = _marked_cohort(fault_cohort, cohort)
    data = tmp_path / "data"
    env = fast_env(data)
    train = run_cli(train_args(cohort, "cox_ridge,logistic_ipcw", "marked"), env, tmp_path)
    assert MARK not in train.stdout + train.stderr

    texts = [f"{v:.7f}".rstrip("0") for v in marked]
    doubles = [struct.pack(fmt, v) for v in marked for fmt in ("<d", ">d")]
    files = [p for p in data.rglob("*") if p.is_file()]
    examples = [p for p in files if p.name in ("input_example.json", "serving_input_example.json")]
    assert len(examples) >= 4  # two models, each with both examples
    assert {p.suffix for p in files} >= {".json", ".joblib", ".png", ".md", ".db"}
    for path in files:
        raw = path.read_bytes()
        text = raw.decode("latin-1")
        assert MARK.lower() not in text.lower(), f"patient id in {path}"
        for value in texts:
            assert value not in text, f"marked value {value} in {path}"
        for packed in doubles:
            assert packed not in raw, f"marked value (binary) in {path}"
    # The examples are the contract's synthetic rows.
    example = json.loads(examples[0].read_text())
    assert "SYNTHETIC-1" in json.dumps(example)
