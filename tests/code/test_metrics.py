"""Evaluation metrics against independently computed reference values.

Each test names its reference: a hand calculation worked out in the comment, scikit-survival,
scikit-learn or scipy, or a simulation whose true cumulative incidence is analytic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import minimize_scalar
from scipy.special import expit, logit

from training.evaluation import scores as evaluate
from training.evaluation.metrics import (
    Interval,
    aalen_johansen,
    aalen_johansen_ci,
    bootstrap_ci,
    brier_score,
    calibration_slope_intercept,
    calibration_table,
    cox_partial_loglik,
    decision_curve,
    fast_harrell_c,
    ici,
    integrated_brier_score,
    likelihood_ratio_test,
    paired_bootstrap_difference,
    scaled_brier,
    smoothed_calibration,
    subgroup_metrics,
)
from training.models.competing import DAYS_PER_MONTH, censoring_survival, ipcw_labels, make_target

EVENTS = np.array(["censored", "bone_metastasis", "death"])


def target(cause, time) -> np.ndarray:
    return make_target(EVENTS[np.asarray(cause)], np.asarray(time, dtype=float))


def simulate(n: int, seed: int, beta: float = 1.0):
    """Exponential cause-specific hazards with a known cumulative incidence.

    Bone metastasis hazard l1 = 6e-4 exp(beta x) per day, death hazard l2 = 3e-4, independent
    uniform censoring on [300, 3000] days. Given x the incidence of bone metastasis is analytic:
    F1(t | x) = l1 / (l1 + l2) * (1 - exp(-(l1 + l2) t)).

    Returns x, the target and ``true_cif(months) -> array`` of each patient's true F1.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    l1, l2 = 6e-4 * np.exp(beta * x), np.full(n, 3e-4)
    t_bm, t_death = rng.exponential(1 / l1), rng.exponential(1 / l2)
    t_cens = rng.uniform(300, 3000, size=n)
    time = np.minimum.reduce([t_bm, t_death, t_cens])
    cause = np.where(time == t_cens, 0, np.where(time == t_bm, 1, 2))

    def true_cif(months: float) -> np.ndarray:
        h = months * DAYS_PER_MONTH
        return l1 / (l1 + l2) * -np.expm1(-(l1 + l2) * h)

    return x, target(cause, time), true_cif


@pytest.fixture(scope="module")
def cohort():
    return simulate(4000, seed=3)


# --- Aalen-Johansen ---------------------------------------------------------------------------


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


# --- Calibration ------------------------------------------------------------------------------


def test_calibration_table_groups_are_deciles_with_aalen_johansen_observed(cohort):
    from sksurv.nonparametric import cumulative_incidence_competing_risks

    _, y, true_cif = cohort
    p = true_cif(24)
    table = calibration_table(y, p, 24)
    assert list(table.columns) == [
        "group", "n", "events", "mean_predicted", "observed", "observed_lo", "observed_hi"
    ]  # fmt: skip
    assert table["n"].tolist() == [400] * 10  # distinct p: exact deciles
    assert table["mean_predicted"].is_monotonic_increasing
    # Reference: sksurv's Aalen-Johansen in the top decile (pd.qcut assigns the groups).
    top = pd.qcut(p, 10, labels=False) == 9
    t, cif = cumulative_incidence_competing_risks(y["cause"][top].astype(int), y["time"][top])
    ref = cif[1][np.searchsorted(t, 24 * DAYS_PER_MONTH, side="right") - 1]
    assert table["observed"].iloc[-1] == pytest.approx(ref, abs=1e-12)
    # True probabilities: the observed incidence is inside its 95 % interval in most groups.
    inside = (table["observed_lo"] <= table["mean_predicted"]) & (
        table["mean_predicted"] <= table["observed_hi"]
    )
    assert inside.sum() >= 8


