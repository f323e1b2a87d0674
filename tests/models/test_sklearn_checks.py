"""scikit-learn's estimator checks on every family wrapper, and the fit-based ones again with the
structured competing-risks target.

scikit-learn's checks (``sklearn.utils.estimator_checks``) generate their own numeric ``y``
(class labels or regression values). The family wrappers are survival estimators: ``fit`` takes
only the structured target of :func:`training.models.competing.make_target` (cause and time)
and refuses anything else with a ``TypeError`` before it looks at ``X``. So every check that
fits runs into that refusal and is listed in :data:`NEEDS_A_NUMERIC_Y` (run, expected to fail,
strictly: a listed check that starts passing fails the test); the checks that do not fit (cloning,
parameters, tags, repr, unfitted refusal) run as they are. The properties behind the fit-based
checks that apply to these estimators are tested below with a structured target, each naming the
scikit-learn check it stands for.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from tests.models.data import competing_data, pickled
from training.models.bases import base_params
from training.models.catalog import FAMILIES, Family
from training.models.cause_specific import CauseSpecificHazards
from training.models.competing import DAYS_PER_MONTH
from training.models.ensemble import StackedEnsemble

TIMES = np.array([6, 12, 24, 36]) * DAYS_PER_MONTH


def _small(family: Family):
    """The family's estimator in its first configuration, tree ensembles cut to a few trees (and
    an ensemble's members likewise) so that each fits in about a second on 300 rows."""
    estimator = family.make(family.grid[0])
    if isinstance(estimator, StackedEnsemble):
        members = tuple((name, _small(FAMILIES[name])) for name, _ in estimator.members)
        return estimator.set_params(members=members)
    if isinstance(estimator, CauseSpecificHazards):
        if "n_estimators" in base_params(estimator.base, estimator.params):
            return family.make({**family.grid[0], "n_estimators": 5})
        return estimator
    if "n_estimators" in estimator.get_params():
        estimator.set_params(n_estimators=10)
    return estimator


def _distinct_families() -> list[tuple[str, Family]]:
    """Every family of the catalog (swept, not listed: a new family cannot skip these checks),
    once per estimator: a flexible variant shares its base family's estimator and grid."""
    distinct: dict = {}
    for name, family in FAMILIES.items():
        distinct.setdefault((family.make, repr(family.grid[0])), (name, family))
    return list(distinct.values())


FAMILY_IDS = [name for name, _ in _distinct_families()]


def _wrappers():
    return [_small(family) for _, family in _distinct_families()]


_STRUCTURED_Y = "fits on a numeric y; the estimator takes only the structured target (TypeError)"
#: Checks that fit on scikit-learn's generated numeric ``y``, and where the property they guard is
#: tested with a structured target (or why it does not apply).
NEEDS_A_NUMERIC_Y = {
    "check_fit_score_takes_y": f"{_STRUCTURED_Y}; no score method",
    "check_estimators_overwrite_params": f"{_STRUCTURED_Y}; test_fit_returns_self_and_keeps_params",
    "check_dont_overwrite_parameters": f"{_STRUCTURED_Y}; test_fit_returns_self_and_keeps_params",
    "check_estimators_fit_returns_self": f"{_STRUCTURED_Y}; test_fit_returns_self_and_keeps_params",
    "check_readonly_memmap_input": f"{_STRUCTURED_Y}; test_read_only_and_fortran_ordered_inputs",
    "check_n_features_in_after_fitting": f"{_STRUCTURED_Y}; test_n_features_in",
    "check_n_features_in": f"{_STRUCTURED_Y}; test_n_features_in",
    "check_positive_only_tag_during_fit": _STRUCTURED_Y,
    "check_estimators_dtypes": f"{_STRUCTURED_Y}; X is the feature pipeline's float64 matrix",
    "check_complex_data": f"{_STRUCTURED_Y}; X is the feature pipeline's float64 matrix",
    "check_dtype_object": f"{_STRUCTURED_Y}; X is the feature pipeline's float64 matrix",
    "check_estimators_empty_data_messages": f"{_STRUCTURED_Y}; test_empty_or_one_dimensional_X",
    "check_pipeline_consistency": f"{_STRUCTURED_Y}; the served pipeline is tested in "
    "tests/artifact/test_risk_model.py",
    "check_estimators_nan_inf": f"{_STRUCTURED_Y}; the feature pipeline imputes before the "
    "family, and XGBoost reads NaN as missing by design",
    "check_estimator_sparse_tag": f"{_STRUCTURED_Y}; X is dense (the feature pipeline's output)",
    "check_estimator_sparse_array": f"{_STRUCTURED_Y}; X is dense (the feature pipeline's output)",
    "check_estimator_sparse_matrix": f"{_STRUCTURED_Y}; X is dense (the feature pipeline's output)",
    "check_estimators_pickle": f"{_STRUCTURED_Y}; test_pickle_round_trip",
    "check_f_contiguous_array_estimator": f"{_STRUCTURED_Y}; "
    "test_read_only_and_fortran_ordered_inputs",
    "check_methods_sample_order_invariance": f"{_STRUCTURED_Y}; test_rows_are_predicted_alone",
    "check_methods_subset_invariance": f"{_STRUCTURED_Y}; test_rows_are_predicted_alone",
    "check_fit2d_1sample": f"{_STRUCTURED_Y}; one patient cannot hold both causes",
    "check_fit2d_1feature": f"{_STRUCTURED_Y}; test_n_features_in fits one feature",
    "check_dict_unchanged": f"{_STRUCTURED_Y}; test_fit_returns_self_and_keeps_params",
    "check_fit_idempotent": f"{_STRUCTURED_Y}; test_fit_is_idempotent",
    "check_fit_check_is_fitted": f"{_STRUCTURED_Y}; test_fit_returns_self_and_keeps_params",
    "check_fit1d": f"{_STRUCTURED_Y}; test_empty_or_one_dimensional_X",
    "check_fit2d_predict1d": f"{_STRUCTURED_Y}; predict takes the 2-D matrix of the served "
    "pipeline (the fast path skips per-call validation on purpose)",
}


