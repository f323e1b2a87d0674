"""Cause-specific hazards: the combination against Aalen-Johansen, Breslow baselines, bounds."""

from __future__ import annotations

import numpy as np
import pytest

from tests.models.data import aalen_johansen, competing_data, pickled
from training.models.bases import RSF_LIMITS, rsf_size_bound
from training.models.cause_specific import (
    MAX_EXACT_GRID_TIMES,
    CauseSpecificHazards,
    breslow_cumulative_hazard,
)
from training.models.competing import DAYS_PER_MONTH, competing_cumulative_incidence, make_target

HORIZONS_DAYS = np.array([12, 24, 36, 60]) * DAYS_PER_MONTH


# -- the one cause-specific combination -----------------------------------------------------


def test_combination_without_covariates_reproduces_aalen_johansen():
    _, y = competing_data(2000, seed=1)
    X = np.zeros((len(y), 1))
    t = np.array([6, 12, 24, 36, 60]) * DAYS_PER_MONTH
    reference = aalen_johansen(y, t)
    for base in ("coxph", "xgb_cox"):
        # Zero covariates: Breslow is Nelson-Aalen. exp(-dA) against 1 - dA within a step
        # is the only difference from the product-limit estimator.
        params = {"alpha": 1e-6} if base == "coxph" else {"n_estimators": 1}
        model = CauseSpecificHazards(base, params).fit(X, y)
        assert np.allclose(model.predict_cumulative_incidence(X[:1], t)[0], reference, atol=0.005)
    # The combination directly on Nelson-Aalen hazards.
    grid = np.unique(y["time"][y["cause"] > 0])
    at_risk = len(y) - np.searchsorted(np.sort(y["time"]), grid, side="left")
    d_bm = np.array([np.sum((y["time"] == g) & (y["cause"] == 1)) for g in grid])
    d_death = np.array([np.sum((y["time"] == g) & (y["cause"] == 2)) for g in grid])
    cif = competing_cumulative_incidence(
        grid, np.cumsum(d_bm / at_risk), np.cumsum(d_death / at_risk), t
    )
    assert np.allclose(cif[0], reference, atol=0.005)


def test_monthly_time_grid_keeps_whole_month_horizons_close_to_aalen_johansen():
    _, y = competing_data(2000, seed=1)
    X = np.zeros((len(y), 1))
    model = CauseSpecificHazards("coxph", {"alpha": 1e-6}, time_grid_days=DAYS_PER_MONTH)
    model.fit(X, y)
    months = model.grid_days_ / DAYS_PER_MONTH
    assert np.array_equal(months, np.round(months))
    # Whole-month horizons count exactly the events up to the horizon. What remains is the
    # within-step approximation exp(-dA) for 1 - dA, of order dA / 2 relative with a month's
    # Breslow increment dA (about 0.035 here: a high-incidence cohort).
    cif = model.predict_cumulative_incidence(X[:1], HORIZONS_DAYS)[0]
    assert np.allclose(cif, aalen_johansen(y, HORIZONS_DAYS), atol=0.01)


def test_rsf_without_covariates_approximates_aalen_johansen():
    _, y = competing_data(2000, seed=1)
    X = np.zeros((len(y), 1))
    model = CauseSpecificHazards("rsf", {"n_estimators": 20}).fit(X, y)
    cif = model.predict_cumulative_incidence(X[:1], HORIZONS_DAYS)[0]
    # Averaged bootstrap Nelson-Aalen hazards on a monthly grid (measured within 0.006).
    assert np.allclose(cif, aalen_johansen(y, HORIZONS_DAYS), atol=0.01)


def test_incidence_is_below_naive_one_minus_survival_that_censors_death(data):
    X, y = data
    model = CauseSpecificHazards("xgb_cox").fit(X, y)
    a_bm, _ = model.cumulative_hazards(X[:200])
    cif = model.predict_cumulative_incidence(X[:200], model.grid_days_)
    assert np.all(cif <= 1 - np.exp(-a_bm) + 1e-12)


# -- Breslow baseline -----------------------------------------------------------------------


def test_breslow_matches_sksurv_coxph_baseline_for_the_same_linear_predictor(data):
    """Reference: sksurv CoxPHSurvivalAnalysis.cum_baseline_hazard_ (its BreslowEstimator)."""
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    X, y = data
    event = y["cause"] == 1
    cox = CoxPHSurvivalAnalysis(alpha=0.1, ties="breslow").fit(
        X, Surv.from_arrays(event, y["time"])
    )
    times, cumhaz = breslow_cumulative_hazard(X @ cox.coef_, event, y["time"])
    assert np.array_equal(times, cox.cum_baseline_hazard_.x)
    assert np.allclose(cumhaz, cox.cum_baseline_hazard_.y, rtol=1e-10, atol=0)


