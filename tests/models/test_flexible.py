"""Flexible families: restricted cubic splines, pre-specified interactions, df bounded by events."""

from __future__ import annotations

import numpy as np
import pytest

from features.transformers import (
    INTERACTIONS,
    FlexibleFeatures,
    harrell_knots,
    make_feature_pipeline,
    rcs_basis,
    transform_rows,
)
from tests.models.data import training_rows
from training.fitting.search import EVENTS_PER_DF, fit_pipeline, flexible_df

KNOTS = np.array([1.0, 2.0, 4.0, 7.0])


@pytest.fixture(scope="module")
def rows():
    X, y, _ = training_rows(600, seed=4)
    return X, y


def test_rcs_terms_vanish_left_of_their_knot_and_are_linear_beyond_the_last():
    x = np.linspace(-2, 12, 1401)
    basis = rcs_basis(x, KNOTS)
    assert basis.shape == (len(x), 2)
    for j in range(2):
        assert np.all(basis[x <= KNOTS[j], j] == 0)
    beyond = basis[x >= KNOTS[-1]]
    second = np.diff(beyond, n=2, axis=0)
    assert np.abs(second).max() < 1e-9  # natural spline: linear in the right tail


def test_rcs_terms_have_continuous_second_derivatives():
    # A cubic spline is C2: second differences agree on both sides of every knot.
    h = 1e-4
    for t in KNOTS:
        left = rcs_basis(np.array([t - 2 * h, t - h, t]), KNOTS)
        right = rcs_basis(np.array([t, t + h, t + 2 * h]), KNOTS)
        d2_left = (left[2] - 2 * left[1] + left[0]) / h**2
        d2_right = (right[2] - 2 * right[1] + right[0]) / h**2
        np.testing.assert_allclose(d2_left, d2_right, atol=1e-2)


def test_rcs_term_by_hand():
    # f_1(5) = [(5-1)^3 - (5-4)^3 (7-1)/(7-4) + 0] / (7-1)^2 = (64 - 2) / 36
    assert rcs_basis(np.array([5.0]), KNOTS)[0, 0] == pytest.approx(62 / 36, rel=1e-12)


def test_knots_at_harrells_quantiles_of_the_observed_values():
    values = np.concatenate([np.arange(1, 101, dtype=float), [np.nan] * 30])
    np.testing.assert_allclose(
        harrell_knots(values, 4), np.quantile(np.arange(1, 101), [0.05, 0.35, 0.65, 0.95])
    )
    assert len(harrell_knots(np.ones(50), 3)) == 1  # ties: no spline possible


@pytest.mark.parametrize(
    ("max_df", "expected"),
    [
        (0, []),
        (1, ["oc_log2_percent:rcs1"]),
        (2, ["oc_log2_percent:rcs1", "oc_log2_percent:rcs2"]),
        (
            3,
            ["oc_log2_percent:rcs1", "oc_log2_percent:rcs2", "oc_log2_percent:x_metastatic"],
        ),
        (
            8,
            [
                "oc_log2_percent:rcs1",
                "oc_log2_percent:rcs2",
                "age_years:rcs1",
                "log_alp:rcs1",
                "ki67_percent:rcs1",
                "log_tumor_size_mm:rcs1",
                "oc_log2_percent:x_metastatic",
                "oc_log2_percent:x_bone_targeted_therapy",
            ],
        ),
    ],
)
def test_degrees_of_freedom_are_spent_in_order_of_priority(rows, max_df, expected):
    X, _ = rows
    flex = FlexibleFeatures(max_df=max_df).fit(X)
    assert list(flex.get_feature_names_out()) == expected
    assert flex.transform(X).shape == (len(X), len(expected))
    assert len(expected) <= max_df


def test_clinical_only_flexible_features_have_no_marker_terms(rows):
    X, _ = rows
    flex = FlexibleFeatures(max_df=8, include_marker=False).fit(X)
    names = list(flex.get_feature_names_out())
    assert names == [
        "age_years:rcs1",
        "log_alp:rcs1",
        "ki67_percent:rcs1",
        "log_tumor_size_mm:rcs1",
    ]
    # The clinical-only model may be given rows without the marker columns.
    clinical = X.drop(columns=["oc_positive_percent", "oc_positive_events", "pbmc_events"])
    np.testing.assert_array_equal(flex.transform(clinical), flex.transform(X))


