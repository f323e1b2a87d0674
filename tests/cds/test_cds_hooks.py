"""CDS Hooks 2.0 end to end: a real FHIR server (sekmet-fhir) with simulated patients, the
service started by ``bonemet serve``, and a test EHR that discovers, prefetches, signs and calls."""

from __future__ import annotations

import json
import re
import time

import pandas as pd
import pytest
import requests
import yaml

from features.fhir import fhir_id
from tests.cds.ehr import (
    ISSUER,
    MRN,
    PATIENT_NAME,
    Ehr,
    fhir_server,
    load_bundles,
    new_key,
    record_of,
)
from tests.conftest import cli_env, run_cli
from tests.serving.servers import bonemet_serve

pytestmark = pytest.mark.slow
SERVICE = "bone-metastasis-risk"
API_TOKEN = "service-token"
FIELDS_RECORD = {"patient_id", "prediction_day", "oc_measurements"}


@pytest.fixture(scope="module")
def world(trained_store, tmp_path_factory):
    """`bonemet simulate --fhir` loaded into the FHIR server (three patients: metastatic, early,
    bone metastasis already), and the service trusting the test EHR's key."""
    folder = tmp_path_factory.mktemp("cds")
    sim = folder / "sim"
    run_cli(["simulate", "--n-patients", "40", "--seed", "11", "--out", str(sim), "--fhir"],
            cli_env(folder / "data"), folder)
    p = pd.read_csv(sim / "patients.csv")
    bone_met = p.bone_metastasis_at_enrollment.astype(bool)
    chosen = {
        "metastatic": p[~bone_met & (p.disease_setting == "metastatic")].patient_id.iloc[0],
        "early": p[p.disease_setting == "early"].patient_id.iloc[0],
        "bone": p[bone_met].patient_id.iloc[0],
    }
    key, jwks = new_key()
    trust = folder / "trust.yaml"
    with fhir_server(folder) as fhir:
        trust.write_text(yaml.safe_dump(
            {"clients": [{"iss": ISSUER, "jwks": jwks, "fhir_servers": [fhir]}]}))
        load_bundles(fhir, [sim / "fhir" / f"{pid}.json" for pid in chosen.values()])
        with bonemet_serve(trained_store, tmp_path_factory, "cds-server",
                           BONEMET_CDS_TRUST=str(trust), BONEMET_API_TOKEN=API_TOKEN) as srv:
            ehr = Ehr(srv["base"], fhir, key)
            yield {"ehr": ehr, "ids": {k: fhir_id(v) for k, v in chosen.items()},
                   "log": srv["log"], "patients": p.set_index("patient_id"), "chosen": chosen}


