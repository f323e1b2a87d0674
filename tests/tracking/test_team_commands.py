"""The commands a team runs against its tracking server, with permissions on (``--auth``).

One ``bonemet tracking-server --auth`` on the session's PostgreSQL for the module; the admin
trains two versions once, and a ``reader`` (MLflow's default READ) works beside them. Every
command talks to the server through ``MLFLOW_TRACKING_URI=http://...`` only:

- ``bonemet serve`` loads ``champion`` from the server and follows it when the admin's
  ``bonemet promote`` moves it;
- ``bonemet study`` logs its run, report and figures through the server into its artifact
  destination;
- the reader's ``bonemet train`` logs everything into the reader's own experiment, then stops
  at registration (exit 3) with a message naming the user, the model and what to do: nothing
  registered, no alias moved, the training run FINISHED and tagged.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import pytest
import requests

from tests.conftest import cli_env, run_cli
from tests.serving.servers import P1, bonemet_serve
from tests.tracking.conftest import (
    FAST,
    start_tracking_server,
    stop_process,
    train_args,
    wait_for,
)

pytestmark = pytest.mark.slow
NAME = "bone-metastasis-risk"
ADMIN_PASSWORD = "admin-secret-42"
READER = ("reader", "reader-pw-42")


@pytest.fixture(scope="module")
def team(postgres, fault_cohort, tmp_path_factory):
    """The module's server with auth: versions 1 and 2 trained by the admin, a reader user."""
    work = tmp_path_factory.mktemp("team-commands")
    database = postgres.create_database("team_commands")
    server, uri = start_tracking_server(
        database, work, "--auth", env_extra={"MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    try:
        admin = _env(work, uri, "admin", ADMIN_PASSWORD)
        run_cli(train_args(fault_cohort, "cox_ridge,logistic_ipcw", "admin-exp"), admin, work)
        created = requests.post(
            f"{uri}/api/2.0/mlflow/users/create",
            json={"username": READER[0], "password": READER[1]},
            auth=("admin", ADMIN_PASSWORD),
            timeout=30,
        )
        assert created.status_code == 200, created.text
        yield {
            "uri": uri,
            "work": work,
            "cohort": fault_cohort,
            "admin": admin,
            "reader": _env(work, uri, *READER),
        }
    finally:
        stop_process(server)


def _env(work, uri: str, user: str, password: str) -> dict[str, str]:
    env = cli_env(work / "client")
    env.update(
        FAST,
        MLFLOW_TRACKING_URI=uri,
        MLFLOW_TRACKING_USERNAME=user,
        MLFLOW_TRACKING_PASSWORD=password,
    )
    return env


@contextmanager
def as_admin(uri: str):
    """An ``MlflowClient`` of the server logged in as the admin (credentials come from the
    environment, as for any MLflow client), for the checks."""
    import mlflow

    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
    try:
        yield mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _cohort(cohort) -> list[str]:
    """The ``--patients`` and ``--measurements`` options of ``cohort``'s tables."""
    patients, measurements = cohort / "patients.csv", cohort / "oc_measurements.csv"
    return ["--patients", str(patients), "--measurements", str(measurements)]


def _registry_state(uri: str) -> tuple[list[str], dict[str, str]]:
    """(versions, aliases) of the registered model, read by the admin."""
    with as_admin(uri) as client:
        versions = sorted(v.version for v in client.search_model_versions(f"name='{NAME}'"))
        aliases = {a: str(v) for a, v in client.get_registered_model(NAME).aliases.items()}
    return versions, aliases


def _promote(team: dict, version: str) -> None:
    done = run_cli(
        ["promote", "--version", version, "--force", "--reason", "team commands test"],
        team["admin"],
        team["work"],
    )
    assert f"champion: version {version}" in done.stdout


def test_serve_follows_champion_on_the_server(team, tmp_path_factory):
    _promote(team, "1")
    # The reader serves: READ on the registry is enough to load and follow champion.
    store = {"env": team["reader"], "dir": team["work"]}
    with bonemet_serve(store, tmp_path_factory, "team-serve", BONEMET_RELOAD_SECONDS="1") as srv:
        base = srv["base"]
        answer = requests.post(f"{base}/predict", json={"patients": [P1]}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model"]["alias"], body["model"]["version"]) == ("champion", "1")
        (prediction,) = body["predictions"]
        assert prediction["patient_id"] == "P0001" and prediction["risk_score"] is not None
        assert requests.get(f"{base}/model", timeout=10).json()["version"] == "1"

        _promote(team, "2")
        model = wait_for(
            lambda: (m := requests.get(f"{base}/model", timeout=10).json())["version"] == "2" and m,
            timeout=120,
            what="the service to serve version 2 after the promotion",
        )
        assert model["alias"] == "champion" and model["name"] == NAME
        with as_admin(team["uri"]) as client:
            assert model["run_id"] == client.get_model_version(NAME, "2").run_id
        answer = requests.post(f"{base}/predict", json={"patients": [P1]}, timeout=30)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == "2"
        ready = requests.get(f"{base}/readyz", timeout=10).json()
        assert ready["following"] is True and ready["alias_error"] is None
    assert "now serving bone-metastasis-risk version 2 (champion)" in srv["log"].read_text()


def test_study_logs_its_run_and_report_through_the_server(team):
    work, cohort = team["work"], team["cohort"]
    out = work / "study-out"
    done = run_cli(
        ["study", *_cohort(cohort), "--out", str(out), "--experiment", "team-study"]
        + ["--n-boot", "20", "--n-perm", "99"],
        team["admin"],
        work,
    )
    (run_id,) = [
        line.split(": ", 1)[1] for line in done.stdout.splitlines() if line.startswith("mlflow run")
    ]
    with as_admin(team["uri"]) as client:
        run = client.get_run(run_id)
        logged = {a.path for a in client.list_artifacts(run_id)}
        figures = client.list_artifacts(run_id, "figures")
        experiment = client.get_experiment(run.info.experiment_id)
    assert run.info.status == "FINISHED" and experiment.name == "team-study"
    assert run.data.tags["report"] == "study" and run.data.metrics
    assert {"report.html", "study.json", "figures"} <= logged and figures
    # The artifacts went through the server into its destination, under the run; the
    # client's data folder holds no copy.
    stored = [p for p in (work / "artifacts").rglob("report.html") if run_id in p.parts]
    assert len(stored) == 1
    assert stored[0].read_bytes() == (out / "report.html").read_bytes()
    assert not list((work / "client").rglob("report.html"))


def test_reader_trains_into_their_experiment_but_cannot_register(team):
    from mlflow.entities import LoggedModelStatus

    before = _registry_state(team["uri"])
    refused = run_cli(
        train_args(team["cohort"], "cox_ridge,logistic_ipcw", "reader-exp"),
        team["reader"],
        team["work"],
        check=False,
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    # The last line (progress bars above it).
    message = refused.stderr.strip().splitlines()[-1]
    print(message)
    assert message.startswith(
        "trained but not registered: user 'reader' may not register versions of "
        f"{NAME} (the tracking server refused: permission denied; registering needs EDIT"
    )
    assert "no version was registered and no alias moved" in message
    assert f"ask an admin or a user with MANAGE on {NAME} for EDIT on it" in message

    # Nothing changed in the registry.
    assert _registry_state(team["uri"]) == before

    # Everything is logged in the reader's experiment: the training run FINISHED and tagged,
    # each family's run FINISHED with its metrics and a complete, loadable model.
    with as_admin(team["uri"]) as client:
        experiment = client.get_experiment_by_name("reader-exp")
        runs = client.search_runs([experiment.experiment_id])
        (parent,) = [r for r in runs if r.info.run_name.startswith("train · ")]
        families = {
            r.data.tags["family"]: r
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
            and "family" in r.data.tags
        }
        models = client.search_logged_models([experiment.experiment_id])
        assert parent.info.run_id in message
        assert parent.info.status == "FINISHED"
        note = parent.data.tags["bonemet.registration_refused"]
        assert "user 'reader' may not register" in note
        assert set(families) == {"cox_ridge", "logistic_ipcw", "stacked_oof"}  # and the stack
        for family, run in families.items():
            assert f"{family} (run {run.info.run_id})" in message
            assert run.info.status == "FINISHED"
            assert run.data.metrics["headline/Uno C"] > 0.5
        assert {m.source_run_id for m in models} == {r.info.run_id for r in families.values()}
        for logged in models:
            assert logged.status == LoggedModelStatus.READY
            inside = {f.path for f in client.list_logged_model_artifacts(logged.model_id)}
            assert {"MLmodel", "artifacts"} <= inside
            files = client.list_logged_model_artifacts(logged.model_id, "artifacts")
            assert "artifacts/risk_model.joblib" in {f.path for f in files}
    # The reader can score with a logged model of theirs, straight from the run.
    out = team["work"] / "reader-scores.csv"
    cohort = team["cohort"]
    run_cli(
        ["predict", *_cohort(cohort), "--model-uri", f"models:/{models[0].model_id}"]
        + ["--out", str(out)],
        team["reader"],
        team["work"],
    )
    assert out.read_text().count("\n") == (cohort / "patients.csv").read_text().count("\n")
