"""The registered pyfunc served unchanged by ``mlflow models serve`` (the peer server)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import requests

from tests.serving.servers import free_port, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(trained_store, tmp_path_factory):
    port = free_port()
    env = dict(trained_store["env"])
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}"
    # --env-manager local needs the virtual environment's bin on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        "models:/bone-metastasis-risk@champion",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    base = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("mlflow-serve") / "server.log"
    with running_server(cmd, env, trained_store["dir"], f"{base}/ping", log):
        yield base


def test_invocations_answer_contract_rows(mlflow_server):
    record = {
        "patient_id": "P0001",
        "age_years": 54,
        "disease_setting": "metastatic",
        "bone_metastasis_at_enrollment": False,
        "er_status": "positive",
        "oc_positive_percent": 0.061,
    }
    r = requests.post(
        f"{mlflow_server}/invocations",
        json={"dataframe_records": [record], "params": {"horizons_months": [12.0, 24.0]}},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    (row,) = r.json()["predictions"]
    assert row["patient_id"] == "P0001"
    assert 0 <= row["p_bone_met_12m"] <= row["p_bone_met_24m"] <= 1
    assert row["risk_group"] in {"low", "intermediate", "high"}


def test_invocations_reject_contract_violations_with_400(mlflow_server):
    record = {
        "patient_id": "P0001",
        "age_years": 12,
        "disease_setting": "early",
        "bone_metastasis_at_enrollment": False,
    }
    r = requests.post(
        f"{mlflow_server}/invocations", json={"dataframe_records": [record]}, timeout=30
    )
    assert r.status_code == 400
    assert "column age_years, value 12: must be 18-100" in r.json()["message"]
