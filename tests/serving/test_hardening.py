"""A real server under what an attacker or an unlucky operator sends it (issue 10).

One ``bonemet serve`` on loopback with a token, a 1 s alias poll, a 2 s body deadline and one
allowed CORS origin,
against the session's real MLflow store:

- a ``champion`` moved to a version whose artifact is damaged: the service keeps answering with
  the version it has, names the target it failed to load and why (``GET /model``, every
  answer, ``/readyz``, the log), keeps following, and serves the next good target;
- bodies that are not JSON (415, BentoML's form parser never runs), huge integers (400 naming
  the field), duplicate keys (400), a stalled body (408, not 504), the bearer scheme in any
  case, a default ``prediction_day`` out of range (400), integral floats in integer fields (200);
- CORS headers for the configured origin only; unknown paths do not grow ``/metrics``;
- the published OpenAPI document: title, version, description, an example that is answered
  200, ``GET /model`` documented with the fields it answers.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
import requests

from serving.gateway import ROUTES
from tests.serving.test_service import bonemet_serve

pytestmark = pytest.mark.slow
TOKEN = "hardening-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAME = "bone-metastasis-risk"
CLINIC = "https://clinic.example"
PATIENT = {
    "patient_id": "HARD01",
    "age_years": 58,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "oc_positive_percent": 0.052,
}


@pytest.fixture(scope="module")
def hard(trained_store, tmp_path_factory):
    with bonemet_serve(
        trained_store,
        tmp_path_factory,
        "hardening",
        BONEMET_API_TOKEN=TOKEN,
        BONEMET_RELOAD_SECONDS="1",
        BONEMET_BODY_TIMEOUT_SECONDS="2",
        BONEMET_CORS_ORIGINS=CLINIC,
    ) as running:
        yield running


def post(hard, body, headers=AUTH, path="/predict", **kw) -> requests.Response:
    return requests.post(f"{hard['base']}{path}", json=body, headers=headers, timeout=30, **kw)


def raw_post(hard, data, content_type: str | None) -> requests.Response:
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return requests.post(f"{hard['base']}/predict", data=data, headers=headers, timeout=30)


def _client(store):
    import mlflow

    uri = f"sqlite:///{store['dir'] / 'data' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient()


def _damaged_version(client, tmp: Path) -> str:
    """A new registered version: a copy of version 1 with its fitted model cut in half."""
    good = client.get_model_version(NAME, "1")
    source = Path(client.get_model_version_download_uri(NAME, "1").removeprefix("file://"))
    damaged = tmp / "damaged-model"
    shutil.copytree(source, damaged)
    (pickled,) = (damaged / "artifacts").glob("*.joblib")
    pickled.write_bytes(pickled.read_bytes()[: pickled.stat().st_size // 2])
    return str(client.create_model_version(NAME, str(damaged), run_id=good.run_id).version)


def _wait(hard, accept, what: str, seconds: float = 60.0) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready = requests.get(f"{hard['base']}/readyz", timeout=5).json()
        if accept(ready):
            return ready
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {seconds} s; last /readyz {ready}")


def test_damaged_alias_target_is_reported_while_the_served_version_answers(hard, tmp_path):
    client = _client(hard["store"])
    before = str(client.get_model_version_by_alias(NAME, "champion").version)
    other = "1" if before == "2" else "2"
    damaged = _damaged_version(client, tmp_path)
    try:
        client.set_registered_model_alias(NAME, "champion", damaged)
        ready = _wait(hard, lambda r: r["alias_target"] == damaged, "divergence reported")
        assert ready["version"] == before and ready["following"] is True
        assert ready["alias_error"]  # why, e.g. "ValueError: EOF: reading array data ..."
        r = post(hard, {"patients": [PATIENT]})
        assert r.status_code == 200, r.text
        model = r.json()["model"]
        assert model["version"] == before and model["alias_target"] == damaged
        assert model["alias_error"] == ready["alias_error"]
        assert r.headers["X-Model-Version"] == before
        assert r.headers["X-Model-Alias-Target"] == damaged
        info = requests.get(f"{hard['base']}/model", headers=AUTH, timeout=5).json()
        assert (info["version"], info["alias_target"]) == (before, damaged)
        # Still following: the next good target is loaded and served, the report cleared.
        client.set_registered_model_alias(NAME, "champion", other)
        ready = _wait(hard, lambda r: r["version"] == other, "next good version served")
        assert ready["alias_target"] is None and ready["alias_error"] is None
        r = post(hard, {"patients": [PATIENT]})
        assert r.json()["model"]["version"] == other and "X-Model-Alias-Target" not in r.headers
    finally:
        client.set_registered_model_alias(NAME, "champion", before)
    _wait(hard, lambda r: r["version"] == before, "original version back")
    # The shared store keeps only the versions training made (other tests read every one).
    client.delete_model_version(NAME, damaged)
    log = hard["log"].read_text()
    (line,) = [x for x in log.splitlines() if f"names version {damaged}, which cannot" in x]
    assert f"still serving version {before}" in line and ready["alias_error"] is None
    assert PATIENT["patient_id"] not in log


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        ("patients=1", "application/x-www-form-urlencoded"),
        ("&".join(f"f{k}=1" for k in range(2000)), "application/x-www-form-urlencoded"),
        ("a" + "[a]" * 5000 + "=1", "application/x-www-form-urlencoded"),
        (
            "--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
            "multipart/form-data",
        ),
        ("--x\r\n", "multipart/form-data; boundary=x"),
        (json.dumps({"patients": [PATIENT]}), "text/plain"),
        (json.dumps({"patients": [PATIENT]}), None),
        (json.dumps({"patients": [PATIENT]}), "application/jsonx"),
    ],
)
def test_bodies_that_are_not_json_are_415_before_any_parser(hard, data, content_type):
    r = raw_post(hard, data, content_type)
    assert r.status_code == 415, r.text
    assert r.json() == {"error": "unsupported media type: send application/json"}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_json_media_type_with_parameters_or_capitals_is_accepted(hard, content_type):
    r = raw_post(hard, json.dumps({"patients": [PATIENT]}), content_type)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pbmc_events", 10**309),
        ("oc_positive_events", 10**400),
        ("pbmc_events", 2**60),
        ("age_years", 10**400),
        ("positive_lymph_nodes", -(10**309)),
    ],
)
def test_numbers_of_any_size_are_400_naming_the_field(hard, field, value):
    body = json.dumps({"patients": [{**PATIENT, field: value}]})
    r = raw_post(hard, body, "application/json")
    assert r.status_code == 400, r.text
    assert ["patients", 0, field] in [d["loc"] for d in r.json()["detail"]]
    draw = {"day": 0, "oc_positive_events": value, "pbmc_events": 10**400}
    r = post(hard, {"patients": [{**PATIENT, "oc_measurements": [draw]}]})
    assert r.status_code == 400, r.text


def test_duplicate_keys_are_400_with_their_place(hard):
    body = (
        '{"patients": [{"patient_id": "D1", "age_years": 50, "age_years": 90, '
        '"disease_setting": "metastatic", "bone_metastasis_at_enrollment": false}]}'
    )
    r = raw_post(hard, body, "application/json")
    assert r.status_code == 400, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["patients", 0, "age_years"]]


def test_stalled_body_is_408_not_504(hard):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", hard["port"]), timeout=30) as s:
        s.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 500\r\n\r\n".encode()
            + b'{"patients": ['
        )
        answer = s.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert time.monotonic() - started < 20


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(hard, scheme):
    assert post(hard, {"patients": [PATIENT]}, headers={"Authorization": f"{scheme} {TOKEN}"}).ok


@pytest.mark.parametrize("value", [f"Basic {TOKEN}", TOKEN, f"Bearer{TOKEN}", "Bearer x", ""])
def test_other_credentials_are_401(hard, value):
    r = post(hard, {"patients": [PATIENT]}, headers={"Authorization": value})
    assert r.status_code == 401


def test_default_prediction_day_is_bounded_like_a_given_one(hard):
    draws = [{"day": 0, "oc_positive_percent": 0.05}, {"day": 40000, "oc_positive_percent": 0.06}]
    r = post(hard, {"patients": [{**PATIENT, "oc_measurements": draws}]})
    assert r.status_code == 400, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["patients", 0, "prediction_day"]
    assert item["msg"].startswith("must be 0-36500: not given, it defaults to the latest draw")
    given = post(hard, {"patients": [{**PATIENT, "oc_measurements": draws, "prediction_day": 100}]})
    assert given.status_code == 200, given.text
    assert post(hard, {"patients": [{**PATIENT, "prediction_day": 40000}]}).status_code == 400


def test_integral_floats_are_integers_in_requests_as_in_files(hard):
    pandas_like = {**PATIENT, "histologic_grade": 2.0, "positive_lymph_nodes": 0.0}
    pandas_like.update(oc_positive_percent=0.05, oc_positive_events=50.0, pbmc_events=100000.0)
    r = post(hard, {"patients": [pandas_like]})
    assert r.status_code == 200, r.text
    exact = post(hard, {"patients": [{**pandas_like, "histologic_grade": 2}]})
    assert exact.json()["predictions"] == r.json()["predictions"]
    r = post(hard, {"patients": [{**pandas_like, "histologic_grade": 2.5}]})
    assert r.status_code == 400
    assert [d["loc"] for d in r.json()["detail"]] == [["patients", 0, "histologic_grade"]]


def test_cors_only_for_the_configured_origin(hard):
    """``BONEMET_CORS_ORIGINS`` names the origins a browser may call from; no other gets CORS."""
    for origin, allowed in ((CLINIC, True), ("https://elsewhere.example", False)):
        r = post(hard, {"patients": [PATIENT]}, headers={**AUTH, "Origin": origin})
        assert r.status_code == 200
        assert r.headers.get("access-control-allow-origin") == (origin if allowed else None)
        preflight = requests.options(
            f"{hard['base']}/predict",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
            timeout=5,
        )
        assert preflight.status_code == (200 if allowed else 400), preflight.text
        assert preflight.headers.get("access-control-allow-origin") == (origin if allowed else None)


def endpoint_labels(text: str) -> set[str]:
    return {
        part.split('"')[1]
        for line in text.splitlines()
        if not line.startswith("#")
        for part in line.split("endpoint=")[1:]
    }


def test_unknown_paths_do_not_grow_metrics(hard):
    base = hard["base"]
    # Every (label, status) series the loop below can create exists before it is measured.
    for path in ("/healthz", "/nope", "/predict"):
        requests.get(base + path, timeout=5)
        requests.post(base + path, timeout=5)
    before = requests.get(f"{base}/metrics", timeout=5).text  # open: no token needed
    session = requests.Session()
    for k in range(400):
        method = session.get if k % 2 else session.post
        r = method(f"{base}/unknown-{k}/P{k:05d}", timeout=5)
        assert r.status_code < 500
    after = requests.get(f"{base}/metrics", timeout=5).text
    assert endpoint_labels(after) <= set(ROUTES) | {"other", "/static_content"}
    assert "unknown-" not in after and "P00001" not in after
    assert len(after) < len(before) + 2000, (len(before), len(after))


def test_published_document_describes_the_service(hard):
    base = hard["base"]
    spec = requests.get(f"{base}/docs.json", timeout=5).json()
    info = spec["info"]
    assert info["title"] == "bonemet: bone metastasis risk" and info["version"] not in ("", "None")
    assert "bonemet:dev" not in info["description"] and "/predict" in info["description"]
    operation = spec["paths"]["/predict"]["post"]
    example = operation["requestBody"]["content"]["application/json"]["example"]
    r = post(hard, example)
    assert r.status_code == 200, r.text
    bad = operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert bad == "#/components/schemas/ContractViolations"
    documented = spec["paths"]["/model"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = spec["components"]["schemas"][documented["schema"]["$ref"].rsplit("/", 1)[1]]
    answered = requests.get(f"{base}/model", headers=AUTH, timeout=5).json()
    assert set(answered) <= set(schema["properties"]), set(answered) - set(schema["properties"])
    assert set(schema["required"]) <= set(answered)
