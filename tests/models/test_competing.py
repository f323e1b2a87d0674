"""The competing-risks target, the censoring distribution and the step functions they use."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.data import competing_data
from training.models.cause_specific import CauseSpecificHazards
from training.models.competing import censoring_survival, make_target, step_values


def test_make_target_rejects_unknown_events_and_bad_times():
    with pytest.raises(ValueError, match="unknown event value\\(s\\): relapse"):
        make_target(["relapse"], [10.0])
    with pytest.raises(ValueError, match="time_days must be finite and > 0"):
        make_target(["death"], [0.0])


def test_a_target_that_is_not_structured_is_refused():
    X = np.zeros((10, 1))
    with pytest.raises(
        TypeError, match="structured array from training.models.competing.make_target"
    ):
        CauseSpecificHazards().fit(X, np.ones(10))


def test_censoring_km_matches_sksurv_kaplan_meier():
    from sksurv.nonparametric import kaplan_meier_estimator

    _, y = competing_data(500, seed=3, n_features=2, effects=(0.7, 0.5))
    times, surv = censoring_survival(y)
    ref_t, ref_s = kaplan_meier_estimator(y["cause"] == 0, y["time"])
    at = np.searchsorted(ref_t, times)
    assert np.allclose(surv, ref_s[at], atol=1e-12)


def test_step_values_are_right_continuous_with_a_value_before_the_first_time():
    times = np.array([1.0, 3.0])
    np.testing.assert_array_equal(
        step_values(times, np.array([0.5, 0.2]), np.array([0.0, 1.0, 2.0, 3.0, 9.0]), 1.0),
        [1.0, 0.5, 0.5, 0.2, 0.2],
    )
    curves = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(
        step_values(times, curves, np.array([0.5, 3.0])), [[0.0, 2.0], [0.0, 4.0]]
    )
    np.testing.assert_array_equal(step_values(np.array([]), np.array([]), [1.0, 2.0], 1.0), [1, 1])


def test_censoring_survival_by_hand_with_ties():
    """Kaplan-Meier of the censoring, counted by hand: an event tied with a censoring at t=2
    stays at risk of being censored (5 at risk at 1, 4 at 2, 2 at 3)."""
    from training.models.competing import censoring_survival, make_target, step_values

    y = make_target(
        ["censored", "bone_metastasis", "censored", "censored", "death"],
        np.array([1.0, 2.0, 2.0, 3.0, 4.0]),
    )
    times, surv = censoring_survival(y)
    at = np.array([0.5, 1.0, 2.0, 2.5, 3.0, 4.0, 9.0])
    got = step_values(times, surv, at, before=1.0)
    np.testing.assert_allclose(got, [1.0, 0.8, 0.6, 0.6, 0.3, 0.3, 0.3], rtol=0, atol=1e-15)
    assert censoring_survival(y[:0])[0].size == 0


@pytest.mark.parametrize("seed", range(10))
def test_censoring_survival_equals_sksurv_kaplan_meier(seed):
    # Reference: scikit-survival's kaplan_meier_estimator with censoring as the event (the
    # numpy version counts the same risk sets without its Python loop); ties of every kind.
    from sksurv.nonparametric import kaplan_meier_estimator

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    time = np.round(rng.exponential(100, n), int(rng.integers(-1, 2))) + 1
    cause = rng.integers(0, 3, n)
    events = np.array(["censored", "bone_metastasis", "death"])[cause]
    times, surv = censoring_survival(make_target(events, time))
    ref_times, ref_surv = kaplan_meier_estimator(cause == 0, time.astype(float))
    np.testing.assert_array_equal(times, ref_times)
    np.testing.assert_allclose(surv, ref_surv, rtol=0, atol=1e-15)


def _incidences_with_temporaries(grid, a1, a2, times, death):
    """The combination formula as written before it ran in place (issue 24): the reference."""
    d1 = np.maximum(np.diff(a1, axis=1, prepend=0.0), 0.0)
    d2 = np.maximum(np.diff(a2, axis=1, prepend=0.0), 0.0)
    d_all = d1 + d2
    cum_before = np.zeros_like(d_all)
    np.cumsum(d_all[:, :-1], axis=1, out=cum_before[:, 1:])
    any_event = np.exp(-cum_before) * -np.expm1(-d_all)
    idx = np.searchsorted(grid, times, side="right") - 1
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for d in (d1, d2) if death else (d1,):
            cif = np.cumsum(any_event * np.where(d_all > 0, d / d_all, 0.0), axis=1)
            read = np.where(idx[None, :] >= 0, cif[:, np.clip(idx, 0, None)], 0.0)
            out.append(np.clip(read, 0.0, 1.0))
    return tuple(out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_in_place_combination_gives_the_formulas_numbers_exactly(seed):
    from training.models.competing import (
        competing_cumulative_incidence,
        competing_cumulative_incidences,
    )

    rng = np.random.default_rng(seed)
    n, m = 300, 400
    grid = np.sort(rng.uniform(1, 3000, m))
    h1 = np.cumsum(rng.exponential(1e-3, m))
    h2 = np.cumsum(rng.exponential(2e-3, m))
    a1 = np.exp(rng.normal(size=n))[:, None] * h1
    a2 = np.exp(rng.normal(size=n))[:, None] * h2
    a1[:, 7] = a1[:, 6]  # steps without an event of one cause, then of either
    a2[:, 7] = a2[:, 6]
    a2[:, 20] -= 1e-9  # a negative increment (noise), treated as 0
    # Before the first grid time, inside, on grid times, after the last.
    times = np.r_[0.5, rng.uniform(1, 3200, 5), grid[10], grid[-1], 4000.0]
    expected = _incidences_with_temporaries(grid, a1, a2, times, death=True)
    found = competing_cumulative_incidences(grid, a1, a2, times)
    for a, b in zip(found, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(competing_cumulative_incidence(grid, a1, a2, times), expected[0])
    early = np.array([0.1, 0.5])  # every time before the grid: zeros
    assert not competing_cumulative_incidence(grid, a1, a2, early).any()
