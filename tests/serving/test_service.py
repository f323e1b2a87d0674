"""The prediction service, started for real with ``bonemet serve`` on loopback."""

from __future__ import annotations

import re

import pytest
import requests

# Importable from here as before; defined in tests/serving/servers.py.
from tests.serving.servers import (  # noqa: F401
    P1,
    bonemet_serve,
    free_port,
    running_server,
)

pytestmark = pytest.mark.slow


def post(base: str, body, **kw) -> requests.Response:
    if isinstance(body, (dict, list)):
        return requests.post(f"{base}/predict", json=body, timeout=30, **kw)
    return requests.post(
        f"{base}/predict", data=body, timeout=30, headers={"Content-Type": "application/json"}
    )


def test_health_endpoints(server):
    for path in ("/healthz", "/livez", "/readyz"):
        assert requests.get(server + path, timeout=5).status_code == 200


def test_contract_example_request_and_response_shape(server):
    r = post(server, {"patients": [P1], "horizons_months": [12, 24, 36, 60]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "bone-metastasis-risk"
    assert body["model"]["alias"] == "champion"
    assert body["model"]["version"] in {"1", "2"} and body["model"]["run_id"]
    (pred,) = body["predictions"]
    assert set(pred) == {
        "patient_id",
        "risk_score",
        "risk_group",
        "bone_metastasis_probability",
        "death_probability",
        "treatment_benefit",
        "treatment_benefit_note",
        "warnings",
    }
    # Contract 1.2: the interval's level once, low <= probability <= high on every entry.
    assert body["interval_level"] == 0.9
    for entry in pred["bone_metastasis_probability"] + pred["death_probability"]:
        assert 0 <= entry["low"] <= entry["probability"] <= entry["high"] <= 1, entry
    assert pred["treatment_benefit"] == [] and "early breast cancer" in pred["treatment_benefit_note"]
    assert pred["patient_id"] == "P0001"
    assert pred["risk_group"] in {"low", "intermediate", "high"}
    probs = [p["probability"] for p in pred["bone_metastasis_probability"]]
    assert [p["months"] for p in pred["bone_metastasis_probability"]] == [12, 24, 36, 60]
    assert all(0 <= p <= 1 for p in probs) and probs == sorted(probs)
    # Contract 1.1: the competing death, same horizons, non-decreasing, bm + death <= 1.
    deaths = [p["probability"] for p in pred["death_probability"]]
    assert [p["months"] for p in pred["death_probability"]] == [12, 24, 36, 60]
    assert all(0 < d <= 1 for d in deaths) and deaths == sorted(deaths)
    assert all(b + d <= 1 for b, d in zip(probs, deaths, strict=True))
    assert "alkaline_phosphatase_u_per_l missing: imputed" in pred["warnings"]
    assert "marker from the draw of day 90 used as the current value" in pred["warnings"]


def test_default_horizons_and_only_draws_up_to_prediction_day(server):
    early = dict(P1, patient_id="A", prediction_day=30)
    r = post(server, {"patients": [early]})
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    assert [p["months"] for p in pred["bone_metastasis_probability"]] == [12, 24, 36, 60]
    assert "1 draw(s) after prediction_day 30 ignored" in pred["warnings"]
    # The day-90 draw must not change the answer at day 30.
    only_day0 = dict(
        P1,
        patient_id="A",
        prediction_day=30,
        oc_measurements=[{"day": 0, "oc_positive_percent": 0.061}],
    )
    r2 = post(server, {"patients": [only_day0]})
    assert r2.json()["predictions"][0]["risk_score"] == pred["risk_score"]


def test_bone_metastasis_at_enrollment_gets_a_warning_not_probabilities(server):
    r = post(
        server,
        {
            "patients": [
                {
                    "patient_id": "B1",
                    "age_years": 61,
                    "disease_setting": "metastatic",
                    "bone_metastasis_at_enrollment": True,
                }
            ]
        },
    )
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    assert pred["bone_metastasis_probability"] == [] and pred["risk_score"] is None
    assert pred["death_probability"] == []
    assert pred["warnings"] == [
        "bone metastasis present at enrollment: no risk of a first bone metastasis to predict"
    ]


def test_risk_rises_with_marker_through_the_api(server):
    pats = [
        dict(P1, patient_id=f"M{k}", oc_positive_percent=v, oc_measurements=None)
        for k, v in enumerate([0.01, 0.03, 0.09])
    ]
    r = post(server, {"patients": pats})
    scores = [p["risk_score"] for p in r.json()["predictions"]]
    assert scores == sorted(scores) and scores[0] < scores[2]


@pytest.mark.parametrize(
    ("body", "loc", "msg"),
    [
        ({"patients": []}, ["patients"], "at least 1 item"),
        ({}, ["patients"], "required by data contract"),
        (
            {"patients": [dict(P1, favourite_colour="blue")]},
            ["patients", 0, "favourite_colour"],
            "unknown field",
        ),
        ({"patients": [P1], "extra": 1}, ["extra"], "unknown field"),
        (
            {"patients": [dict(P1, age_years="old")]},
            ["patients", 0, "age_years"],
            "must be a valid number",
        ),
        (
            {"patients": [dict(P1, age_years=17)]},
            ["patients", 0, "age_years"],
            "greater than or equal to 18",
        ),
        (
            {"patients": [dict(P1, er_status="pos")]},
            ["patients", 0, "er_status"],
            "must be 'positive' or 'negative'",
        ),
        (
            {"patients": [dict(P1, patient_id="Jane Doe")]},
            ["patients", 0, "patient_id"],
            "String should match pattern",
        ),
        (
            {"patients": [P1], "horizons_months": [0, 24]},
            ["horizons_months", 0],
            "greater than or equal to 1",
        ),
        ({"patients": [P1] * 1001}, ["patients"], "at most 1000 items"),
        (
            {"patients": [dict(P1, time_days=100, event="death")]},
            ["patients", 0, "time_days"],
            "unknown field",
        ),
    ],
)
def test_field_violations_are_400_with_path_and_reason(server, body, loc, msg):
    r = post(server, body)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert any(d["loc"] == loc and msg in d["msg"] for d in detail), detail
    # The contract's words (issue 23): the field, the rule, the value where one was sent.
    (item,) = [d for d in detail if d["loc"] == loc and msg in d["msg"]]
    assert item["rule"] == item["msg"] and item["field"] == next(
        (p for p in reversed(loc) if isinstance(p, str)), None
    )


def test_contract_cross_field_rules_are_400_with_every_violation(server):
    bad = [
        dict(P1, patient_id="E1", disease_setting="early", visceral_metastasis=True),
        dict(
            P1,
            patient_id="E2",
            oc_positive_percent=None,
            oc_positive_events=50,
            pbmc_events=40,
            oc_measurements=[{"day": 0, "oc_positive_events": 9, "pbmc_events": 5}],
        ),
        dict(P1, patient_id="E1"),
    ]
    r = post(server, {"patients": bad})
    assert r.status_code == 400, r.text
    detail = [{"loc": d["loc"], "msg": d["msg"]} for d in r.json()["detail"]]
    assert {
        "loc": ["patients", 0, "visceral_metastasis"],
        "msg": "must not be true when disease_setting is early",
    } in detail
    assert {
        "loc": ["patients", 1, "oc_positive_events"],
        "msg": "must be <= pbmc_events (40)",
    } in detail
    assert {
        "loc": ["patients", 1, "oc_measurements", 0, "oc_positive_events"],
        "msg": "must be <= pbmc_events (5)",
    } in detail
    assert {
        "loc": ["patients", 2, "patient_id"],
        "msg": "must be unique, already at position 0",
    } in detail


def test_field_and_cross_field_violations_come_in_one_answer(server):
    bad = [
        dict(
            P1,
            patient_id="F1",
            age_years="fifty",
            disease_setting="early",
            visceral_metastasis=True,
        ),
        dict(
            P1,
            patient_id="F2",
            ki67_percent=130,
            oc_positive_events=50,
            pbmc_events=40,
            oc_positive_percent=None,
            oc_measurements=[
                {"day": 0, "oc_positive_events": 9, "pbmc_events": 5},
                {"day": -1, "oc_positive_percent": 0.1},
            ],
        ),
        dict(P1, patient_id="F1"),
    ]
    r = post(server, {"patients": bad})
    assert r.status_code == 400, r.text
    found = {(tuple(d["loc"]), d["msg"]) for d in r.json()["detail"]}
    locs = {loc for loc, _ in found}
    # Field errors (pydantic) ...
    assert ("patients", 0, "age_years") in locs
    assert ("patients", 1, "ki67_percent") in locs
    assert ("patients", 1, "oc_measurements", 1, "day") in locs
    # ... and, in the same answer, the contract's rules across fields.
    assert (
        ("patients", 0, "visceral_metastasis"),
        "must not be true when disease_setting is early",
    ) in found
    assert (("patients", 1, "oc_positive_events"), "must be <= pbmc_events (40)") in found
    assert (
        ("patients", 1, "oc_measurements", 0, "oc_positive_events"),
        "must be <= pbmc_events (5)",
    ) in found
    assert (("patients", 2, "patient_id"), "must be unique, already at position 0") in found
    # Each rejected value is reported once, by the layer that rejected it.
    assert sum(1 for loc, _ in found if loc == ("patients", 0, "age_years")) == 1
    assert sum(1 for loc, _ in found if loc == ("patients", 1, "ki67_percent")) == 1


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        '{"patients": [',
        "[]",
        '"x"',
        "null",
        '{"patients": [{"patient_id": "N", "age_years": NaN, "disease_setting": "early", '
        '"bone_metastasis_at_enrollment": false}]}',
        '{"patients": [{"patient_id": "N", "age_years": 1e400, "disease_setting": "early", '
        '"bone_metastasis_at_enrollment": false}]}',
    ],
)
def test_malformed_bodies_are_400_never_5xx(server, raw):
    r = post(server, raw)
    assert r.status_code == 400, r.text


