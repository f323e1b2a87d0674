"""IPCW classifiers and the one "status known at the horizon" step."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

from tests.models.data import aalen_johansen, competing_data
from training.models.catalog import FAMILIES
from training.models.competing import (
    BONE_METASTASIS,
    DAYS_PER_MONTH,
    DEATH,
    censoring_survival,
    ipcw_labels,
    make_target,
)
from training.models.ipcw import (
    IPCWHorizonBase,
    IPCWHorizonClassifier,
    XGBIPCWClassifier,
    status_at_horizon,
)

HORIZONS_DAYS = np.array([12, 24, 36, 60]) * DAYS_PER_MONTH


# -- classifiers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic_ipcw", "xgb_ipcw"])
def test_classifier_without_covariates_reproduces_aalen_johansen(name):
    _, y = competing_data(4000, seed=2)
    X = np.zeros((len(y), 1))
    params = {"C": 1e6} if name == "logistic_ipcw" else {}
    model = FAMILIES[name].make(params).fit(X, y)
    p = model.predict_cumulative_incidence(X[:1], HORIZONS_DAYS)[0]
    assert np.allclose(p, aalen_johansen(y, HORIZONS_DAYS), atol=0.01)


class _PriorIPCW(IPCWHorizonBase):
    """The shared horizon/IPCW code with the simplest pluggable classifier."""

    def __init__(self, horizons_months=(12, 24, 36, 60), score_horizon_months=24):
        self.horizons_months = horizons_months
        self.score_horizon_months = score_horizon_months

    def _make_classifier(self):
        return DummyClassifier(strategy="prior")


def test_ipcw_base_with_a_weighted_proportion_is_aalen_johansen():
    _, y = competing_data(4000, seed=2)
    X = np.zeros((len(y), 1))
    model = _PriorIPCW().fit(X, y)
    p = model.predict_cumulative_incidence(X[:1], HORIZONS_DAYS)[0]
    assert np.allclose(p, aalen_johansen(y, HORIZONS_DAYS), atol=0.01)
    assert np.isclose(model.predict(X[:1])[0], np.log(p[1] / (1 - p[1])))


def test_xgb_ipcw_risk_score_is_the_margin_at_the_score_horizon(data):
    X, y = data
    model = XGBIPCWClassifier(horizons_months=(12, 24), n_estimators=20).fit(X, y)
    p24 = model.classifiers_[1].predict_proba(X[:50])[:, 1]
    assert np.allclose(model.predict(X[:50]), np.log(p24 / (1 - p24)), atol=1e-5)
    assert np.all(model.get_params()["horizons_months"] == (12, 24))


def test_ipcw_classifier_without_covariates_estimates_cumulative_incidence():
    _, y = competing_data(4000, seed=2, n_features=2, effects=(0.7, 0.5))
    X = np.zeros((len(y), 1))
    clf = IPCWHorizonClassifier(horizons_months=(12, 24, 36, 60), C=1e6).fit(X, y)
    t = np.array([12, 24, 36, 60]) * DAYS_PER_MONTH
    p = clf.predict_cumulative_incidence(X[:1], t)[0]
    assert np.allclose(p, aalen_johansen(y, t), atol=0.01)


def test_ipcw_classifier_dropping_censored_would_be_biased():
    """The weights matter: an unweighted complete-case fit underestimates the incidence."""
    _, y = competing_data(4000, seed=2, n_features=2, effects=(0.7, 0.5))
    h = 36 * DAYS_PER_MONTH
    known = (y["time"] > h) | (y["cause"] != 0)
    naive = np.mean((y["cause"][known] == 1) & (y["time"][known] <= h))
    clf = IPCWHorizonClassifier(horizons_months=(24, 36), C=1e6).fit(np.zeros((len(y), 1)), y)
    weighted = clf.predict_cumulative_incidence(np.zeros((1, 1)), [h])[0, 0]
    assert abs(weighted - aalen_johansen(y, [h])[0]) < 0.01
    assert abs(naive - aalen_johansen(y, [h])[0]) > 0.02


def test_ipcw_classifier_interpolates_and_holds_beyond_last_horizon():
    X, y = competing_data(2000, seed=4, n_features=2, effects=(0.7, 0.5))
    clf = IPCWHorizonClassifier(horizons_months=(12, 24), C=1.0).fit(X, y)
    p = clf.predict_cumulative_incidence(X[:50], np.array([6, 12, 18, 24, 48]) * DAYS_PER_MONTH)
    assert np.all(np.diff(p, axis=1) >= -1e-12)
    assert np.allclose(p[:, 0], p[:, 1] / 2)
    assert np.allclose(p[:, 4], p[:, 3])


# -- the status known at a horizon ----------------------------------------------------------


def test_status_at_a_horizon_by_hand():
    # Horizon 100 days. Bone metastasis at 50 and death at 60 (known, by the horizon), censored
    # at 70 (unknown), event-free past the horizon (known), bone metastasis at 150 (known: none
    # by the horizon). Censoring Kaplan-Meier: one censoring at 70 with 3 of 5 at risk,
    # G = 2/3 from 70 on: weights 1 before it, 3/2 after it.
    y = make_target(
        ["bone_metastasis", "death", "censored", "censored", "bone_metastasis"],
        [50.0, 60.0, 70.0, 120.0, 150.0],
    )
    known, label, weight = status_at_horizon(y, 100.0)
    np.testing.assert_array_equal(known, [True, True, False, True, True])
    np.testing.assert_array_equal(label, [1, 0, 0, 0, 0])
    np.testing.assert_allclose(weight, [1.0, 1.0, 0.0, 1.5, 1.5])
    died = status_at_horizon(y, 100.0, cause=DEATH)
    np.testing.assert_array_equal(died.label, [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(died.weight, weight)


def test_status_is_ipcw_labels_with_the_censoring_of_the_target(data):
    _, y = data
    censoring = censoring_survival(y)
    for h in HORIZONS_DAYS:
        for cause in (BONE_METASTASIS, DEATH):
            status = status_at_horizon(y, h, cause=cause)
            label, weight = ipcw_labels(y, h, *censoring, cause=cause)
            np.testing.assert_array_equal(status.label, label)
            np.testing.assert_array_equal(status.weight, weight)
            np.testing.assert_array_equal(status.known, weight > 0)
            again = status_at_horizon(y, h, cause=cause, censoring=censoring)
            np.testing.assert_array_equal(again.weight, weight)


def test_status_weighted_proportion_is_aalen_johansen(data):
    _, y = data
    for h in HORIZONS_DAYS:
        _, label, weight = status_at_horizon(y, h)
        assert np.sum(weight * label) / y.shape[0] == pytest.approx(
            aalen_johansen(y, [h])[0], abs=0.01
        )


def test_status_needs_both_outcomes_when_asked():
    y = make_target(["censored"] * 9 + ["bone_metastasis"], np.arange(8, 18, dtype=float) * 100)
    status = status_at_horizon(y, 24 * DAYS_PER_MONTH)  # all known, no event by then
    assert status.known.all() and status.label.sum() == 0
    with pytest.raises(
        ValueError,
        match="horizon 24 months: need patients with and without bone metastasis among those "
        "with known status",
    ):
        status_at_horizon(y, 24 * DAYS_PER_MONTH, require_both=True)


@pytest.mark.parametrize("name", ["logistic_ipcw", "xgb_ipcw"])
def test_fitting_without_death_gives_the_same_bone_metastasis_model(data, name):
    # The search and the folds fit IPCW families with death=False (they read bone metastasis
    # only): the bone-metastasis classifiers, scores and incidences must be those of the full
    # fit exactly; the death is then not answered.
    import pickle

    from tests.models.data import training_rows
    from training.artifact.risk_model import estimates_death, predict_pipeline
    from training.fitting.search import fit_pipeline

    X, y = data[:2]
    family = FAMILIES[name]
    full = family.make(family.grid[1]).fit(X, y)
    bone = family.make(family.grid[1]).fit(X, y, death=False)
    times = np.array([6, 12, 24, 36, 60]) * 30.4375
    np.testing.assert_array_equal(bone.predict(X), full.predict(X))
    np.testing.assert_array_equal(
        bone.predict_cumulative_incidence(X, times), full.predict_cumulative_incidence(X, times)
    )
    for a, b in zip(bone.classifiers_, full.classifiers_, strict=True):
        assert pickle.dumps(a) == pickle.dumps(b)
    assert estimates_death(full) and not estimates_death(bone)
    with pytest.raises(AttributeError):
        bone.predict_incidences(X, times)
    # Through the pipeline (the folds' fits): the option reaches the IPCW step only.
    rows, target, _ = training_rows(600, seed=3)
    for fam in (family, FAMILIES["cox_ridge"]):
        whole = fit_pipeline(fam.make, fam.grid[0], rows, target, True)
        read = fit_pipeline(fam.make, fam.grid[0], rows, target, True, death=False)
        for got, expected in zip(
            predict_pipeline(read, rows, (12, 24, 36)),
            predict_pipeline(whole, rows, (12, 24, 36)),
            strict=True,
        ):
            np.testing.assert_array_equal(got, expected)
        assert estimates_death(read[-1]) == (fam.kind == "survival")