def test_missing_inputs_take_the_spline_value_at_the_training_median(rows):
    X, _ = rows
    flex = FlexibleFeatures(max_df=8).fit(X)
    one = X.iloc[:1].copy()
    for column in ("oc_positive_percent", "oc_positive_events", "pbmc_events", "age_years"):
        one[column] = np.nan
    out = flex.transform(one)[0]
    names = list(flex.get_feature_names_out())
    age = rcs_basis(np.array([flex.medians_["age_years"]]), flex.knots_["age_years"])[0, 0]
    assert out[names.index("age_years:rcs1")] == pytest.approx(age)
    marker = rcs_basis(
        np.array([flex.medians_["oc_log2_percent"]]), flex.knots_["oc_log2_percent"]
    )[0]
    np.testing.assert_allclose(out[:2], marker)
    # Centred at the median: the interaction is 0 for a missing marker.
    assert out[names.index("oc_log2_percent:x_metastatic")] == 0.0


def test_interactions_are_the_centred_marker_times_the_modifier(rows):
    X, _ = rows
    flex = FlexibleFeatures(max_df=8).fit(X)
    out = flex.transform(X)
    names = list(flex.get_feature_names_out())
    centred = (
        np.log2(
            100
            * (X["oc_positive_events"].to_numpy(float) + 0.5)
            / (X["pbmc_events"].to_numpy(float) + 0.5)
        )
        - flex.medians_["oc_log2_percent"]
    )
    counts = np.isfinite(centred)
    metastatic = (X["disease_setting"] == "metastatic").to_numpy()
    treated = (X["bone_targeted_therapy"].to_numpy(object) != "none") & X[
        "bone_targeted_therapy"
    ].notna().to_numpy()
    np.testing.assert_allclose(
        out[counts, names.index("oc_log2_percent:x_metastatic")], (centred * metastatic)[counts]
    )
    np.testing.assert_allclose(
        out[counts, names.index("oc_log2_percent:x_bone_targeted_therapy")],
        (centred * treated)[counts],
    )
    assert len(INTERACTIONS) == 2 and all(reason for _, reason in INTERACTIONS)


def test_refuses_a_bad_budget(rows):
    X, _ = rows
    with pytest.raises(ValueError, match="max_df must be an integer >= 0, got -1"):
        FlexibleFeatures(max_df=-1).fit(X)
    with pytest.raises(ValueError, match="max_df must be an integer >= 0, got 2.5"):
        FlexibleFeatures(max_df=2.5).fit(X)


def test_budget_comes_from_the_events_of_the_fitted_rows(rows):
    X, y = rows
    events = int(np.sum(y["cause"] == 1))
    assert flexible_df(y) == events // EVENTS_PER_DF
    from training.models.catalog import FAMILIES

    pipe = fit_pipeline(FAMILIES["cox_spline"].make, {}, X, y, True, flexible=True)
    union = pipe[0]["union"]
    flex = dict(union.transformer_list)["flexible"]
    assert flex.max_df == events // EVENTS_PER_DF
    added = [n for n in pipe[0].get_feature_names_out() if ":" in n]
    assert 0 < len(added) <= flex.max_df
    # Fewer rows, fewer events, fewer added terms.
    half = fit_pipeline(FAMILIES["cox_spline"].make, {}, X.iloc[:200], y[:200], True, flexible=True)
    assert dict(half[0]["union"].transformer_list)["flexible"].max_df < flex.max_df


def test_fast_feature_path_equals_the_library_path(rows):
    X, y = rows
    pipe = make_feature_pipeline(flexible_df=8).fit(X, y)
    np.testing.assert_array_equal(transform_rows(pipe, X), pipe.transform(X))
    columns = {c: X[c].to_numpy() for c in X.columns}
    np.testing.assert_allclose(transform_rows(pipe, columns), pipe.transform(X), rtol=0, atol=0)