def test_model_endpoint_names_the_version(server):
    r = requests.get(f"{server}/model", timeout=5)
    assert r.status_code == 200
    assert r.json()["name"] == "bone-metastasis-risk"


def test_explain_gives_the_largest_contributions_in_clinical_terms(server):
    high = dict(P1, patient_id="X1", oc_positive_percent=0.15, oc_measurements=None)
    r = requests.post(f"{server}/explain", json={"patients": [high]}, timeout=30)
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    contributions = pred["explanation"]
    assert 1 <= len(contributions) <= 5
    sizes = [abs(c["contribution"]) for c in contributions]
    assert sizes == sorted(sizes, reverse=True)
    marker = [c for c in contributions if "osteocalcin" in c["text"]]
    assert marker and marker[0]["contribution"] > 0
    assert "% of PBMC events" in marker[0]["text"]
    assert {c["scale"] for c in contributions} <= {"log hazard", "log odds"}
    # /predict keeps the contract's shape: no explanation there.
    plain = post(server, {"patients": [high]}).json()["predictions"][0]
    assert "explanation" not in plain
    assert plain["risk_score"] == pred["risk_score"]
    bad = requests.post(f"{server}/explain", json={"patients": []}, timeout=30)
    assert bad.status_code == 400


def test_no_cors_headers_by_default(server):
    """Without ``BONEMET_CORS_ORIGINS`` no origin gets CORS headers (issue 10.3)."""
    origin = {"Origin": "https://elsewhere.example"}
    r = post(server, {"patients": [P1]}, headers=origin)
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    preflight = requests.options(
        f"{server}/predict", headers={**origin, "Access-Control-Request-Method": "POST"}, timeout=5
    )
    assert preflight.status_code < 500
    assert "access-control-allow-origin" not in preflight.headers


