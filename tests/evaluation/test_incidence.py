"""Aalen-Johansen incidence of bone metastasis with death competing.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.cohorts import simulate, target
from training.evaluation.accuracy import brier_score
from training.evaluation.incidence import aalen_johansen, aalen_johansen_ci, observed_incidence
from training.models.competing import DAYS_PER_MONTH


def test_aalen_johansen_matches_hand_calculation():
    # Six patients (time days, cause): (10,bm) (20,cens) (30,death) (40,bm) (50,cens) (60,bm).
    # At risk 6, 5, 4, 3, 2, 1.  S after 10 = 5/6, after 30 = 5/6 * 3/4 = 5/8,
    # after 40 = 5/8 * 2/3 = 5/12, after 60 = 0.
    # F1: 10 -> 1 * 1/6 = 1/6;  40 -> 1/6 + S(30) * 1/3 = 1/6 + 5/24 = 3/8;
    #     60 -> 3/8 + S(50) * 1/1 = 3/8 + 5/12 = 19/24.
    # F2: 30 -> S(20) * 1/4 = 5/24.   Check: F1 + F2 at 60 = 1 = 1 - S(60).
    y = target([1, 0, 2, 1, 0, 1], [10, 20, 30, 40, 50, 60])
    f1, f2 = aalen_johansen(y, [5, 10, 35, 40, 59, 60, 100])
    assert np.allclose(f1, [0, 1 / 6, 1 / 6, 3 / 8, 3 / 8, 19 / 24, 19 / 24])
    assert np.allclose(f2, [0, 0, 5 / 24, 5 / 24, 5 / 24, 5 / 24, 5 / 24])


def test_aalen_johansen_matches_sksurv_with_ties():
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    _, y, _ = simulate(600, seed=1)
    y["time"] = np.ceil(y["time"] / 30) * 30  # monthly times: many ties, events with censorings
    # Cast to int: sksurv's per-cause counts overflow in int8.
    ref_t, ref = cumulative_incidence_competing_risks(y["cause"].astype(int), y["time"])
    at = np.array([1.0, 100, 365.25, 730.5, 1500, 5000])
    idx = np.searchsorted(ref_t, at, side="right") - 1
    f1, f2 = aalen_johansen(y, at)
    assert np.allclose(f1, np.where(idx >= 0, ref[1][idx], 0), atol=1e-12)
    assert np.allclose(f2, np.where(idx >= 0, ref[2][idx], 0), atol=1e-12)


def test_aalen_johansen_ci_matches_sksurv_aalen_variance_log_log_interval():
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    _, y, _ = simulate(300, seed=2)
    y["time"] = np.ceil(y["time"] / 15) * 15
    ref_t, ref, ref_ci = cumulative_incidence_competing_risks(
        y["cause"].astype(int), y["time"], conf_type="log-log", var_type="Aalen"
    )
    at = ref_t[[3, 40, 80, 120]]
    out = aalen_johansen_ci(y, at)
    idx = np.searchsorted(ref_t, at)
    assert np.allclose(out["cif"], ref[1][idx], atol=1e-12)
    assert np.allclose(out["lo"], ref_ci[1, 0, idx], atol=1e-10)
    assert np.allclose(out["hi"], ref_ci[1, 1, idx], atol=1e-10)
    assert np.all((out["lo"] < out["cif"]) & (out["cif"] < out["hi"]))


def test_aalen_johansen_recovers_analytic_cif_without_covariate_effect():
    # beta = 0: everyone has F1(t) = 2/3 (1 - exp(-9e-4 t)); at 24 months 0.3224.
    _, y, true_cif = simulate(20000, seed=4, beta=0.0)
    f1, _ = aalen_johansen(y, 24 * DAYS_PER_MONTH)
    assert f1[0] == pytest.approx(true_cif(24)[0], abs=0.01)


def test_target_is_validated():
    with pytest.raises(TypeError, match="structured array with fields 'cause' and 'time'"):
        aalen_johansen(np.array([1.0, 2.0]), [1.0])
    y = target([1, 0], [10, 20])
    with pytest.raises(ValueError, match=r"p must be probabilities in \[0, 1\]: p\[1\] = 1.5"):
        brier_score(y, np.array([0.2, 1.5]), 12)


def _hand_aalen_johansen(y, at, z=1.959963984540054):
    """The estimator bonemet computed by hand before it used scikit-survival (reference).

    Point estimate (Aalen & Johansen 1978), Aalen's variance in the form of Pintilie (2006,
    Eq. 4.5) with zero-denominator terms 0, log-log interval ``F ** exp(+-z se / (F log F))``.
    """
    t, cause = y["time"].astype(float), y["cause"].astype(int)
    times, inv = np.unique(t, return_inverse=True)
    n = (t.size - np.cumsum(np.bincount(inv)) + np.bincount(inv)).astype(float)
    d1 = np.bincount(inv, weights=cause == 1, minlength=times.size)
    d = d1 + np.bincount(inv, weights=cause == 2, minlength=times.size)
    s_before = np.concatenate([[1.0], np.cumprod(1 - d / n)[:-1]])
    f = np.cumsum(s_before * d1 / n)

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    idx = np.searchsorted(times, at, side="right") - 1
    f_at = np.where(idx >= 0, f[np.clip(idx, 0, None)], 0.0)
    diff = f_at[:, None] - f[None, :]
    var = np.sum(
        (times[None, :] <= at[:, None])
        * (
            diff**2 * ratio(d, (n - 1) * (n - d))
            + ratio((n - d1) * d1 * s_before**2, (n - 1) * n**2)
            - 2 * diff * ratio(s_before * d1 * (n - d1), n * (n - d) * (n - 1))
        ),
        axis=1,
    )
    log_f = np.log(np.where(f_at > 0, f_at, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where((f_at > 0) & (var > 1e-15), z * np.sqrt(np.abs(var)) / (f_at * log_f), 0)
    lo = np.where(f_at > 0, np.exp(np.exp(-theta) * log_f), 0.0)
    hi = np.where(f_at > 0, np.exp(np.exp(theta) * log_f), 0.0)
    return f_at, lo, hi


@pytest.mark.parametrize("seed", range(6))
def test_scikit_survival_estimator_gives_the_former_hand_written_numbers(seed):
    # Reference: the hand-written estimator above (what bonemet computed before), with times
    # rounded to months so that events, deaths and censorings tie.
    _, y, _ = simulate(int(np.random.default_rng(seed).integers(20, 400)), seed=seed)
    y["time"] = np.ceil(y["time"] / 30) * 30
    at = np.concatenate([[1.0], np.unique(y["time"]), np.linspace(0, 4000, 9)])
    f, lo, hi = _hand_aalen_johansen(y, at)
    out = aalen_johansen_ci(y, at)
    assert np.allclose(out["cif"], f, atol=1e-12)
    assert np.allclose(out["lo"], lo, atol=1e-10)
    assert np.allclose(out["hi"], hi, atol=1e-10)


def test_sample_without_deaths_is_one_minus_kaplan_meier():
    # No competing event: (10,bm) (20,cens) (30,bm) (40,cens). KM: 3/4 after 10, 3/4 * 1/2 after
    # 30, so F1 = 1/4 from 10 and 5/8 from 30; the death incidence is 0.
    y = target([1, 0, 1, 0], [10, 20, 30, 40])
    f1, f2 = aalen_johansen(y, [5, 10, 25, 30, 50])
    assert np.allclose(f1, [0, 1 / 4, 1 / 4, 5 / 8, 5 / 8]) and np.all(f2 == 0)
    ci = aalen_johansen_ci(y, [5, 30])
    assert ci["lo"].iloc[0] == ci["hi"].iloc[0] == 0  # before any event: [0, 0]
    assert 0 < ci["lo"].iloc[1] < 5 / 8 < ci["hi"].iloc[1] < 1


def test_sample_without_bone_metastasis_or_without_events_has_zero_incidence():
    y = target([2, 0, 2], [10, 20, 30])  # deaths only: F2 = 1 - KM = 1/3, then 1
    f1, f2 = aalen_johansen(y, [15, 35])
    assert np.all(f1 == 0) and np.allclose(f2, [1 / 3, 1])
    assert (aalen_johansen_ci(y, [35])[["cif", "lo", "hi"]].to_numpy() == 0).all()
    f1, f2 = aalen_johansen(target([0, 0], [10, 20]), [15])
    assert f1[0] == f2[0] == 0


def test_observed_incidence_is_the_aalen_johansen_estimate_at_the_horizon(cohort):
    # Reference: scikit-survival's curve (aalen_johansen); observed_incidence computes the same
    # sums with array operations, so equal to rounding.
    _, y, _ = cohort
    for months in (1, 12, 24, 36, 60, 200):
        expected = aalen_johansen(y, months * DAYS_PER_MONTH)[0][0]
        assert observed_incidence(y, months) == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_observed_incidence_matches_scikit_survival_with_ties_and_one_cause(seed):
    # Reference: scikit-survival (aalen_johansen), on tied monthly times, on bootstrap-like
    # resamples with repeated patients, and on samples with a single cause or no event.
    _, y, _ = simulate(int(np.random.default_rng(seed).integers(20, 400)), seed=seed)
    y["time"] = np.ceil(y["time"] / 30) * 30
    rng = np.random.default_rng(seed)
    samples = [y, y[rng.integers(0, len(y), len(y))], y[y["cause"] != 2], y[y["cause"] != 1]]
    samples.append(y[y["cause"] == 0])
    for sample in samples:
        for months in (0.5, 12, 24, 60):
            expected = aalen_johansen(sample, months * DAYS_PER_MONTH)[0][0]
            found = observed_incidence(sample, months)
            assert found == pytest.approx(expected, rel=1e-12, abs=1e-15)