def test_calibration_slope_and_intercept_of_true_probabilities(cohort):
    _, y, true_cif = cohort
    slope, intercept = calibration_slope_intercept(y, true_cif(24), 24)
    assert slope == pytest.approx(1.0, abs=0.1)
    assert intercept == pytest.approx(0.0, abs=0.1)


def test_calibration_slope_below_one_for_too_extreme_and_intercept_for_too_low(cohort):
    _, y, true_cif = cohort
    lp = logit(true_cif(24))
    slope_extreme, _ = calibration_slope_intercept(y, expit(2 * lp), 24)
    slope_low, intercept_low = calibration_slope_intercept(y, expit(lp - 0.7), 24)
    assert slope_extreme == pytest.approx(0.5, abs=0.07)  # logit doubled: slope halves
    assert intercept_low == pytest.approx(0.7, abs=0.1)  # log-odds 0.7 too low
    assert slope_low == pytest.approx(calibration_slope_intercept(y, true_cif(24), 24)[0])


def test_recalibration_fits_match_sklearn_and_scipy(cohort):
    from sklearn.linear_model import LogisticRegression

    _, y, true_cif = cohort
    p = np.clip(true_cif(24) * 1.3, 0, 0.99)
    slope, intercept = calibration_slope_intercept(y, p, 24)
    g_times, g_surv = censoring_survival(y)
    label, weight = ipcw_labels(y, 24 * DAYS_PER_MONTH, g_times, g_surv)
    known = weight > 0
    lp, lab, w = logit(p[known]), label[known], weight[known]
    # Reference 1: scikit-learn's unpenalised weighted logistic regression (C = inf).
    ref = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    ref.fit(lp[:, None], lab, sample_weight=w)
    assert slope == pytest.approx(ref.coef_[0, 0], abs=1e-5)

    # Reference 2: scipy's scalar minimiser of the weighted negative log-likelihood with
    # offset logit(p).
    def nll(a: float) -> float:
        eta = a + lp
        return -np.sum(w * (lab * eta - np.logaddexp(0, eta)))

    ref_a = minimize_scalar(nll, bounds=(-3, 3), method="bounded", options={"xatol": 1e-10}).x
    assert intercept == pytest.approx(ref_a, abs=1e-6)


def test_calibration_needs_events_and_non_events_with_known_status():
    y = target([2, 2, 0, 2], [100, 200, 300, 1000])
    with pytest.raises(ValueError, match="need patients with and without bone metastasis"):
        calibration_slope_intercept(y, np.full(4, 0.2), 12)


def test_restricted_cubic_spline_matches_hand_values_and_is_linear_in_tails():
    from training.evaluation.metrics import _rcs_basis

    # Knots 0, 1, 2 (K = 3): one nonlinear term
    # [x^3 - (x-1)_+^3 * (2-0)/(2-1) + (x-2)_+^3 * (1-0)/(2-1)] / (2-0)^2.
    # x = 3: (27 - 16 + 1) / 4 = 3;  x = 4: (64 - 54 + 8) / 4 = 4.5;  x = 5: (125 - 128 + 27) / 4
    # = 6: linear beyond the last knot (slope 1.5); 0 below the first knot.
    basis = _rcs_basis(np.array([-1.0, 0.5, 3.0, 4.0, 5.0]), np.array([0.0, 1.0, 2.0]))
    assert np.allclose(basis[:, 0], [-1, 0.5, 3, 4, 5])
    assert np.allclose(basis[:, 1], [0, 0.125 / 4, 3, 4.5, 6])