def test_each_patient_is_answered_alike_alone_and_in_a_batch(server):
    """The batch path's shortcuts (the no-draws rule computed once per day, intervals and
    treatment benefit computed for all patients together, answers validated in one call) give
    every patient of a batch the answer the same patient gets alone."""
    early = dict(
        P1, disease_setting="early", menopausal_status="post", bone_targeted_therapy="none"
    )
    no_draws = {k: v for k, v in P1.items() if k != "oc_measurements"}
    counted = dict(no_draws, oc_positive_percent=None, oc_positive_events=12, pbmc_events=9000)
    patients = [
        dict(early, patient_id="E1"),
        dict(no_draws, patient_id="N1"),
        dict(no_draws, patient_id="N2", prediction_day=30),
        dict(no_draws, patient_id="N3", age_years=71, er_status="negative"),
        dict(counted, patient_id="C1"),
        dict(counted, patient_id="C2", disease_setting="early", menopausal_status="post",
             bone_targeted_therapy="none"),  # fmt: skip
        dict(P1, patient_id="D1", prediction_day=30),
        dict(no_draws, patient_id="B1", bone_metastasis_at_enrollment=True),
        dict(early, patient_id="E2", menopausal_status="pre"),
        dict(no_draws, patient_id="N4", prediction_day=30, oc_positive_percent=0.2),
    ]
    horizons = [6, 12, 24, 60]
    r = post(server, {"patients": patients, "horizons_months": horizons})
    assert r.status_code == 200, r.text
    together = r.json()["predictions"]
    assert [p["patient_id"] for p in together] == [p["patient_id"] for p in patients]
    assert any(p["treatment_benefit"] for p in together)  # the stacked treatment path ran
    assert any(p["risk_score"] is None for p in together)  # and bone metastasis at enrollment
    for patient, in_batch in zip(patients, together, strict=True):
        r = post(server, {"patients": [patient], "horizons_months": horizons})
        assert r.status_code == 200, r.text
        (alone,) = r.json()["predictions"]
        assert _alike(in_batch, alone), (patient["patient_id"], in_batch, alone)


