"""Landmark models everywhere, not only in the API (issue 9, points 2 and 4).

A landmark model trained by the CLI on the small simulated cohort is evaluated (pooled and at
each landmark) and scored in batch from a prediction day; the batch answer equals what the
running API answers for the same patients, draws and ``prediction_day``; its model card
counts patients, and its landmark rows apart.
"""

from __future__ import annotations

import json
import math
import re
import sys

import numpy as np
import pandas as pd
import pytest
import requests

from features.contract import load_cohort
from features.records import contract_rows
from features.schema import PREDICTOR_COLUMNS
from tests.cli.schemas import assert_schema
from tests.conftest import LANDMARKS, run_cli
from tests.serving.servers import free_port, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def landmark_version(landmark_store):
    summary = landmark_store["summary"]
    assert_schema(summary, "train")
    assert summary["n_train"] > summary["n_train_patients"]  # stacked landmark rows
    (candidate,) = summary["candidates"]
    assert candidate["challenger"] and candidate["version"] == summary["challenger_version"]
    uno = candidate["metrics"]["test_uno_c"]
    assert uno["low"] <= uno["estimate"] <= uno["high"]
    assert candidate["selection"] == candidate["metrics"][summary["selection_metric"]]
    return summary


def test_evaluate_reports_each_landmark(landmark_store, landmark_version):
    env, work, cohort = landmark_store["env"], landmark_store["dir"], landmark_store["cohort"]
    uri = f"models:/bone-metastasis-risk/{landmark_version['challenger_version']}"
    args = ["evaluate", "--patients", str(cohort / "patients.csv")]
    args += ["--measurements", str(cohort / "oc_measurements.csv"), "--model-uri", uri]
    out = run_cli([*args, "--n-bootstrap", "0", "--json"], env, work)
    document = json.loads(out.stdout)
    assert_schema(document, "evaluate")
    assert 0.5 < document["metrics"]["eval_uno_c"]["estimate"] < 1
    landmarks = {row["landmark_day"]: row for row in document["landmarks"]}
    assert sorted(landmarks) == [float(day) for day in LANDMARKS.split(",")]
    for row in landmarks.values():
        assert row["n"] > 0 and 0.5 < row["harrell_c"] < 1
    assert landmarks[0.0]["n"] > landmarks[365.0]["n"]
    table = run_cli([*args, "--n-bootstrap", "0"], env, work)
    assert "at each landmark" in table.stdout and "365" in table.stdout


def test_batch_prediction_day_answers_as_the_api(landmark_store, landmark_version, tmp_path):
    env, work, cohort = landmark_store["env"], landmark_store["dir"], landmark_store["cohort"]
    version = landmark_version["challenger_version"]
    uri = f"models:/bone-metastasis-risk/{version}"
    day = 183.0
    out = tmp_path / "scores.csv"
    run_cli(
        [
            "predict",
            "--patients",
            str(cohort / "patients.csv"),
            "--measurements",
            str(cohort / "oc_measurements.csv"),
            "--model-uri",
            uri,
            "--prediction-day",
            f"{day:g}",
            "--out",
            str(out),
        ],
        env,
        work,
    )
    batch = pd.read_csv(out)
    typed = load_cohort(cohort / "patients.csv", cohort / "oc_measurements.csv")
    free = typed.patients["bone_metastasis_at_enrollment"].to_numpy(dtype=float) == 0
    ids = typed.patients.loc[free, "patient_id"].head(12).tolist()
    patients = contract_rows(typed.patients[list(PREDICTOR_COLUMNS)])
    draws = contract_rows(typed.measurements, table="oc_measurements")
    records = []
    for pid in ids:
        row = patients.loc[patients["patient_id"] == pid].iloc[0].to_dict()
        record = {k: v for k, v in row.items() if v is not None}
        mine = draws.loc[draws["patient_id"] == pid].drop(columns=["patient_id"])
        record["oc_measurements"] = [
            {k: v for k, v in d.items() if v is not None} for d in mine.to_dict("records")
        ]
        record["prediction_day"] = day
        records.append(record)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
    cmd += ["--model-uri", uri]
    with running_server(cmd, env, work, f"{base}/readyz", tmp_path / "server.log"):
        answer = requests.post(f"{base}/predict", json={"patients": records}, timeout=60)
    assert answer.status_code == 200, answer.text
    api = {p["patient_id"]: p for p in answer.json()["predictions"]}
    assert any("after prediction_day" in w for p in api.values() for w in p["warnings"])
    for pid in ids:
        got = batch.loc[batch["patient_id"] == pid].iloc[0]
        want = api[pid]
        assert math.isclose(got["risk_score"], want["risk_score"], rel_tol=1e-9), pid
        assert got["risk_group"] == want["risk_group"]
        probs = {p["months"]: p["probability"] for p in want["bone_metastasis_probability"]}
        for months, probability in probs.items():
            np.testing.assert_allclose(got[f"p_bone_met_{months:g}m"], probability, rtol=1e-9)
        assert json.loads(got["warnings"]) == want["warnings"]


def test_landmark_card_counts_patients(landmark_store, landmark_version):
    import mlflow

    uri = f"sqlite:///{landmark_store['dir'] / 'data' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    mv = mlflow.MlflowClient().get_model_version(
        "bone-metastasis-risk", landmark_version["challenger_version"]
    )
    from training.registry.versions import version_facts

    assert version_facts(mv.tags)["landmark_days"] == LANDMARKS
    card = mv.description
    patients = int(re.search(r"\*\*Patients used \(eligible\)\*\*: (\d+)", card).group(1))
    n = landmark_version["n_train_patients"] + landmark_version["n_test_patients"]
    assert patients == n
    # Every patient trains (no held-out split by default): the training rows only.
    rows = re.search(r"\*\*Landmark rows\*\*: train (\d+) \(", card)
    assert rows and int(rows.group(1)) == landmark_version["n_train"]
    assert landmark_version["n_test"] == landmark_version["n_test_patients"] == 0
    sample = card.split("## Sample size and events")[1].split("##")[0]
    counts = re.search(r"\| train \| (\d+) \|", sample)
    assert counts and int(counts.group(1)) == landmark_version["n_train_patients"]


def test_spark_engine_scores_a_landmark_model_as_the_local_engine(
    landmark_store, landmark_version, tmp_path
):
    from tests.scoring.compare import same_predictions

    env, work, cohort = landmark_store["env"], landmark_store["dir"], landmark_store["cohort"]
    uri = f"models:/bone-metastasis-risk/{landmark_version['challenger_version']}"
    inputs = ["--patients", str(cohort / "patients.csv"), "--model-uri", uri]
    inputs += ["--measurements", str(cohort / "oc_measurements.csv"), "--prediction-day", "200"]
    run_cli(["predict", *inputs, "--out", str(tmp_path / "local.csv")], env, work)
    spark_out = tmp_path / "spark.parquet"
    spark_args = ["--engine", "spark", "--spark-master", "local[2]", "--out", str(spark_out)]
    run_cli(["predict", *inputs, *spark_args], env, work)
    local = pd.read_csv(tmp_path / "local.csv", dtype={"patient_id": str, "risk_group": str})
    same_predictions(local, pd.read_parquet(spark_out))
