"""Model families of training/models/families.py: valid incidences, round trips, reference
estimates."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.dummy import DummyClassifier

from training.models.competing import (
    DAYS_PER_MONTH,
    CauseSpecificCox,
    IPCWHorizonBase,
    competing_cumulative_incidence,
    make_target,
)
from training.models.families import (
    BASES,
    FAMILIES,
    MAX_EXACT_GRID_TIMES,
    RSF_LIMITS,
    CauseSpecificHazards,
    XGBIPCWClassifier,
    breslow_cumulative_hazard,
    feature_importance,
    rsf_size_bound,
)

HORIZONS_DAYS = np.array([12, 24, 36, 60]) * DAYS_PER_MONTH
FEATURES = ["x_bone", "x_death", "x_noise"]


def competing_data(n: int = 1500, seed: int = 0):
    """Exponential cause-specific hazards: x0 drives bone metastasis, x1 death, x2 nothing.

    Independent uniform censoring between 200 and 2,500 days (under 7 years).
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    t_bm = rng.exponential(1000 * np.exp(-0.8 * x[:, 0]))
    t_death = rng.exponential(1500 * np.exp(-0.6 * x[:, 1]))
    t_cens = rng.uniform(200, 2500, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    event = np.where(time == t_cens, "censored", np.where(time == t_bm, "bone_metastasis", "death"))
    return x, make_target(event, time)


def aalen_johansen(y: np.ndarray, t_days: np.ndarray) -> np.ndarray:
    """Reference: scikit-survival's nonparametric cumulative incidence (Aalen-Johansen)."""
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    times, cif = cumulative_incidence_competing_risks(y["cause"].astype(int), y["time"])
    idx = np.searchsorted(times, t_days, side="right") - 1
    return np.where(idx >= 0, cif[1][np.clip(idx, 0, None)], 0.0)


def pickled(obj) -> bytes:
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def data():
    return competing_data(1500, seed=0)


@pytest.fixture(scope="module", params=list(FAMILIES))
def fitted(request, data):
    """Each family with its default configuration, fitted once on the same data."""
    X, y = data
    return request.param, FAMILIES[request.param].make({}).fit(X, y)


# -- every family ---------------------------------------------------------------------------


def test_incidence_is_monotone_bounded_and_zero_at_enrollment(fitted, data):
    _, model = fitted
    X, _ = data
    t = np.concatenate([[0.0], np.linspace(1, 2600, 60), [5000.0]])
    cif = model.predict_cumulative_incidence(X[:300], t)
    assert cif.shape == (300, t.size)
    assert np.all(np.diff(cif, axis=1) >= -1e-12)
    assert np.all((cif >= 0) & (cif <= 1))
    assert np.all(cif[:, 0] == 0)
    assert np.all(np.isfinite(model.predict(X[:300])))


def test_pickle_round_trip_gives_identical_predictions(fitted, data):
    name, model = fitted
    X, _ = data
    blob = pickled(model)
    again = joblib.load(io.BytesIO(blob))
    assert np.array_equal(again.predict(X), model.predict(X))
    assert np.array_equal(
        again.predict_cumulative_incidence(X, HORIZONS_DAYS),
        model.predict_cumulative_incidence(X, HORIZONS_DAYS),
    )
    for a, b in zip(
        again.predict_incidences(X, HORIZONS_DAYS),
        model.predict_incidences(X, HORIZONS_DAYS),
        strict=True,
    ):
        assert np.array_equal(a, b)
    # 1,500 training rows: the largest, rsf (2 x 50 trees, 83 monthly times), is about 9 MB;
    # xgb_ipcw (2 x 4 classifiers of 150 trees: bone metastasis and death) about 1.1 MB; the
    # others are under 1 MB (the stacked ensemble holds an rsf member).
    limit = {"rsf": 15e6, "stacked_ensemble": 15e6, "xgb_ipcw": 2e6}.get(name, 1e6)
    assert len(blob) < limit, f"{name} pickles to {len(blob) / 1e6:.1f} MB"


def test_death_incidence_is_monotone_bounded_and_leaves_room_for_bone_metastasis(fitted, data):
    # Contract 1.1: death_probability non-decreasing, in [0, 1], bone metastasis + death <= 1,
    # and the bone-metastasis incidence the same as predict_cumulative_incidence's.
    _, model = fitted
    X, _ = data
    t = np.concatenate([[0.0], np.linspace(1, 2600, 60), [5000.0]])
    cif_bm, cif_death = model.predict_incidences(X[:300], t)
    np.testing.assert_array_equal(cif_bm, model.predict_cumulative_incidence(X[:300], t))
    assert cif_death.shape == (300, t.size)
    assert np.all(np.diff(cif_death, axis=1) >= -1e-12)
    assert np.all((cif_death >= 0) & (cif_death <= 1))
    assert np.all(cif_death[:, 0] == 0)
    assert np.all(cif_bm + cif_death <= 1 + 1e-12)
    assert cif_death[:, -1].mean() > 0.1  # deaths happen (about a third of the cohort)


def test_death_incidence_rises_with_the_death_covariate_only(fitted):
    _, model = fitted
    grid = np.zeros((3, 3))
    grid[:, 1] = [-1.5, 0.0, 1.5]  # x_death
    _, death = model.predict_incidences(grid, [36 * DAYS_PER_MONTH])
    assert death[0, 0] < death[1, 0] < death[2, 0]
    noise = np.zeros((2, 3))
    noise[:, 2] = [-1.5, 1.5]  # x_noise drives neither cause
    _, death = model.predict_incidences(noise, [36 * DAYS_PER_MONTH])
    assert abs(death[1, 0] - death[0, 0]) < 0.05


def test_mean_death_incidence_matches_aalen_johansen(fitted, data):
    # The average of the patients' incidences of death against the nonparametric estimate.
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    _, model = fitted
    X, y = data
    times, cif = cumulative_incidence_competing_risks(y["cause"].astype(int), y["time"])
    idx = np.searchsorted(times, HORIZONS_DAYS, side="right") - 1
    _, death = model.predict_incidences(X, HORIZONS_DAYS)
    np.testing.assert_allclose(death.mean(axis=0), cif[2][idx], atol=0.02)


def test_ipcw_death_is_capped_to_leave_room_for_bone_metastasis():
    # Both classifiers say "certain" (constant labels at every horizon would make the death
    # classifier the weighted proportion): with bone metastasis near 1 by the last horizon,
    # death is held at one minus it and still never decreases.
    model = FAMILIES["logistic_ipcw"].make({})
    X, y = competing_data(600, seed=3)
    model.fit(X, y)
    model.death_classifiers_ = [0.2, 0.5, 0.9, 0.95]
    extreme = np.zeros((1, 3))
    extreme[0, 0] = 30.0  # bone metastasis probability about 1 at every horizon
    bm, death = model.predict_incidences(extreme, HORIZONS_DAYS)
    assert bm[0, -1] > 0.99
    assert np.all(bm + death <= 1 + 1e-12)
    assert np.all(np.diff(death, axis=1) >= 0)


def test_risk_and_incidence_rise_with_the_bone_metastasis_covariate(fitted):
    _, model = fitted
    X = np.array([[-1.5, 0.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0]])
    score = model.predict(X)
    cif = model.predict_cumulative_incidence(X, [24 * DAYS_PER_MONTH])[:, 0]
    assert score[0] < score[1] < score[2]
    assert cif[0] < cif[1] < cif[2]


def test_estimators_are_sklearn_compatible(fitted):
    name, model = fitted
    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not [k for k in vars(fresh) if k.endswith("_")], "__init__ must only store params"
    family = FAMILIES[name]
    assert family.kind == ("classifier" if isinstance(model, IPCWHorizonBase) else "survival")


def test_feature_importance_ranks_the_driving_covariate_first(fitted, data):
    name, model = fitted
    X, y = competing_data(800, seed=11)  # held out
    imp = feature_importance(model, X, y, FEATURES, n_repeats=2, seed=0)
    assert isinstance(imp, pd.Series) and sorted(imp.index) == sorted(FEATURES)
    assert imp.index[0] == "x_bone"
    assert np.all(np.diff(np.abs(imp.to_numpy())) <= 0)
    linear = name in (
        "cox_ridge",
        "cox_elasticnet",
        "logistic_ipcw",
        "cox_spline",
        "logistic_ipcw_spline",
    )
    assert imp.name == ("coefficient" if linear else "harrell_c_drop")
    if linear:
        assert imp["x_bone"] > 0  # a harmful covariate has a positive coefficient


# -- registry -------------------------------------------------------------------------------


def test_registry_holds_every_family_with_bounded_grids():
    assert set(FAMILIES) == {
        "cox_ridge",
        "cox_elasticnet",
        "rsf",
        "gbsa",
        "xgb_cox",
        "logistic_ipcw",
        "xgb_ipcw",
        "cox_spline",
        "logistic_ipcw_spline",
        "stacked_ensemble",
    }
    assert {n for n, f in FAMILIES.items() if f.flexible} == {
        "cox_spline",
        "logistic_ipcw_spline",
        "stacked_ensemble",
    }
    for name, family in FAMILIES.items():
        assert family.name == name and family.description
        assert family.kind in ("survival", "classifier")
        assert 1 <= len(family.grid) <= 4
        for params in family.grid:
            estimator = family.make(params)
            got = estimator.get_params()
            inner = got["params"] if isinstance(estimator, CauseSpecificHazards) else got
            assert {k: inner[k] for k in params} == params


def test_family_params_reach_the_wrapper_and_refuse_threads():
    model = FAMILIES["rsf"].make({"min_samples_leaf": 20, "time_grid_days": 14.0})
    assert model.time_grid_days == 14.0 and model.params == {"min_samples_leaf": 20}
    X, y = competing_data(200, seed=1)
    with pytest.raises(ValueError, match="n_jobs=2 is not allowed"):
        FAMILIES["xgb_cox"].make({"n_jobs": 2}).fit(X, y)
    with pytest.raises(ValueError, match="unknown base 'svm'"):
        CauseSpecificHazards(base="svm").fit(X, y)
    y_no_bm = y.copy()
    y_no_bm["cause"][y_no_bm["cause"] == 1] = 0
    with pytest.raises(ValueError, match="no bone_metastasis events in the training data"):
        CauseSpecificHazards().fit(X, y_no_bm)


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


def test_cause_specific_cox_and_coxph_base_give_the_same_incidence(data):
    X, y = data
    legacy = CauseSpecificCox(alpha=0.5).fit(X, y)
    generic = CauseSpecificHazards("coxph", {"alpha": 0.5}, time_grid_days=0).fit(X, y)
    t = np.linspace(0, 2600, 30)
    assert np.allclose(generic.predict(X), legacy.predict(X))
    assert np.allclose(
        generic.predict_cumulative_incidence(X[:200], t),
        legacy.predict_cumulative_incidence(X[:200], t),
        atol=1e-10,
    )


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


# -- classifiers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic_ipcw", "xgb_ipcw"])
def test_classifier_without_covariates_reproduces_aalen_johansen(name):
    _, y = competing_data(4000, seed=2)
    X = np.zeros((len(y), 1))
    params = {"C": 1e6} if name == "logistic_ipcw" else {}
    model = FAMILIES[name].make(params).fit(X, y)
    p = model.predict_cumulative_incidence(X[:1], HORIZONS_DAYS)[0]
    assert np.allclose(p, aalen_johansen(y, HORIZONS_DAYS), atol=0.01)


class _PriorIPCW(IPCWHorizonBase):
    """The shared horizon/IPCW code with the simplest pluggable classifier."""

    def __init__(self, horizons_months=(12, 24, 36, 60), score_horizon_months=24):
        self.horizons_months = horizons_months
        self.score_horizon_months = score_horizon_months

    def _make_classifier(self):
        return DummyClassifier(strategy="prior")


def test_ipcw_base_with_a_weighted_proportion_is_aalen_johansen():
    _, y = competing_data(4000, seed=2)
    X = np.zeros((len(y), 1))
    model = _PriorIPCW().fit(X, y)
    p = model.predict_cumulative_incidence(X[:1], HORIZONS_DAYS)[0]
    assert np.allclose(p, aalen_johansen(y, HORIZONS_DAYS), atol=0.01)
    assert np.isclose(model.predict(X[:1])[0], np.log(p[1] / (1 - p[1])))


def test_xgb_ipcw_risk_score_is_the_margin_at_the_score_horizon(data):
    X, y = data
    model = XGBIPCWClassifier(horizons_months=(12, 24), n_estimators=20).fit(X, y)
    p24 = model.classifiers_[1].predict_proba(X[:50])[:, 1]
    assert np.allclose(model.predict(X[:50]), np.log(p24 / (1 - p24)), atol=1e-5)
    assert np.all(model.get_params()["horizons_months"] == (12, 24))


def test_every_base_is_reachable_from_a_family():
    bases = {
        FAMILIES[n].make({}).base
        for n in FAMILIES
        if isinstance(FAMILIES[n].make({}), CauseSpecificHazards)
    }
    assert bases == set(BASES)


def test_gbsa_fits_on_a_bounded_subset_with_a_full_breslow_baseline(data):
    X, y = data
    bounded = CauseSpecificHazards(base="gbsa", params={"max_fit_rows": 300}).fit(X, y)
    full = CauseSpecificHazards(base="gbsa", params={"max_fit_rows": None}).fit(X, y)
    t = np.array([12, 24, 36]) * 365.25 / 12
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
