"""The chain FCS files -> ``bonemet cytometry`` -> oc_measurements -> train -> predict.

Everything runs through the real ``bonemet`` commands on a small simulated cohort with a real
MLflow store in a temporary folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import cli_env, run_cli

pytestmark = pytest.mark.slow


def test_fcs_to_prediction(tmp_path: Path):
    env = cli_env(tmp_path / "data")
    cohort = tmp_path / "cohort"
    run_cli(
        ["simulate", "--n-patients", "300", "--seed", "11", "--out", str(cohort), "--fcs", "1"],
        env,
        tmp_path,
    )
    fcs = cohort / "fcs"
    gated = run_cli(
        [
            "cytometry",
            "--manifest",
            str(fcs / "manifest.csv"),
            "--gating",
            str(fcs / "gating.xml"),
            "--pbmc-gate",
            "PBMC",
            "--oc-gate",
            "OC_pos",
            "--out",
            str(cohort / "oc_from_fcs.csv"),
            "--expect",
            str(cohort / "oc_measurements.csv"),
            "--qc-figures",
            "2",
            "--experiment",
            "cyto",
        ],
        env,
        tmp_path,
    )
    assert "counts equal those of" in gated.stdout

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'data' / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["cyto"], output_format="list")
    assert run.data.params["pbmc_gate"] == "PBMC"
    assert run.data.params["oc_gate"] == "PBMC/OC_pos"
    assert run.data.tags["fcs_keywords_kept"] == "$CYT,$CYTSN,$DATE,$TOT"
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"gating", "qc", "oc_from_fcs.csv", "oc_from_fcs.provenance.csv"} <= artifacts
    n_files = len(pd.read_csv(fcs / "manifest.csv"))
    assert n_files >= 1
    assert len(client.list_artifacts(run.info.run_id, "qc")) == min(2, n_files)
    local = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "art")))
    logged_text = (
        "".join(p.read_text() for p in local.rglob("*") if p.suffix in (".csv", ".xml"))
        + repr(run.data.params)
        + repr(run.data.tags)
    )
    # The simulated files carry the patient in free-text $SRC: it must not be copied.
    assert "peripheral blood" not in logged_text

    # The gated draws replace the simulated ones: the same cohort, counts from the files.
    original = pd.read_csv(cohort / "oc_measurements.csv", dtype=str, keep_default_na=False)
    from_fcs = pd.read_csv(cohort / "oc_from_fcs.csv", dtype=str, keep_default_na=False)
    key = ["patient_id", "day"]
    gated_keys = set(map(tuple, from_fcs[key].values.tolist()))
    rest = original[[k not in gated_keys for k in map(tuple, original[key].values.tolist())]]
    merged = pd.concat([rest, from_fcs], ignore_index=True)
    merged.to_csv(cohort / "merged.csv", index=False)
    patients = str(cohort / "patients.csv")
    run_cli(
        [
            "train",
            "--patients",
            patients,
            "--measurements",
            str(cohort / "merged.csv"),
            "--families",
            "cox_ridge",
            "--landmarks",
            "0,183",
            "--seed",
            "3",
        ],
        env,
        tmp_path,
    )
    scores = {}
    for name in ("merged.csv", "oc_measurements.csv"):
        out = tmp_path / f"pred_{name}"
        run_cli(
            [
                "predict",
                "--patients",
                patients,
                "--measurements",
                str(cohort / name),
                "--model-uri",
                "models:/bone-metastasis-risk/1",
                "--out",
                str(out),
            ],
            env,
            tmp_path,
        )
        scores[name] = pd.read_csv(out).set_index("patient_id")["risk_score"]
    assert len(scores["merged.csv"]) == 300
    # Percents from the files' counts equal the simulated ones up to their 6-digit rounding.
    pd.testing.assert_series_equal(
        scores["merged.csv"], scores["oc_measurements.csv"], rtol=1e-4, check_names=False
    )
