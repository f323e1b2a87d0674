"""Stacked ensemble: Brier-optimal simplex weights (known answers) and the combined prediction."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.data import competing_data, training_rows
from training.config import TrainConfig
from training.fitting.family_run import fit_risk_model
from training.models.catalog import ENSEMBLE_MEMBERS, FAMILIES
from training.models.competing import DAYS_PER_MONTH, make_target
from training.models.ensemble import StackedEnsemble, brier_weights

H_DAYS = [24 * DAYS_PER_MONTH]


def _uncensored(labels: np.ndarray) -> np.ndarray:
    # Events (bone metastasis) at 100 days for label 1; event-free follow-up past 24 months
    # for label 0: no censoring, every IPCW weight is 1.
    event = np.where(labels == 1, "bone_metastasis", "censored")
    time = np.where(labels == 1, 100.0, 3000.0)
    return make_target(event, time)


def test_weights_of_two_constant_members_hit_the_event_rate():
    # Members predict 0.6 and 0.4 for everyone; 45 % have the event. The best constant is 0.45
    # = 0.4 + 0.2 a, so a = 0.25 exactly.
    labels = np.array([1] * 45 + [0] * 55)
    p = np.empty((100, 2, 1))
    p[:, 0, 0], p[:, 1, 0] = 0.6, 0.4
    np.testing.assert_allclose(
        brier_weights(p, _uncensored(labels), H_DAYS), [0.25, 0.75], atol=1e-6
    )


def test_a_perfect_member_takes_all_the_weight():
    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.3).astype(int)
    p = np.stack([labels * 0.98 + 0.01, rng.random(300), np.full(300, 0.3)], axis=1)[:, :, None]
    w = brier_weights(p, _uncensored(labels), H_DAYS)
    assert w[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)


def test_weights_are_on_the_simplex_when_the_unconstrained_optimum_is_not():
    # The best constant (0.9) lies outside the members' range [0.4, 0.6]: all weight on 0.6.
    labels = np.array([1] * 90 + [0] * 10)
    p = np.empty((100, 2, 1))
    p[:, 0, 0], p[:, 1, 0] = 0.6, 0.4
    np.testing.assert_allclose(brier_weights(p, _uncensored(labels), H_DAYS), [1.0, 0.0], atol=1e-6)


def test_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="predictions must be"):
        brier_weights(np.zeros((5, 2, 1)), _uncensored(np.zeros(4, int)), H_DAYS)
    with pytest.raises(ValueError, match="at least one member"):
        StackedEnsemble(members=()).fit(np.zeros((4, 1)), _uncensored(np.zeros(4, int)))


def test_the_registry_builds_the_members_by_family_name():
    model = FAMILIES["stacked_ensemble"].make({})
    assert [name for name, _ in model.members] == list(ENSEMBLE_MEMBERS)
    for name, member in model.members:
        expected = FAMILIES[name].make(FAMILIES[name].grid[0])
        assert type(member) is type(expected) and member.get_params() == expected.get_params()
    two = FAMILIES["stacked_ensemble"].make({"members": ("cox_ridge", "logistic_ipcw")})
    assert [name for name, _ in two.members] == ["cox_ridge", "logistic_ipcw"]
    with pytest.raises(ValueError, match="unknown member famil\\(ies\\): svm"):
        FAMILIES["stacked_ensemble"].make({"members": ("cox_ridge", "svm")})


def test_fitting_leaves_the_member_parameters_unfitted():
    X, y = competing_data(400, seed=2)
    model = FAMILIES["stacked_ensemble"].make({"members": ("cox_ridge", "logistic_ipcw")})
    model.fit(X, y)
    assert not any(hasattr(member, "n_features_in_") for _, member in model.members)
    assert model.member_names_ and all(hasattr(m, "n_features_in_") for m in model.members_)
    assert set(model.all_weights_) == {"cox_ridge", "logistic_ipcw"}


@pytest.mark.slow
def test_ensemble_is_the_weighted_sum_of_its_refitted_members():
    X, y, rows = training_rows(500, seed=8)
    model = fit_risk_model("stacked_ensemble", {}, TrainConfig(), X, y)
    est = model.estimator
    assert set(est.all_weights_) == set(ENSEMBLE_MEMBERS)
    assert sum(est.all_weights_.values()) == pytest.approx(1.0)
    features = model.pipeline[:-1].transform(rows)
    times = np.array([6, 12, 24, 36, 60]) * DAYS_PER_MONTH
    expected = sum(
        w * m.predict_cumulative_incidence(features, times)
        for w, m in zip(est.weights_, est.members_, strict=True)
    )
    cif = est.predict_cumulative_incidence(features, times)
    np.testing.assert_allclose(cif, expected, atol=1e-12)
    assert np.all(np.diff(cif, axis=1) >= -1e-12) and np.all((cif >= 0) & (cif <= 1))
    # Served like the others: the family is registered and flexible (shared feature matrix).
    assert FAMILIES["stacked_ensemble"].flexible
