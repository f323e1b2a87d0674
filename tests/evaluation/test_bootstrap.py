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


def test_m_out_of_n_interval_is_the_rescaled_quantiles_of_m_patient_resamples():
    # Reference, by hand: resamples of m patients drawn by default_rng(seed).integers(0, n, m),
    # bounds estimate + sqrt(m / n) * (quantile - estimate) (Bickel, Goetze & van Zwet 1997).
    v = np.random.default_rng(2).normal(size=400)
    interval = bootstrap_ci(np.mean, v, n_boot=100, seed=3, max_resample=50)
    rng = np.random.default_rng(3)
    replicates = np.array([v[rng.integers(0, v.size, 50)].mean() for _ in range(100)])
    q = np.quantile(replicates, [0.025, 0.975])
    expected = v.mean() + np.sqrt(50 / 400) * (q - v.mean())
    assert (interval.lo, interval.hi) == pytest.approx(tuple(expected), abs=1e-15)
    assert interval.resample_size == 50 and interval.n_boot_used == 100
    # At or above n the bound changes nothing: the full percentile interval, same resamples.
    full = bootstrap_ci(np.mean, v, n_boot=100, seed=3)
    assert bootstrap_ci(np.mean, v, n_boot=100, seed=3, max_resample=400) == full
    assert full.resample_size is None
    with pytest.raises(ValueError, match="max_resample must be at least 2"):
        bootstrap_ci(np.mean, v, n_boot=100, seed=3, max_resample=1)


def test_m_out_of_n_interval_of_harrell_c_matches_the_full_bootstrap_on_a_large_sample():
    # Reference: the full n-patient percentile bootstrap on the same 20,000 patients; the
    # rescaled 2,000-patient resamples must give an interval of the same width and place
    # (Monte Carlo error of 300 resamples: about 8 % of the width), and the normal-theory SE
    # of a C index shrinks as 1 / sqrt(n), which the rescaling assumes.
    x, y, _ = simulate(20_000, seed=11)
    full = bootstrap_ci(fast_harrell_c, y, x, n_boot=300, seed=1)
    small = bootstrap_ci(fast_harrell_c, y, x, n_boot=300, seed=1, max_resample=2_000)
    width_full, width_small = full.hi - full.lo, small.hi - small.lo
    assert width_small == pytest.approx(width_full, rel=0.2)
    assert abs((small.lo + small.hi) / 2 - (full.lo + full.hi) / 2) < 0.15 * width_full
    assert small.lo < full.estimate < small.hi


def test_m_out_of_n_paired_difference_is_zero_for_a_score_with_itself():
    x, y, _ = simulate(3_000, seed=4)
    d = paired_bootstrap_difference(fast_harrell_c, y, x, x, n_boot=50, seed=0, max_resample=500)
    assert (d.estimate, d.lo, d.hi) == (0.0, 0.0, 0.0) and d.resample_size == 500
