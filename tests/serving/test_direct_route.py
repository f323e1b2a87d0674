"""``POST /predict`` answered directly by the gateway is ``POST /predict`` through BentoML.

Two real servers on loopback from the same store and token: the default one, whose gateway
answers ``POST /predict`` itself (:func:`serving.service.answer_predict`), and the reference one
started with ``BONEMET_DIRECT_PREDICT=0``, where the request goes through BentoML's IO
descriptor as before. A corpus of valid and invalid requests (single patients, batches on the
event loop and in a worker thread, draws and ``prediction_day``, missing fields, wrong types,
unknown fields, cross-field rules, duplicate keys, bodies too large, of the wrong type or not
JSON, no token or a wrong one) is sent to both: status, headers (but ``date`` and
``x-request-id``) and body bytes must be identical, and so must each server's audit lines,
its rejected-body log lines and its ``/metrics`` counts for the route.
"""

from __future__ import annotations

import http.client
import json
import re
import time

import pytest
import requests

from tests.serving.servers import P1, bonemet_serve

pytestmark = pytest.mark.slow
TOKEN = "direct-route-token"
AUTH = f"Bearer {TOKEN}"
JSON = "application/json"
MAX_BODY = 200_000
#: Headers that differ between any two answers.
VOLATILE = {"date", "x-request-id"}

P2 = {
    "patient_id": "P0002",
    "age_years": 61.0,
    "disease_setting": "early",
    "bone_metastasis_at_enrollment": False,
    "er_status": "negative",
    "oc_positive_events": 40,
    "pbmc_events": 900,
}
P3 = {"patient_id": "P0003", "age_years": 70, "disease_setting": "metastatic",
      "bone_metastasis_at_enrollment": True}  # fmt: skip
P4 = {
    "patient_id": "P0004",
    "age_years": 47,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "oc_measurements": [
        {"day": 0, "oc_positive_events": 30, "pbmc_events": 1000},
        {"day": 200, "oc_positive_percent": 0.09},
    ],
    "prediction_day": 120,
}


def _body(obj) -> bytes:
    return json.dumps(obj).encode()


def _many(n: int) -> list[dict]:
    base = [P1, P2, P3, P4]
    return [dict(base[k % 4], patient_id=f"B{k:04d}") for k in range(n)]


#: (name, body bytes, headers): every request is sent alike to both servers.
CORPUS: list[tuple[str, bytes, dict[str, str]]] = [
    ("single", _body({"patients": [P1], "horizons_months": [12, 24, 36, 60]}), {}),
    ("default horizons", _body({"patients": [P2]}), {}),
    ("odd horizons", _body({"patients": [P4], "horizons_months": [60, 6.5, 12]}), {}),
    ("enrolled with bone metastasis", _body({"patients": [P3]}), {}),
    ("batch of 4", _body({"patients": _many(4)}), {}),
    ("batch of 25 (worker thread)", _body({"patients": _many(25)}), {}),
    ("integral float", _body({"patients": [dict(P2, pbmc_events=900.0)]}), {}),
    ("prediction_day before the draws", _body({"patients": [dict(P1, prediction_day=30)]}), {}),
    ("long horizon", _body({"patients": [P1], "horizons_months": [240]}), {}),
    ("charset", _body({"patients": [P1]}), {"Content-Type": "Application/JSON; charset=utf-8"}),
    ("missing field", _body({"patients": [{"patient_id": "M1", "age_years": 50}]}), {}),
    ("wrong type", _body({"patients": [dict(P1, age_years="fifty")]}), {}),
    ("bool for a number", _body({"patients": [dict(P1, age_years=True)]}), {}),
    ("unknown field", _body({"patients": [dict(P1, age_year=50)]}), {}),
    ("unknown top-level field", _body({"patients": [P1], "horizon": [12]}), {}),
    ("bad category", _body({"patients": [dict(P1, disease_setting="late")]}), {}),
    ("non-integral count", _body({"patients": [dict(P2, pbmc_events=900.5)]}), {}),
    ("huge integer", b'{"patients": [{"patient_id": "H1", "age_years": 50, "disease_setting":'
     b' "early", "bone_metastasis_at_enrollment": false, "pbmc_events": 1'
     + b"0" * 400 + b"}]}", {}),
    ("NaN literal", b'{"patients": [{"patient_id": "N1", "age_years": NaN, "disease_setting":'
     b' "early", "bone_metastasis_at_enrollment": false}]}', {}),
    ("horizon out of range", _body({"patients": [P1], "horizons_months": [0]}), {}),
    ("no horizons", _body({"patients": [P1], "horizons_months": []}), {}),
    ("no patients", _body({"patients": []}), {}),
    ("1,001 patients", _body({"patients": _many(1001)}), {}),
    ("patients not a list", _body({"patients": P1}), {}),
    ("cross-field rules", _body({"patients": [
        dict(P1, patient_id="F1", age_years="fifty", disease_setting="early",
             visceral_metastasis=True),
        dict(P1, patient_id="F2", ki67_percent=130, oc_positive_events=50, pbmc_events=40,
             oc_positive_percent=None, oc_measurements=[
                 {"day": 0, "oc_positive_events": 9, "pbmc_events": 5},
                 {"day": -1, "oc_positive_percent": 0.1}]),
        dict(P1, patient_id="F1"),
    ]}), {}),  # fmt: skip
    ("contract rules only", _body({"patients": [
        dict(P2, oc_positive_events=950), dict(P1, patient_id="P0002")]}), {}),  # fmt: skip
    ("default prediction_day out of range", _body({"patients": [dict(
        P1, oc_measurements=[{"day": 40000, "oc_positive_percent": 0.05}])]}), {}),  # fmt: skip
    ("negative prediction_day", _body({"patients": [dict(P1, prediction_day=-1)]}), {}),
    ("duplicate key", b'{"patients": [{"patient_id": "D1", "patient_id": "D2"}]}', {}),
    ("empty body", b"", {}),
    ("not JSON", b"{patients", {}),
    ("JSON list", b"[]", {}),
    ("JSON null", b"null", {}),
    ("JSON string", b'"patients"', {}),
    ("not UTF-8", b'{"patients": [{"patient_id": "\xff\xfe"}]}', {}),
    ("too large", b" " * (MAX_BODY + 1), {}),
    ("wrong content type", _body({"patients": [P1]}), {"Content-Type": "text/plain"}),
    ("form", b"patients=1", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("compressed", _body({"patients": [P1]}), {"Content-Encoding": "gzip"}),
    ("no token", _body({"patients": [P1]}), {"Authorization": ""}),
    ("wrong token", _body({"patients": [P1]}), {"Authorization": "Bearer nope"}),
    ("lower case scheme", _body({"patients": [P1]}), {"Authorization": f"bearer {TOKEN}"}),
]


@pytest.fixture(scope="module")
def servers(trained_store, tmp_path_factory):
    env = {"BONEMET_API_TOKEN": TOKEN, "BONEMET_MAX_BODY_BYTES": str(MAX_BODY)}
    with bonemet_serve(trained_store, tmp_path_factory, "direct", **env) as direct:
        with bonemet_serve(
            trained_store, tmp_path_factory, "reference", BONEMET_DIRECT_PREDICT="0", **env
        ) as reference:
            yield direct, reference


def send(server: dict, body: bytes, extra: dict[str, str]) -> tuple[int, list, bytes]:
    """One ``POST /predict`` on a fresh connection: status, headers in order, body bytes."""
    headers = {"Content-Type": JSON, "Authorization": AUTH, **extra}
    headers = {k: v for k, v in headers.items() if v}
    conn = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=30)
    try:
        conn.request("POST", "/predict", body=body, headers=headers)
        r = conn.getresponse()
        payload = r.read()
        kept = [(k.lower(), v) for k, v in r.getheaders() if k.lower() not in VOLATILE]
        return r.status, kept, payload
    finally:
        conn.close()


