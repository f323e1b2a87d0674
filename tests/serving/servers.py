"""Real servers on loopback for the tests: a free port, a process run until it is ready, and
``bonemet serve`` of a trained store (the ``server`` fixture: ``tests/serving/conftest.py``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import requests

P1 = {
    "patient_id": "P0001",
    "age_years": 54,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "er_status": "positive",
    "oc_positive_percent": 0.061,
    "oc_measurements": [
        {"day": 0, "oc_positive_percent": 0.061},
        {"day": 90, "oc_positive_percent": 0.074},
    ],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(cmd: list[str], env: dict, cwd, ready_url: str, log_path):
    """Start a server process, wait until ``ready_url`` answers 200, stop it afterwards."""
    # A file, not a pipe: an unread pipe fills up with request logs and blocks the server.
    log = open(log_path, "w+")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise AssertionError(f"{cmd[2:5]} exited early:\n{log.read()}")
            try:
                if requests.get(ready_url, timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{cmd[2:5]} not ready after 120 s")
            time.sleep(0.5)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextmanager
def bonemet_serve(store: dict, tmp_path_factory, name: str, **env: str):
    """``bonemet serve`` of ``store`` with ``env`` added, on a free port, until the block ends.

    Yields ``{"base": URL, "port": int, "log": Path, "store": store}``.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
    log = tmp_path_factory.mktemp(name) / "server.log"
    with running_server(cmd, dict(store["env"], **env), store["dir"], f"{base}/readyz", log):
        yield {"base": base, "port": port, "log": log, "store": store}
