"""Models logged by an earlier release keep loading and predict identically (issue 11).

``tests/fixtures/models_v0_1_0`` holds artifacts logged by bonemet 0.1.0 (before the layout of
issue 11 moved the classes they pickle) and what that release predicted with them; how they
were made is in ``make_fixture.py`` there. Today's code must load them (import shims keep the
old module paths) and give the same numbers.
"""

from __future__ import annotations

import io
import json
import lzma
import shutil

import pandas as pd
import pytest

from tests.fixtures import MODELS_V0_1_0

FIXTURE = MODELS_V0_1_0
NAMES = (
    "cox_ridge",
    "logistic_ipcw",
    "xgb_ipcw",
    "cox_spline",
    "stacked_ensemble",
    "cox_ridge_landmark",
)


def _load(name: str):
    import joblib
    import sksurv.linear_model  # noqa: F401  (patches Pipeline before unpickling)

    return joblib.load(io.BytesIO(lzma.decompress((FIXTURE / f"{name}.joblib.xz").read_bytes())))


@pytest.fixture(scope="module")
def cohort():
    from features.contract import validate_cohort

    return validate_cohort(
        pd.read_csv(FIXTURE / "patients.csv"), pd.read_csv(FIXTURE / "oc_measurements.csv")
    )


def _as_written(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the fixture stored it (through CSV)."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("day", [0, 200])
def test_old_artifact_predicts_as_it_did(name, day, cohort):
    from training.artifact.intervals import NO_INTERVAL_WARNING
    from training.scoring.predict import predict_patients

    model = _load(name)
    out = predict_patients(model, cohort.patients, cohort.measurements, float(day) if day else None)
    expected = pd.read_csv(FIXTURE / f"{name}_day{day}.csv")
    # Logged before contract 1.2: no interval bounds (no columns), and every answer says so.
    assert not [c for c in out.columns if c.endswith(("_low", "_high"))]
    warned = out["warnings"].map(json.loads)
    scored = out["risk_score"].notna()
    assert all(NO_INTERVAL_WARNING in w for w in warned[scored])
    out["warnings"] = [json.dumps([x for x in w if x != NO_INTERVAL_WARNING]) for w in warned]
    if day:
        # Since issue 23.4 a patient whose outcome the table records on or before the
        # prediction day gets no prediction (bone metastasis or death) or a warning (censored):
        # the others answer as they did.
        from training.scoring.predict import outcome_by_day

        ended, _ = outcome_by_day(cohort.patients, float(day))
        recorded = cohort.patients["time_days"].le(day).to_numpy()
        assert out.loc[ended, "risk_score"].isna().all()
        keep = ~recorded
        out, expected = out[keep].reset_index(drop=True), expected[keep].reset_index(drop=True)
    pd.testing.assert_frame_equal(_as_written(out), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_old_artifact_explains_as_it_did(name, cohort):
    from training.artifact.adapter import predict_records_frame

    rows = cohort.patients.drop(columns=["time_days", "event"]).head(5)
    got = json.loads(
        predict_records_frame(_load(name), rows, {"explain": True}).to_json(orient="records")
    )
    expected = json.loads((FIXTURE / f"{name}_explained.json").read_text())
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        for key in ("explanation",):
            g_items, e_items = json.loads(g.pop(key)), json.loads(e.pop(key))
            # Since 1.2 an imputed input is never a reason: the old answer without those.
            e_items = [i for i in e_items if i["value"] != "missing (imputed)"]
            g_items = g_items[: len(e_items)]
            assert [i["input"] for i in g_items] == [i["input"] for i in e_items]
            assert [i["text"] for i in g_items] == [i["text"] for i in e_items]
            assert [i["contribution"] for i in g_items] == pytest.approx(
                [i["contribution"] for i in e_items], rel=1e-9, abs=1e-12
            )
        assert g.keys() == e.keys()
        from training.artifact.intervals import NO_INTERVAL_WARNING

        if "warnings" in g and g["risk_score"] is not None:
            warned = json.loads(g["warnings"])
            assert NO_INTERVAL_WARNING in warned
            g["warnings"] = json.dumps([w for w in warned if w != NO_INTERVAL_WARNING])
        for key, value in e.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
            else:
                assert g[key] == value, key


def test_old_pyfunc_folder_loads_and_predicts(tmp_path, cohort):
    import mlflow

    model_dir = tmp_path / "model"
    shutil.copytree(FIXTURE / "cox_ridge_pyfunc", model_dir)
    raw = lzma.decompress((FIXTURE / "cox_ridge.joblib.xz").read_bytes())
    (model_dir / "artifacts" / "risk_model.joblib").write_bytes(raw)
    model = mlflow.pyfunc.load_model(str(model_dir))
    rows = cohort.patients.drop(columns=["time_days", "event"]).head(5)
    out = json.loads(model.predict(rows, params={"explain": False}).to_json(orient="records"))
    expected = json.loads((FIXTURE / "cox_ridge_explained.json").read_text())
    for g, e in zip(out, expected, strict=True):
        assert g["patient_id"] == e["patient_id"] and g["risk_group"] == e["risk_group"]
        for key in ("p_bone_met_24m", "p_death_24m"):  # None: metastasis at enrollment
            assert (g[key] is None) == (e[key] is None)
            if e[key] is not None:
                assert g[key] == pytest.approx(e[key], rel=1e-9)
