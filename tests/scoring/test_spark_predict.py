"""``bonemet predict --engine spark`` (Spark local mode, real JVM) answers as the local engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from tests.scoring.compare import same_predictions
from tests.scoring.rules import assert_prediction_day_rule

pytestmark = pytest.mark.slow


def test_spark_engine_output_identical_to_local(trained_store, tmp_path):
    env, cwd, cohort = trained_store["env"], trained_store["dir"], trained_store["cohort"]
    inputs = [
        "--patients",
        str(cohort / "patients.csv"),
        "--measurements",
        str(cohort / "oc_measurements.csv"),
    ]
    local_out = tmp_path / "local.csv"
    run_cli(["predict", *inputs, "--out", str(local_out)], env, cwd)
    spark_out = tmp_path / "spark.parquet"
    done = run_cli(
        [
            "predict",
            *inputs,
            "--engine",
            "spark",
            "--spark-master",
            "local[2]",
            "--out",
            str(spark_out),
        ],
        env,
        cwd,
    )
    assert "Parquet folder" in done.stdout
    assert spark_out.is_dir() and any(spark_out.glob("part-*.parquet"))

    local = pd.read_csv(local_out, dtype={"patient_id": str, "risk_group": str})
    spark = pd.read_parquet(spark_out)
    assert list(spark.columns) == list(local.columns)
    assert len(spark) == len(local) == 600
    local = local.sort_values("patient_id").reset_index(drop=True)
    spark = spark.sort_values("patient_id").reset_index(drop=True)
    for column in local.columns:
        left, right = local[column], spark[column]
        if column in ("patient_id", "risk_group", "warnings"):
            assert left.fillna("").tolist() == right.fillna("").astype(str).tolist(), column
        elif column == "risk_score":
            # A score computed from the incidence (the IPCW families' log-odds) inherits its
            # last-place differences; a linear predictor is identical.
            np.testing.assert_allclose(
                right.to_numpy(dtype=float), left.to_numpy(dtype=float), rtol=1e-12, atol=0
            )
        else:
            # Spark hands the model Arrow batches; the cumulative incidence sums differ by a
            # few units in the last place with the batch size, as the local engine's own do
            # when it scores the same rows in two halves (measured: at most 1.1e-16).
            np.testing.assert_allclose(
                right.to_numpy(dtype=float), left.to_numpy(dtype=float), rtol=0, atol=1e-15
            )

    # A folder that exists is not overwritten; an unknown engine is named.
    again = run_cli(
        ["predict", *inputs, "--engine", "spark", "--out", str(spark_out)], env, cwd, check=False
    )
    assert again.returncode == 2 and "exists" in again.stderr
    unknown = run_cli(
        ["predict", *inputs, "--engine", "dask", "--out", str(tmp_path / "x")],
        env,
        cwd,
        check=False,
    )
    assert unknown.returncode == 2 and "--engine must be local or spark" in unknown.stderr


def test_spark_engine_scores_from_a_prediction_day_as_the_local_engine(trained_store, tmp_path):
    """From a prediction day Spark answers as the local engine, the prediction-day rule
    included: no prediction for a patient whose outcome came on or before it."""
    env, cwd, cohort = trained_store["env"], trained_store["dir"], trained_store["cohort"]
    inputs = ["--patients", str(cohort / "patients.csv")]
    inputs += ["--measurements", str(cohort / "oc_measurements.csv"), "--prediction-day", "365"]
    local_out = tmp_path / "local.csv"
    run_cli(["predict", *inputs, "--out", str(local_out)], env, cwd)
    spark_out = tmp_path / "spark.parquet"
    spark_args = ["--engine", "spark", "--spark-master", "local[2]", "--out", str(spark_out)]
    done = run_cli(["predict", *inputs, *spark_args], env, cwd)
    assert "Parquet folder" in done.stdout
    local = pd.read_csv(local_out, dtype={"patient_id": str, "risk_group": str})
    spark = pd.read_parquet(spark_out)
    assert len(local) == 600
    # Later draws were used: some answer differs from the enrollment one and says so.
    assert local["warnings"].str.contains("draw").any()
    same_predictions(local, spark)
    # Patients whose outcome came on or before the day: left out, or warned for (issue 23.4).
    assert_prediction_day_rule(spark, cohort / "patients.csv", 365)
