"""Fuzz the service from its own OpenAPI schema: no generated request may get a server error.

Schemathesis generates requests for ``POST /predict`` and ``POST /explain`` from ``/docs.json``
of a real ``bonemet serve`` on loopback, a bounded number of cases per operation and mode,
derandomized so a failure reproduces:

- **positive mode**: bodies that follow the schema. They can still break the contract's rules
  across fields (events above PBMC events, a percent that disagrees with its counts, duplicate
  patient ids or draw days, visceral or bone metastasis in early disease, a draw without a
  value). :func:`contract_violations` reads those rules from the data contract, independently
  of the service's code: a body that breaks one must get 400 naming at least that violation;
  any other body must get 200 with an answer that conforms to the response schema
  (schemathesis' ``response_schema_conformance``, ``content_type_conformance``) and to the
  contract (one prediction per patient in order, probabilities in [0, 1] and non-decreasing
  with the horizon).
- **negative mode**: bodies that break the schema in every way schemathesis can derive (wrong
  types, missing and unknown fields, out-of-range values); each must be rejected
  (``negative_data_rejection``) with a 4xx.

Every answer in both modes must be below 500, and a 400 must carry the contract's error shape.

Beyond the schema: the same generated bodies sent in other media types (text, form fields,
multipart, generated ``type/subtype`` names) must all get 415, and generated paths with any
method must get no server error and leave ``/metrics`` labelled with the service's routes only.
Positive mode needs ``/docs.json`` to be valid OpenAPI 3.0 (``serving.schemas.openapi30_schema``).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jsonschema_rs
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
)

from serving.gateway import ROUTES
from serving.schemas import MAX_PREDICTION_DAY, PatientRecord
from tests.serving.documents import as_draft4, endpoint_labels

CASES = {"positive": 200, "negative": 100, "other media types": 60, "paths": 150}
DEFAULT_HORIZONS = [12, 24, 36, 60]
PERCENT_REL_TOL, PERCENT_ABS_TOL = 0.01, 0.0001


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server}/docs.json")


def _counts(row: dict[str, Any], loc: list) -> list[tuple]:
    """Events <= PBMC events, and a given percent agrees with the counts (contract, files)."""
    events, pbmc = row.get("oc_positive_events"), row.get("pbmc_events")
    percent = row.get("oc_positive_percent")
    if events is None or pbmc is None:
        return []
    if events > pbmc:
        return [(*loc, "oc_positive_events")]
    expected = 100.0 * events / pbmc
    if percent is not None and abs(percent - expected) > max(
        PERCENT_REL_TOL * expected, PERCENT_ABS_TOL
    ):
        return [(*loc, "oc_positive_percent")]
    return []


def contract_violations(body: Any) -> list[tuple]:
    """Where a schema-valid body breaks the contract's rules across fields.

    Parameters
    ----------
    body : object
        The request body as generated (a dict that follows the schema), or ``NOT_SET``.

    Returns
    -------
    list of tuple
        The ``loc`` of each violation, as the service reports it in the 400 ``detail``;
        ``[("body",)]`` when there is no body at all (the contract requires one, although
        BentoML's OpenAPI document marks the request body optional).
    """
    if body is NOT_SET or not isinstance(body, dict):
        return [("body",)]
    found: list[tuple] = []
    seen_ids: set[str] = set()
    for i, patient in enumerate(body["patients"]):
        loc = ("patients", i)
        if patient["patient_id"] in seen_ids:
            found.append((*loc, "patient_id"))
        seen_ids.add(patient["patient_id"])
        found += _counts(patient, list(loc))
        if patient["disease_setting"] == "early":
            if patient.get("visceral_metastasis") is True:
                found.append((*loc, "visceral_metastasis"))
            if patient["bone_metastasis_at_enrollment"]:
                found.append((*loc, "bone_metastasis_at_enrollment"))
        days: set[float] = set()
        for j, draw in enumerate(patient.get("oc_measurements") or []):
            at = (*loc, "oc_measurements", j)
            if draw["day"] in days:
                found.append((*at, "day"))
            days.add(draw["day"])
            has_events = draw.get("oc_positive_events") is not None
            has_pbmc = draw.get("pbmc_events") is not None
            if draw.get("oc_positive_percent") is None and not (has_events or has_pbmc):
                found.append((*at, "oc_positive_percent"))
            if has_events and not has_pbmc:
                found.append((*at, "pbmc_events"))
            if has_pbmc and not has_events:
                found.append((*at, "oc_positive_events"))
            found += _counts(draw, list(at))
        draws = patient.get("oc_measurements") or []
        if patient.get("prediction_day") is None and draws:
            # Not given, the prediction day is the latest draw's, which must be in range too.
            if max(d["day"] for d in draws) > MAX_PREDICTION_DAY:
                found.append((*loc, "prediction_day"))
    return found


def check_error_shape(response: requests.Response) -> set[tuple]:
    """A 400 of the contract: ``{"error": str, "detail": [{"loc": [...], "msg": str}, ...]}``."""
    body = response.json()
    assert isinstance(body["error"], str) and body["detail"], body
    for item in body["detail"]:
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str), item
    return {tuple(item["loc"]) for item in body["detail"]}


def check_answer(body: dict[str, Any], answer: dict[str, Any], explain: bool) -> None:
    """What the contract promises of a 200 beyond the response schema."""
    patients = body["patients"]
    horizons = body.get("horizons_months", DEFAULT_HORIZONS)
    predictions = answer["predictions"]
    assert [p["patient_id"] for p in predictions] == [p["patient_id"] for p in patients]
    for patient, pred in zip(patients, predictions, strict=True):
        assert ("explanation" in pred) == explain, pred
        curve = pred["bone_metastasis_probability"]
        if patient["bone_metastasis_at_enrollment"]:
            assert curve == [] and pred["risk_score"] is None, pred
            continue
        assert [c["months"] for c in curve] == pytest.approx(horizons), pred
        ordered = sorted(curve, key=lambda c: c["months"])
        probs = [c["probability"] for c in ordered]
        assert all(0.0 <= p <= 1.0 for p in probs), pred
        assert all(a <= b + 1e-12 for a, b in zip(probs, probs[1:], strict=False)), pred


def bounded(cases: int):
    """Hypothesis settings of every fuzz run: ``cases`` examples, derandomized, no database."""
    return settings(
        max_examples=cases,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def fuzz(api_schema, server: str, path: str, mode: str, cases: int) -> Counter:
    """Run ``cases`` generated requests against ``server``; return the count of each status."""
    operation = api_schema[path]["POST"]
    statuses: Counter = Counter()
    session = requests.Session()

    @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
    @bounded(cases)
    def run(case) -> None:
        response = case.call(base_url=server, session=session, timeout=60)
        statuses[response.status_code] += 1
        assert response.status_code < 500, (case.body, response.text[:1000])
        if mode == "negative":
            case.validate_response(response, checks=[not_a_server_error, negative_data_rejection])
            if response.status_code == 400:
                check_error_shape(response)
            return
        expected = contract_violations(case.body)
        if expected:
            assert response.status_code == 400, (case.body, response.text[:1000])
            reported = check_error_shape(response)
            if expected != [("body",)]:
                assert set(expected) <= reported, (case.body, expected, reported)
            return
        assert response.status_code == 200, (case.body, response.text[:1000])
        case.validate_response(
            response,
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        )
        check_answer(case.body, response.json(), explain=path == "/explain")

    run()
    return statuses


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/predict", "/explain"])
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_generated_requests_get_no_server_error(api_schema, server, path, mode):
    statuses = fuzz(api_schema, server, path, mode, CASES[mode])
    assert sum(statuses.values()) >= CASES[mode] // 2, statuses
    if mode == "positive":
        # Both outcomes of a schema-valid body were exercised, not only rejections.
        assert statuses[200] >= 5 and statuses[400] >= 1, statuses
    else:
        assert set(statuses) <= {400, 413}, statuses


MEDIA_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "text/plain",
        "text/json",
        "application/xml",
        "application/json-patch+json",
        "application/octet-stream",
    ]
) | st.from_regex(r"[a-z]{1,12}/[a-z0-9.+-]{1,24}", fullmatch=True).filter(
    lambda m: m != "application/json"
)


def _form_fields(body: Any) -> dict[str, str]:
    """A JSON body flattened to form fields, as a browser form would send it."""
    fields: dict[str, str] = {}

    def walk(node: Any, name: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{name}[{key}]" if name else str(key))
        elif isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, f"{name}[{k}]")
        else:
            fields[name or "body"] = json.dumps(node)

    walk(body, "")
    return fields


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_generated_bodies_in_other_media_types_are_415(api_schema, server, path):
    """Schema-valid bodies sent as anything but application/json never reach a parser."""
    operation = api_schema[path]["POST"]
    session = requests.Session()
    statuses: Counter = Counter()

    @given(
        case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        media_type=MEDIA_TYPES,
        encoding=st.sampled_from(["json text", "form", "multipart"]),
    )
    @bounded(CASES["other media types"])
    def run(case, media_type: str, encoding: str) -> None:
        body = case.body if case.body is not NOT_SET else {}
        url = f"{server}{path}"
        if encoding == "multipart":  # requests sets multipart/form-data with its boundary
            files = {k: (None, v) for k, v in _form_fields(body).items()}
            response = session.post(url, files=files or {"a": (None, "1")}, timeout=60)
        elif encoding == "form":
            headers = {"Content-Type": media_type}
            response = session.post(url, data=_form_fields(body), headers=headers, timeout=60)
        else:
            headers = {"Content-Type": media_type}
            response = session.post(url, data=json.dumps(body), headers=headers, timeout=60)
        statuses[response.status_code] += 1
        assert response.status_code == 415, (media_type, encoding, response.text[:500])

    run()
    assert sum(statuses.values()) >= CASES["other media types"] // 2, statuses


URL_TEXT = st.text(
    alphabet=st.sampled_from("abcdefgpredictmolxzPQ0123456789-_.~%/"), min_size=0, max_size=60
)


@pytest.mark.slow
def test_generated_paths_keep_metric_labels_to_the_known_routes(server):
    """Any path, any method: below 500, and /metrics labels only the service's routes."""
    session = requests.Session()

    @given(
        path=URL_TEXT,
        method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    )
    @bounded(CASES["paths"])
    def run(path: str, method: str) -> None:
        response = session.request(method, f"{server}/{path}", timeout=60)
        assert response.status_code < 500, (method, path, response.text[:500])

    run()
    labels = endpoint_labels(requests.get(f"{server}/metrics", timeout=10).text)
    assert labels and labels <= set(ROUTES) | {"other", "/static_content"}, labels


@pytest.mark.slow
def test_probability_at_a_horizon_does_not_depend_on_the_other_horizons(server):
    """Horizons in any order, repeated or fractional (all schema-valid) answer as one by one.

    Generated bodies rarely hit this on a bounded derandomized run, so it is spelled out.
    """
    patient = {
        "patient_id": "H1",
        "age_years": 62,
        "disease_setting": "metastatic",
        "bone_metastasis_at_enrollment": False,
        "oc_positive_percent": 0.08,
    }
    asked = [36, 12, 12, 57.5, 1]

    def curve(horizons: list[float]) -> list[dict]:
        r = requests.post(
            f"{server}/predict",
            json={"patients": [patient], "horizons_months": horizons},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()["predictions"][0]["bone_metastasis_probability"]

    together = curve(asked)
    assert [c["months"] for c in together] == asked
    alone = [curve([h])[0]["probability"] for h in asked]
    assert [c["probability"] for c in together] == pytest.approx(alone, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("tumor_size_mm", [0, 0.0, 1e-9, 300, 300.5, None, "1"]),
        ("pbmc_events", [0, 1, -1, None, 1.5]),
        ("er_status", ["positive", "pos", None]),
        ("visceral_metastasis", [True, None, 1]),
        ("oc_measurements", [[{"day": 0, "pbmc_events": 0}], [{"day": 0}], None]),
    ],
)
def test_published_schema_is_openapi30_and_admits_what_the_model_admits(field, values):
    schema = PatientRecord.model_json_schema(ref_template="#/definitions/{model}")
    schema["definitions"] = schema.pop("$defs")
    text = json.dumps(schema)
    assert '"type": "null"' not in text
    draft4 = as_draft4(schema)
    assert jsonschema_rs.meta.is_valid(
        {**draft4, "$schema": "http://json-schema.org/draft-04/schema#"}
    )
    validator = jsonschema_rs.Draft4Validator(draft4)
    base = {
        "patient_id": "P1",
        "age_years": 50.0,
        "disease_setting": "metastatic",
        "bone_metastasis_at_enrollment": False,
    }
    for value in values:
        body = {**base, field: value}
        try:
            PatientRecord.model_validate_json(json.dumps(body))
            accepted = True
        except ValueError:
            accepted = False
        assert validator.is_valid(body) == accepted, (field, value)
