"""Which inputs each engineered feature comes from (training/artifact/feature_inputs.py), read
from the builders of fitted pipelines: the models logged by 0.1.0 and a builder that says."""

from __future__ import annotations

import io
import lzma

import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import FeatureUnion, Pipeline

from features.transformers import MarkerFeatures, TrajectoryFeatures
from tests.fixtures import MODELS_V0_1_0
from training.artifact.feature_inputs import BUILT_FROM, feature_groups, feature_inputs

FIXTURE = MODELS_V0_1_0
MARKER = MarkerFeatures.columns_in


def _features(name: str) -> Pipeline:
    import joblib
    import sksurv.linear_model  # noqa: F401  (patches Pipeline before unpickling)

    model = joblib.load(io.BytesIO(lzma.decompress((FIXTURE / f"{name}.joblib.xz").read_bytes())))
    return model.pipeline[:-1]


@pytest.mark.parametrize("name", ["cox_ridge", "cox_spline", "cox_ridge_landmark"])
def test_every_feature_comes_from_inputs_its_builders_read(name):
    features = _features(name)
    names = [str(n) for n in features.get_feature_names_out()]
    inputs = feature_inputs(features)
    union = features[0]["union"]
    read = {c for _, builder in union.transformer_list for c in builder.columns_in}
    assert set(inputs) == set(names)
    assert all(found and set(found) <= read for found in inputs.values())


def test_derived_names_indicators_splines_and_interactions():
    inputs = feature_inputs(_features("cox_spline"))
    assert inputs["oc_log2_percent"] == MARKER
    assert inputs["missing_oc_positive_percent"][0] == "oc_positive_percent"
    assert inputs["subtype_triple_negative"] == ("er_status", "pr_status", "her2_status")
    assert inputs["btt_premenopausal"] == ("bone_targeted_therapy", "menopausal_status")
    assert inputs["missing_visceral_metastasis"] == ("visceral_metastasis",)
    assert inputs["oc_log2_percent:rcs1"] == MARKER
    landmark = feature_inputs(_features("cox_ridge_landmark"))
    assert landmark["landmark_years"] == ("landmark_day",)
    assert landmark["missing_oc_change_log2"] == ("oc_change_log2",)
    assert landmark["oc_slope_log2_per_year"] == ("oc_slope_log2_per_year",)
    groups = feature_groups(list(landmark), landmark)
    assert {"prediction_day", "oc_trend", "receptor_status"} <= set(groups)


def test_indicator_of_a_derived_feature_and_interaction_come_from_its_inputs():
    from training.artifact import feature_inputs as module

    columns = TrajectoryFeatures.columns_in
    assert module._inputs_of("missing_landmark_years", columns, BUILT_FROM) == ("landmark_day",)
    known = {"oc_log2_percent": MARKER, "metastatic": ("disease_setting",)}
    found = module._inputs_of("oc_log2_percent:x_metastatic", (), known)
    assert found == MARKER + ("disease_setting",)
    assert feature_groups(["oc_log2_percent:x_metastatic"], {"oc_log2_percent": MARKER}) == {
        "oc_positive_percent": [0]
    }


class _Declares(TransformerMixin, BaseEstimator):
    """A builder that says where its features come from."""

    columns_in = ("er_status", "age_years")

    def get_feature_names_out(self, input_features=None):
        return ["receptor_score", "age_squared"]

    def get_feature_inputs(self):
        return {"receptor_score": ["her2_status", "er_status"], "age_squared": ["age_years"]}


def test_a_builder_that_declares_its_inputs_is_believed():
    features = Pipeline([("union", FeatureUnion([("declares", _Declares())]))])
    inputs = feature_inputs(features)
    assert inputs == {"receptor_score": ("her2_status", "er_status"), "age_squared": ("age_years",)}
    assert feature_groups(["receptor_score", "age_squared"], inputs) == {
        "receptor_status": [0],
        "age_years": [1],
    }


def test_names_alone_group_indicators_with_their_feature():
    assert feature_groups(["new_feature", "missing_new_feature"]) == {"new_feature": [0, 1]}
