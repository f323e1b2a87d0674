"""A landmark model served through ``prediction_day`` (issue 5): draws known by then, no leakage.

A real ``bonemet serve`` on loopback answers with a landmark model trained by the CLI
(``bonemet train --landmarks 0,91,183,365``) on the small simulated cohort.
"""

from __future__ import annotations

import sys

import pytest
import requests

from tests.conftest import LANDMARKS
from tests.serving.servers import free_port, running_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def landmark_server(landmark_store, tmp_path_factory):
    """The session's landmark version, served by version number."""
    env, work = landmark_store["env"], landmark_store["dir"]
    version = landmark_store["summary"]["challenger_version"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "training.cli", "serve", "--port", str(port)]
    cmd += ["--model-uri", f"models:/bone-metastasis-risk/{version}"]
    log = tmp_path_factory.mktemp("landmark-server") / "server.log"
    with running_server(cmd, env, work, f"{base}/readyz", log):
        yield base


PATIENT = {
    "patient_id": "L1",
    "age_years": 58,
    "disease_setting": "metastatic",
    "bone_metastasis_at_enrollment": False,
    "er_status": "positive",
    "her2_status": "negative",
    "oc_positive_percent": 0.03,
}


def _ask(base: str, draws: list[dict], prediction_day: float | None, **extra) -> dict:
    patient = {**PATIENT, **extra, "oc_measurements": draws}
    if prediction_day is not None:
        patient["prediction_day"] = prediction_day
    r = requests.post(f"{base}/predict", json={"patients": [patient]}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["predictions"][0]


def _draws(values: list[float], step: int = 90) -> list[dict]:
    return [{"day": k * step, "oc_positive_percent": v} for k, v in enumerate(values)]


def _probs(answer: dict) -> list[float]:
    return [p["probability"] for p in answer["bone_metastasis_probability"]]


def test_model_metadata_names_the_landmarks(landmark_server):
    info = requests.get(f"{landmark_server}/model", timeout=10).json()
    assert info["landmark_days"] == [0.0, 91.0, 183.0, 365.0]
    assert {"landmark_years", "oc_change_log2", "oc_slope_log2_per_year"} <= set(info["features"])


def test_draws_after_prediction_day_never_change_the_answer(landmark_server):
    known = _draws([0.03, 0.035, 0.045])  # days 0, 90, 180
    base = _ask(landmark_server, known, 180)
    for later in (
        [{"day": 200, "oc_positive_percent": 5.0}],
        [{"day": 181, "oc_positive_percent": 0.0001}, {"day": 400, "oc_positive_percent": 9.0}],
    ):
        answer = _ask(landmark_server, known + later, 180)
        assert answer["risk_score"] == base["risk_score"]
        assert _probs(answer) == _probs(base)
        assert f"{len(later)} draw(s) after prediction_day 180 ignored" in answer["warnings"]


def test_the_trajectory_known_by_prediction_day_moves_the_risk(landmark_server):
    flat = _ask(landmark_server, _draws([0.03, 0.03, 0.03]), 180)
    rising = _ask(landmark_server, _draws([0.03, 0.06, 0.12]), 180)
    assert rising["risk_score"] > flat["risk_score"]
    assert all(r > f for r, f in zip(_probs(rising), _probs(flat), strict=True))
    # The same draws seen from enrollment (prediction_day 0) use only the day-0 draw.
    at_enrollment = _ask(landmark_server, _draws([0.03, 0.06, 0.12]), 0)
    assert at_enrollment["risk_score"] == _ask(landmark_server, _draws([0.03]), 0)["risk_score"]
    assert not any("trained at enrollment" in w for w in rising["warnings"])


def test_prediction_day_defaults_to_the_latest_draw(landmark_server):
    draws = _draws([0.03, 0.05, 0.08])
    assert (
        _ask(landmark_server, draws, None)["risk_score"]
        == _ask(landmark_server, draws, 180)["risk_score"]
    )


def test_prediction_day_after_the_last_landmark_is_answered_with_a_warning(landmark_server):
    answer = _ask(landmark_server, _draws([0.03, 0.04, 0.05, 0.05, 0.06, 0.07]), 700)
    assert any("after the last training landmark (day 365)" in w for w in answer["warnings"])
    assert len(_probs(answer)) == 4


def test_plain_rows_are_predictions_at_enrollment(landmark_server):
    without = requests.post(
        f"{landmark_server}/predict", json={"patients": [PATIENT]}, timeout=30
    ).json()["predictions"][0]
    with_day0 = _ask(landmark_server, [{"day": 0, "oc_positive_percent": 0.03}], 0)
    assert without["risk_score"] == pytest.approx(with_day0["risk_score"], abs=1e-12)


def test_alkaline_phosphatase_of_later_draws_is_ignored_and_said(landmark_server):
    draws = [{"day": 0, "oc_positive_percent": 0.03}]
    draws.append({"day": 90, "oc_positive_percent": 0.04, "alkaline_phosphatase_u_per_l": 400})
    answer = _ask(landmark_server, draws, 90, alkaline_phosphatase_u_per_l=80)
    assert any("alkaline_phosphatase_u_per_l of the draws ignored" in w for w in answer["warnings"])
    same = _ask(
        landmark_server,
        draws[:1] + [{**draws[1], "alkaline_phosphatase_u_per_l": 90}],
        90,
        alkaline_phosphatase_u_per_l=80,
    )
    assert same["risk_score"] == answer["risk_score"]


def test_explain_answers_for_a_landmark_model(landmark_server):
    patient = {**PATIENT, "oc_measurements": _draws([0.03, 0.06, 0.12]), "prediction_day": 180}
    r = requests.post(f"{landmark_server}/explain", json={"patients": [patient]}, timeout=30)
    assert r.status_code == 200, r.text
    (answer,) = r.json()["predictions"]
    assert answer["explanation"] and all(e["text"] for e in answer["explanation"])
    predicted = _ask(landmark_server, _draws([0.03, 0.06, 0.12]), 180)
    assert answer["risk_score"] == predicted["risk_score"]


def test_the_run_records_metrics_per_landmark(landmark_server, landmark_store):
    from pathlib import Path

    from mlflow import MlflowClient

    from training.config import Settings
    from training.registry.versions import run_metrics

    run_id = requests.get(f"{landmark_server}/model", timeout=10).json()["run_id"]
    uri = Settings(data_dir=Path(landmark_store["env"]["BONEMET_DATA_DIR"])).tracking_uri
    metrics = run_metrics(run_id, MlflowClient(tracking_uri=uri))
    for day in LANDMARKS.split(","):
        assert metrics[f"test_landmark_{day}_n"] > 0
    assert 0.5 < metrics["test_landmark_0_harrell_c"] <= 1.0