def audit_lines(log) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        if line.startswith('{"event": "request"') and '"/predict"' in line:
            entry = json.loads(line)
            out.append({k: entry[k] for k in ("method", "path", "status", "model_version",
                                              "n_patients")})  # fmt: skip
    return out


def rejected_lines(log) -> list[str]:
    """The logged rejections without their timestamp (two servers' clocks may tick apart)."""
    return [
        line.split(" ", 1)[1]
        for line in log.read_text().splitlines()
        if "Exception on /predict" in line
    ]


def predict_counts(server: dict) -> dict[str, float]:
    text = requests.get(f"{server['base']}/metrics", headers={"Authorization": AUTH}, timeout=10)
    counts = {}
    for line in text.text.splitlines():
        if line.startswith("bentoml_api_server_request_total") and 'endpoint="/predict"' in line:
            code = re.search(r'http_response_code="(\d+)"', line).group(1)
            counts[code] = counts.get(code, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_the_direct_route_answers_every_request_as_bentomls_route(servers):
    direct, reference = servers
    assert predict_counts(direct) == predict_counts(reference)
    before = [len(audit_lines(s["log"])) for s in servers]
    seen = set()
    for name, body, extra in CORPUS:
        got = send(direct, body, extra)
        want = send(reference, body, extra)
        assert got[0] == want[0], (name, got[0], want[0], got[2][:500], want[2][:500])
        assert got[1] == want[1], (name, got[1], want[1])
        assert got[2] == want[2], (name, got[2][:2000], want[2][:2000])
        seen.add(got[0])
    # The corpus reaches every kind of answer: 200, each protection, and BentoML's own 400s.
    assert seen == {200, 400, 401, 413, 415}, seen
    # The audit line is written once the answer is sent: wait for the last ones.
    deadline = time.monotonic() + 10
    while True:
        after = [audit_lines(s["log"])[n:] for s, n in zip(servers, before, strict=True)]
        if min(len(a) for a in after) >= len(CORPUS) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after[0] == after[1] and len(after[0]) == len(CORPUS)
    assert rejected_lines(direct["log"]) == rejected_lines(reference["log"])
    assert rejected_lines(direct["log"]), "no rejected body was logged"
    deadline = time.monotonic() + 10  # the metrics too are recorded once the answer is sent
    while predict_counts(direct) != predict_counts(reference) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert predict_counts(direct) == predict_counts(reference)

