"""The gateway's and the API document's own rules, without a server (fast)."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from serving.gateway import ROUTES, duplicate_keys, route_label
from serving.openapi import EXAMPLE_REQUEST, VIOLATIONS_SCHEMA, complete
from serving.schemas import PatientRecord
from tests.serving.documents import as_draft4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"patients": [{"age_years": 50, "age_years": 60}]}', [["patients", 0, "age_years"]]),
        (b'{"a": 1, "b": {"c": 1, "c": 2}, "a": 3}', [["b", "c"], ["a"]]),
        (b'{"a": 1, "b": 2}', []),
        (b"not json", []),
        (b"[" * 100_000, []),  # too deep for the parser: the service's own 400
    ],
)
def test_duplicate_keys_are_found_with_their_place(body, expected):
    assert duplicate_keys(body) == expected


def test_route_labels_come_from_a_fixed_set():
    assert {route_label(r) for r in ROUTES} == set(ROUTES)
    assert route_label("/static_content/swagger-ui.css") == "/static_content"
    for path in ("/predict/", "/PREDICT", "/predict/x", "/../etc/passwd", "/P0001", ""):
        assert route_label(path) == "other"


def test_published_example_is_a_valid_patient_and_400_schema_is_openapi30():
    PatientRecord.model_validate_json(json.dumps(EXAMPLE_REQUEST["patients"][0]))
    spec = complete({"paths": {"/predict": {"post": {"responses": {"404": {}}}}}}, secured=True)
    assert spec["info"]["title"].startswith("bonemet") and spec["info"]["version"] != "None"
    assert set(spec["paths"]) == {"/predict", "/model"}
    assert set(spec["paths"]["/predict"]["post"]["responses"]) == {
        "400",
        "401",
        "408",
        "413",
        "415",
    }
    # The document says what the service answers: a 400 of the contract validates against it
    # (OpenAPI 3.0 "nullable" spelled out as draft 4).
    validator = jsonschema_rs.Draft4Validator(as_draft4(VIOLATIONS_SCHEMA))
    answer = {"error": "1 violation(s)", "detail": [{"loc": ["patients", 0, None], "msg": "x"}]}
    assert validator.is_valid(answer)
    assert not validator.is_valid({"error": "x", "detail": []})


# --- Issue 20 (serving side) and 21.3: the gateway in front of a small real Starlette app ---

import anyio  # noqa: E402
import httpx  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402

from serving.errors import MAX_REPORTED, MAX_VALUE_CHARS, contract_words  # noqa: E402
from serving.gateway import PUBLIC_ROUTES, GatewayMiddleware, is_public  # noqa: E402
from serving.settings import ServingSettings  # noqa: E402

TOKEN = "gateway-token"


class _Client:
    """Requests to an ASGI app in this process (httpx's ASGI transport), synchronously."""

    def __init__(self, app) -> None:
        self.app = app

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, path, **kw)

        return anyio.run(call)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, **kw) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.request("POST", path, **kw)


def _gateway_client(token: str | None = TOKEN) -> _Client:
    async def ok(request):
        return JSONResponse({"ok": True})

    async def reject(request):
        body = await request.json()
        loc = ["patients", 0, next(iter(body["patients"][0]))]
        return JSONResponse(
            {"error": "1 validation error for PredictRequest", "detail": [
                {"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted"}
            ]},
            status_code=400,
        )

    inner = Starlette(routes=[Route("/later", ok, methods=["GET"])])
    app = Starlette(
        routes=[
            Route("/healthz", ok, methods=["GET"]),
            Route("/model", ok, methods=["GET"]),
            Route("/predict", reject, methods=["POST"]),
            Mount("/added", inner),  # a route nobody listed anywhere
        ]
    )
    settings = ServingSettings(api_token=token)
    return _Client(GatewayMiddleware(app, settings=settings))


def test_routes_are_closed_unless_public():
    """21.3: a route nobody listed (``/added/later``) needs the token; public ones do not."""
    client = _gateway_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for path in ("/model", "/added/later", "/metrics", "/anything"):
        assert client.get(path).status_code == 401, path
    assert client.get("/added/later", headers=auth).status_code == 200
    assert client.get("/healthz").status_code == 200
    assert all(r.startswith("/") for r in PUBLIC_ROUTES)
    assert is_public("/clinician/static/clinician.js") and not is_public("/clinicianX")
    assert not is_public("/model") and not is_public("/predict") and not is_public("/metrics")


def test_no_token_configured_means_open():
    client = _gateway_client(token=None)
    assert client.get("/model").status_code == 200
    assert client.get("/added/later").status_code == 200


def test_a_body_to_a_route_that_takes_none_is_405_and_encodings_are_refused():
    """20.12: ``PUT`` on a GET route is 405 (was 415); an unknown ``Content-Encoding`` 415."""
    client = _gateway_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.put("/model", headers=auth, content=b"x").status_code == 405
    assert client.put("/healthz", content=b"x").status_code == 405
    assert client.post("/model", headers=auth, json={}).status_code == 405
    gz = {**auth, "Content-Type": "application/json", "Content-Encoding": "gzip"}
    r = client.post("/predict", headers=gz, content=b"{}")
    assert r.status_code == 415 and "Content-Encoding" in r.json()["error"]
    plain = {**auth, "Content-Type": "application/json", "Content-Encoding": "identity"}
    r = client.post("/predict", headers=plain, content=b'{"patients": [{"a": 1}]}')
    assert r.status_code == 400


