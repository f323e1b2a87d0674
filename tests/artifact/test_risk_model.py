"""The served RiskModel's fast path gives exactly what the scikit-learn path gives.

The serving hot path skips scikit-learn's per-call machinery (features by
``transform_rows``, Cox linear predictors as ``X @ coef - offset``, logistic probabilities as
``expit``) and takes column arrays instead of a DataFrame; every shortcut is checked here
against the library's own answer, for every family.
"""

from __future__ import annotations

import numpy as np
import pytest

from features.transformers import transform_rows
from tests.models.data import training_rows
from training.config import TrainConfig
from training.fitting.family_run import fit_risk_model
from training.models.catalog import FAMILIES
from training.models.competing import DAYS_PER_MONTH

HORIZONS = (12, 24, 36, 60)


@pytest.fixture(scope="module")
def fitted():
    X, y, rows = training_rows(500, seed=21)
    models = {
        name: fit_risk_model(name, FAMILIES[name].grid[0], TrainConfig(), X, y) for name in FAMILIES
    }
    models["clinical_only"] = fit_risk_model(
        "cox_ridge", {}, TrainConfig(), X, y, include_marker=False
    )
    return models, rows


@pytest.mark.parametrize("family", list(FAMILIES))
def test_fast_path_equals_the_library_path(fitted, family):
    models, rows = fitted
    model = models[family]
    pipe = model.pipeline
    features = pipe[:-1].transform(rows)
    np.testing.assert_array_equal(transform_rows(pipe[:-1], rows), features)
    times = np.asarray(HORIZONS, dtype=float) * DAYS_PER_MONTH
    expected_score = pipe[-1].predict(features)
    expected_cif = pipe[-1].predict_cumulative_incidence(features, times)
    score, cif = model.predict_arrays(rows, HORIZONS)
    np.testing.assert_allclose(score, expected_score, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cif, np.maximum.accumulate(expected_cif, axis=1), atol=1e-12)
    estimator = pipe[-1]
    if hasattr(estimator, "models_") and estimator.base in ("coxph", "coxnet"):
        for code, m in estimator.models_.items():
            np.testing.assert_allclose(
                estimator._fast_linear_predictor(code, features), m.predict(features), atol=1e-10
            )


@pytest.mark.parametrize("family", ["cox_ridge", "logistic_ipcw", "rsf"])
def test_column_arrays_answer_as_the_frame(fitted, family):
    models, rows = fitted
    model = models[family]
    subset = rows.iloc[:40].reset_index(drop=True)
    columns = {c: subset[c].to_numpy() for c in subset.columns}
    a = model.predict_batch(subset, HORIZONS)
    b = model.predict_batch(columns, HORIZONS)
    np.testing.assert_array_equal(a.risk_score, b.risk_score)
    np.testing.assert_array_equal(a.probability, b.probability)
    assert a.warnings == b.warnings and list(a.risk_group) == list(b.risk_group)
    one = {c: v[:1] for c, v in columns.items()}
    # One row or forty: the same answer up to the rounding of a matrix product.
    np.testing.assert_allclose(
        model.predict_batch(one, HORIZONS).probability, b.probability[:1], rtol=1e-12
    )


@pytest.mark.parametrize("family", ["cox_ridge", "logistic_ipcw"])
def test_horizons_in_any_order_give_the_same_probabilities(fitted, family):
    models, rows = fitted
    model = models[family]
    _, ordered = model.predict_arrays(rows, [6, 12, 24, 60])
    _, shuffled = model.predict_arrays(rows, [60, 6, 24, 12])
    np.testing.assert_array_equal(shuffled, ordered[:, [3, 0, 2, 1]])
    _, single = model.predict_arrays(rows, [12])
    np.testing.assert_allclose(single[:, 0], ordered[:, 1], atol=1e-15)


def test_clinical_only_model_says_the_marker_is_ignored(fitted):
    models, rows = fitted
    some = rows.iloc[:30].reset_index(drop=True)
    given = ~some["oc_positive_percent"].isna().to_numpy()
    assert given.any() and not given.all()
    warnings = models["clinical_only"].warnings_for(some, HORIZONS)
    for i in range(len(some)):
        ignored = any(w.startswith("oc_positive_percent ignored") for w in warnings[i])
        assert ignored == bool(given[i])
    marker_model = models["cox_ridge"].warnings_for(some, HORIZONS)
    assert not any("ignored" in w for ws in marker_model for w in ws)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_batch_carries_the_competing_death_for_every_family(fitted, family):
    # Contract 1.1: death_probability beside bone metastasis, NaN where there is no score.
    models, rows = fitted
    model = models[family]
    batch = model.predict_batch(rows, HORIZONS)
    free = ~np.isnan(batch.risk_score)
    death = batch.death_probability
    assert death is not None and death.shape == batch.probability.shape
    assert np.isnan(death[~free]).all() and not np.isnan(death[free]).any()
    assert np.all(death[free] >= 0) and np.all(np.diff(death[free], axis=1) >= 0)
    assert np.all(batch.probability[free] + death[free] <= 1 + 1e-12)
    frame = batch.frame()
    np.testing.assert_array_equal(frame["p_death_36m"].to_numpy(), death[:, 2])
    features = model.pipeline[:-1].transform(rows[free])
    times = np.asarray(HORIZONS, dtype=float) * DAYS_PER_MONTH
    _, expected = model.estimator.predict_incidences(features, times)
    np.testing.assert_allclose(death[free], expected, atol=1e-12)


def test_model_without_death_classifiers_says_death_is_not_available(fitted):
    # An IPCW model pickled before contract 1.1 has no death classifiers: it still answers
    # bone metastasis, leaves death out and says why.
    import copy

    models, rows = fitted
    old = copy.deepcopy(models["logistic_ipcw"])
    del old.estimator.death_classifiers_
    batch = old.predict_batch(rows.iloc[:5].reset_index(drop=True), HORIZONS)
    assert batch.death_probability is None
    assert "p_death_12m" not in batch.frame().columns
    assert any("death_probability not available" in w for w in batch.warnings[0])
    np.testing.assert_array_equal(
        batch.probability,
        models["logistic_ipcw"].predict_batch(rows.iloc[:5].reset_index(drop=True)).probability,
    )