@pytest.mark.parametrize("estimator", _wrappers(), ids=FAMILY_IDS)
def test_sklearn_estimator_checks(estimator):
    # check_estimator rather than parametrize_with_checks: the latter hands pytest a generator,
    # which pytest deprecates (an error under this suite's warning filters).
    results = check_estimator(
        estimator, expected_failed_checks=NEEDS_A_NUMERIC_Y, on_fail=None, on_skip=None
    )
    status = {(r["check_name"], r["status"]) for r in results}
    assert not [name for name, s in status if s == "failed"]
    # Strict: a listed check that starts passing must leave the list.
    assert not [name for name, s in status if name in NEEDS_A_NUMERIC_Y and s != "xfail"]
    ran = {name for name, s in status if s == "passed"}
    assert {"check_estimator_cloneable", "check_get_params_invariance", "check_set_params"} <= ran
    assert {"check_no_attributes_set_in_init", "check_estimators_unfitted"} <= ran


# -- the fit-based checks with a structured target --------------------------------------------


@pytest.fixture(scope="module")
def data():
    return competing_data(300, seed=4)


@pytest.fixture(scope="module", params=_wrappers(), ids=FAMILY_IDS)
def fitted(request, data):
    """(unfitted, fitted) per wrapper: the fitted one is a clone, fitted once."""
    X, y = data
    return request.param, clone(request.param).fit(X, y)


def _predictions(model, X):
    return model.predict(X), model.predict_cumulative_incidence(X, TIMES)


def test_fit_returns_self_and_keeps_params(data):
    # check_estimators_fit_returns_self, check_estimators_overwrite_params,
    # check_dont_overwrite_parameters, check_dict_unchanged, check_fit_check_is_fitted
    from sklearn.utils.validation import check_is_fitted

    X, y = data
    for estimator in _wrappers():
        before = pickled(estimator.get_params())
        public = {k for k in vars(estimator) if not k.endswith("_")}
        assert estimator.fit(X, y) is estimator
        check_is_fitted(estimator)
        assert pickled(estimator.get_params()) == before
        assert {k for k in vars(estimator) if not k.endswith("_")} == public
        state = pickled(vars(estimator))
        _predictions(estimator, X[:10])
        assert pickled(vars(estimator)) == state


def test_n_features_in(data):
    # check_n_features_in, check_n_features_in_after_fitting, check_fit2d_1feature
    X, y = data
    for estimator in _wrappers():
        with warnings.catch_warnings():
            # The elastic net may shrink one weak feature to zero along its whole path; the
            # check is about the feature count, not the fit.
            warnings.filterwarnings("ignore", "all coefficients are zero", UserWarning)
            one = clone(estimator).fit(X[:, :1], y)
        assert one.n_features_in_ == 1
        assert one.predict_cumulative_incidence(X[:5, :1], TIMES).shape == (5, TIMES.size)
    with pytest.raises(ValueError, match="X must be 2-D with 3 features, got shape"):
        CauseSpecificHazards().fit(X, y).predict(X[:, :2])


def test_fit_is_idempotent(fitted, data):
    # check_fit_idempotent
    estimator, model = fitted
    X, y = data
    again = clone(estimator).fit(X, y)
    for a, b in zip(_predictions(model, X), _predictions(again, X), strict=True):
        np.testing.assert_array_equal(a, b)


def test_rows_are_predicted_alone(fitted, data):
    # check_methods_sample_order_invariance, check_methods_subset_invariance
    _, model = fitted
    X, _ = data
    order = np.random.default_rng(0).permutation(len(X))
    for whole, shuffled in zip(_predictions(model, X), _predictions(model, X[order]), strict=True):
        np.testing.assert_allclose(whole[order], shuffled, rtol=1e-12, atol=1e-12)
    for whole, part in zip(_predictions(model, X), _predictions(model, X[:7]), strict=True):
        np.testing.assert_allclose(whole[:7], part, rtol=1e-12, atol=1e-12)


def test_read_only_and_fortran_ordered_inputs(fitted, data):
    # check_readonly_memmap_input, check_f_contiguous_array_estimator
    estimator, model = fitted
    X, y = data
    frozen = np.asfortranarray(X)
    frozen.setflags(write=False)
    y_frozen = y.copy()
    y_frozen.setflags(write=False)
    other = clone(estimator).fit(frozen, y_frozen)
    for a, b in zip(_predictions(model, X), _predictions(other, frozen), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_pickle_round_trip(fitted, data):
    # check_estimators_pickle
    import joblib

    _, model = fitted
    X, _ = data
    again = joblib.load(__import__("io").BytesIO(pickled(model)))
    for a, b in zip(_predictions(model, X), _predictions(again, X), strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_or_one_dimensional_X(data):
    # check_estimators_empty_data_messages, check_fit1d
    X, y = data
    for estimator in _wrappers():
        with pytest.raises(ValueError):
            clone(estimator).fit(X[:0], y[:0])
        with pytest.raises(ValueError):
            clone(estimator).fit(X[:, 0], y)
