"""Several BentoML workers: ``bonemet serve --workers N`` / ``BONEMET_WORKERS`` (issue 15, point 6).

Each worker is a process that loads the model and follows the alias; every accepted connection
must have TCP_NODELAY (Nagle's algorithm off: with it on, each keep-alive answer waits ~40 ms
for the client's delayed ACK).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from typer.testing import CliRunner

from benchmarks.common import accepted_socket, processes, tcp_nodelay
from features.vocabulary import ENV_WORKERS, MAX_WORKERS
from serving.settings import ServingSettings, SettingsError
from training.cli import app
from training.registry import bento
from training.registry.versions import ResolvedModel

RESOLVED = ResolvedModel(
    name="bone-metastasis-risk",
    version="3",
    alias="champion",
    run_id="r",
    uri="models:/bone-metastasis-risk/3",
    tags={},
)


# --------------------------------------------------------------------------- the setting


def test_workers_default_to_one_and_are_read():
    assert ServingSettings.from_env({}).workers == 1
    assert ServingSettings.from_env({"BONEMET_WORKERS": ""}).workers == 1
    assert ServingSettings.from_env({"BONEMET_WORKERS": "2"}).workers == 2
    assert ServingSettings.from_env({"BONEMET_WORKERS": "16"}).workers == 16


@pytest.mark.parametrize("value", ["0", "17", "-1", "two", "1.5"])
def test_unusable_workers_name_the_variable_and_the_range(value):
    with pytest.raises(
        SettingsError, match=f"^BONEMET_WORKERS must be an integer from 1 to 16, got '{value}'$"
    ):
        ServingSettings.from_env({"BONEMET_WORKERS": value})


def test_the_service_and_the_import_refuse_one_above_the_one_bound(tmp_path):
    # The bound and the variable are declared once (features.vocabulary); the CLI's
    # ``--workers 17`` is refused below.
    above = str(MAX_WORKERS + 1)
    with pytest.raises(SettingsError, match=f"^{ENV_WORKERS} must be an integer from 1 to 16"):
        ServingSettings.from_env({ENV_WORKERS: above})
    model = bento.ServingModel(RESOLVED, "bone-metastasis-risk:v3", tmp_path, "sqlite:///x.db")
    with pytest.raises(ValueError, match=f"^workers must be 1-16, got {above}$"):
        model.environment(MAX_WORKERS + 1)


def test_the_served_environment_carries_the_workers(tmp_path):
    model = bento.ServingModel(RESOLVED, "bone-metastasis-risk:v3", tmp_path, "sqlite:///x.db")
    assert model.environment()[bento.ENV_WORKERS] == "1"
    env = model.environment(2)
    assert env[bento.ENV_WORKERS] == "2"
    assert ServingSettings.from_env(env).workers == 2
    with pytest.raises(ValueError, match="^workers must be 1-16, got 0$"):
        model.environment(0)


OPTION = "Invalid value for '--workers' (env var: 'BONEMET_WORKERS')"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--workers", "0"], {}, f"{OPTION}: Input should be greater than or equal to 1"),
        (["--workers", "17"], {}, f"{OPTION}: Input should be less than or equal to 16"),
        (["--workers", "two"], {}, f"{OPTION}: Input should be a valid integer"),
        ([], {"BONEMET_WORKERS": "0"}, f"{OPTION}: Input should be greater than or equal to 1"),
    ],
)
def test_bad_workers_stop_serve_before_anything_starts(tmp_path, args, env, message):
    data = tmp_path / "data"
    result = CliRunner().invoke(
        app,
        ["--verbose", "serve", "--port", "3999", *args],
        env={"BONEMET_DATA_DIR": str(data), "COLUMNS": "200", **env},
        terminal_width=200,
    )
    assert result.exit_code == 2
    assert message in re.sub(r"[\s│]+", " ", result.output)  # the text, without rich's box
    assert "serving " not in result.output
    assert not data.exists()  # no registry opened, no model imported, no server started


# --------------------------------------------------------------------------- the socket check


def _pair(nodelay: bool):
    """A real loopback connection: (listener, client, server end) with the option as asked."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server_end, _ = listener.accept()
    server_end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))
    return listener, client, server_end


