"""The vectorised ridge Cox fit (training.models.coxph.FastCoxPH) against scikit-survival's.

Reference: ``sksurv.linear_model.CoxPHSurvivalAnalysis`` itself, same data and parameters: the
same Newton-Raphson iterations with the loop over patients, so coefficients, baseline and
predictions agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from tests.models.data import competing_data
from training.models.coxph import FastCoxPH


def _target(y, cause: int = 1, step: float | None = None):
    time = y["time"].astype(float)
    if step:  # tied times (a monthly grid)
        time = np.ceil(time / step) * step
    return Surv.from_arrays(y["cause"] == cause, time)


@pytest.mark.parametrize(
    ("alpha", "step", "cause"), [(1.0, None, 1), (100.0, 30.4375, 1), (0.0, 7.0, 2)]
)
def test_same_coefficients_baseline_and_predictions_as_scikit_survival(alpha, step, cause):
    x, y = competing_data(600, seed=3, n_features=6)
    x[:, 5] = (x[:, 5] > 1.5).astype(float)  # a rare binary column, like a missing indicator
    target = _target(y, cause, step)
    ref = CoxPHSurvivalAnalysis(alpha=alpha, ties="breslow", n_iter=200).fit(x, target)
    fast = FastCoxPH(alpha=alpha, ties="breslow", n_iter=200).fit(x, target)
    assert np.allclose(fast.coef_, ref.coef_, rtol=1e-9, atol=1e-10)
    assert np.allclose(fast.predict(x), ref.predict(x), rtol=1e-9, atol=1e-10)
    assert np.allclose(
        fast.cum_baseline_hazard_.y, ref.cum_baseline_hazard_.y, rtol=1e-9, atol=1e-12
    )
    assert isinstance(fast, CoxPHSurvivalAnalysis)


def test_per_feature_penalty_and_non_convergence_warn_like_scikit_survival():
    x, y = competing_data(300, seed=1, n_features=3)
    target = _target(y)
    alphas = np.array([0.0, 5.0, 50.0])
    ref = CoxPHSurvivalAnalysis(alpha=alphas).fit(x, target)
    fast = FastCoxPH(alpha=alphas).fit(x, target)
    # Both stop when the loss changes by less than tol = 1e-9 relative: rounding may stop
    # them one (tiny) step apart.
    assert np.allclose(fast.coef_, ref.coef_, rtol=1e-7, atol=1e-8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FastCoxPH(alpha=1.0, n_iter=1).fit(x, target)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)
    with pytest.raises(ValueError, match="alpha"):
        FastCoxPH(alpha=np.array([1.0, 2.0])).fit(x, target)


def test_efron_ties_use_scikit_survival_fit():
    x, y = competing_data(200, seed=2, n_features=2)
    target = _target(y, step=30.0)
    ref = CoxPHSurvivalAnalysis(ties="efron").fit(x, target)
    assert np.allclose(FastCoxPH(ties="efron").fit(x, target).coef_, ref.coef_)
