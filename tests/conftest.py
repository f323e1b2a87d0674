"""Shared fixtures: a small simulated cohort, and one real MLflow store trained by the CLI.

The trained store is built once per session through the real ``bonemet`` commands (SQLite
tracking store and artifacts in a temporary folder), so model and serving tests exercise the
same path a user runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Contract files, good and bad (tests/features/contract/good, bad), for the CLI tests.
CONTRACT_FILES = REPO / "tests" / "features" / "contract"
BONEMET = [sys.executable, "-m", "training.cli"]


def run_cli(args: list[str], env: dict[str, str], cwd: Path, check: bool = True):
    """Run ``bonemet ARGS`` as a subprocess; return the CompletedProcess."""
    proc = subprocess.run(
        BONEMET + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"bonemet {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(
        BONEMET_DATA_DIR=str(data_dir),
        BENTOML_HOME=str(data_dir / "bentoml"),
        OMP_WAIT_POLICY="PASSIVE",
        # Small searches keep the suite fast; the full defaults run in the benchmarks.
        BONEMET_OUTER_FOLDS="2",
        BONEMET_INNER_FOLDS="2",
        BONEMET_MAX_GRID="2",
        BONEMET_N_BOOTSTRAP="50",
    )
    return env


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """A 600-patient simulated cohort (seed 7): patients.csv, oc_measurements.csv, truth.csv."""
    from features.simulate import simulate_cohort, write_cohort

    out = tmp_path_factory.mktemp("cohort")
    write_cohort(simulate_cohort(600, seed=7), out)
    return out


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, small_cohort):
    """A project folder whose MLflow store holds trained versions and a champion."""
    work = tmp_path_factory.mktemp("project")
    env = cli_env(work / "data")
    train = run_cli(
        [
            "train",
            "--patients",
            str(small_cohort / "patients.csv"),
            "--measurements",
            str(small_cohort / "oc_measurements.csv"),
            "--experiment",
            "tests",
            "--families",
            "cox_ridge,logistic_ipcw",
        ],
        env,
        work,
    )
    promote = run_cli(["promote"], env, work, check=False)
    if promote.returncode != 0:
        # A small cohort may miss a calibration gate; the gates have their own tests.
        promote = run_cli(["promote", "--force", "--reason", "test fixture"], env, work)
    return {"dir": work, "env": env, "train": train, "promote": promote, "cohort": small_cohort}


#: Landmark days of the session's landmark model.
LANDMARKS = "0,91,183,365"


@pytest.fixture(scope="session")
def landmark_store(tmp_path_factory, small_cohort):
    """A store of its own holding one landmark ``cox_ridge`` version, trained once for the
    session by ``bonemet train --landmarks``: it must not become a version (or move the aliases)
    of the shared ``trained_store``. ``summary`` is the command's JSON answer."""
    work = tmp_path_factory.mktemp("landmark-project")
    env = cli_env(work / "data")
    data = ["--patients", str(small_cohort / "patients.csv")]
    data += ["--measurements", str(small_cohort / "oc_measurements.csv")]
    train = run_cli(
        ["train", *data, "--experiment", "tests-landmark", "--families", "cox_ridge"]
        + ["--landmarks", LANDMARKS, "--json"],
        env,
        work,
    )
    summary = json.loads(train.stdout)
    return {"dir": work, "env": env, "cohort": small_cohort, "summary": summary}
