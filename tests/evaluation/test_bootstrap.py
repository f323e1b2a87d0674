"""Percentile bootstrap intervals and paired differences.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.cohorts import simulate, target
from training.evaluation.bootstrap import Interval, bootstrap_ci, paired_bootstrap_difference
from training.evaluation.concordance import fast_harrell_c


def test_bootstrap_interval_contains_estimate_and_shrinks_with_n():
    widths = []
    for n in (200, 2000):
        x, y, _ = simulate(n, seed=6)
        interval = bootstrap_ci(fast_harrell_c, y, x, n_boot=200, seed=1)
        assert isinstance(interval, Interval) and interval.n_boot_used == 200
        assert interval.lo < interval.estimate < interval.hi
        widths.append(interval.hi - interval.lo)
    assert widths[1] < widths[0] / 2  # ~ 1 / sqrt(10)


def test_bootstrap_of_a_mean_matches_normal_theory():
    # Reference: the 95 % interval of a mean is about mean +- 1.96 sd / sqrt(n).
    v = np.random.default_rng(0).normal(size=1000)
    interval = bootstrap_ci(np.mean, v, n_boot=400)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    assert interval.estimate == pytest.approx(v.mean())
    assert interval.hi - interval.lo == pytest.approx(2 * half, rel=0.15)


def test_bootstrap_skips_undefined_resamples():
    # One bone metastasis in 10 patients: a resample lacks it with probability 0.9^10 = 0.35,
    # and Harrell's C raises ValueError there.
    rng = np.random.default_rng(0)
    y = target([1] + [0] * 9, np.arange(1, 11) * 10.0)
    interval = bootstrap_ci(fast_harrell_c, y, rng.normal(size=10), n_boot=200)
    assert 100 < interval.n_boot_used < 170
    # NaN replicates are skipped as well.
    nan_above = bootstrap_ci(lambda v: np.nan if v.mean() > 0 else v.mean(), rng.normal(size=50))
    assert 0 < nan_above.n_boot_used < 200 and nan_above.hi <= 0


def test_paired_difference_of_a_score_with_itself_is_exactly_zero():
    x, y, _ = simulate(300, seed=7)
    same = paired_bootstrap_difference(fast_harrell_c, y, x, x.copy(), n_boot=50)
    assert same == Interval(0.0, 0.0, 0.0, 50)
    noisy = x + np.random.default_rng(0).normal(scale=2, size=x.size)
    better = paired_bootstrap_difference(fast_harrell_c, y, x, noisy, n_boot=100)
    assert better.estimate == pytest.approx(fast_harrell_c(y, x) - fast_harrell_c(y, noisy))
    assert better.lo > 0


def test_seed_draws_the_same_patients_as_numpy_and_bounds_are_scipys_percentile_interval():
    # Reference: the resamples numpy.random.default_rng(seed) draws (what the hand-written
    # bootstrap used before scipy), and scipy.stats.bootstrap's percentile interval.
    from scipy import stats

    v = np.random.default_rng(1).normal(size=60)
    interval = bootstrap_ci(np.median, v, n_boot=300, seed=7, alpha=0.1)
    idx = np.random.default_rng(7).integers(0, v.size, size=(300, v.size))
    replicates = np.median(v[idx], axis=1)
    assert (interval.lo, interval.hi) == tuple(np.quantile(replicates, [0.05, 0.95]))
    ref = stats.bootstrap(
        (v,), np.median, n_resamples=300, confidence_level=0.9, method="percentile", rng=7
    )
    assert interval.lo == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert interval.hi == pytest.approx(ref.confidence_interval.high, abs=1e-12)
