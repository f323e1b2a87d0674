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
