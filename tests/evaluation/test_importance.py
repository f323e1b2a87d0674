"""Feature importance of a fitted family: coefficients, or scikit-learn's permutation importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.models.data import competing_data
from training.evaluation.importance import feature_importance
from training.models.catalog import FAMILIES

FEATURES = ["x_bone", "x_death", "x_noise"]


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request):
    """Each family with its default configuration, fitted once on the same data."""
    X, y = competing_data(1500, seed=0)
    return request.param, FAMILIES[request.param].make({}).fit(X, y)


def test_feature_importance_ranks_the_driving_covariate_first(fitted):
    name, model = fitted
    X, y = competing_data(800, seed=11)  # held out
    imp = feature_importance(model, X, y, FEATURES, n_repeats=2, seed=0)
    assert isinstance(imp, pd.Series) and sorted(imp.index) == sorted(FEATURES)
    assert imp.index[0] == "x_bone"
    assert np.all(np.diff(np.abs(imp.to_numpy())) <= 0)
    linear = name in (
        "cox_ridge",
        "cox_elasticnet",
        "logistic_ipcw",
        "cox_spline",
        "logistic_ipcw_spline",
    )
    assert imp.name == ("coefficient" if linear else "harrell_c_drop")
    if linear:
        assert imp["x_bone"] > 0  # a harmful covariate has a positive coefficient
