"""One input check for the API and the pyfunc (issue 21, item 4): the same bad rows get the
same refusal, whether they come as JSON records (the service) or a DataFrame (``predict`` of
the logged pyfunc, ``mlflow models serve``, Spark)."""

from __future__ import annotations

import io
import lzma
import re

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from tests.fixtures import MODELS_V0_1_0
from training.artifact.adapter import predict_records_frame
from training.artifact.inputs import RULE_NO_PATIENTS, check_prediction_rows, refusals

FIXTURE = MODELS_V0_1_0
BASE = {
    "patient_id": "P0001",
    "age_years": 54,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
}
#: Rules of one field and rules across fields, each broken once.
BAD = [
    dict(BASE, patient_id="E1", disease_setting="early", visceral_metastasis=True),
    dict(BASE, patient_id="E2", oc_positive_events=50, pbmc_events=40),
    dict(BASE, patient_id="E1"),
    dict(BASE, patient_id="E4", age_years=150),
]
#: What both refuse, in the API's form.
EXPECTED = [
    {
        "loc": ["patients", 0, "visceral_metastasis"],
        "msg": "must not be true when disease_setting is early",
    },
    {"loc": ["patients", 1, "oc_positive_events"], "msg": "must be <= pbmc_events (40)"},
    {"loc": ["patients", 2, "patient_id"], "msg": "must be unique, already at position 0"},
    {"loc": ["patients", 3, "age_years"], "msg": "must be 18-100"},
]


@pytest.fixture(scope="module")
def risk_model():
    import joblib

    return joblib.load(io.BytesIO(lzma.decompress((FIXTURE / "cox_ridge.joblib.xz").read_bytes())))


def _pyfunc_refusal(risk_model, rows) -> list[dict]:
    """The pyfunc's error message read back as ``{"loc", "msg"}`` items."""
    with pytest.raises(MlflowException) as caught:
        predict_records_frame(risk_model, rows)
    header, *lines = caught.value.message.splitlines()
    assert re.fullmatch(r"input breaks data contract v1\.2: \d+ violation\(s\)", header), header
    out = []
    for line in lines:
        m = re.fullmatch(
            r"patients(?: position (\d+))?(?: \(patient_id [^)]*\))?(?:, column (\w+))?"
            r"(?:, value .*?)?: (.*)",
            line,
        )
        assert m, line
        pos, column, msg = m.groups()
        loc = ["patients", None if pos is None else int(pos)] + ([column] if column else [])
        out.append({"loc": loc, "msg": msg})
    return out


def test_records_and_frames_are_refused_alike():
    _, from_records = check_prediction_rows(BAD)
    _, from_frame = check_prediction_rows(pd.DataFrame(BAD, dtype=object))
    assert sorted(map(str, refusals(from_records))) == sorted(map(str, refusals(from_frame)))
    assert sorted(map(str, refusals(from_records))) == sorted(map(str, EXPECTED))


def test_the_pyfunc_refuses_with_the_apis_words(risk_model):
    found = _pyfunc_refusal(risk_model, pd.DataFrame(BAD, dtype=object))
    assert sorted(map(str, found)) == sorted(map(str, EXPECTED))


def test_no_rows_is_refused_by_both(risk_model):
    _, violations = check_prediction_rows([])
    assert refusals(violations) == [{"loc": ["patients", None], "msg": RULE_NO_PATIENTS}]
    found = _pyfunc_refusal(risk_model, pd.DataFrame(columns=list(BASE)))
    assert found == [{"loc": ["patients", None], "msg": RULE_NO_PATIENTS}]
