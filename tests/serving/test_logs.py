"""No request value ever reaches the server's logs (issue 4), while the audit line stays.

A real ``bonemet serve`` on loopback gets bodies carrying distinctive marker values, ids and
field names that break validation in each way (wrong type, out of range, unknown field,
missing field, pattern, allowed values, NaN, malformed JSON, a cross-field rule) plus one valid
request. After the server has stopped (every buffer flushed), neither its captured stdout and
stderr nor any file it wrote in the project folder may contain a marker; each request still has
its audit line, and BentoML's error lines for the rejected bodies are there, redacted.

The redaction itself (:mod:`serving.logs`) is also checked on log records made in this process.
"""

from __future__ import annotations

import json
import logging
import sys
import time

import pytest
import requests
from pydantic import ValidationError

from serving import logs
from serving.schemas import PatientRecord
from tests.serving.servers import free_port, running_server

MARK = "Zq7Xv"  # in every marked string; never produced by the server itself
NUMBERS = ["98765.4321", "17.0123", "0.123456789", "7777123"]
OK = {
    "patient_id": f"{MARK}OK",
    "age_years": 57,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "oc_positive_percent": 0.05,
}
BAD_BODIES = {
    "wrong type": {"patients": [dict(OK, patient_id=f"{MARK}T1", age_years=f"{MARK}-age")]},
    "out of range": {
        "patients": [dict(OK, patient_id=f"{MARK}R1", tumor_size_mm=98765.4321, age_years=17.0123)]
    },
    "unknown field": {"patients": [dict(OK, patient_id=f"{MARK}U1", **{f"{MARK}_field": MARK})]},
    "missing field": {
        "patients": [{k: v for k, v in OK.items() if k != "age_years"} | {"patient_id": MARK}]
    },
    "pattern": {"patients": [dict(OK, patient_id=f"{MARK} Jane Doe")]},
    "allowed values": {"patients": [dict(OK, patient_id=f"{MARK}A1", er_status=f"{MARK}-pos")]},
    "horizon out of range": {"patients": [OK], "horizons_months": [0.123456789]},
    "cross-field": {
        "patients": [
            dict(
                OK,
                patient_id=f"{MARK}C1",
                disease_setting="early",
                visceral_metastasis=True,
                oc_positive_percent=None,
                oc_positive_events=7777123,
                pbmc_events=5,
            )
        ]
    },
}
BAD_RAW = {
    "malformed JSON": '{"patients": [{"patient_id": "' + MARK + 'J1", "age_years": ',
    "NaN": '{"patients": [{"patient_id": "' + MARK + 'N1", "age_years": NaN, '
    '"disease_setting": "early", "bone_metastasis_at_enrollment": false}]}',
}


def _assert_no_marker(text: str, where: str) -> None:
    assert MARK.lower() not in text.lower(), f"{where}: {_around(text, MARK)}"
    for number in NUMBERS:
        assert number not in text, f"{where}: {_around(text, number)}"


def _around(text: str, needle: str) -> str:
    i = text.lower().find(needle.lower())
    return text[max(0, i - 300) : i + 300]


@pytest.mark.slow
def test_rejected_requests_leave_no_request_value_in_the_server_logs(trained_store, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    project = trained_store["dir"]
    started = time.time()
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
    statuses = []
    with running_server(cmd, trained_store["env"], project, f"{base}/readyz", log):
        for name, body in BAD_BODIES.items():
            r = requests.post(f"{base}/predict", json=body, timeout=30)
            assert r.status_code == 400, (name, r.text)
            statuses.append(r.status_code)
        for name, raw in BAD_RAW.items():
            r = requests.post(
                f"{base}/predict",
                data=raw,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            assert r.status_code == 400, (name, r.text)
            statuses.append(r.status_code)
        r = requests.post(f"{base}/explain", json={"patients": [OK]}, timeout=30)
        assert r.status_code == 200, r.text
        statuses.append(200)
    text = log.read_text()

    _assert_no_marker(text, "server stdout/stderr")
    for path in project.rglob("*"):
        if path.is_file() and path.stat().st_mtime >= started:
            _assert_no_marker(path.read_bytes().decode("latin-1"), str(path))

    audit = [
        json.loads(line) for line in text.splitlines() if line.startswith('{"event": "request"')
    ]
    answered = [a for a in audit if a["path"] in ("/predict", "/explain")]
    assert [a["status"] for a in answered] == statuses
    assert answered[-1]["n_patients"] == 1 and answered[-1]["model_version"]
    # BentoML did log each body that failed pydantic validation: redacted, not dropped.
    assert text.count("Exception on /predict [POST]: rejected, ") == len(BAD_BODIES) - 1 + len(
        BAD_RAW
    )
    assert "float_type at patients.0.age_years" in text
    assert "extra_forbidden at patients.0.<unknown field>" in text
    assert "json_invalid at body" in text
    assert "input_value" not in text


def _formatted(record: logging.LogRecord) -> str:
    logs.RedactRequestValues().filter(record)
    return logging.Formatter("%(levelname)s %(message)s").format(record)


def _record(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        return logging.getLogger("bentoml._internal.server.http_app").makeRecord(
            "bentoml._internal.server.http_app",
            logging.ERROR,
            __file__,
            1,
            "Exception on %s [%s]",
            ("/predict", "POST"),
            sys.exc_info(),
        )


def test_validation_error_is_logged_as_types_and_field_paths_only():
    with pytest.raises(ValidationError) as caught:
        PatientRecord.model_validate(
            {
                "patient_id": f"{MARK} Jane",
                "age_years": 17.0123,
                "disease_setting": "early",
                "bone_metastasis_at_enrollment": False,
                f"{MARK}_field": 1,
            }
        )
    unredacted = logging.Formatter().format(_record(caught.value))
    assert MARK in unredacted  # what BentoML would have written
    text = _formatted(_record(caught.value))
    _assert_no_marker(text, "record")
    # A rejected request is the client's error: logged at INFO, not ERROR (issue 23).
    assert text.startswith("INFO Exception on /predict [POST]: rejected, 3 validation error(s)")
    assert "string_pattern_mismatch at patient_id" in text
    assert "greater_than_equal at age_years" in text
    assert "extra_forbidden at <unknown field>" in text
    assert "Traceback" not in text


def test_other_exceptions_keep_their_traceback_without_messages():
    try:
        try:
            {}[f"{MARK}-horizon"]
        except KeyError as inner:
            raise ValueError(f"bad value {MARK}") from inner
    except ValueError as raised:
        error = raised
    text = _formatted(_record(error))
    _assert_no_marker(text, "record")
    assert text.count("Traceback (most recent call last):") == 2
    assert "builtins.KeyError: <message withheld" in text
    assert "builtins.ValueError: <message withheld" in text
    assert "test_logs.py" in text  # the frames are kept
    # A record passing two redacting filters (logger and handler) is rewritten once.
    record = _record(error)
    first = _formatted(record)
    assert _formatted(record) == first
