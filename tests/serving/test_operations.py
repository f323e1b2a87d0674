"""Operations of a real server: token, audit log, size limit, metadata, model switch under load."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
import requests

from tests.serving.servers import bonemet_serve

pytestmark = pytest.mark.slow
TOKEN = "test-token-123"
PATIENT = {
    "patient_id": "Q0001",
    "age_years": 61,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "oc_positive_percent": 0.052,
}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def secured(trained_store, tmp_path_factory):
    with bonemet_serve(
        trained_store,
        tmp_path_factory,
        "secured",
        BONEMET_API_TOKEN=TOKEN,
        BONEMET_RELOAD_SECONDS="1",
        BONEMET_MAX_BODY_BYTES="100000",
    ) as running:
        yield running


def predict(base: str, headers=AUTH, patients=(PATIENT,)) -> requests.Response:
    return requests.post(
        f"{base}/predict", json={"patients": list(patients)}, headers=headers, timeout=30
    )


def test_bearer_token_required_on_api_not_on_health(secured):
    base = secured["base"]
    assert predict(base, headers={}).status_code == 401
    assert predict(base, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert requests.get(f"{base}/model", timeout=5).status_code == 401
    assert predict(base).status_code == 200
    for path in ("/healthz", "/readyz"):
        assert requests.get(base + path, timeout=5).status_code == 200
    # Closed by default (issue 21): metrics are for a scraper that has the token.
    assert requests.get(f"{base}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{base}/metrics", headers=AUTH, timeout=5).status_code == 200


def test_model_metadata(secured):
    r = requests.get(f"{secured['base']}/model", headers=AUTH, timeout=5)
    assert r.status_code == 200
    body = r.json()
    for key in (
        "name",
        "version",
        "alias",
        "run_id",
        "training_data_digest",
        "headline_metrics",
        "features",
        "horizons_months",
        "contract_version",
    ):
        assert key in body, key
    assert body["alias"] == "champion" and body["contract_version"] == "1.2"
    assert body["horizons_months"] == [12, 24, 36, 60]
    assert "test_uno_c" in body["headline_metrics"]
    assert "oc_log2_percent" in body["features"]
    # The risk model's own sentence on the competing risk, served as it is.
    assert body["competing_risk"] and isinstance(body["competing_risk"], str)


def test_oversized_body_is_413_and_nothing_crashes(secured):
    many = [dict(PATIENT, patient_id=f"Q{k:05d}") for k in range(1000)]
    r = predict(secured["base"], patients=many)
    assert r.status_code == 413
    assert r.json() == {"error": "request body larger than 100000 bytes"}
    assert predict(secured["base"]).status_code == 200


def test_audit_lines_hold_no_patient_fields(secured):
    r = predict(secured["base"])
    request_id = r.headers["X-Request-ID"]
    time.sleep(0.5)
    lines = [
        json.loads(line)
        for line in secured["log"].read_text().splitlines()
        if line.startswith('{"event": "request"')
    ]
    (line,) = [entry for entry in lines if entry["request_id"] == request_id]
    assert line["status"] == 200 and line["n_patients"] == 1 and line["path"] == "/predict"
    assert line["model_version"] == r.json()["model"]["version"]
    assert set(line) == {
        "event",
        "request_id",
        "method",
        "path",
        "status",
        "latency_ms",
        "model_version",
        "n_patients",
    }
    assert "Q0001" not in "\n".join(json.dumps(entry) for entry in lines)


def test_alias_move_switches_version_without_failing_a_request(secured):
    import mlflow

    store = secured["store"]
    uri = f"sqlite:///{store['dir'] / 'data' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = mlflow.MlflowClient()
    name = "bone-metastasis-risk"
    before = str(client.get_model_version_by_alias(name, "champion").version)
    after = "1" if before == "2" else "2"
    seen: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def hammer() -> None:
        session = requests.Session()
        while not stop.is_set():
            r = session.post(
                f"{secured['base']}/predict", json={"patients": [PATIENT]}, headers=AUTH, timeout=30
            )
            version = r.json()["model"]["version"] if r.status_code == 200 else None
            seen.append((r.status_code, version))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.0)
        client.set_registered_model_alias(name, "champion", after)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(v == after for _, v in seen[-20:]):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
        client.set_registered_model_alias(name, "champion", before)
    statuses = {s for s, _ in seen}
    assert statuses == {200}, f"a request failed during the switch: {statuses}"
    versions = [v for _, v in seen]
    assert before in versions and after in versions
    first_new = versions.index(after)
    assert before not in versions[first_new + 8 :]  # once switched, it stays switched


def test_bentoml_build_works_offline(secured, tmp_path):
    """bentofile.yaml builds a Bento with the served model, without locking packages online."""
    import subprocess
    from pathlib import Path

    store = secured["store"]
    env = dict(store["env"])
    # The version `bonemet serve` imported into this store (a later alias move is loaded from
    # the registry, not imported), so: the latest in the store.
    env["BONEMET_BENTO_MODEL"] = "bone-metastasis-risk:latest"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(repo)],
        env=env,
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    listed = subprocess.run(
        [sys.executable, "-m", "bentoml", "list", "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert '"bonemet:' in listed.stdout.replace(" ", "") or "bonemet" in listed.stdout
