"""Every model family of the registry: valid incidences, round trips, reference estimates."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

from tests.models.data import competing_data, pickled
from training.models.bases import BASES
from training.models.catalog import FAMILIES
from training.models.cause_specific import CauseSpecificHazards
from training.models.competing import DAYS_PER_MONTH
from training.models.ipcw import IPCWHorizonBase
from training.models.names import DEFAULT_FAMILIES, FAMILY_NAMES, OPTIONAL_FAMILIES

HORIZONS_DAYS = np.array([12, 24, 36, 60]) * DAYS_PER_MONTH
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request, data):
    """Each family with its default configuration, fitted once on the same data."""
    X, y = data
    return request.param, FAMILIES[request.param].make({}).fit(X, y)


# -- every family ---------------------------------------------------------------------------


def test_incidence_is_monotone_bounded_and_zero_at_enrollment(fitted, data):
    _, model = fitted
    X, _ = data
    t = np.concatenate([[0.0], np.linspace(1, 2600, 60), [5000.0]])
    cif = model.predict_cumulative_incidence(X[:300], t)
    assert cif.shape == (300, t.size)
    assert np.all(np.diff(cif, axis=1) >= -1e-12)
    assert np.all((cif >= 0) & (cif <= 1))
    assert np.all(cif[:, 0] == 0)
    assert np.all(np.isfinite(model.predict(X[:300])))


def test_pickle_round_trip_gives_identical_predictions(fitted, data):
    name, model = fitted
    X, _ = data
    blob = pickled(model)
    again = joblib.load(io.BytesIO(blob))
    assert np.array_equal(again.predict(X), model.predict(X))
    assert np.array_equal(
        again.predict_cumulative_incidence(X, HORIZONS_DAYS),
        model.predict_cumulative_incidence(X, HORIZONS_DAYS),
    )
    for a, b in zip(
        again.predict_incidences(X, HORIZONS_DAYS),
        model.predict_incidences(X, HORIZONS_DAYS),
        strict=True,
    ):
        assert np.array_equal(a, b)
    # 1,500 training rows: the largest, rsf (2 x 50 trees, 83 monthly times), is about 9 MB;
    # xgb_ipcw (2 x 4 classifiers of 150 trees: bone metastasis and death) about 1.1 MB; the
    # others are under 1 MB (the stacked ensemble holds an rsf member).
    limit = {"rsf": 15e6, "stacked_ensemble": 15e6, "xgb_ipcw": 2e6}.get(name, 1e6)
    assert len(blob) < limit, f"{name} pickles to {len(blob) / 1e6:.1f} MB"


def test_death_incidence_is_monotone_bounded_and_leaves_room_for_bone_metastasis(fitted, data):
    # Contract 1.1: death_probability non-decreasing, in [0, 1], bone metastasis + death <= 1,
    # and the bone-metastasis incidence the same as predict_cumulative_incidence's.
    _, model = fitted
    X, _ = data
    t = np.concatenate([[0.0], np.linspace(1, 2600, 60), [5000.0]])
    cif_bm, cif_death = model.predict_incidences(X[:300], t)
    np.testing.assert_array_equal(cif_bm, model.predict_cumulative_incidence(X[:300], t))
    assert cif_death.shape == (300, t.size)
    assert np.all(np.diff(cif_death, axis=1) >= -1e-12)
    assert np.all((cif_death >= 0) & (cif_death <= 1))
    assert np.all(cif_death[:, 0] == 0)
    assert np.all(cif_bm + cif_death <= 1 + 1e-12)
    assert cif_death[:, -1].mean() > 0.1  # deaths happen (about a third of the cohort)


def test_death_incidence_rises_with_the_death_covariate_only(fitted):
    _, model = fitted
    grid = np.zeros((3, 3))
    grid[:, 1] = [-1.5, 0.0, 1.5]  # x_death
    _, death = model.predict_incidences(grid, [36 * DAYS_PER_MONTH])
    assert death[0, 0] < death[1, 0] < death[2, 0]
    noise = np.zeros((2, 3))
    noise[:, 2] = [-1.5, 1.5]  # x_noise drives neither cause
    _, death = model.predict_incidences(noise, [36 * DAYS_PER_MONTH])
    assert abs(death[1, 0] - death[0, 0]) < 0.05


def test_mean_death_incidence_matches_aalen_johansen(fitted, data):
    # The average of the patients' incidences of death against the nonparametric estimate.
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    _, model = fitted
    X, y = data
    times, cif = cumulative_incidence_competing_risks(y["cause"].astype(int), y["time"])
    idx = np.searchsorted(times, HORIZONS_DAYS, side="right") - 1
    _, death = model.predict_incidences(X, HORIZONS_DAYS)
    np.testing.assert_allclose(death.mean(axis=0), cif[2][idx], atol=0.02)


def test_ipcw_death_is_capped_to_leave_room_for_bone_metastasis():
    # Both classifiers say "certain" (constant labels at every horizon would make the death
    # classifier the weighted proportion): with bone metastasis near 1 by the last horizon,
    # death is held at one minus it and still never decreases.
    model = FAMILIES["logistic_ipcw"].make({})
    X, y = competing_data(600, seed=3)
    model.fit(X, y)
    model.death_classifiers_ = [0.2, 0.5, 0.9, 0.95]
    extreme = np.zeros((1, 3))
    extreme[0, 0] = 30.0  # bone metastasis probability about 1 at every horizon
    bm, death = model.predict_incidences(extreme, HORIZONS_DAYS)
    assert bm[0, -1] > 0.99
    assert np.all(bm + death <= 1 + 1e-12)
    assert np.all(np.diff(death, axis=1) >= 0)


def test_risk_and_incidence_rise_with_the_bone_metastasis_covariate(fitted):
    _, model = fitted
    X = np.array([[-1.5, 0.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    score = model.predict(X)
    cif = model.predict_cumulative_incidence(X, [24 * DAYS_PER_MONTH])[:, 0]
    assert score[0] < score[1] < score[2]
    assert cif[0] < cif[1] < cif[2]


def _params(value):
    """Parameters with nested estimators (the ensemble's members) as (type, their params)."""
    if isinstance(value, BaseEstimator):
        return type(value), {k: _params(v) for k, v in value.get_params(deep=False).items()}
    if isinstance(value, tuple | list):
        return type(value)(_params(v) for v in value)
    return value


def test_estimators_are_sklearn_compatible(fitted):
    name, model = fitted
    fresh = clone(model)
    assert _params(fresh) == _params(model)
    assert not [k for k in vars(fresh) if k.endswith("_")], "__init__ must only store params"
    family = FAMILIES[name]
    assert family.kind == ("classifier" if isinstance(model, IPCWHorizonBase) else "survival")


# -- registry -------------------------------------------------------------------------------


def test_registry_defines_one_estimator_per_family_name():
    # The names are defined once (training.models.names, read by training.config); the
    # registry builds one family per name, no more.
    assert sorted(FAMILIES) == sorted(FAMILY_NAMES)
    assert len(set(FAMILY_NAMES)) == len(FAMILY_NAMES)
    assert FAMILY_NAMES == DEFAULT_FAMILIES + OPTIONAL_FAMILIES
    assert OPTIONAL_FAMILIES == ("stacked_ensemble",)


def test_listing_the_family_names_imports_no_estimator():
    # The command line's help reads the names through training.config: no scikit-learn,
    # scikit-survival, XGBoost or estimator module may be imported for it.
    code = (
        "import sys, training.config as c; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('sklearn', 'sksurv', 'xgboost') or m.startswith('training.models.') "
        "and m != 'training.models.names'); "
        "print(heavy); assert not heavy and c.FAMILY_NAMES"
    )
    # Run from the project root: "-c" puts the current folder first on the import path.
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_registry_holds_every_family_with_bounded_grids():
    assert {n for n, f in FAMILIES.items() if f.flexible} == {
        "cox_spline",
        "logistic_ipcw_spline",
        "stacked_ensemble",
    }
    for name, family in FAMILIES.items():
        assert family.name == name and family.description
        assert family.kind in ("survival", "classifier")
        assert 1 <= len(family.grid) <= 4
        for params in family.grid:
            estimator = family.make(params)
            got = estimator.get_params()
            inner = got["params"] if isinstance(estimator, CauseSpecificHazards) else got
            assert {k: inner[k] for k in params} == params


def test_family_params_reach_the_wrapper_and_refuse_threads():
    model = FAMILIES["rsf"].make({"min_samples_leaf": 20, "time_grid_days": 14.0})
    assert model.time_grid_days == 14.0 and model.params == {"min_samples_leaf": 20}
    X, y = competing_data(200, seed=1)
    with pytest.raises(ValueError, match="n_jobs=2 is not allowed"):
        FAMILIES["xgb_cox"].make({"n_jobs": 2}).fit(X, y)
    with pytest.raises(ValueError, match="unknown base 'svm'"):
        CauseSpecificHazards(base="svm").fit(X, y)
    y_no_bm = y.copy()
    y_no_bm["cause"][y_no_bm["cause"] == 1] = 0
    with pytest.raises(ValueError, match="no bone_metastasis events in the training data"):
        CauseSpecificHazards().fit(X, y_no_bm)


def test_every_base_is_reachable_from_a_family():
    bases = {
        FAMILIES[n].make({}).base
        for n in FAMILIES
        if isinstance(FAMILIES[n].make({}), CauseSpecificHazards)
    }
    assert bases == set(BASES)
