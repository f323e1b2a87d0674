"""Fast checks of the registry's building blocks (no training, no server)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from features.contract import check_patients
from features.examples import synthetic_patient_rows
from features.schema import PREDICTOR_COLUMNS
from training.store.backend import database_uri, owner_tags
from training.store.server import ServerConfigError, tracking_server_command


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


def test_tracking_server_secrets_out_of_the_command_line_and_private(tmp_path, monkeypatch):
    # Issue 20.4: passwords of database URIs never in argv (ps) nor in a 0644 file.
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", "pw")
    (tmp_path / "state").mkdir(mode=0o755)
    (tmp_path / "state" / "basic_auth.ini").write_text("old")  # once written 0644
    (tmp_path / "state" / "basic_auth.ini").chmod(0o644)
    cmd, env = tracking_server_command(
        "postgresql://team:s%3Acret%5Cpw@db.example:5433/mlflow",
        str(tmp_path / "art"),
        auth=True,
        auth_db_uri="postgresql://keeper:users-pw@127.0.0.1/auth",
        state_dir=tmp_path / "state",
    )
    assert "s:cret" not in " ".join(cmd) and "s%3Acret" not in " ".join(cmd)
    assert "--backend-store-uri postgresql+psycopg://team@db.example:5433/mlflow" in " ".join(cmd)
    ini = tmp_path / "state" / "basic_auth.ini"
    pgpass = tmp_path / "state" / "pgpass"
    assert "users-pw" not in ini.read_text()
    assert "database_uri = postgresql+psycopg://keeper@127.0.0.1/auth" in ini.read_text()
    assert env["PGPASSFILE"] == str(pgpass)
    assert pgpass.read_text().splitlines() == [
        "db.example:5433:mlflow:team:s\\:cret\\\\pw",
        "127.0.0.1:5432:auth:keeper:users-pw",
    ]
    for private, mode in ((ini, 0o600), (pgpass, 0o600), (tmp_path / "state", 0o700)):
        assert private.stat().st_mode & 0o777 == mode, private


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


def test_set_alias_retries_a_write_conflict_but_not_a_refusal(tmp_path, monkeypatch):
    # A real SQLite store; the first alias write fails as PostgreSQL's refusal of a second
    # insert of the same alias row does (a server error), then goes through.
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    from training.config import MODEL_NAME
    from training.registry.versions import set_alias

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, uri)  # this store only, whatever another test configured
    client.create_registered_model(MODEL_NAME)
    client.create_model_version(MODEL_NAME, str(tmp_path / "model"))
    real = mlflow.MlflowClient.set_registered_model_alias
    calls = []

    def once_conflicting(self, name, alias, version):
        calls.append(alias)
        if len(calls) == 1:
            raise MlflowException("duplicate key value violates unique constraint")
        return real(self, name, alias, version)

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", once_conflicting)
    set_alias("challenger", "1", client=client)
    assert calls == ["challenger", "challenger"]
    assert str(client.get_model_version_by_alias(MODEL_NAME, "challenger").version) == "1"

    def refused(self, name, alias, version):
        calls.append(alias)
        raise MlflowException("no", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(mlflow.MlflowClient, "set_registered_model_alias", refused)
    calls.clear()
    with pytest.raises(MlflowException):
        set_alias("champion", "1", client=client)
    assert calls == ["champion"]
