"""scikit-learn's estimator checks on every feature builder, and their contract-row equivalents.

The builders follow scikit-learn's API (``__init__`` stores its arguments, ``fit`` returns
self, learned attributes end in ``_``, ``get_feature_names_out``), and the API-level checks of
:func:`sklearn.utils.estimator_checks.check_estimator` run on each of them unchanged
(``check_estimator`` rather than ``parametrize_with_checks``, which hands pytest a generator,
deprecated in pytest and an error under this suite's warnings-as-errors).

The data-level checks cannot: they pass unnamed numpy arrays (random floats, sparse matrices,
one-column arrays, complex numbers), while a builder reads *named contract columns* of typed
rows (a DataFrame or a mapping of column arrays; categories are text such as ``"positive"``)
and rejects anything else with a TypeError that names what it expects. Those checks are listed
in :data:`NEED_CONTRACT_ROWS` with the reason; the properties they guard are checked below on
real contract rows instead (fit returns self, idempotent fit, clone, pickle, row-order and
subset invariance, input left unchanged, unfitted use refused, names of the output).
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator

from features.contract import validate_cohort
from features.landmark import landmark_dataset
from features.simulate import simulate_cohort
from features.transformers import (
    ClinicalFeatures,
    FlexibleFeatures,
    MarkerFeatures,
    TrajectoryFeatures,
)

BUILDERS = [MarkerFeatures(), ClinicalFeatures(), TrajectoryFeatures(), FlexibleFeatures(max_df=4)]

_ARRAYS = (
    "the check passes an unnamed numpy array; the builder reads named contract columns and "
    "refuses other input with a TypeError naming what it expects"
)
#: Generic checks that need input a builder does not take, each with why. Every other check
#: of scikit-learn's list runs and must pass.
NEED_CONTRACT_ROWS = {
    "check_fit_score_takes_y": _ARRAYS,
    "check_estimators_overwrite_params": _ARRAYS + " (checked below: parameters unchanged)",
    "check_dont_overwrite_parameters": _ARRAYS + " (checked below: parameters unchanged)",
    "check_estimators_fit_returns_self": _ARRAYS + " (checked below)",
    "check_readonly_memmap_input": _ARRAYS,
    "check_n_features_in_after_fitting": _ARRAYS + " (checked below: n_features_in_)",
    "check_positive_only_tag_during_fit": _ARRAYS,
    "check_estimators_dtypes": _ARRAYS + "; contract rows are float64 or text by the contract",
    "check_complex_data": _ARRAYS + "; complex values never pass the contract",
    "check_dtype_object": _ARRAYS + "; text columns are read by name as categories",
    "check_estimators_empty_data_messages": (
        "an empty array has no named columns: the builder says the columns are missing "
        "(KeyError naming them, checked below) rather than ValueError"
    ),
    "check_pipeline_consistency": _ARRAYS + " (checked below: clone and refit agree)",
    "check_estimators_nan_inf": (
        "NaN is a missing contract value by design (each builder adds a missing-value "
        "indicator and the pipeline imputes); the contract rejects infinity before any builder"
    ),
    "check_estimator_sparse_tag": "contract rows are dense tables, never sparse matrices",
    "check_estimator_sparse_array": "contract rows are dense tables, never sparse matrices",
    "check_estimator_sparse_matrix": "contract rows are dense tables, never sparse matrices",
    "check_estimators_pickle": _ARRAYS + " (checked below: pickle round trip)",
    "check_f_contiguous_array_estimator": _ARRAYS,
    "check_transformer_data_not_an_array": _ARRAYS,
    "check_transformer_general": _ARRAYS + " (checked below: fit idempotent, shapes)",
    "check_transformer_preserve_dtypes": _ARRAYS + "; the output is float64 by design",
    "check_methods_sample_order_invariance": _ARRAYS + " (checked below)",
    "check_methods_subset_invariance": _ARRAYS + " (checked below)",
    "check_fit2d_1sample": _ARRAYS,
    "check_fit2d_1feature": _ARRAYS + "; a builder needs all its contract columns",
    "check_dict_unchanged": _ARRAYS + " (checked below: transform leaves the builder as it is)",
    "check_fit_idempotent": _ARRAYS + " (checked below)",
    "check_fit_check_is_fitted": _ARRAYS + " (checked below: unfitted use refused)",
    "check_n_features_in": _ARRAYS + " (checked below: n_features_in_)",
    "check_fit1d": _ARRAYS,
    "check_fit2d_predict1d": _ARRAYS,
}


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: type(b).__name__)
def test_sklearn_estimator_checks(builder):
    results = check_estimator(
        builder, expected_failed_checks=NEED_CONTRACT_ROWS, on_fail=None, on_skip=None
    )
    status = {r["check_name"]: r["status"] for r in results}
    unexpected = {
        name: f"{type(r['exception']).__name__}: {r['exception']}"
        for r in results
        if r["status"] == "failed"
        for name in [r["check_name"]]
    }
    assert not unexpected, unexpected
    # Every listed check still fails (a stale entry would hide a check that now runs).
    assert {name for name, s in status.items() if s == "xfail"} == set(NEED_CONTRACT_ROWS)
    # Array API input: contract rows are tables, not array-API arrays (the check also needs
    # SCIPY_ARRAY_API set); it skips itself.
    assert {name for name, s in status.items() if s == "skipped"} <= {"check_array_api_input"}
    assert sum(s == "passed" for s in status.values()) >= 13


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    sim = simulate_cohort(300, seed=5)
    cohort = validate_cohort(sim.patients, sim.measurements)
    return landmark_dataset(cohort.patients, cohort.measurements, 180.0)


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: type(b).__name__)
def test_builder_on_contract_rows(builder, rows):
    params = builder.get_params()
    est = clone(builder)
    with pytest.raises(NotFittedError):
        est.transform(rows)
    before = rows.copy()
    assert est.fit(rows) is est
    assert est.get_params() == params  # fit leaves the parameters alone
    out = est.transform(rows)
    pd.testing.assert_frame_equal(rows, before)  # the input is not modified
    state = {k: v for k, v in vars(est).items()}
    again = est.transform(rows)
    assert vars(est).keys() == state.keys()  # transform does not change the builder
    np.testing.assert_array_equal(out, again)
    assert out.dtype == np.float64 and out.shape[0] == len(rows)
    assert len(est.get_feature_names_out()) == out.shape[1]
    assert est.n_features_in_ <= len(type(est).columns_in)

    refit = clone(builder).fit(rows)  # idempotent, and a clone fits alike
    np.testing.assert_array_equal(refit.transform(rows), out)
    np.testing.assert_array_equal(est.fit(rows).transform(rows), out)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(rows), out)

    order = np.random.default_rng(0).permutation(len(rows))
    shuffled = rows.iloc[order].reset_index(drop=True)
    np.testing.assert_array_equal(est.transform(shuffled), out[order])  # row order
    np.testing.assert_array_equal(est.transform(rows.iloc[:7]), out[:7])  # subsets
    columns = {c: rows[c].to_numpy() for c in rows.columns}
    np.testing.assert_array_equal(est.transform(columns), out)  # mapping of column arrays


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: type(b).__name__)
def test_builder_names_missing_columns(builder, rows):
    first = type(builder).columns_in[0]
    with pytest.raises(KeyError, match=f"{type(builder).__name__}: input lacks .*{first}"):
        clone(builder).fit(rows.drop(columns=[first]))
    with pytest.raises(TypeError, match="expects a pandas DataFrame or a mapping"):
        clone(builder).fit(rows.to_numpy())


def test_flexible_features_pickled_before_the_floor_was_a_parameter_keep_0_0005(rows):
    est = FlexibleFeatures(max_df=4).fit(rows)
    state = est.__getstate__()
    del state["floor_percent"]
    old = FlexibleFeatures.__new__(FlexibleFeatures)
    old.__setstate__(state)
    assert old.floor_percent == 0.0005
    assert old.get_params()["floor_percent"] == 0.0005
