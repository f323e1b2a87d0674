"""Fast checks of the registry's building blocks (no training, no server)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from features.contract import check_patients
from features.examples import synthetic_patient_rows
from features.schema import PREDICTOR_COLUMNS
from training.tracking.server import ServerConfigError, tracking_server_command
from training.tracking.store import database_uri, owner_tags


def test_synthetic_rows_pass_the_contract_and_are_marked_synthetic():
    rows = synthetic_patient_rows()
    assert list(rows.columns) == list(PREDICTOR_COLUMNS)
    assert rows["patient_id"].tolist() == ["SYNTHETIC-1", "SYNTHETIC-2", "SYNTHETIC-3"]
    typed, violations = check_patients(rows, table="example", allow_outcome=False)
    assert violations == []
    # The third row has the required columns only.
    optional = [c for c in rows.columns if rows.loc[2, c] is None]
    assert "ki67_percent" in optional and "oc_positive_percent" in optional


def test_postgres_uris_use_psycopg3():
    assert database_uri("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert database_uri("postgres://h/db") == "postgresql+psycopg://h/db"
    assert database_uri("sqlite:////x/mlflow.db") == "sqlite:////x/mlflow.db"
    assert database_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_owner_tags_name_this_process():
    tags = owner_tags()
    assert tags["bonemet.pid"] == str(os.getpid())
    assert float(tags["bonemet.pid_started"]) > 0


def test_tracking_server_command_small_machine_defaults(tmp_path):
    cmd, env = tracking_server_command(
        "postgresql://bonemet@127.0.0.1:5432/mlflow", str(tmp_path / "art"), state_dir=tmp_path
    )
    joined = " ".join(cmd)
    assert "--backend-store-uri postgresql+psycopg://bonemet@127.0.0.1:5432/mlflow" in joined
    assert "--serve-artifacts" in cmd and "--host 127.0.0.1" in joined
    assert "--workers 1" in joined and "--app-name" not in cmd
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert (tmp_path / "art").is_dir()


def test_tracking_server_refuses_bad_options(tmp_path, monkeypatch):
    with pytest.raises(ServerConfigError, match="must be a database URI"):
        tracking_server_command("http://x", str(tmp_path), state_dir=tmp_path)
    monkeypatch.delenv("MLFLOW_AUTH_ADMIN_PASSWORD", raising=False)
    with pytest.raises(ServerConfigError, match="MLFLOW_AUTH_ADMIN_PASSWORD"):
        tracking_server_command("sqlite:////tmp/x.db", str(tmp_path), auth=True, state_dir=tmp_path)
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "pw")
    cmd, env = tracking_server_command(
        "sqlite:////tmp/x.db", str(tmp_path), auth=True, state_dir=tmp_path
    )
    assert cmd[-2:] == ["--app-name", "basic-auth"]
    assert "auth_cache_ttl_seconds = 60" in (tmp_path / "basic_auth.ini").read_text()
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == str(tmp_path / "basic_auth.ini")


def test_cli_tracking_server_error_is_clear(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_AUTH_ADMIN_PASSWORD"}
    env["BONEMET_DATA_DIR"] = str(tmp_path)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.cli",
            "tracking-server",
            "--backend-store-uri",
            "file:///nope",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert out.stderr.startswith("cannot start the tracking server: --backend-store-uri must")
