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
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from serving.gateway import PUBLIC_ROUTES, ROUTES, is_public
from tests.serving.documents import endpoint_labels
from tests.serving.servers import bonemet_serve, free_port

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
        BONEMET_HEADER_TIMEOUT_SECONDS="2",
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
        assert ready["alias_error"]  # why: the exception type (the log has its message)
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


def test_unknown_paths_do_not_grow_metrics(hard):
    base = hard["base"]
    # Every (label, status) series the loop below can create exists before it is measured.
    for path in ("/healthz", "/nope", "/predict"):
        requests.get(base + path, timeout=5)
        requests.post(base + path, timeout=5)
    before = requests.get(f"{base}/metrics", headers=AUTH, timeout=5).text
    session = requests.Session()
    for k in range(400):
        method = session.get if k % 2 else session.post
        r = method(f"{base}/unknown-{k}/P{k:05d}", timeout=5)
        assert r.status_code < 500
    after = requests.get(f"{base}/metrics", headers=AUTH, timeout=5).text
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


# --- Issue 20 (serving side), 21.3 (routes closed by default), 23.5 (the API page) ---


def _route_table(store: dict) -> list[dict]:
    """Every route of the service's real ASGI app (built in a fresh process, not served)."""
    script = (
        "import json\n"
        "from serving.service import BoneMetastasisService as S\n"
        "def walk(routes, prefix=''):\n"
        "    for r in routes:\n"
        "        path = prefix + getattr(r, 'path', '')\n"
        "        if getattr(r, 'routes', None):\n"
        "            yield from walk(r.routes, path)\n"
        "        else:\n"
        "            yield {'path': path, 'methods': sorted(getattr(r, 'methods', None) or []),"
        " 'mount': not hasattr(r, 'endpoint')}\n"
        "print(json.dumps(list(walk(S.to_asgi(is_main=True).routes))))\n"
    )
    env = dict(store["env"], BONEMET_BENTO_MODEL=f"{NAME}:latest")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=store["dir"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_route_needs_the_token_unless_public(hard):
    """21.3: enumerated from the app's route table; open only what PUBLIC_ROUTES lists."""
    routes = _route_table(hard["store"])
    assert {"/predict", "/explain", "/model", "/model/card", "/metrics"} <= {
        r["path"] for r in routes
    }
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x", route["path"]) + ("/x" if route["mount"] else "")
        for method in route["methods"] or ["GET"]:
            r = requests.request(method, hard["base"] + path, timeout=10)
            if is_public(path):
                assert r.status_code != 401, (method, path)
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                with_token = requests.request(method, hard["base"] + path, headers=AUTH, timeout=10)
                assert with_token.status_code != 401, (method, path)
    # Every public entry names a route that exists (the list holds nothing stale).
    paths = [r["path"] + ("/" if r["mount"] else "") for r in routes]
    for entry in PUBLIC_ROUTES:
        prefix = entry.removesuffix("*")
        assert any(p == entry or (entry.endswith("*") and p.startswith(prefix)) for p in paths)


def test_silent_and_slow_header_connections_are_closed(hard):
    """20.12: 2,000 silent connections were held for ever; now 2 s (the test server's)."""
    with socket.create_connection(("127.0.0.1", hard["port"]), timeout=30) as silent:
        assert silent.recv(100) == b""  # closed by the server, not by the 30 s timeout
    with socket.create_connection(("127.0.0.1", hard["port"]), timeout=30) as slow:
        closed = False
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                slow.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.2)
        assert closed or slow.recv(100) == b""
    # A connection that answers in time is kept and served as before.
    assert requests.get(f"{hard['base']}/healthz", timeout=5).status_code == 200


