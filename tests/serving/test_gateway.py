"""The gateway's and the API document's own rules, without a server (fast)."""

from __future__ import annotations

import json

import jsonschema_rs
import pytest

from serving.gateway import ROUTES, duplicate_keys, route_label
from serving.openapi import EXAMPLE_REQUEST, VIOLATIONS_SCHEMA, complete
from serving.schemas import PatientRecord
from tests.serving.test_fuzz import as_draft4


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
    spec = complete({"paths": {"/predict": {"post": {"responses": {"404": {}}}}}})
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
