"""Fixtures of the registry tests: fast training settings and a cohort of their own."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BONEMET, cli_env

#: Smallest search that still runs the whole pipeline (a model per family in seconds).
FAST = {
    "BONEMET_OUTER_FOLDS": "2",
    "BONEMET_INNER_FOLDS": "2",
    "BONEMET_MAX_GRID": "1",
    "BONEMET_N_BOOTSTRAP": "0",
    "BONEMET_N_JOBS": "1",
}


def fast_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The CLI environment of ``tests.conftest.cli_env`` with the fastest training."""
    env = cli_env(data_dir)
    env.update(FAST)
    env.update(extra)
    return env


def train_args(cohort: Path, families: str, experiment: str) -> list[str]:
    return [
        "train",
        "--patients",
        str(cohort / "patients.csv"),
        "--measurements",
        str(cohort / "oc_measurements.csv"),
        "--experiment",
        experiment,
        "--families",
        families,
    ]


def start_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
    """``bonemet ARGS`` started in the background (its own process group)."""
    return subprocess.Popen(
        BONEMET + args,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def kill_hard(proc: subprocess.Popen) -> None:
    """``kill -9`` of the process and its workers; reaped."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=30)


def wait_for(condition, timeout: float = 300, every: float = 0.5, what: str = "condition"):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture(scope="session")
def fault_cohort(tmp_path_factory) -> Path:
    """A 400-patient simulated cohort (seed 11) for the registry tests."""
    from features.simulate import simulate_cohort, write_cohort

    out = tmp_path_factory.mktemp("fault-cohort")
    write_cohort(simulate_cohort(400, seed=11), out)
    return out
