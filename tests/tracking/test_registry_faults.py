"""The registry under faults, with real processes on a real SQLite MLflow store.

Two trainings started at once on a store that does not exist yet; trainings killed with
SIGKILL before and after their first registered version; versions that are incomplete or whose
artifact is damaged offered to ``bonemet promote`` (refused, with or without ``--force``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.tracking.conftest import fast_env, kill_hard, start_cli, train_args, wait_for
from training.registry.versions import promotion_record, version_facts

pytestmark = pytest.mark.slow
NAME = "bone-metastasis-risk"


def _client(data_dir: Path):
    import mlflow

    uri = f"sqlite:///{(data_dir / 'mlflow.db').resolve()}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _count(data_dir: Path, sql: str) -> int:
    """A count read straight from the SQLite file (0 while the store is being created).

    The test polls this way while a training runs: opening the store through MLflow would
    create and migrate it outside the lock ``bonemet`` takes for that.
    """
    import sqlite3

    db = data_dir / "mlflow.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
            return int(con.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _kill_when(proc, data_dir: Path, sql: str) -> None:
    """``kill -9`` the training as soon as ``sql`` counts something in its store."""
    try:
        wait_for(lambda: _count(data_dir, sql), what=sql, every=0.2)
    finally:
        kill_hard(proc)


def _all_runs(client):
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=5000) if ids else []


def _assert_versions_complete(client) -> list:
    """Every registered version has its tags and a finished run; returns the versions."""
    versions = client.search_model_versions(f"name='{NAME}'")
    for v in versions:
        tags = version_facts(v.tags or {})
        for tag in ("family", "dataset_digest", "run_id", "selection_metric"):
            assert tags.get(tag), f"version {v.version} lacks {tag}: {tags}"
        assert "test_uno_c" in tags["metrics"], tags
        assert client.get_run(tags["run_id"]).info.status == "FINISHED"
    return versions


def test_two_trainings_at_once_on_a_new_store(fault_cohort, tmp_path):
    data = tmp_path / "data"
    assert not data.exists()
    env = fast_env(data)
    procs = [
        start_cli(train_args(fault_cohort, "cox_ridge", "team"), env, tmp_path) for _ in range(2)
    ]
    try:
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                kill_hard(p)
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    client = _client(data)
    versions = _assert_versions_complete(client)
    assert sorted(int(v.version) for v in versions) == [1, 2]
    parents = [r for r in _all_runs(client) if r.info.run_name.startswith("train · ")]
    assert len(parents) == 2 and {r.info.status for r in parents} == {"FINISHED"}
    assert len({r.info.experiment_id for r in parents}) == 1  # one experiment, made once


def test_killed_trainings_leave_nothing_incomplete_or_promotable(fault_cohort, tmp_path):
    data = tmp_path / "data"
    env = fast_env(data)

    # 1. Killed right after its training run appeared: no version at all.
    _kill_when(
        start_cli(train_args(fault_cohort, "cox_ridge", "faults"), env, tmp_path),
        data,
        "SELECT count(*) FROM runs WHERE name LIKE 'train · %'",
    )
    # 2. Killed after its first family was registered, during the second family.
    _kill_when(
        start_cli(train_args(fault_cohort, "cox_ridge,logistic_ipcw", "faults"), env, tmp_path),
        data,
        "SELECT count(*) FROM model_versions",
    )
    client = _client(data)

    versions = _assert_versions_complete(client)
    assert [str(v.version) for v in versions] == ["1"]
    running = [r for r in _all_runs(client) if r.info.status == "RUNNING"]
    assert running, "the killed trainings left runs RUNNING (to be marked failed next)"

    # compare marks them failed and shows what happened.
    shown = run_cli(["compare"], env, tmp_path)
    assert "training runs (newest first)" in shown.stdout
    assert [r for r in _all_runs(client) if r.info.status == "RUNNING"] == []
    rows = json.loads(run_cli(["compare", "--json"], env, tmp_path).stdout)["training_runs"]
    assert len(rows) == 2 and all(row["status"] == "FAILED" for row in rows), rows
    assert all("ended without finishing" in row["note"] for row in rows)
    assert [row["versions"] for row in rows] == ["1", "none"]  # versions registered by each
    failed = [r for r in _all_runs(client) if r.info.status == "FAILED"]
    assert {r.info.run_id for r in running} <= {r.info.run_id for r in failed}

    # Nothing got the challenger alias: the default promotion has nothing to move.
    nothing = run_cli(["promote"], env, tmp_path, check=False)
    assert nothing.returncode == 2 and "alias 'challenger'" in nothing.stderr

    # A version without bonemet's tags (registered by hand) is refused even with --force.
    v1 = client.get_model_version(NAME, "1")
    v1_files = client.get_model_version_download_uri(NAME, "1")
    bare = client.create_model_version(NAME, v1_files, run_id=v1.run_id)
    refused = run_cli(
        ["promote", "--version", str(bare.version), "--force", "--reason", "try"],
        env,
        tmp_path,
        check=False,
    )
    assert refused.returncode == 2
    assert "lacks the fact(s) family" in refused.stderr
    assert "not even with --force" in refused.stderr

    # Version 1 came from a killed training (no description, no challenger chosen): it is
    # incomplete, refused even with --force, and compare says so (issue 20.2).
    killed = run_cli(
        ["promote", "--version", "1", "--force", "--reason", "first model"],
        env,
        tmp_path,
        check=False,
    )
    assert killed.returncode == 2 and len(killed.stderr.strip().splitlines()) == 1
    assert "version 1 is incomplete: its training run" in killed.stderr
    assert "is FAILED, not FINISHED" in killed.stderr and "not even with --force" in killed.stderr
    shown = json.loads(run_cli(["compare", "--json"], env, tmp_path).stdout)["versions"]
    assert {v["version"]: v["state"] for v in shown}["1"] == "incomplete"

    # A training that finishes registers a complete version.
    finished = json.loads(
        run_cli([*train_args(fault_cohort, "cox_ridge", "faults"), "--json"], env, tmp_path).stdout
    )
    good = str(finished["challenger_version"])
    complete = client.get_model_version(NAME, good)

    # A complete version whose artifact is damaged: refused with or without --force.
    v_files = client.get_model_version_download_uri(NAME, good)
    source = Path(v_files.removeprefix("file://"))
    damaged_dir = tmp_path / "damaged-model"
    shutil.copytree(source, damaged_dir)
    joblib_file = next(damaged_dir.rglob("risk_model.joblib"))
    joblib_file.write_bytes(joblib_file.read_bytes()[:200])
    damaged = client.create_model_version(
        NAME, damaged_dir.as_uri(), run_id=complete.run_id, tags=dict(complete.tags)
    )
    for extra in ([], ["--force", "--reason", "clinical review"]):
        out = run_cli(
            ["promote", "--version", str(damaged.version), *extra], env, tmp_path, check=False
        )
        assert out.returncode == 2, out.stdout
        assert f"version {damaged.version} does not load" in out.stderr
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(NAME, "champion")

    # The complete, loadable version is promoted, and who/when/why is on it.
    ok = run_cli(
        ["promote", "--version", good, "--force", "--reason", "first model"], env, tmp_path
    )
    assert f"champion: version {good}" in ok.stdout
    tags = promotion_record(client.get_model_version(NAME, good).tags)
    assert tags["promoted_by"] and tags["promoted_at"].startswith("20")
    assert tags["promotion_reason"] == "first model"