@pytest.mark.parametrize("nodelay", [True, False])
def test_the_server_end_of_a_connection_is_found_and_its_option_read(nodelay):
    listener, client, server_end = _pair(nodelay)
    try:
        server_port = listener.getsockname()[1]
        where = accepted_socket(os.getpid(), server_port, client.getsockname()[1])
        assert where is not None
        pid, fd = where
        # The listener also has the local port: only the accepted end has the client as peer.
        assert (pid, fd) == (os.getpid(), server_end.fileno())
        assert tcp_nodelay(pid, fd) is nodelay
        assert server_end.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == int(nodelay)
    finally:
        for s in (client, server_end, listener):
            s.close()


def test_no_holder_for_a_connection_that_does_not_exist():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert accepted_socket(os.getpid(), listener.getsockname()[1], 1) is None


# --------------------------------------------------------------------------- two workers


@pytest.mark.slow
def test_two_workers_each_answer_with_the_model_and_follow_the_alias(
    trained_store, tmp_path_factory
):
    from tests.serving.servers import P1, free_port, running_server

    body = json.dumps({"patients": [P1], "horizons_months": [12, 24]})
    # Twenty patients: a request that keeps the worker that accepted it busy for a moment.
    busy = json.dumps({"patients": [dict(P1, patient_id=f"P{k}") for k in range(20)]})
    port = free_port()
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path_factory.mktemp("workers2") / "server.log"
    ready = f"http://127.0.0.1:{port}/readyz"
    env = dict(trained_store["env"], BONEMET_RELOAD_SECONDS="1")
    with running_server(cmd, env, trained_store["dir"], ready, log):
        (root,) = processes(os.getpid(), "training.cli", "serve", "--port", str(port))
        workers = processes(root, "_bentoml_impl.worker.service")
        assert len(workers) == 2, f"worker processes: {workers}"

        def connect(_):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(3):
                conn.request("POST", "/predict", busy, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                assert resp.status == 200, resp.read()
                resp.read()
            return conn

        def check(conn: http.client.HTTPConnection) -> tuple[str, float]:
            """Readiness, model and an answer from the worker holding ``conn`` (keep-alive)."""
            conn.request("GET", "/readyz")
            ready = json.loads(conn.getresponse().read())
            assert ready["ready"] is True
            assert ready["following"] is True and ready["alias"] == "champion"
            conn.request("GET", "/model")
            model = json.loads(conn.getresponse().read())
            conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = json.loads(resp.read())
            assert resp.status == 200, answer
            assert resp.getheader("X-Model-Version") == model["version"] == ready["version"]
            (prediction,) = answer["predictions"]
            return model["version"], prediction["risk_score"]

        def per_worker(ask):
            """``ask(conn)`` once in each worker, on a connection that worker accepted.

            The workers share the listening socket and the kernel hands each new connection to
            one that is free to accept: idle workers take them unevenly, busy ones leave some
            to the other. Rounds of concurrent connections that keep their worker busy reach
            both. A worker is asked on a connection of the round it was seen in (the server
            closes a connection idle for a few seconds).
            """
            out = {}
            for _ in range(20):
                with ThreadPoolExecutor(16) as pool:
                    conns = list(pool.map(connect, range(16)))
                try:
                    for conn in conns:
                        where = accepted_socket(root, port, conn.sock.getsockname()[1])
                        assert where is not None and where[0] in workers, where
                        assert tcp_nodelay(*where), f"Nagle's algorithm is on in {where[0]}"
                        if where[0] not in out:
                            out[where[0]] = ask(conn)
                finally:
                    for conn in conns:
                        conn.close()
                if len(out) == 2:
                    return out
            raise AssertionError(f"20 rounds of 16 connections reached only workers {set(out)}")

        answers = per_worker(check)
        assert set(answers) == workers
        # The same version in both workers, and the same answer for the same patient.
        assert len(set(answers.values())) == 1, answers

        # Each worker follows the alias on its own: move it, both must serve the new target.
        # (Moved back afterwards: the session's store keeps its aliases.)
        import mlflow

        ((before, _),) = set(answers.values())
        after = "1" if before == "2" else "2"
        uri = f"sqlite:///{trained_store['dir'] / 'data' / 'mlflow.db'}"
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        name = "bone-metastasis-risk"

        def served(conn) -> str:
            conn.request("GET", "/readyz")
            return json.loads(conn.getresponse().read())["version"]

        client.set_registered_model_alias(name, "champion", after)
        try:
            deadline = time.monotonic() + 90
            while set((now := per_worker(served)).values()) != {after}:
                assert time.monotonic() < deadline, f"versions served by the workers: {now}"
                time.sleep(1.0)
        finally:
            client.set_registered_model_alias(name, "champion", before)
