"""A team's tracking server on a real PostgreSQL: many hands, a killed training, permissions.

``bonemet tracking-server`` runs MLflow on a PostgreSQL database of the session's server
(``tests/tracking/postgres.py``) with artifacts served through it; every command below talks to
it through ``MLFLOW_TRACKING_URI=http://...`` only, as a colleague's shell would.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli_env, run_cli
from tests.tracking.conftest import (
    FAST,
    kill_hard,
    start_cli,
    start_tracking_server,
    stop_process,
    train_args,
    wait_for,
)
from training.registry.versions import promotion_record

pytestmark = pytest.mark.slow
NAME = "bone-metastasis-risk"


def _env(work, uri: str, **extra: str) -> dict[str, str]:
    env = cli_env(work / "client")
    env.update(FAST, MLFLOW_TRACKING_URI=uri, **extra)
    return env


def _client(uri: str):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _pg_count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as con:
        return int(con.execute(sql).fetchone()[0])


def test_two_shells_and_a_killed_training_on_postgres(postgres, fault_cohort, tmp_path):
    database = postgres.create_database("team")
    server, uri = start_tracking_server(database, tmp_path)
    try:
        env = _env(tmp_path, uri)
        both = [
            start_cli(train_args(fault_cohort, "cox_ridge", "team"), env, tmp_path)
            for _ in range(2)
        ]
        try:
            outs = [p.communicate(timeout=600) for p in both]
        finally:
            for p in both:
                if p.poll() is None:
                    kill_hard(p)
        for p, (_, err) in zip(both, outs, strict=True):
            assert p.returncode == 0, err[-3000:]

        client = _client(uri)
        killed = start_cli(
            train_args(fault_cohort, "cox_ridge,logistic_ipcw", "team"), env, tmp_path
        )
        try:
            wait_for(
                lambda: len(client.search_model_versions(f"name='{NAME}'")) >= 3,
                what="the third training's first version",
            )
        finally:
            kill_hard(killed)

        # Everything finished is there, in PostgreSQL; every version complete and loadable.
        versions = client.search_model_versions(f"name='{NAME}'")
        assert sorted(int(v.version) for v in versions) == [1, 2, 3]
        assert _pg_count(database, "SELECT count(*) FROM model_versions") == 3
        shown = json.loads(run_cli(["compare", "--json"], env, tmp_path).stdout)
        # Version 3 came from the killed training: incomplete (issue 20.2).
        assert [v["state"] for v in shown["versions"]] == ["incomplete", "complete", "complete"]
        rows = shown["training_runs"]
        assert len(rows) == 3
        assert rows[0]["status"] == "FAILED" and "ended without finishing" in rows[0]["note"]
        assert all(row["status"] == "FINISHED" for row in rows[1:])
        experiments = [e.experiment_id for e in client.search_experiments()]
        running = client.search_runs(experiments, "attributes.status = 'RUNNING'")
        assert running == []

        # The alias points at a complete version only; the commands work through the server.
        challenger = client.get_model_version_by_alias(NAME, "challenger").version
        assert str(challenger) in ("1", "2")
        promoted = run_cli(
            ["promote", "--force", "--reason", "team test"], env, tmp_path, check=False
        )
        assert promoted.returncode == 0, promoted.stderr
        tags = client.get_model_version(NAME, str(challenger)).tags
        assert promotion_record(tags)["promoted_by"]
        out = tmp_path / "scores.csv"
        run_cli(
            [
                "predict",
                "--patients",
                str(fault_cohort / "patients.csv"),
                "--measurements",
                str(fault_cohort / "oc_measurements.csv"),
                "--out",
                str(out),
            ],
            env,
            tmp_path,
        )
        assert out.read_text().count("\n") > 300
        evaluated = run_cli(
            [
                "evaluate",
                "--patients",
                str(fault_cohort / "patients.csv"),
                "--measurements",
                str(fault_cohort / "oc_measurements.csv"),
                "--n-bootstrap",
                "0",
            ],
            env,
            tmp_path,
        )
        assert f"(version {challenger})" in evaluated.stdout
        # Artifacts went through the server into its destination, not to the client's folder.
        assert any((tmp_path / "artifacts").rglob("risk_model.joblib"))
        assert not (tmp_path / "client").exists() or not any(
            (tmp_path / "client").rglob("risk_model.joblib")
        )
    finally:
        stop_process(server)
    assert f"MLFLOW_TRACKING_URI={uri}" in (tmp_path / "tracking-server.log").read_text()


def test_permissions_reader_cannot_promote(postgres, fault_cohort, tmp_path):
    import requests

    database = postgres.create_database("team_auth")
    password = "admin-secret-42"
    server, uri = start_tracking_server(
        database, tmp_path, "--auth", env_extra={"MLFLOW_AUTH_ADMIN_PASSWORD": password}
    )
    try:
        admin = _env(
            tmp_path, uri, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=password
        )
        run_cli(train_args(fault_cohort, "cox_ridge", "admin-exp"), admin, tmp_path)

        # Users are managed with MLflow's own API (as `mlflow` tools do), by the admin.
        created = requests.post(
            f"{uri}/api/2.0/mlflow/users/create",
            json={"username": "reader", "password": "reader-pw-42"},
            auth=("admin", password),
            timeout=30,
        )
        assert created.status_code == 200, created.text
        reader = _env(
            tmp_path,
            uri,
            MLFLOW_TRACKING_USERNAME="reader",
            MLFLOW_TRACKING_PASSWORD="reader-pw-42",
        )
        # Without credentials nothing is readable.
        anonymous = run_cli(["compare"], _env(tmp_path, uri), tmp_path, check=False)
        assert anonymous.returncode != 0

        # The reader reads the registry but cannot move champion; the message says why.
        assert "complete" in run_cli(["compare"], reader, tmp_path).stdout
        refused = run_cli(
            ["promote", "--force", "--reason", "I want it"], reader, tmp_path, check=False
        )
        assert refused.returncode == 2
        assert "user 'reader' may not move 'champion'" in refused.stderr
        assert "permission denied" in refused.stderr
        client_tags = _admin_tags(uri, password)
        assert "promoted_by" not in promotion_record(client_tags)

        done = run_cli(["promote", "--force", "--reason", "reviewed by admin"], admin, tmp_path)
        assert "champion: version 1" in done.stdout
        tags = promotion_record(_admin_tags(uri, password))
        assert tags["promoted_by"] == "admin"
        assert tags["promotion_reason"] == "reviewed by admin"
    finally:
        stop_process(server)


def _admin_tags(uri: str, password: str) -> dict[str, str]:
    import os

    os.environ["MLFLOW_TRACKING_USERNAME"] = "admin"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = password
    try:
        return dict(_client(uri).get_model_version(NAME, "1").tags)
    finally:
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


#: Commands that talk to the tracking server (issue 20.11: each names a rejected login in one
#: line); their arguments use files that exist, so the store is what fails.
def _server_commands(cohort, out) -> dict[str, list[str]]:
    data = ["--patients", str(cohort / "patients.csv")]
    data += ["--measurements", str(cohort / "oc_measurements.csv")]
    return {
        "compare": ["compare"],
        "promote": ["promote"],
        "train": [*train_args(cohort, "cox_ridge", "wrong-pw")],
        "evaluate": ["evaluate", *data, "--n-bootstrap", "0"],
        "predict": ["predict", *data, "--out", str(out / "p.csv")],
        "study": ["study", *data, "--out", str(out / "study"), "--n-boot", "20", "--n-perm", "99"],
        "serve": ["serve", "--port", "1"],
        "cytometry": _cytometry_args(out),
    }


def _cytometry_args(out) -> list[str]:
    """A one-file batch of the FCS simulator, gated, then logged (which the server refuses)."""
    import numpy as np
    import pandas as pd

    from features.cytometry.simulate_fcs import write_fcs_draws

    draws = pd.DataFrame(
        {
            "patient_id": ["P000001"],
            "day": [0.0],
            "oc_positive_percent": [np.nan],
            "oc_positive_events": pd.array([5], dtype="Int64"),
            "pbmc_events": pd.array([2000], dtype="Int64"),
            "alkaline_phosphatase_u_per_l": [np.nan],
        }
    )
    paths = write_fcs_draws(draws, out / "fcs", n_patients=1, seed=1)
    return [
        "cytometry",
        "--manifest",
        str(paths["manifest"]),
        "--gating",
        str(paths["gating"]),
        "--pbmc-gate",
        "PBMC",
        "--oc-gate",
        "OC_pos",
        "--min-pbmc-events",
        "1",
        "--out",
        str(out / "oc.csv"),
    ]


def _in_process(args, env, monkeypatch, capsys) -> tuple[int, str]:
    """``bonemet ARGS`` in this process under ``env``: (exit code, stderr)."""
    import os
    import warnings

    import mlflow

    from training.cli import app

    for key in set(os.environ) - set(env):
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    capsys.readouterr()
    try:
        with warnings.catch_warnings():
            app(args, prog_name="bonemet")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        mlflow.set_tracking_uri(before[0])
        mlflow.set_registry_uri(before[1])
    return code, capsys.readouterr().err


def test_secrets_stay_private_and_a_wrong_password_is_named(
    postgres, fault_cohort, tmp_path, monkeypatch, capsys
):
    import psutil
    import psycopg

    # A role that must give its password (scram), unlike the session's trusted one.
    secret = "pg:Secret-20.4"
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as con:
        con.execute(f"CREATE ROLE keeper LOGIN PASSWORD '{secret}'")
        con.execute('CREATE DATABASE "keeper_runs" OWNER keeper')
        con.execute('CREATE DATABASE "keeper_users" OWNER keeper')
        hba = con.execute("SHOW hba_file").fetchone()[0]
    with open(hba) as f:
        rules = f.read()
    with open(hba, "w") as f:
        f.write("host all keeper 127.0.0.1/32 scram-sha-256\n" + rules)
    with psycopg.connect(postgres.url("postgres"), autocommit=True) as con:
        con.execute("SELECT pg_reload_conf()")
    quoted = "pg%3ASecret-20.4"

    def url(db: str) -> str:
        return f"postgresql://keeper:{quoted}@127.0.0.1:{postgres.port}/{db}"

    admin_pw = "admin-secret-20.11"
    server, uri = start_tracking_server(
        url("keeper_runs"),
        tmp_path,
        "--auth",
        "--auth-db-uri",
        url("keeper_users"),
        env_extra={"MLFLOW_AUTH_ADMIN_PASSWORD": admin_pw},
    )
    try:
        # Issue 20.4: the server reached both databases with the password, which no process's
        # command line shows and no file other users can read holds.
        for proc in psutil.process_iter(["cmdline"]):
            line = " ".join(proc.info["cmdline"] or [])
            assert secret not in line and quoted not in line, line
        state = tmp_path / "data" / "server-auth"
        assert state.stat().st_mode & 0o077 == 0
        for private in state.iterdir():
            assert private.stat().st_mode & 0o077 == 0, private
            if private.name == "basic_auth.ini":
                assert secret not in private.read_text() and quoted not in private.read_text()

        # Issue 20.11: a wrong password, one line naming it, from every command (run in this
        # process: seven interpreters would cost more than the test).
        wrong = _env(
            tmp_path, uri, MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD="wrong"
        )
        for name, args in _server_commands(fault_cohort, tmp_path).items():
            code, err = _in_process(args, wrong, monkeypatch, capsys)
            assert code == 2, (name, err[-2000:])
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].count("authentication failed") == 1, (name, err)
            assert "train first" not in err
        assert not (tmp_path / "oc.csv").exists()  # cytometry wrote nothing
    finally:
        stop_process(server)
