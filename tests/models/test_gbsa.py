"""The O(n log n) Cox loss of the gradient-boosted family (training.models.gbsa) against
scikit-survival's.

Reference: scikit-survival's own loss, gradient and ``GradientBoostingSurvivalAnalysis`` on the
same data and seed (same trees grown from gradients equal to rounding).
"""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.ensemble import GradientBoostingSurvivalAnalysis
from sksurv.ensemble.survival_loss import CoxPH
from sksurv.util import Surv

from tests.models.data import competing_data
from training.models.gbsa import FastGBSA, SortedCoxPHLoss


def _target(y, step: float | None):
    time = y["time"].astype(float)
    if step:  # tied times
        time = np.ceil(time / step) * step
    return Surv.from_arrays(y["cause"] == 1, time)


@pytest.mark.parametrize("step", [None, 30.4375])
def test_loss_and_gradient_equal_scikit_survival_with_ties(step):
    x, y = competing_data(400, seed=5, n_features=3)
    target = _target(y, step)
    eta = np.random.default_rng(0).normal(size=len(target))
    ref, fast = CoxPH(), SortedCoxPHLoss()
    assert fast(target, eta) == pytest.approx(ref(target, eta), rel=1e-10)
    assert np.allclose(fast.gradient(target, eta), ref.gradient(target, eta), rtol=1e-9,
                       atol=1e-12)
    weights = np.linspace(0.5, 1.5, len(target))
    assert np.allclose(fast.gradient(target, eta, sample_weight=weights),
                       ref.gradient(target, eta, sample_weight=weights), rtol=1e-9, atol=1e-12)


def test_fitted_model_predicts_as_scikit_survival():
    x, y = competing_data(500, seed=6, n_features=4)
    target = _target(y, 7.0)
    params = dict(loss="coxph", n_estimators=15, learning_rate=0.15, max_depth=2,
                  min_samples_leaf=10, subsample=0.5, random_state=0)
    ref = GradientBoostingSurvivalAnalysis(**params).fit(x, target)
    fast = FastGBSA(**params).fit(x, target)
    assert np.allclose(fast.predict(x), ref.predict(x), rtol=1e-8, atol=1e-10)
    assert np.allclose(fast.train_score_, ref.train_score_, rtol=1e-9)
    assert np.allclose(fast.oob_scores_, ref.oob_scores_, rtol=1e-9)
