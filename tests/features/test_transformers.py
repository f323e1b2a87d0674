"""Feature builders: contract rows in, model features out, fitted state learned on training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from features.contract import check_patients
from features.transformers import (
    ClinicalFeatures,
    MarkerFeatures,
    make_feature_pipeline,
    marker_percent,
)


def typed(rows: list[dict]) -> pd.DataFrame:
    frame, violations = check_patients(pd.DataFrame(rows), table="request", allow_outcome=False)
    assert violations == []
    return frame


BASE = {
    "patient_id": "P1",
    "age_years": 50,
    "disease_setting": "early",
    "bone_metastasis_at_enrollment": False,
    "menopausal_status": "post",
    "er_status": "positive",
    "pr_status": "negative",
    "her2_status": "negative",
    "ki67_percent": 20,
    "histologic_grade": 2,
    "tumor_size_mm": 25,
    "positive_lymph_nodes": 5,
    "visceral_metastasis": False,
    "bone_targeted_therapy": "bisphosphonate",
    "endocrine_therapy": True,
    "chemotherapy": False,
    "alkaline_phosphatase_u_per_l": 80,
    "oc_positive_percent": 0.04,
    "oc_positive_events": 40,
    "pbmc_events": 100000,
}


def test_marker_percent_prefers_counts_with_continuity_correction():
    p = marker_percent(
        np.array([0.5, 0.03, np.nan]),
        np.array([0, np.nan, np.nan]),
        np.array([100000, np.nan, np.nan]),
    )
    assert p[0] == pytest.approx(100 * 0.5 / 100000.5)
    assert p[1] == pytest.approx(0.03)
    assert np.isnan(p[2])


def test_marker_is_log2_of_counts_and_doubles_by_one():
    rows = [
        dict(
            BASE,
            patient_id="A",
            oc_positive_percent=None,
            oc_positive_events=40,
            pbmc_events=100000,
        ),
        dict(
            BASE,
            patient_id="B",
            oc_positive_percent=None,
            oc_positive_events=81,
            pbmc_events=100000,
        ),
    ]
    out = MarkerFeatures().fit(typed(rows)).transform(typed(rows))
    assert out.shape == (2, 1)  # no marker missing in training: no indicator column
    # one more doubling of the (continuity-corrected) count is one more unit
    assert out[1, 0] - out[0, 0] == pytest.approx(np.log2(81.5 / 40.5), abs=1e-12)
    assert out[0, 0] == pytest.approx(np.log2(100 * 40.5 / 100000.5))


def test_marker_zero_percent_is_floored_not_minus_infinity():
    rows = [dict(BASE, oc_positive_percent=0.0, oc_positive_events=None, pbmc_events=None)]
    out = MarkerFeatures(floor_percent=0.001).fit(typed(rows)).transform(typed(rows))
    assert out[0, 0] == pytest.approx(np.log2(0.001))


def test_missing_indicators_are_learned_from_training_only():
    train = typed(
        [
            BASE,
            dict(
                BASE,
                patient_id="P2",
                ki67_percent=None,
                oc_positive_percent=None,
                oc_positive_events=None,
                pbmc_events=None,
            ),
        ]
    )
    clinical = ClinicalFeatures().fit(train)
    names = list(clinical.get_feature_names_out())
    assert "missing_ki67_percent" in names
    assert "missing_tumor_size_mm" not in names  # never missing in training
    marker = MarkerFeatures().fit(train)
    assert list(marker.get_feature_names_out()) == [
        "oc_log2_percent",
        "missing_oc_positive_percent",
    ]
    out = clinical.transform(train)
    assert out.shape == (2, len(names))
    assert out[:, names.index("missing_ki67_percent")].tolist() == [0.0, 1.0]


def test_clinical_categories_receptors_nodes_and_therapy_by_menopause():
    rows = [
        BASE,
        dict(
            BASE,
            patient_id="P2",
            menopausal_status="pre",
            positive_lymph_nodes=2,
            er_status="negative",
            pr_status="negative",
            her2_status="negative",
            tumor_size_mm=15,
        ),
        dict(
            BASE,
            patient_id="P3",
            positive_lymph_nodes=0,
            bone_targeted_therapy="none",
            disease_setting="metastatic",
            visceral_metastasis=True,
            her2_status="positive",
        ),
    ]
    t = ClinicalFeatures().fit(typed(rows))
    f = pd.DataFrame(t.transform(typed(rows)), columns=t.get_feature_names_out())
    assert f["nodes_4_plus"].tolist() == [1, 0, 0]
    assert f["nodes_1_3"].tolist() == [0, 1, 0]
    assert f["tumor_gt_20mm"].tolist() == [1, 0, 1]
    assert f["er_pos_pr_neg"].tolist() == [1, 0, 1]
    assert f["subtype_luminal"].tolist() == [1, 0, 0]
    assert f["subtype_triple_negative"].tolist() == [0, 1, 0]
    assert f["btt_postmenopausal"].tolist() == [1, 0, 0]
    assert f["btt_premenopausal"].tolist() == [0, 1, 0]
    assert f["visceral"].tolist() == [0, 0, 1]
    assert f["metastatic"].tolist() == [0, 0, 1]


def test_visceral_missing_in_early_disease_is_known_absent():
    rows = [dict(BASE, visceral_metastasis=None)]
    t = ClinicalFeatures().fit(typed(rows))
    f = pd.DataFrame(t.transform(typed(rows)), columns=t.get_feature_names_out())
    assert f["visceral"].tolist() == [0.0]
    assert "missing_visceral_metastasis" not in f.columns


def test_transform_names_missing_columns_and_requires_fit():
    frame = typed([BASE])
    with pytest.raises(NotFittedError):
        ClinicalFeatures().transform(frame)
    fitted = ClinicalFeatures().fit(frame)
    with pytest.raises(KeyError, match="input lacks contract column\\(s\\): age_years, er_status"):
        fitted.transform(frame.drop(columns=["age_years", "er_status"]))
    with pytest.raises(TypeError, match="expects a pandas DataFrame"):
        fitted.transform(frame.to_numpy())


def test_pipeline_imputes_with_training_medians_and_keeps_shape():
    rows = [
        dict(BASE, patient_id=f"P{i}", age_years=40 + i, ki67_percent=(None if i % 3 else 10 + i))
        for i in range(12)
    ]
    pipe = make_feature_pipeline().fit(typed(rows))
    out = pipe.transform(typed([dict(BASE, patient_id="new", ki67_percent=None)]))
    assert out.shape == (1, len(pipe.get_feature_names_out()))
    assert np.isfinite(out).all()
    clinical_only = make_feature_pipeline(include_marker=False).fit(typed(rows))
    assert not any("oc_" in n for n in clinical_only.get_feature_names_out())


def test_unfitted_params_are_only_stored():
    t = ClinicalFeatures(large_tumor_mm=30, many_nodes=10)
    assert t.get_params() == {"large_tumor_mm": 30, "many_nodes": 10}
    with pytest.raises(ValueError, match="many_nodes must be >= 2"):
        ClinicalFeatures(many_nodes=1).fit(typed([BASE]))
