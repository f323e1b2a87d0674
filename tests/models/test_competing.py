"""Competing-risk model families against independent reference estimates."""

from __future__ import annotations

import numpy as np
import pytest

from training.models.competing import (
    DAYS_PER_MONTH,
    CauseSpecificCox,
    IPCWHorizonClassifier,
    censoring_survival,
    make_target,
)


def competing_data(n: int = 3000, seed: int = 0):
    """Exponential cause-specific hazards, independent uniform censoring."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    t_bm = rng.exponential(1000 * np.exp(-0.7 * x[:, 0]))
    t_death = rng.exponential(1500 * np.exp(-0.5 * x[:, 1]))
    t_cens = rng.uniform(200, 2500, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    event = np.where(time == t_cens, "censored", np.where(time == t_bm, "bone_metastasis", "death"))
    return x, make_target(event, time)


def aalen_johansen(y, t_days):
    """Reference: sksurv's nonparametric cumulative incidence (Aalen-Johansen)."""
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    times, cif = cumulative_incidence_competing_risks(y["cause"].astype(int), y["time"])
    idx = np.searchsorted(times, t_days, side="right") - 1
    return cif[1][idx]


def test_make_target_rejects_unknown_events_and_bad_times():
    with pytest.raises(ValueError, match="unknown event value\\(s\\): relapse"):
        make_target(["relapse"], [10.0])
    with pytest.raises(ValueError, match="time_days must be finite and > 0"):
        make_target(["death"], [0.0])


def test_censoring_km_matches_sksurv_kaplan_meier():
    from sksurv.nonparametric import kaplan_meier_estimator

    _, y = competing_data(500, seed=3)
    times, surv = censoring_survival(y)
    ref_t, ref_s = kaplan_meier_estimator(y["cause"] == 0, y["time"])
    at = np.searchsorted(ref_t, times)
    assert np.allclose(surv, ref_s[at], atol=1e-12)


def test_cox_without_covariates_reproduces_aalen_johansen():
    _, y = competing_data(2000, seed=1)
    X = np.zeros((len(y), 1))
    model = CauseSpecificCox(alpha=1e-6).fit(X, y)
    t = np.array([6, 12, 24, 36, 60]) * DAYS_PER_MONTH
    cif = model.predict_cumulative_incidence(X[:1], t)[0]
    # exp(-H) vs the product-limit survival in the Aalen-Johansen estimator: tiny difference.
    assert np.allclose(cif, aalen_johansen(y, t), atol=0.005)


def test_cox_cif_is_monotone_bounded_and_below_naive_one_minus_s():
    X, y = competing_data()
    model = CauseSpecificCox(alpha=0.1).fit(X, y)
    t = np.linspace(1, 2400, 40)
    cif = model.predict_cumulative_incidence(X[:200], t)
    assert np.all(np.diff(cif, axis=1) >= -1e-12)
    assert np.all((cif >= 0) & (cif <= 1))
    # 1 - S_bm(t) that censors death overstates the incidence (domain brief).
    lp_bm, _ = model.linear_predictors(X[:200])
    idx = np.searchsorted(model.grid_days_, t, side="right") - 1
    h1 = np.where(idx >= 0, model.baseline_cumhaz_[1][np.clip(idx, 0, None)], 0.0)
    naive = 1 - np.exp(-np.exp(lp_bm)[:, None] * h1[None, :])
    assert np.all(cif <= naive + 1e-9)
    assert model.coef_[1][0] == pytest.approx(0.7, abs=0.1)  # true log-HR of x0 on bone mets


def test_risk_score_ranks_the_bone_met_covariate():
    X, y = competing_data()
    model = CauseSpecificCox(alpha=0.1).fit(X, y)
    score = model.predict(np.array([[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]))
    assert score[0] < score[1] < score[2]


def test_ipcw_classifier_without_covariates_estimates_cumulative_incidence():
    _, y = competing_data(4000, seed=2)
    X = np.zeros((len(y), 1))
    clf = IPCWHorizonClassifier(horizons_months=(12, 24, 36, 60), C=1e6).fit(X, y)
    t = np.array([12, 24, 36, 60]) * DAYS_PER_MONTH
    p = clf.predict_cumulative_incidence(X[:1], t)[0]
    assert np.allclose(p, aalen_johansen(y, t), atol=0.01)


def test_ipcw_classifier_dropping_censored_would_be_biased():
    """The weights matter: an unweighted complete-case fit underestimates the incidence."""
    _, y = competing_data(4000, seed=2)
    h = 36 * DAYS_PER_MONTH
    known = (y["time"] > h) | (y["cause"] != 0)
    naive = np.mean((y["cause"][known] == 1) & (y["time"][known] <= h))
    clf = IPCWHorizonClassifier(horizons_months=(24, 36), C=1e6).fit(np.zeros((len(y), 1)), y)
    weighted = clf.predict_cumulative_incidence(np.zeros((1, 1)), [h])[0, 0]
    assert abs(weighted - aalen_johansen(y, [h])[0]) < 0.01
    assert abs(naive - aalen_johansen(y, [h])[0]) > 0.02


def test_ipcw_classifier_interpolates_and_holds_beyond_last_horizon():
    X, y = competing_data(2000, seed=4)
    clf = IPCWHorizonClassifier(horizons_months=(12, 24), C=1.0).fit(X, y)
    p = clf.predict_cumulative_incidence(X[:50], np.array([6, 12, 18, 24, 48]) * DAYS_PER_MONTH)
    assert np.all(np.diff(p, axis=1) >= -1e-12)
    assert np.allclose(p[:, 0], p[:, 1] / 2)
    assert np.allclose(p[:, 4], p[:, 3])


def test_families_refuse_training_data_without_events():
    X = np.zeros((10, 1))
    y = make_target(["censored"] * 9 + ["death"], np.arange(1, 11, dtype=float))
    with pytest.raises(ValueError, match="no bone_metastasis events in the training data"):
        CauseSpecificCox().fit(X, y)
    with pytest.raises(
        TypeError, match="structured array from training.models.competing.make_target"
    ):
        CauseSpecificCox().fit(X, np.ones(10))