def test_breslow_equals_sksurv_breslow_estimator():
    """Reference: scikit-survival's ``BreslowEstimator`` on the same inputs, tied times included.

    Equal to rounding (1e-9 relative), not bit for bit: why ours is kept is said in
    :func:`training.models.cause_specific.breslow_cumulative_hazard`.
    """
    from sksurv.linear_model.coxph import BreslowEstimator

    rng = np.random.default_rng(5)
    eta = rng.normal(scale=0.8, size=400)
    time = np.round(rng.exponential(500, size=400)) + 1.0  # whole days: tied times
    event = rng.random(400) < 0.5
    times, cumhaz = breslow_cumulative_hazard(eta, event, time)
    reference = BreslowEstimator().fit(eta, event, time)
    assert np.unique(time).size < time.size
    np.testing.assert_array_equal(times, reference.unique_times_)
    np.testing.assert_allclose(cumhaz, reference.cum_baseline_hazard_.y, rtol=1e-9, atol=0)


def test_xgb_cox_baseline_is_breslow_of_its_margin(data):
    """Reference: sksurv BreslowEstimator fed xgboost's margin (the log relative hazard)."""
    from sksurv.linear_model.coxph import BreslowEstimator

    X, y = data
    model = CauseSpecificHazards("xgb_cox", time_grid_days=0).fit(X, y)  # exact times
    for code in (1, 2):
        margin = model.models_[code].predict(X, output_margin=True).astype(float)
        reference = BreslowEstimator().fit(margin, y["cause"] == code, y["time"])
        expected = reference.cum_baseline_hazard_(model.grid_days_)
        assert np.allclose(model.baseline_cumhaz_[code], expected, rtol=1e-6, atol=0)
    assert np.allclose(model.predict(X), model.models_[1].predict(X, output_margin=True))


# -- random survival forest bounds ----------------------------------------------------------


def test_rsf_is_bounded_in_times_and_pickled_size():
    X, y = competing_data(3000, seed=2)
    model = CauseSpecificHazards("rsf").fit(X, y)
    # Follow-up under 2,500 days on a monthly grid: at most 83 distinct times per tree.
    n_max = int(np.ceil(y["time"].max() / DAYS_PER_MONTH))
    assert model.grid_days_.size <= n_max
    for forest in model.models_.values():
        assert forest.unique_times_.size <= n_max
        assert forest.max_samples == 2000 and forest.min_samples_leaf >= 10
    bound = 2 * rsf_size_bound(50, 2000, 20, n_max)  # both causes, defaults: 26.6 MB
    size = len(pickled(model))
    assert size < bound
    assert size < 20e6  # measured 15 MB


def test_rsf_refuses_settings_that_break_the_memory_bound():
    X, y = competing_data(300, seed=3)
    with pytest.raises(ValueError, match="min_samples_leaf must be an integer >= 10"):
        CauseSpecificHazards("rsf", {"min_samples_leaf": 3}).fit(X, y)
    with pytest.raises(ValueError, match="max_samples must be an integer number of bootstrap"):
        CauseSpecificHazards("rsf", {"max_samples": 0.5}).fit(X, y)
    with pytest.raises(ValueError, match="low_memory is fixed by the family"):
        CauseSpecificHazards("rsf", {"low_memory": True}).fit(X, y)
    with pytest.raises(ValueError, match="distinct times on a 1-day grid exceed"):
        CauseSpecificHazards("rsf", time_grid_days=1.0).fit(X, y)
    big = {"n_estimators": 300, "max_samples": 5000, "min_samples_leaf": 10}
    limit_mb = RSF_LIMITS["max_bytes_per_cause"] / 1e6
    assert rsf_size_bound(300, 5000, 10, 240) > RSF_LIMITS["max_bytes_per_cause"]
    X_big = np.zeros((5000, 1))
    y_big = make_target(
        np.resize(["bone_metastasis", "death", "censored"], 5000), np.linspace(1, 7000, 5000)
    )
    with pytest.raises(ValueError, match=f"exceeds {limit_mb:.0f} MB"):
        CauseSpecificHazards("rsf", big, time_grid_days=30.0).fit(X_big, y_big)