def test_amplifying_duplicate_keys_get_a_bounded_answer():
    """20.3: a body of repeated keys got one error line per repeat (9.6 MB -> 152 MB)."""
    body = b'{"patients": [{' + b'"age_years": 1, ' * 200_000 + b'"x": 1}]}'
    found = duplicate_keys(body)
    assert found == [["patients", 0, "age_years"]]
    many = b"{" + b", ".join(b'"k%d": 1, "k%d": 2' % (i, i) for i in range(500)) + b"}"
    assert len(duplicate_keys(many)) == MAX_REPORTED
    client = _gateway_client()
    r = client.post(
        "/predict",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        content=body,
    )
    assert r.status_code == 400 and len(r.content) < 1000, len(r.content)


def test_errors_in_the_contracts_words():
    """23.5: field, offending value (bounded), rule, and a suggestion for an unknown name."""
    client = _gateway_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    r = client.post("/predict", headers=auth, json={"patients": [{"age_yeras": 54}]})
    assert r.status_code == 400
    body = r.json()
    assert "validation error" not in body["error"] and "contract" in body["error"]
    (item,) = body["detail"]
    assert item["field"] == "age_yeras" and item["value"] == 54
    assert item["rule"].startswith("unknown field") and "age_years" in item["suggestion"]
    assert "pydantic" not in r.text
    long = "x" * 10_000
    answer = {"detail": [{"loc": ["patients", 0, "patient_id"], "msg": "Input should be short"}]}
    worded = contract_words(answer, json.dumps({"patients": [{"patient_id": long}]}).encode())
    (item,) = worded["detail"]
    assert len(item["value"]) < MAX_VALUE_CHARS + 40 and item["rule"] == "must be short"
    detail = [{"loc": ["patients", k], "msg": "m"} for k in range(500)]
    worded = contract_words({"detail": detail}, b"{}")
    assert len(worded["detail"]) == MAX_REPORTED and worded["omitted"] == 500 - MAX_REPORTED
    assert worded["error"].startswith("500 violation(s)")


def test_published_document_lists_no_server_error_and_marks_the_token():
    spec = {
        "paths": {
            "/predict": {"post": {"responses": {"200": {}, "500": {}}}},
            "/healthz": {"get": {"responses": {"200": {}, "500": {}}}},
        }
    }
    open_spec = complete(json.loads(json.dumps(spec)))
    complete(spec, secured=True)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert not any(str(code).startswith("5") for code in operation["responses"])
            assert ("security" in operation) == (not is_public(path)), path
            assert ("401" in operation["responses"]) == (not is_public(path)), path
            # Without a token nothing asks for one.
            unsecured = open_spec["paths"][path][method]
            assert "security" not in unsecured and "401" not in unsecured["responses"]


def test_a_direct_route_is_answered_after_every_check_and_falls_back_when_it_declines():
    """Issue 24: a ``direct`` route gets the body only after the token, media type, size and
    duplicate-key checks; its 400 is worded like the app's; None, or a browser's request with
    CORS on, goes to the app."""
    seen: list[bytes] = []

    async def direct(body: bytes):
        seen.append(body)
        if b"decline" in body:
            return None
        if b"bad" in body:
            answer = {"error": "1 validation error for PredictRequest", "detail": [
                {"type": "extra_forbidden", "loc": ["patients", 0, "bad"],
                 "msg": "Extra inputs are not permitted"}]}  # fmt: skip
            payload = json.dumps(answer).encode()
            return 400, [(b"content-type", b"application/json")], payload
        return 200, [(b"content-type", b"application/json"), (b"x-patients", b"1")], b'{"d":1}'

    async def app_predict(request):
        return JSONResponse({"app": True}, headers={"X-Patients": "1"})

    app = Starlette(routes=[Route("/predict", app_predict, methods=["POST"])])
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for cors in ((), ("https://clinic.example",)):
        settings = ServingSettings(api_token=TOKEN, max_body_bytes=100, cors_origins=cors)
        client = _Client(GatewayMiddleware(app, settings=settings, direct={"/predict": direct}))
        seen.clear()
        assert client.post("/predict", content=b"{}").status_code == 401
        assert client.post("/predict", headers={**auth, "Content-Type": "text/plain"},
                           content=b"{}").status_code == 415  # fmt: skip
        assert client.post("/predict", headers=auth, content=b" " * 101).status_code == 413
        assert client.post("/predict", headers=auth, content=b'{"a":1,"a":2}').status_code == 400
        assert seen == []  # refused before the direct route
        r = client.post("/predict", headers=auth, content=b'{"ok": 1}')
        assert (r.status_code, r.json(), r.headers["x-patients"]) == (200, {"d": 1}, "1")
        assert r.headers["x-request-id"]
        r = client.post("/predict", headers=auth, content=b'{"patients": [{"bad": 1}]}')
        assert r.status_code == 400 and r.json()["detail"][0]["rule"].startswith("unknown field")
        assert r.json()["detail"][0]["value"] == 1
        assert client.post("/predict", headers=auth, content=b'{"decline": 1}').json() == {
            "app": True
        }
        browser = {**auth, "Origin": "https://clinic.example"}
        answered = client.post("/predict", headers=browser, content=b'{"ok": 1}').json()
        assert answered == ({"app": True} if cors else {"d": 1})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, True), ("", True), ("0", False), ("off", False), ("1", True), ("TRUE", True)],
)
def test_direct_predict_setting(raw, expected):
    from serving.settings import SettingsError

    env = {} if raw is None else {"BONEMET_DIRECT_PREDICT": raw}
    assert ServingSettings.from_env(env).direct_predict is expected
    with pytest.raises(SettingsError, match="BONEMET_DIRECT_PREDICT must be 1 or 0"):
        ServingSettings.from_env({"BONEMET_DIRECT_PREDICT": "maybe"})
