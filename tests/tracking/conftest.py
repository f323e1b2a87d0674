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


def start_cli(
    args: list[str], env: dict[str, str], cwd: Path, log: Path | None = None
) -> subprocess.Popen:
    """``bonemet ARGS`` started in the background (its own process group).

    Output goes to pipes read by ``communicate``, or to ``log`` for a long-running server
    (a pipe nobody reads would block it once full).
    """
    out = open(log, "w") if log else subprocess.PIPE  # closed below, once the child has it
    try:
        return subprocess.Popen(
            BONEMET + args,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT if log else subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    finally:
        if log:
            out.close()


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


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL 15 server on a free loopback port for the whole session."""
    from tests.tracking.postgres import start_postgres

    server = start_postgres()
    yield server
    server.stop()


def start_tracking_server(
    database_url: str, work: Path, *extra: str, env_extra: dict[str, str] | None = None
):
    """``bonemet tracking-server`` on a free port; returns (process, tracking URI)."""
    import requests

    from tests.tracking.postgres import free_port

    port = free_port()
    env = {**cli_env(work / "data"), **(env_extra or {})}
    proc = start_cli(
        [
            "tracking-server",
            "--backend-store-uri",
            database_url,
            "--artifacts-destination",
            str(work / "artifacts"),
            "--port",
            str(port),
            *extra,
        ],
        env,
        work,
        log=work / "tracking-server.log",
    )
    uri = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            log = (work / "tracking-server.log").read_text()[-3000:]
            raise AssertionError(f"tracking server exited: {log}")
        try:
            return requests.get(f"{uri}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=180, what="the tracking server")
    return proc, uri


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, then SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    except ProcessLookupError:
        proc.wait(timeout=30)