def test_gbsa_fits_on_a_bounded_subset_with_a_full_breslow_baseline(data):
    X, y = data
    bounded = CauseSpecificHazards(base="gbsa", params={"max_fit_rows": 300}).fit(X, y)
    full = CauseSpecificHazards(base="gbsa", params={"max_fit_rows": None}).fit(X, y)
    t = np.array([12, 24, 36]) * DAYS_PER_MONTH
    p_b = bounded.predict_cumulative_incidence(X[:100], t)
    p_f = full.predict_cumulative_incidence(X[:100], t)
    assert np.all((p_b >= 0) & (p_b <= 1)) and np.all(np.diff(p_b, axis=1) >= 0)
    assert not np.allclose(p_b, p_f)  # the subset changed the fit
    # The baseline still spans every event time of the full data.
    assert np.array_equal(bounded.grid_days_, full.grid_days_)


def test_many_distinct_event_times_are_put_on_a_bounded_grid():
    """Above MAX_EXACT_GRID_TIMES event times the PH bases round times up (day, week, month)."""
    X, y = competing_data(n=6000, seed=3)
    n_event_times = np.unique(y["time"][y["cause"] != 0]).size
    assert n_event_times > MAX_EXACT_GRID_TIMES
    model = CauseSpecificHazards("coxph").fit(X, y)
    assert model.time_step_days_ in (1.0, 7.0, DAYS_PER_MONTH)
    assert model.grid_days_.size <= MAX_EXACT_GRID_TIMES
    exact = CauseSpecificHazards("coxph", time_grid_days=0).fit(X, y)  # exact times
    assert exact.time_step_days_ is None and exact.grid_days_.size == n_event_times
    times = np.array([365.25, 730.5])
    np.testing.assert_allclose(
        model.predict_cumulative_incidence(X[:200], times),
        exact.predict_cumulative_incidence(X[:200], times),
        atol=0.01,
    )
    small_X, small_y = competing_data(n=400, seed=3)
    assert CauseSpecificHazards("coxph").fit(small_X, small_y).time_step_days_ is None
    with pytest.raises(ValueError, match="rsf needs a time grid"):
        CauseSpecificHazards("rsf", time_grid_days=0).fit(small_X, small_y)
    with pytest.raises(ValueError, match="time_grid_days must be >= 0"):
        CauseSpecificHazards("coxph", time_grid_days=-1.0).fit(small_X, small_y)


def test_forest_cumulative_hazard_is_scikit_survivals_exactly(data):
    # forest_cumulative_hazard replaces the forest's own prediction in the rsf family: the same
    # sum over the trees in the same order (scikit-survival as the reference), and the family's
    # incidences and scores as computed from scikit-survival's curves.
    from training.models.cause_specific import forest_cumulative_hazard
    from training.models.competing import step_values

    def continuous(nelson_aalen):  # the family's step hazards -log(1 - h) (its docstring)
        h = np.clip(np.diff(nelson_aalen, axis=1, prepend=0.0), 0.0, 1.0 - 1e-12)
        return np.cumsum(-np.log1p(-h), axis=1)

    X, y = data[:2]
    model = CauseSpecificHazards(base="rsf", params={"min_samples_leaf": 20}).fit(
        X[:1000], y[:1000]
    )
    X_new = X[1000:]
    for forest in model.models_.values():
        reference = forest.predict_cumulative_hazard_function(X_new, return_array=True)
        np.testing.assert_array_equal(forest_cumulative_hazard(forest, X_new), reference)
        np.testing.assert_array_equal(forest_cumulative_hazard(forest, X_new, 7), reference[:, :7])
    grid = model.grid_days_
    hazards = [
        continuous(
            step_values(
                f.unique_times_,
                f.predict_cumulative_hazard_function(X_new, return_array=True),
                grid,
            )
        )
        for f in (model.models_[1], model.models_[2])
    ]
    times = np.array([12, 24, 36]) * DAYS_PER_MONTH
    expected = competing_cumulative_incidence(grid, *hazards, times)
    np.testing.assert_array_equal(model.predict_cumulative_incidence(X_new, times), expected)
    score, cif = model.predict_with_incidence(X_new, times)
    np.testing.assert_array_equal(cif, expected)
    np.testing.assert_array_equal(score, model.predict(X_new))
    with pytest.raises(ValueError, match="X must be 2-D with"):
        forest_cumulative_hazard(model.models_[1], X_new[:, :1])
