"""The one smoke check (training.artifact.smoke) that promotion, ``bonemet serve`` and the
service make of a loaded version (issue 21, item 3)."""

from __future__ import annotations

import io
import lzma

import numpy as np
import pytest

from tests.fixtures import MODELS_V0_1_0
from training.artifact.adapter import predict_records_frame
from training.artifact.smoke import SmokeCheckError, smoke_check

FIXTURE = MODELS_V0_1_0


class _Loaded:
    """What the logged pyfunc's ``predict`` does (training.artifact.pyfunc_model), with a way
    to damage its answer."""

    def __init__(self, risk_model, damage=None):
        self.risk_model, self.damage = risk_model, damage

    def predict(self, rows):
        out = predict_records_frame(self.risk_model, rows, None)
        return self.damage(out) if self.damage else out


@pytest.fixture(scope="module")
def risk_model():
    import joblib

    raw = lzma.decompress((FIXTURE / "cox_ridge.joblib.xz").read_bytes())
    return joblib.load(io.BytesIO(raw))


def test_a_working_version_passes(risk_model):
    smoke_check(_Loaded(risk_model))


def _nan_probability(out):
    out.loc[0, "p_bone_met_24m"] = np.nan
    return out


def _above_one(out):
    out.loc[1, "p_bone_met_12m"] = 1.5
    return out


def _raises(out):
    raise RuntimeError("pickled estimator from another world\nsecond line")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_nan_probability, "^answers the synthetic case without a finite risk score"),
        (_above_one, r"^answers the synthetic case without .* probabilities in \[0, 1\]"),
        (lambda out: out.iloc[:1], "^answers 3 synthetic patients without a row each"),
        (lambda out: out.drop(columns="risk_score"), "^answers 3 synthetic patients without"),
        (
            _raises,
            r"^loads but fails to predict a synthetic case \(RuntimeError: pickled estimator "
            r"from another world\)$",
        ),
    ],
)
def test_a_damaged_answer_is_refused_saying_why(risk_model, damage, message):
    with pytest.raises(SmokeCheckError, match=message):
        smoke_check(_Loaded(risk_model, damage))