def test_put_on_a_get_route_is_405_and_compressed_bodies_415(hard):
    for path in ("/model", "/healthz"):
        r = requests.put(hard["base"] + path, json={}, headers=AUTH, timeout=5)
        assert r.status_code == 405, (path, r.status_code)
    headers = {**AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = requests.post(f"{hard['base']}/predict", data=b"{}", headers=headers, timeout=5)
    assert r.status_code == 415


def test_amplifying_duplicate_keys_get_a_small_answer(hard):
    """20.3: a 9.6 MB body of repeated keys drew a 152 MB 400 after 14 s."""
    body = b'{"patients": [{' + b'"age_years": 1, ' * 300_000 + b'"x": 1}]}'
    r = raw_post(hard, body, "application/json")
    assert r.status_code == 400 and len(r.content) < 1000, len(r.content)
    assert r.json()["detail"][0]["loc"] == ["patients", 0, "age_years"]
    assert requests.get(f"{hard['base']}/healthz", timeout=5).status_code == 200


def test_errors_are_in_the_contracts_words(hard):
    r = post(hard, {"patients": [{**PATIENT, "age_years": 250, "er_statu": "positive"}]})
    assert r.status_code == 400
    body = r.json()
    assert "validation error" not in body["error"] and "pydantic" not in r.text
    by_field = {d["field"]: d for d in body["detail"]}
    assert by_field["age_years"]["value"] == 250 and by_field["age_years"]["rule"]
    assert by_field["er_statu"]["suggestion"] == "did you mean 'er_status'?"
    log = hard["log"].read_text()
    assert not [x for x in log.splitlines() if "[ERROR]" in x and "PredictRequest" in x]


def test_alias_error_names_no_server_path(hard, tmp_path):
    client = _client(hard["store"])
    before = str(client.get_model_version_by_alias(NAME, "champion").version)
    run_id = client.get_model_version(NAME, before).run_id
    gone = tmp_path / "secret-server-folder" / "model"
    version = str(client.create_model_version(NAME, str(gone), run_id=run_id).version)
    try:
        client.set_registered_model_alias(NAME, "champion", version)
        ready = _wait(hard, lambda r: r["alias_target"] == version, "divergence reported")
        model = requests.get(f"{hard['base']}/model", headers=AUTH, timeout=5).json()
        for text in (json.dumps(ready), json.dumps(model)):
            assert "secret-server-folder" not in text and str(tmp_path) not in text
    finally:
        client.set_registered_model_alias(NAME, "champion", before)
        _wait(hard, lambda r: r["alias_target"] is None, "original version back")
        client.delete_model_version(NAME, version)


def test_deleted_alias_is_not_claimed(hard):
    """20.12: after ``champion`` was deleted, answers still said "champion"."""
    client = _client(hard["store"])
    before = str(client.get_model_version_by_alias(NAME, "champion").version)
    try:
        client.delete_registered_model_alias(NAME, "champion")
        ready = _wait(hard, lambda r: r["alias"] is None, "alias deletion seen")
        assert ready["version"] == before and "names no version" in ready["alias_error"]
        r = post(hard, {"patients": [PATIENT]})
        assert r.status_code == 200 and r.json()["model"]["alias"] is None
    finally:
        client.set_registered_model_alias(NAME, "champion", before)
    ready = _wait(hard, lambda r: r["alias"] == "champion", "alias back")
    assert ready["alias_error"] is None and ready["version"] == before


def test_a_second_server_keeps_the_first_ones_metrics(hard, tmp_path):
    """20.5: a second ``bonemet serve`` on the same data folder emptied the first one's
    Prometheus files as BentoML started (its ``/metrics`` read 0 from then on). The second
    server is stopped once BentoML has started it (the folder is prepared before that line)."""

    def predictions_counted() -> float:
        text = requests.get(f"{hard['base']}/metrics", headers=AUTH, timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("bentoml_service_request_total")
            and 'endpoint="/predict"' in line
        )

    assert post(hard, {"patients": [PATIENT]}).status_code == 200
    counted = predictions_counted()
    assert counted >= 1
    store = hard["store"]
    log_path = tmp_path / "second.log"
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(free_port())]
    with open(log_path, "w") as log:
        second = subprocess.Popen(
            cmd, env=store["env"], cwd=store["dir"], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while "Starting production HTTP BentoServer" not in log_path.read_text():
            assert second.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        assert predictions_counted() >= counted
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(second.pid, signal.SIGKILL)


def test_api_page_loads_nothing_from_elsewhere(hard):
    """20.6 / 23.5: BentoML's page loaded Google Tag Manager into the token's origin."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM_ARGS, chromium_path

    base = hard["base"]
    r = requests.get(f"{base}/", timeout=5)
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "googletagmanager" not in r.text
    requested: list[str] = []
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda req: requested.append(req.url))
            page.on(
                "response",
                lambda res: res.status >= 400 and problems.append(f"{res.status} {res.url}"),
            )
            page.on("pageerror", lambda err: problems.append(str(err)))
            page.on(
                "console",
                lambda msg: problems.append(msg.text) if msg.type == "error" else None,
            )
            page.goto(f"{base}/", wait_until="networkidle")
            page.wait_for_selector("text=bonemet: bone metastasis risk", timeout=30_000)
            page.wait_for_selector("text=/predict", timeout=30_000)
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        finally:
            browser.close()
    assert requested and all(u.startswith(base + "/") for u in requested), requested
    assert f"{base}/docs.json" in requested
    assert f"{base}/clinician" in links and f"{base}/model/card" in links
    assert problems == [], problems  # no script error, no CSP violation


def test_api_document_has_real_examples_and_no_server_error(hard):
    spec = requests.get(f"{hard['base']}/docs.json", timeout=5).json()
    assert "./clinician" in spec["info"]["description"]
    assert "./model/card" in spec["info"]["description"]
    served = requests.get(f"{hard['base']}/readyz", timeout=5).json()["version"]
    for route in ("/predict", "/explain"):
        responses = spec["paths"][route]["post"]["responses"]
        assert not any(code.startswith("5") for code in responses)
        example = responses["200"]["content"]["application/json"]["example"]
        assert example["model"]["version"] == served
        (prediction,) = example["predictions"]
        assert prediction["patient_id"] == "P0001" and prediction["bone_metastasis_probability"]
