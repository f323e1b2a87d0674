"""Harrell's C (the fast version) against scikit-survival.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.cohorts import simulate, target
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
