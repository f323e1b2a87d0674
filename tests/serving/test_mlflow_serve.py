"""The registered pyfunc served unchanged by ``mlflow models serve`` (the peer server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.serving.test_service import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_server(trained_store, tmp_path_factory):
    port = free_port()
    env = dict(trained_store["env"])
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}"
    # --env-manager local needs the virtual environment's bin on PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    log = (tmp_path_factory.mktemp("mlflow-serve") / "server.log").open("w+")
    proc = subprocess.Popen(
        [
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
        ],
        env=env,
        cwd=trained_store["dir"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"mlflow models serve exited:\n{log.read()}")
            try:
                if requests.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("mlflow models serve not ready after 120 s")
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


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
