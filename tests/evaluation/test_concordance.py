"""Harrell's C (the fast version) against scikit-survival.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.cohorts import simulate, target, tied_split
from training.evaluation.concordance import fast_harrell_c, harrell_c


def test_fast_harrell_c_equals_sksurv_with_tied_times_and_risks():
    from sksurv.metrics import concordance_index_censored

    x, y, _ = simulate(700, seed=5)
    y["time"] = np.ceil(y["time"] / 30) * 30  # tied times across causes and censoring
    risk = np.round(x, 1)  # tied risks
    ref = concordance_index_censored(y["cause"] == 1, y["time"], risk)[0]
    assert fast_harrell_c(y, risk) == pytest.approx(ref, abs=1e-12)
    assert fast_harrell_c(y, risk) == pytest.approx(harrell_c(y, risk), abs=1e-12)
    with pytest.raises(ValueError, match="no comparable pairs"):
        fast_harrell_c(target([0, 2], [10, 20]), np.array([1.0, 2.0]))


@pytest.mark.parametrize("seed", range(20))
def test_fast_harrell_c_equals_sksurv_on_small_heavily_tied_samples(seed):
    # Reference: sksurv's concordance_index_censored; 5-40 patients, 3-6 distinct times and
    # risks, so ties of every kind (event/event, event/censored, event/death, risk) abound.
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 41))
    y = target(rng.integers(0, 3, size=n), rng.integers(1, int(rng.integers(4, 8)), size=n))
    risk = rng.integers(0, int(rng.integers(3, 7)), size=n) * 0.5
    try:
        ref = concordance_index_censored(y["cause"] == 1, y["time"], risk)[0]
    except ValueError:
        with pytest.raises(ValueError):
            fast_harrell_c(y, risk)
        return
    assert fast_harrell_c(y, risk) == pytest.approx(ref, abs=1e-12)


def _sk_target(y):
    from training.evaluation.concordance import death_censored

    return death_censored(y)


@pytest.mark.parametrize("seed", range(25))
def test_uno_c_equals_sksurv_with_ties_truncation_and_reused_censoring(seed):
    # Reference: scikit-survival's concordance_index_ipcw (refits the censoring on every call);
    # the project's uno_c weights fast_harrell_c's per-event counts by 1 / G(T_i)^2.
    from sksurv.metrics import concordance_index_ipcw

    from training.evaluation.concordance import censoring_estimator, uno_c

    rng, y_train, y_test, risk = tied_split(seed)
    tau_days = float(rng.uniform(200, 2500))
    tau = np.nextafter(min(tau_days, y_test["time"].max(), y_train["time"].max()), 0)
    try:
        ref = concordance_index_ipcw(_sk_target(y_train), _sk_target(y_test), risk, tau=tau)[0]
    except ValueError as err:
        with pytest.raises(ValueError, match=str(err)[:20] if "censoring" in str(err) else ""):
            uno_c(y_train, y_test, risk, tau_days)
        return
    assert uno_c(y_train, y_test, risk, tau_days) == pytest.approx(ref, abs=1e-12)
    cens = censoring_estimator(y_train)
    assert uno_c(y_train, y_test, risk, tau_days, cens) == pytest.approx(ref, abs=1e-12)


def test_uno_c_without_bone_metastasis_has_no_comparable_pairs():
    from training.evaluation.concordance import uno_c

    y_train = target([1, 0, 2, 1, 0], [5, 10, 20, 25, 40])
    y = target([0, 2, 0], [10, 20, 30])
    with pytest.raises(ValueError, match="no comparable pairs"):
        uno_c(y_train, y, np.array([1.0, 2.0, 3.0]), 25)