def predict(ehr: Ehr, record: dict) -> dict:
    answer = requests.post(f"{ehr.service}/predict", timeout=30,
                           json={"patients": [record], "horizons_months": [12, 24, 36, 60]},
                           headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def assert_card_equals_predict(ehr: Ehr, card: dict) -> dict:
    """Every number of the card is /predict's for the record behind it, to the last digit."""
    (pred,) = predict(ehr, record_of(card))["predictions"]
    (suggestion,) = card["suggestions"]
    resource = suggestion["actions"][0]["resource"]
    assert resource["resourceType"] == "RiskAssessment"
    got = {(p["outcome"]["coding"][0]["code"], p["whenRange"]["high"]["value"]):
           p["probabilityDecimal"] for p in resource["prediction"]}
    want = {("94222008", e["months"]): e["probability"]
            for e in pred["bone_metastasis_probability"]}
    want |= {("419620001", e["months"]): e["probability"] for e in pred["death_probability"]}
    assert got == want
    p24 = next(e["probability"] for e in pred["bone_metastasis_probability"] if e["months"] == 24)
    n = int(re.match(r"(\d+) out of 100 women like this develop bone metastasis within 2 years",
                     card["summary"]).group(1))
    assert n == int(100 * p24 + 0.5)
    entry24 = next(e for e in pred["bone_metastasis_probability"] if e["months"] == 24)
    if entry24.get("low") is not None:  # contract 1.2: the interval in the page's words
        low, high = int(100 * entry24["low"] + 0.5), int(100 * entry24["high"] + 0.5)
        assert f", likely between {low} and {high}." in card["summary"]
        interval = {(p["outcome"]["coding"][0]["code"], p["whenRange"]["high"]["value"]):
                    {x["url"]: x["valueDecimal"] for x in p["extension"][0]["extension"]}
                    for p in resource["prediction"]}
        assert interval[("94222008", 24)]["low"] == entry24["low"]
        assert interval[("94222008", 24)]["high"] == entry24["high"]
    assert len(card["summary"]) < 140
    return pred


def test_discovery_announces_patient_view_with_prefetch(world):
    svc = world["ehr"].discover()
    assert svc["id"] == SERVICE
    assert set(svc["prefetch"]) >= {"patient", "markers", "pathology", "menopause", "alp",
                                    "conditions", "medicationStatements", "medicationRequests"}
    assert "urn:bonemet:codesystem:lab|oc-positive-pbmc-percent" in svc["prefetch"]["markers"]


def test_full_prefetch_card_equals_predict(world):
    ehr = world["ehr"]
    patient = world["ids"]["metastatic"]
    prefetch = ehr.prefetch(ehr.discover()["prefetch"], patient)
    answer = ehr.call(SERVICE, ehr.body(patient, prefetch, server=False))
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert_card_equals_predict(ehr, card)
    assert card["source"]["url"].endswith("/model/card")
    assert "die first, without bone metastasis" in card["detail"]
    assert "**Treatment benefit**" in card["detail"]  # contract 1.2: a benefit, or why none
    for months in ("1 year", "2 years", "3 years", "5 years"):
        assert f"| {months} |" in card["detail"]
    # The record is the simulated patient's, read back through FHIR.
    row = world["patients"].loc[world["chosen"]["metastatic"]]
    record = record_of(card)
    assert record["age_years"] == row.age_years and record["disease_setting"] == "metastatic"
    assert record["patient_id"].startswith("fhir-") and patient not in json.dumps(record)
    world["full_card"] = card


def test_partial_prefetch_rest_from_server_gives_the_same_numbers(world):
    ehr = world["ehr"]
    patient = world["ids"]["metastatic"]
    prefetch = ehr.prefetch(ehr.discover()["prefetch"], patient, keys={"patient", "markers"})
    prefetch["alp"] = None  # CDS Hooks: a key the EHR could not fill
    answer = ehr.call(SERVICE, ehr.body(patient, prefetch, server=True))
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert_card_equals_predict(ehr, card)
    assert "fetched from the FHIR server for: alp, conditions" in card["detail"]
    full = world.get("full_card")
    if full is not None:  # the same record whichever way the data came (but the time)
        a, b = record_of(full), record_of(card)
        assert {k: v for k, v in a.items() if k != "prediction_day"} == \
            {k: v for k, v in b.items() if k != "prediction_day"}


def test_nothing_available_is_412(world):
    ehr = world["ehr"]
    answer = ehr.call(SERVICE, ehr.body(world["ids"]["metastatic"], None, server=False))
    assert answer.status_code == 412
    assert "no fhirServer" in answer.json()["error"]
    # A FHIR server that refuses the token: 412 too, naming what failed.
    body = ehr.body(world["ids"]["metastatic"], None, server=True)
    body["fhirAuthorization"]["access_token"] = "wrong"
    answer = ehr.call(SERVICE, body)
    assert answer.status_code == 412 and "HTTP 401" in answer.json()["error"]


def test_bad_expired_replayed_jwt_are_401(world):
    from tests.cds.ehr import new_key as another_key

    ehr = world["ehr"]
    body = ehr.body(world["ids"]["metastatic"], None, server=True)
    aud = f"{ehr.service}/cds-services/{SERVICE}"
    stranger, _ = another_key()
    cases = {
        "signature does not verify": ehr.jwt(aud, key=stranger),
        "expired": ehr.jwt(aud, iat=time.time() - 600, lifetime=60),
        "audience": ehr.jwt("https://elsewhere.invalid/cds-services/x"),
        "not a JWT": "not-a-jwt",
        "issuer": Ehr(ehr.service, ehr.fhir, ehr.key, iss="https://rogue.invalid").jwt(aud),
        "longer than": ehr.jwt(aud, lifetime=3600),
    }
    for reason, token in cases.items():
        answer = ehr.call(SERVICE, body, token=token)
        assert answer.status_code == 401, (reason, answer.text)
        assert reason in answer.json()["error"], (reason, answer.text)
    answer = requests.post(f"{aud}", json=body, timeout=10)
    assert answer.status_code == 401 and "missing bearer JWT" in answer.json()["error"]
    token = ehr.jwt(aud)
    assert ehr.call(SERVICE, body, token=token).status_code == 200
    replay = ehr.call(SERVICE, body, token=token)
    assert replay.status_code == 401 and "replay" in replay.json()["error"]


def test_bone_metastasis_already_card_says_why(world):
    ehr = world["ehr"]
    patient = world["ids"]["bone"]
    answer = ehr.call(SERVICE, ehr.body(patient, None, server=True))
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert card["summary"].startswith("No bone-metastasis risk given: bone metastasis present")
    assert "suggestions" not in card and len(card["summary"]) < 140


def test_feedback_counted_without_patient_data(world):
    ehr = world["ehr"]
    feedback = {"feedback": [{"card": "9368d37b-283f-44a0-93ea-547cebab93ed",
                              "outcome": "accepted", "outcomeTimestamp": "2026-12-07T16:00:00Z",
                              "acceptedSuggestions": [{"id": "x"}]}]}
    aud = f"{ehr.service}/cds-services/{SERVICE}/feedback"
    answer = ehr.call(SERVICE, feedback, token=ehr.jwt(aud), path="/feedback")
    assert answer.status_code == 200, answer.text
    bad = ehr.call(SERVICE, {"feedback": [{"outcome": "maybe"}]}, token=ehr.jwt(aud),
                   path="/feedback")
    assert bad.status_code == 400
    metrics = requests.get(f"{ehr.service}/metrics", timeout=10,
                           headers={"Authorization": f"Bearer {API_TOKEN}"}).text
    assert re.search(r'bonemet_cds_feedback_total\{outcome="accepted"\} 1\.0', metrics)
    # Nothing of the EHR's patients in the metrics or the server's log.
    log = world["log"].read_text()
    for secret in [*world["ids"].values(), PATIENT_NAME, MRN]:
        assert secret not in metrics and secret not in log


def test_fhir_risk_assessment_route(world):
    from fhir.resources.R4B.riskassessment import RiskAssessment

    ehr = world["ehr"]
    patient = world["ids"]["early"]
    body = {"context": {"patientId": patient}, "fhirServer": ehr.fhir,
            "fhirAuthorization": {"access_token": "fhir-test-token", "token_type": "Bearer"}}
    url = f"{ehr.service}/fhir/RiskAssessment"
    assert requests.post(url, json=body, timeout=30).status_code == 401  # the service's token
    answer = requests.post(url, json=body, timeout=60,
                           headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 200, answer.text
    resource = RiskAssessment.model_validate(answer.json())
    assert resource.subject.reference == f"Patient/{patient}"
    assert {p.outcome.coding[0].code for p in resource.prediction} == {"94222008", "419620001"}
    del body["fhirServer"], body["fhirAuthorization"]
    answer = requests.post(url, json=body, timeout=30,
                           headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert answer.status_code == 412
    assert answer.json()["resourceType"] == "OperationOutcome"


def test_bad_hook_requests_are_400_naming_the_problem(world):
    ehr = world["ehr"]
    good = ehr.body(world["ids"]["metastatic"], None, server=True)
    cases = [
        (dict(good, hook="order-select"), "hook must be 'patient-view'"),
        (dict(good, context={"patientId": "../etc"}), "context.patientId must be a FHIR id"),
        (dict(good, prefetch={"patient": "Patient/1"}), "prefetch.patient must be a FHIR"),
        ({k: v for k, v in good.items() if k != "fhirServer"},
         "fhirAuthorization is given without fhirServer"),
        ([1, 2], "the body must be a JSON object"),
    ]
    for body, message in cases:
        answer = ehr.call(SERVICE, body)
        assert answer.status_code == 400, (message, answer.text)
        assert message in answer.json()["error"]
    # A FHIR server the EHR is not registered with is never contacted.
    answer = ehr.call(SERVICE, dict(good, fhirServer="http://127.0.0.1:9/fhir"))
    assert answer.status_code == 403 and "fhir_servers" in answer.json()["error"]
    # Odd but valid FHIR data gives a card, never a failure.
    odd = ehr.prefetch(ehr.discover()["prefetch"], world["ids"]["metastatic"])
    odd["pathology"] = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Observation", "id": "o1", "status": "final",
                      "subject": {"reference": f"Patient/{world['ids']['metastatic']}"},
                      "code": {"coding": [{"system": "http://loinc.org", "code": "21889-1"}]},
                      "valueQuantity": {"value": 3, "unit": "inch"}}}]}
    answer = ehr.call(SERVICE, ehr.body(world["ids"]["metastatic"], odd, server=False))
    assert answer.status_code == 200, answer.text
    (card,) = answer.json()["cards"]
    assert "Tumour size" in card["detail"]  # not found (its unit is not in the table)