def _alike(a, b) -> bool:
    """Equal JSON values, numbers to 1e-12 (the batch sums in another order than one row)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_alike(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_alike, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return a == b


def test_the_api_and_the_pyfunc_refuse_the_same_rows_with_the_same_words(server):
    """One input check (issue 21, item 4): rows breaking the contract's rules across fields
    get, from ``POST /predict`` and from the logged pyfunc's ``predict``, the same rules at
    the same positions and columns. (A rule of one field is worded by pydantic in the API.)"""
    import io
    import lzma

    import joblib
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from tests.fixtures import MODELS_V0_1_0 as FIXTURE
    from training.artifact.adapter import predict_records_frame

    base = {k: v for k, v in P1.items() if k != "oc_measurements"}
    bad = [
        dict(base, patient_id="E1", disease_setting="early", visceral_metastasis=True),
        dict(base, patient_id="E2", oc_positive_percent=None, oc_positive_events=50,
             pbmc_events=40),
        dict(base, patient_id="E1"),
    ]  # fmt: skip
    r = post(server, {"patients": bad})
    assert r.status_code == 400, r.text
    api = sorted(f"{d['loc'][1]} {d['loc'][2]}: {d['msg']}" for d in r.json()["detail"])
    model = joblib.load(io.BytesIO(lzma.decompress((FIXTURE / "cox_ridge.joblib.xz").read_bytes())))
    with pytest.raises(MlflowException) as caught:
        predict_records_frame(model, pd.DataFrame(bad, dtype=object))
    _, *lines = caught.value.message.splitlines()
    pyfunc = sorted(
        re.sub(r"^patients position (\d+) \([^)]*\), column (\w+)(?:, value [^:]*)?: ", r"\1 \2: ",
               x)
        for x in lines
    )
    assert api == pyfunc and len(api) == 3, (api, pyfunc)
