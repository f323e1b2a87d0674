"""Per-patient explanations (training/artifact/explain.py): occlusion against the training
reference."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from features.contract import validate_cohort
from features.schema import PATIENT_SPECS
from features.simulate import simulate_cohort
from training.artifact import explain as explain_module
from training.artifact.explain import (
    MISSING_TEXT,
    explain,
    explanation_text,
    training_percentiles,
)
from training.artifact.feature_inputs import feature_groups, feature_inputs
from training.config import TrainConfig
from training.fitting.data import split, time_to_event_rows
from training.fitting.family_run import fit_risk_model
from training.models.catalog import FAMILIES

LOG_HAZARD = {"cox_ridge", "cox_elasticnet", "gbsa", "xgb_cox", "cox_spline"}
LINEAR = ("cox_ridge", "cox_elasticnet", "logistic_ipcw", "cox_spline", "logistic_ipcw_spline")
ALL = 100  # more than the number of groups: every group is returned

#: Engineered feature -> group, spelled out here independently of training/artifact/explain.py.
EXPECTED_GROUP = {
    "oc_log2_percent": "oc_positive_percent",
    "missing_oc_positive_percent": "oc_positive_percent",
    "age_years": "age_years",
    "ki67_percent": "ki67_percent",
    "missing_ki67_percent": "ki67_percent",
    "histologic_grade": "histologic_grade",
    "missing_histologic_grade": "histologic_grade",
    "log_tumor_size_mm": "tumor_size_mm",
    "tumor_gt_20mm": "tumor_size_mm",
    "missing_tumor_size_mm": "tumor_size_mm",
    "er_positive": "receptor_status",
    "pr_positive": "receptor_status",
    "her2_positive": "receptor_status",
    "er_pos_pr_neg": "receptor_status",
    "subtype_luminal": "receptor_status",
    "subtype_triple_negative": "receptor_status",
    "missing_er_status": "receptor_status",
    "missing_pr_status": "receptor_status",
    "missing_her2_status": "receptor_status",
    "nodes_1_3": "positive_lymph_nodes",
    "nodes_4_plus": "positive_lymph_nodes",
    "missing_positive_lymph_nodes": "positive_lymph_nodes",
    "metastatic": "disease_setting",
    "visceral": "visceral_metastasis",
    "missing_visceral_metastasis": "visceral_metastasis",
    "log_alp": "alkaline_phosphatase_u_per_l",
    "missing_alkaline_phosphatase_u_per_l": "alkaline_phosphatase_u_per_l",
    "endocrine_therapy": "endocrine_therapy",
    "missing_endocrine_therapy": "endocrine_therapy",
    "chemotherapy": "chemotherapy",
    "missing_chemotherapy": "chemotherapy",
    "postmenopausal": "menopausal_status",
    "missing_menopausal_status": "menopausal_status",
    "btt_postmenopausal": "bone_targeted_therapy",
    "btt_premenopausal": "bone_targeted_therapy",
    "missing_bone_targeted_therapy": "bone_targeted_therapy",
}


@pytest.fixture(scope="module")
def data():
    sim = simulate_cohort(600, seed=7)
    rows, _ = time_to_event_rows(validate_cohort(sim.patients, sim.measurements))
    return split(rows, TrainConfig(holdout=0.25))


_MODELS: dict[str, object] = {}


def model_for(family: str, data):
    """One fitted RiskModel per family (defaults), shared by the tests of this module."""
    if family not in _MODELS:
        X_train, _, y_train, _ = data
        _MODELS[family] = fit_risk_model(family, {}, TrainConfig(), X_train, y_train)
    return _MODELS[family]


@pytest.fixture(scope="module")
def cox(data):
    return model_for("cox_ridge", data)


@pytest.fixture(scope="module", params=list(FAMILIES))
def family_model(request, data):
    return request.param, model_for(request.param, data)


def by_input(entries):
    return {e["input"]: e for e in entries}


def standardised_reference(model) -> np.ndarray:
    features = model.pipeline[:-1][0]
    imputer, scaler = features["impute"], features["scale"]
    return (imputer.statistics_ - scaler.mean_) / scaler.scale_


def bone_metastasis_coefficients(model) -> np.ndarray:
    est = model.estimator
    if hasattr(est, "classifiers_"):
        k = int(np.flatnonzero(est.fitted_horizons_months_ == est.score_horizon_months)[0])
        return est.classifiers_[k].coef_[0]
    return est.coef_[1]


def reference_row(model, template: pd.DataFrame) -> pd.DataFrame:
    """A contract row whose every input sits at the training reference (imputer medians)."""
    names = list(model.pipeline[:-1].get_feature_names_out())
    stat = dict(zip(names, model.pipeline[:-1][0]["impute"].statistics_, strict=True))
    assert all(stat[n] == 0.0 for n in names if n.startswith("missing_"))
    row = template.head(1).copy()

    def sign(feature: str) -> str:
        return "positive" if stat[feature] == 1.0 else "negative"

    nodes = 4.0 if stat["nodes_4_plus"] else (1.0 if stat["nodes_1_3"] else 0.0)
    values = {
        "age_years": stat["age_years"],
        "ki67_percent": stat["ki67_percent"],
        "histologic_grade": stat["histologic_grade"],
        "tumor_size_mm": float(np.exp(stat["log_tumor_size_mm"])),
        "er_status": sign("er_positive"),
        "pr_status": sign("pr_positive"),
        "her2_status": sign("her2_positive"),
        "positive_lymph_nodes": nodes,
        "disease_setting": "metastatic" if stat["metastatic"] else "early",
        "visceral_metastasis": stat["visceral"],
        "alkaline_phosphatase_u_per_l": float(np.exp(stat["log_alp"])),
        "endocrine_therapy": stat["endocrine_therapy"],
        "chemotherapy": stat["chemotherapy"],
        "menopausal_status": "post" if stat["postmenopausal"] else "pre",
        "bone_targeted_therapy": (
            "bisphosphonate" if stat["btt_postmenopausal"] or stat["btt_premenopausal"] else "none"
        ),
        "oc_positive_percent": float(2.0 ** stat["oc_log2_percent"]),
        "oc_positive_events": np.nan,
        "pbmc_events": np.nan,
    }
    for column, value in values.items():
        row[column] = pd.Series([value], index=row.index, dtype=row[column].dtype)
    return row


def with_marker(rows: pd.DataFrame, percent: float) -> pd.DataFrame:
    out = rows.copy()
    out["oc_positive_percent"] = percent
    out["oc_positive_events"] = np.nan
    out["pbmc_events"] = np.nan
    return out


# -- exactness for linear families ----------------------------------------------------------------


@pytest.mark.parametrize("family", LINEAR)
def test_linear_contributions_are_coef_times_standardised_difference(family, data):
    model = model_for(family, data)
    X_test = data[1].head(40)
    X = model.pipeline[:-1].transform(X_test)
    ref = standardised_reference(model)
    coef = bone_metastasis_coefficients(model)
    # Spline terms and interactions ("oc_log2_percent:rcs1") join their base feature's group.
    names = [n.split(":")[0] for n in model.pipeline[:-1].get_feature_names_out()]
    assert set(names) <= set(EXPECTED_GROUP)
    expected = {}
    for j, name in enumerate(names):
        group = EXPECTED_GROUP[name]
        expected[group] = expected.get(group, 0.0) + coef[j] * (X[:, j] - ref[j])
    out = explain(model, X_test, top=ALL)
    for i, entries in enumerate(out):
        got = by_input(entries)
        assert set(got) == set(expected)
        for group, values in expected.items():
            assert got[group]["contribution"] == pytest.approx(values[i], abs=1e-9)
    # Additive: the contributions add up to the score minus the reference patient's score.
    score = model.estimator.predict(X)
    at_ref = model.estimator.predict(ref[None, :])[0]
    totals = [sum(e["contribution"] for e in entries) for entries in out]
    np.testing.assert_allclose(totals, score - at_ref, atol=1e-9)


def groups_of(model) -> dict[str, list[int]]:
    features = model.pipeline[:-1]
    return feature_groups(features.get_feature_names_out(), feature_inputs(features))


def test_groups_follow_the_raw_inputs(cox):
    names = list(cox.pipeline[:-1].get_feature_names_out())
    groups = groups_of(cox)
    assert {n: g for g, idx in groups.items() for n in (names[j] for j in idx)} == {
        n: EXPECTED_GROUP[n] for n in names
    }
    assert feature_groups(["new_feature", "missing_new_feature"]) == {"new_feature": [0, 1]}


# -- every family -------------------------------------------------------------------------------


def test_reference_patient_gets_zero_contributions(family_model, data):
    family, model = family_model
    row = reference_row(model, data[1])
    np.testing.assert_allclose(
        model.pipeline[:-1].transform(row)[0], standardised_reference(model), atol=1e-9
    )
    (entries,) = explain(model, row, top=ALL)
    assert entries
    assert [e["contribution"] for e in entries] == [0.0] * len(entries)


def test_every_family_returns_sorted_finite_top_entries(family_model, data):
    family, model = family_model
    X_test = data[1].head(25)
    out = explain(model, X_test, top=4)
    assert len(out) == len(X_test)
    scale = "log hazard" if family in LOG_HAZARD else "log odds"
    groups = set(groups_of(model))
    for entries in out:
        assert len(entries) == 4
        contributions = np.array([e["contribution"] for e in entries])
        assert np.all(np.isfinite(contributions))
        assert np.all(np.diff(np.abs(contributions)) <= 0)
        for e in entries:
            assert set(e) == {"input", "value", "contribution", "scale", "text"}
            assert type(e["contribution"]) is float
            assert e["scale"] == scale
            assert e["input"] in groups
            assert e["text"].endswith(f" to the {scale}")
    # The top entries are the largest of all groups.
    full = explain(model, X_test, top=ALL)
    for short, long in zip(out, full, strict=True):
        assert len(long) == len(groups)
        assert short == long[:4]


def test_marker_contribution_rises_with_the_marker(family_model, data):
    family, model = family_model
    X_train, X_test = data[0], data[1].head(10)
    (p10, _, p90) = training_percentiles(X_train)["oc_positive_percent"]
    low = explain(model, with_marker(X_test, p10 / 2), top=ALL)
    high = explain(model, with_marker(X_test, p90 * 1.2), top=ALL)
    for lo, hi in zip(low, high, strict=True):
        c_lo = by_input(lo)["oc_positive_percent"]["contribution"]
        c_hi = by_input(hi)["oc_positive_percent"]["contribution"]
        assert c_hi > 0
        assert c_hi > c_lo


def test_marker_contribution_is_monotone_for_cox_ridge(cox, data):
    row = data[1].head(1)
    grid = np.geomspace(0.002, 0.2, 12)
    contributions = [
        by_input(explain(cox, with_marker(row, p), top=ALL)[0])["oc_positive_percent"][
            "contribution"
        ]
        for p in grid
    ]
    assert np.all(np.diff(contributions) > 0)


# -- missing values -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def incomplete(data):
    rows = data[1].head(3).copy()
    for column in ("tumor_size_mm", "ki67_percent", "alkaline_phosphatase_u_per_l"):
        rows[column] = np.nan
    for column in ("er_status", "pr_status", "her2_status", "bone_targeted_therapy"):
        rows[column] = None
    for column in ("oc_positive_percent", "oc_positive_events", "pbmc_events"):
        rows[column] = np.nan
    return rows


MISSING_GROUPS = (
    "tumor_size_mm",
    "ki67_percent",
    "alkaline_phosphatase_u_per_l",
    "receptor_status",
    "bone_targeted_therapy",
    "oc_positive_percent",
)


def test_missing_inputs_show_imputed_and_their_indicator_effect(cox, incomplete):
    names = list(cox.pipeline[:-1].get_feature_names_out())
    coef = bone_metastasis_coefficients(cox)
    X = cox.pipeline[:-1].transform(incomplete)
    ref = standardised_reference(cox)
    for i, entries in enumerate(explain(cox, incomplete, top=ALL)):
        got = by_input(entries)
        for group in MISSING_GROUPS:
            assert got[group]["value"] == MISSING_TEXT
            assert "missing (imputed at the training median)" in got[group]["text"]
        # Only the missing-value indicator differs from the reference: its effect is shown.
        j = names.index("missing_tumor_size_mm")
        assert got["tumor_size_mm"]["contribution"] == pytest.approx(
            coef[j] * (X[i, j] - ref[j]), abs=1e-12
        )
        j = names.index("missing_oc_positive_percent")
        assert got["oc_positive_percent"]["contribution"] == pytest.approx(
            coef[j] * (X[i, j] - ref[j]), abs=1e-12
        )


def test_missing_inputs_work_for_every_family(family_model, incomplete):
    _, model = family_model
    for entries in explain(model, incomplete, top=ALL):
        got = by_input(entries)
        assert all(np.isfinite(e["contribution"]) for e in entries)
        for group in MISSING_GROUPS:
            assert got[group]["value"] == MISSING_TEXT


def test_missing_input_without_indicator_contributes_nothing(data):
    X_train, X_test, y_train, _ = data
    filled = X_train.copy()
    filled["tumor_size_mm"] = filled["tumor_size_mm"].fillna(filled["tumor_size_mm"].median())
    model = fit_risk_model("cox_ridge", {}, TrainConfig(), filled, y_train)
    assert "missing_tumor_size_mm" not in set(model.pipeline[:-1].get_feature_names_out())
    rows = X_test.head(3).copy()
    rows["tumor_size_mm"] = np.nan
    for entries in explain(model, rows, top=ALL):
        entry = by_input(entries)["tumor_size_mm"]
        assert entry["value"] == MISSING_TEXT
        assert entry["contribution"] == 0.0


# -- wording ------------------------------------------------------------------------------------


def test_text_uses_schema_units_and_training_percentiles(cox, data):
    row = data[1].head(1).copy()
    row["disease_setting"] = "early"
    row["tumor_size_mm"] = 14.0
    row["positive_lymph_nodes"] = 3.0
    row["age_years"] = 61.7
    row = with_marker(row, 0.09)
    reference = {
        "oc_positive_percent": (0.01, 0.02, 0.05),
        "tumor_size_mm": (12.0, 23.0, 43.0),
        "positive_lymph_nodes": (0.0, 0.0, 2.0),
        "age_years": (65.0, 70.0, 80.0),
    }
    got = by_input(explain(cox, row, top=ALL, reference=reference)[0])
    marker = got["oc_positive_percent"]
    assert PATIENT_SPECS["oc_positive_percent"].unit == "% of PBMC events"
    assert marker["value"] == "0.090 % of PBMC events"
    sign = "+" if marker["contribution"] >= 0 else "-"
    assert marker["text"] == (
        "osteocalcin-positive cells 0.090 % of PBMC events (above the training 90th "
        f"percentile): {sign}{abs(marker['contribution']):.2f} to the log hazard"
    )
    assert marker["contribution"] > 0
    assert got["tumor_size_mm"]["value"] == f"14 {PATIENT_SPECS['tumor_size_mm'].unit}"
    assert got["tumor_size_mm"]["text"].startswith("tumor size 14 mm (training median 23):")
    assert got["positive_lymph_nodes"]["value"] == "3 nodes"
    assert got["positive_lymph_nodes"]["text"].startswith(
        "3 nodes involved (above the training 90th percentile):"
    )
    assert got["age_years"]["text"].startswith(
        "age 61.7 years (below the training 10th percentile):"
    )
    assert got["visceral_metastasis"]["value"] == "no (early disease)"
    assert got["disease_setting"]["text"].startswith("early disease:")
    # Outside the training range wins over the percentiles.
    lo, hi = cox.training_ranges["oc_positive_percent"]
    far = explain(cox, with_marker(row, hi * 2), top=ALL, reference=reference)[0]
    assert (
        f"(outside the training range {lo:.2g}-{hi:.3f})"
        in (by_input(far)["oc_positive_percent"]["text"])
    )


def test_categorical_and_boolean_wording(cox, data):
    row = data[1].head(1).copy()
    row["er_status"], row["pr_status"], row["her2_status"] = "negative", "negative", "negative"
    row["menopausal_status"] = "post"
    row["bone_targeted_therapy"] = "denosumab"
    row["chemotherapy"] = 0.0
    row["endocrine_therapy"] = 1.0
    row["histologic_grade"] = 3.0
    got = by_input(explain(cox, row, top=ALL)[0])
    assert got["receptor_status"]["value"] == "triple negative (ER-, PR-, HER2-)"
    assert got["menopausal_status"]["value"] == "postmenopausal"
    assert got["bone_targeted_therapy"]["value"] == "denosumab (postmenopausal)"
    assert got["chemotherapy"]["value"] == "no"
    assert got["chemotherapy"]["text"].startswith("no chemotherapy:")
    assert got["endocrine_therapy"]["text"].startswith("endocrine therapy:")
    assert got["histologic_grade"]["text"].startswith("histologic grade 3:")
    row["er_status"], row["pr_status"] = "positive", None
    got = by_input(explain(cox, row, top=ALL)[0])
    assert got["receptor_status"]["value"] == "luminal (ER+, PR missing, HER2-)"


def test_model_percentiles_are_used_when_stored(cox, data):
    X_train, X_test = data[0], data[1].head(2)
    stored = copy.copy(cox)
    stored.training_percentiles = training_percentiles(X_train)
    bare = copy.copy(cox)
    bare.training_percentiles = {}  # a model trained before percentiles were stored
    explicit = explain(bare, X_test, reference=training_percentiles(X_train))
    assert explain(stored, X_test) == explicit
    plain = explain(bare, X_test, top=ALL)
    phrases = ("percentile", "(training median")
    assert not any(w in e["text"] for p in plain for e in p for w in phrases)
    assert any(w in e["text"] for p in explicit for e in p for w in phrases)


def test_training_percentiles_read_the_marker_from_counts():
    frame = pd.DataFrame(
        {
            "age_years": np.arange(1.0, 12.0),
            "oc_positive_percent": [np.nan] * 10 + [50.0],
            "oc_positive_events": [9.5 + k for k in range(10)] + [np.nan],
            "pbmc_events": [99.5] * 10 + [np.nan],
        }
    )
    out = training_percentiles(frame)
    assert set(out) == {"age_years", "oc_positive_percent"}
    np.testing.assert_allclose(out["age_years"], np.percentile(np.arange(1.0, 12.0), [10, 50, 90]))
    # From the counts (continuity-corrected) where present, the reported percent otherwise.
    marker = [100.0 * (10.0 + k) / 100.0 for k in range(10)] + [50.0]
    np.testing.assert_allclose(out["oc_positive_percent"], np.percentile(marker, [10, 50, 90]))


def test_explanation_text_joins_the_sentences(cox, data):
    (entries,) = explain(cox, data[1].head(1), top=3)
    assert explanation_text(entries) == "; ".join(e["text"] for e in entries)
    assert explanation_text([]) == ""


# -- rows and arguments -------------------------------------------------------------------------


def assert_same(a, b):
    """Same entries, contributions equal up to rounding (near-ties may swap places)."""
    assert len(a) == len(b)
    got, want = by_input(a), by_input(b)
    assert set(got) == set(want)
    for name, entry in got.items():
        assert entry["value"] == want[name]["value"]
        assert entry["contribution"] == pytest.approx(want[name]["contribution"], abs=1e-12)


def test_chunked_and_single_row_explanations_agree(cox, data, monkeypatch):
    X_test = data[1].head(30)
    whole = explain(cox, X_test, top=ALL)
    monkeypatch.setattr(explain_module, "_MAX_STACKED_ROWS", 50)  # a few patients per call
    chunked = explain(cox, X_test, top=ALL)
    for a, b in zip(whole, chunked, strict=True):
        assert_same(a, b)
    for i in (0, 17, 29):
        assert_same(explain(cox, X_test.iloc[[i]], top=ALL)[0], whole[i])


def test_bone_metastasis_at_enrollment_gets_no_explanation(cox, data):
    rows = data[1].head(3).copy().set_axis([10, 11, 12])
    rows["bone_metastasis_at_enrollment"] = [0.0, 1.0, 0.0]
    out = explain(cox, rows, top=ALL)
    assert [len(e) > 0 for e in out] == [True, False, True]
    assert_same(out[2], explain(cox, rows.iloc[[2]], top=ALL)[0])
    assert [len(e) for e in explain(cox, rows)] == [5, 0, 5]
    assert explain(cox, rows.iloc[[1]]) == [[]]
    assert explain(cox, rows.iloc[[]]) == []


@pytest.mark.parametrize("top", [0, -1, 2.5, True])
def test_top_must_be_a_positive_integer(cox, data, top):
    with pytest.raises(ValueError, match="top"):
        explain(cox, data[1].head(1), top=top)


def test_clinical_only_model_has_no_marker_entry(data):
    X_train, X_test, y_train, _ = data
    model = fit_risk_model("cox_ridge", {}, TrainConfig(), X_train, y_train, include_marker=False)
    for entries in explain(model, X_test.head(5), top=ALL):
        assert "oc_positive_percent" not in by_input(entries)