def test_ici_near_zero_for_true_probabilities_and_larger_when_distorted(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    assert ici(y, p, 24) < 0.02
    assert ici(y, expit(2 * logit(p)), 24) > 0.05
    assert ici(y, expit(logit(p) - 0.7), 24) > 0.05
    # The smoothed curve of the true probabilities follows the identity.
    assert np.max(np.abs(smoothed_calibration(y, p, 24) - p)) < 0.06


# --- Brier scores -----------------------------------------------------------------------------


def test_brier_matches_evaluate_and_hand_calculation_without_censoring(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    assert brier_score(y, p, 24) == evaluate.ipcw_brier(y, p, 24)
    # No censoring before 12 months: weights 1, Brier = mean (status - p)^2.
    # Status by 12 months (365.25 days): bm at 100 -> 1, death at 200 -> 0, bm at 400 -> 0,
    # censored at 500 -> 0.  ((1-.5)^2 + .2^2 + .1^2 + .3^2) / 4 = (.25+.04+.01+.09)/4 = 0.0975.
    y4 = target([1, 2, 1, 0], [100, 200, 400, 500])
    assert brier_score(y4, np.array([0.5, 0.2, 0.1, 0.3]), 12) == pytest.approx(0.0975)


def test_true_model_beats_a_constant_and_scaled_brier(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    constant = np.full(len(y), np.mean(p))
    assert brier_score(y, p, 24) < brier_score(y, constant, 24)
    assert scaled_brier(y, p, 24) > 0.05
    # The null model itself (Aalen-Johansen incidence for everyone) scores exactly 0.
    incidence = aalen_johansen(y, 24 * DAYS_PER_MONTH)[0][0]
    assert scaled_brier(y, np.full(len(y), incidence), 24) == pytest.approx(0.0, abs=1e-12)


def test_integrated_brier_hand_calculation():
    # Nobody has an event before 36 months and nobody is censored before: status 0, weight 1.
    # Everyone predicted 0.1, 0.2, 0.3 at 12, 24, 36 months -> Brier 0.01, 0.04, 0.09.
    # Trapezoid: (0.01 + 0.04) / 2 * 12 + (0.04 + 0.09) / 2 * 12 = 1.08; / 24 months = 0.045.
    y = target([0, 1, 2], [2000, 1500, 1200])
    cif = np.tile([0.1, 0.2, 0.3], (3, 1))
    assert integrated_brier_score(y, cif, [12, 24, 36]) == pytest.approx(0.045)
    with pytest.raises(ValueError, match="at least 2 strictly increasing horizons"):
        integrated_brier_score(y, cif[:, :1], [12])


# --- Decision curve ---------------------------------------------------------------------------


def test_decision_curve_hand_calculation_without_censoring():
    # Horizon 12 months = 365.25 days; nobody censored before it.
    #   p:       .9   .7     .6   .4    .3   .2    .1     .05
    #   (time, cause): (100,bm) (200,death) (300,bm) (500,cens) (50,bm) (400,cens) (100,death)
    #   (700,bm): status by 12 months 1 0 1 0 1 0 0 0 -> incidence 3/8.
    # t = 0.5: treat p >= .5 = first three: TP 2, FP 1 -> 2/8 - 1/8 * 1 = 0.125;
    #          treat all: 3/8 - 5/8 * 1 = -0.25.
    # t = 0.25: treat first five: TP 3, FP 2 -> 3/8 - 2/8 * (1/3) = 0.291667;
    #           treat all: 3/8 - 5/8 * (1/3) = 0.166667.
    # t = 0: everyone treated: model = all = incidence 3/8.
    y = target([1, 2, 1, 0, 1, 0, 2, 1], [100, 200, 300, 500, 50, 400, 100, 700])
    p = np.array([0.9, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05])
    dc = decision_curve(y, p, 12, thresholds=[0.0, 0.25, 0.5])
    assert list(dc.columns) == [
        "threshold", "net_benefit_model", "net_benefit_all", "net_benefit_none"
    ]  # fmt: skip
    assert np.allclose(dc["net_benefit_model"], [3 / 8, 3 / 8 - 2 / 8 / 3, 0.125])
    assert np.allclose(dc["net_benefit_all"], [3 / 8, 3 / 8 - 5 / 8 / 3, -0.25])
    assert np.all(dc["net_benefit_none"] == 0)


def test_decision_curve_with_censoring_uses_aalen_johansen(cohort):
    _, y, true_cif = cohort
    p = true_cif(24)
    dc = decision_curve(y, p, 24)
    assert len(dc) == 50 and dc["threshold"].iloc[0] == 0.01 and dc["threshold"].iloc[-1] == 0.5
    incidence = aalen_johansen(y, 24 * DAYS_PER_MONTH)[0][0]
    low = decision_curve(y, p, 24, thresholds=[0.0, p.min() / 2])
    assert np.allclose(low["net_benefit_all"].iloc[0], incidence)  # treat all at 0 = incidence
    assert np.allclose(low["net_benefit_model"], low["net_benefit_all"])  # all treated anyway
    # The true model is useful: above both default strategies at a mid threshold.
    mid = dc.loc[np.isclose(dc["threshold"], 0.3)].iloc[0]
    assert mid["net_benefit_model"] > max(mid["net_benefit_all"], 0)


# --- Concordance and bootstrap ----------------------------------------------------------------


def test_fast_harrell_c_equals_sksurv_with_tied_times_and_risks():
    from sksurv.metrics import concordance_index_censored

    x, y, _ = simulate(700, seed=5)
    y["time"] = np.ceil(y["time"] / 30) * 30  # tied times across causes and censoring
    risk = np.round(x, 1)  # tied risks
    ref = concordance_index_censored(y["cause"] == 1, y["time"], risk)[0]
    assert fast_harrell_c(y, risk) == pytest.approx(ref, abs=1e-12)
    assert fast_harrell_c(y, risk) == pytest.approx(evaluate.harrell_c(y, risk), abs=1e-12)
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


# --- Subgroups --------------------------------------------------------------------------------


def test_subgroup_metrics_long_format_and_too_few_events():
    x, y, true_cif = simulate(600, seed=8)
    p = {12: true_cif(12), 24: true_cif(24)}
    arm = np.where(np.arange(600) % 2 == 0, "even", "odd")
    few = np.where(np.arange(600) < 8, "rare", "common").astype(object)
    few[y["cause"] == 1] = np.where(np.arange(np.sum(y["cause"] == 1)) < 3, "rare", "common")
    out = subgroup_metrics(y, x, p, {"arm": arm, "few": few})
    assert list(out.columns) == ["variable", "level", "n", "events", "metric", "value", "note"]
    even = out[(out["variable"] == "arm") & (out["level"] == "even")].set_index("metric")
    mask = arm == "even"
    assert even.loc["harrell_c", "value"] == pytest.approx(fast_harrell_c(y[mask], x[mask]))
    assert even.loc["brier_24m", "value"] == pytest.approx(brier_score(y[mask], p[24][mask], 24))
    assert even.loc["harrell_c", "n"] == 300
    rare = out[(out["variable"] == "few") & (out["level"] == "rare")]
    assert rare["events"].iloc[0] == 3 and rare["value"].isna().all()
    assert (rare["note"] == "fewer than 5 bone metastasis events").all()
    overall = out[out["variable"] == "all"].set_index("metric")
    assert overall.loc["harrell_c", "value"] == pytest.approx(evaluate.harrell_c(y, x))


# --- Cox partial likelihood and likelihood ratio test -----------------------------------------


def test_partial_loglik_at_zero_is_minus_sum_log_at_risk():
    # No ties, coef = 0: each event contributes -log(number still at risk).
    # Times 1..6, events at 1, 3, 4, 6: at risk 6, 4, 3, 1 -> -(log 6 + log 4 + log 3 + log 1).
    time = np.array([4.0, 1, 6, 2, 3, 5])
    event = np.array([1, 1, 1, 0, 1, 0])
    X = np.random.default_rng(0).normal(size=(6, 2))
    expected = -(np.log(6) + np.log(4) + np.log(3) + np.log(1))
    assert cox_partial_loglik(X, time, event, np.zeros(2)) == pytest.approx(expected)


def test_partial_loglik_breslow_ties_hand_calculation():
    # Times 1, 2, 2, 3; events 1, 1, 1, 0; x = 0, 1, 2, 1; b = log 2 so exp(x b) = 1, 2, 4, 2.
    # t=1: log 1 - log(1+2+4+2) = -log 9.  t=2 (tie, Breslow: both over the full risk set 2+4+2):
    # (log 2 - log 8) + (log 4 - log 8).  Total = -log 9 + 3 log 2 - 6 log 2 = -log 72.
    # b = 0: -log 4 - 2 log 3 = -log 36.
    time, event, x = np.array([1.0, 2, 2, 3]), np.array([1, 1, 1, 0]), np.array([0.0, 1, 2, 1])
    assert cox_partial_loglik(x, time, event, [np.log(2)]) == pytest.approx(-np.log(72))
    assert cox_partial_loglik(x, time, event, [0.0]) == pytest.approx(-np.log(36))


def test_partial_loglik_matches_sksurv_and_is_maximal_at_its_fit():
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.linear_model.coxph import CoxPHOptimizer
    from sksurv.util import Surv

    x, y, _ = simulate(400, seed=9)
    y["time"] = np.ceil(y["time"] / 30) * 30
    X = np.column_stack([x, np.random.default_rng(1).normal(size=400)])
    event, time = y["cause"] == 1, y["time"]
    coef = np.array([0.8, -0.3])
    # Reference: sksurv's Breslow negative partial log-likelihood, averaged over patients.
    opt = CoxPHOptimizer(X, event, time, alpha=np.zeros(2), ties="breslow")
    assert cox_partial_loglik(X, time, event, coef) == pytest.approx(
        -400 * opt.nlog_likelihood(coef), rel=1e-10
    )
    fit = CoxPHSurvivalAnalysis(alpha=0, ties="breslow").fit(X, Surv.from_arrays(event, time))
    ll_fit = cox_partial_loglik(X, time, event, fit.coef_)
    for step in np.eye(2) * 1e-3:
        assert ll_fit > cox_partial_loglik(X, time, event, fit.coef_ + step)
        assert ll_fit > cox_partial_loglik(X, time, event, fit.coef_ - step)


def test_likelihood_ratio_test_against_chi2():
    # 3.841458820694124 is the 95th percentile of chi2(1): p = 0.05.
    statistic, p_value = likelihood_ratio_test(-100.0, -100.0 - 3.841458820694124 / 2, 1)
    assert statistic == pytest.approx(3.841458820694124)
    assert p_value == pytest.approx(0.05, abs=1e-12)
    assert likelihood_ratio_test(-50.0, -56.0, 3).p_value == stats.chi2.sf(12.0, 3)
    with pytest.raises(ValueError, match="not nested"):
        likelihood_ratio_test(-60.0, -50.0, 1)


# -- agreement with a known truth -------------------------------------------------------------


def test_truth_agreement_known_answers():
    from scipy.special import expit, logit

    from training.evaluation.metrics import truth_agreement

    truth = np.linspace(0.01, 0.6, 400)
    perfect = truth_agreement(truth, truth)
    assert perfect["mae"] == 0.0
    assert perfect["calibration_slope"] == pytest.approx(1.0, abs=1e-8)
    assert perfect["calibration_intercept"] == pytest.approx(0.0, abs=1e-8)
    # Predictions twice as spread on the logit scale: slope 1/2; shifted: intercept -0.3.
    spread = expit(2.0 * logit(truth) + 0.6)
    got = truth_agreement(spread, truth)
    assert got["calibration_slope"] == pytest.approx(0.5, abs=1e-8)
    assert got["calibration_intercept"] == pytest.approx(-0.3, abs=1e-8)
    assert got["mae"] == pytest.approx(np.mean(np.abs(spread - truth)))
    with pytest.raises(ValueError, match="truth must be probabilities in \\[0, 1\\]"):
        truth_agreement(truth, truth + 1.0)
    with pytest.raises(ValueError, match="needs predictions that vary"):
        truth_agreement(np.full(400, 0.1), truth)
