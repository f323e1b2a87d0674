"""Study statistics against independently computed reference values.

Independence of each reference:
- DeLong's variance: pROC's published values on its aSAH data (tests/study/data/asah.csv).
- OLS and Cox fits are statsmodels' (``OLS``, ``PHReg``); the tests check what this package adds
  (complete cases, intercept, interval level, refusals) against numpy's least squares, against
  the values the hand-written Newton-Raphson gave before statsmodels replaced it, and against the
  Breslow score and Schoenfeld residuals computed with explicit loops.
- scikit-learn's ``roc_auc_score`` computes the AUC from the ROC curve's trapezoids, not from the
  pairwise comparison used here.
- scipy's ``mannwhitneyu`` p value is inverted (the set of shifts it does not reject) to check
  the Hodges-Lehmann interval, which is computed here from ordered pairwise differences.
- Gray's score: a hand example, scikit-survival's Kaplan-Meier and Aalen-Johansen estimates in
  Gray's formula, and statsmodels' ``survdiff`` (log-rank) without competing events. No Python
  library provides Gray's test; R's cmprsk prints only Gray's asymptotic statistic, which the
  permutation test here does not use.
- Hand calculations are worked out in the comments.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score
from sksurv.nonparametric import cumulative_incidence_competing_risks, kaplan_meier_estimator
from statsmodels.duration.survfunc import survdiff

from training.evaluation.incidence import aalen_johansen
from training.evaluation.likelihood import cox_partial_loglik
from training.models.competing import make_target
from training.study.stats.common import StudyError, json_ready
from training.study.stats.comparisons import (
    delong_auc,
    hodges_lehmann,
    rank_comparison,
    roc_analysis,
    youden_cutoff,
)
from training.study.stats.competing import gray_scores, gray_test, incidence_by_group
from training.study.stats.regression import cox_fit, linear_regression


def competing_data(n: int, seed: int, beta: float = 0.7, death_rate: float = 1 / 1500):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t_bm = rng.exponential(1000 * np.exp(-beta * x))
    t_death = rng.exponential(1 / death_rate, n) if death_rate > 0 else np.full(n, np.inf)
    t_cens = rng.uniform(200, 2000, n)
    time = np.round(np.minimum.reduce([t_bm, t_death, t_cens]), 1) + 0.1
    cause = np.where(np.minimum(t_bm, t_death) > t_cens, 0, np.where(t_bm < t_death, 1, 2)).astype(
        int
    )
    return x, time, cause


# ----------------------------------------------------------------------------------------------
# Aim 1


def test_hodges_lehmann_point_is_median_of_pairwise_differences():
    a = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
    b = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])
    # Brute force with Python loops: the 81 differences, their median.
    diffs = sorted(x - y for x in a for y in b)
    assert hodges_lehmann(a, b)[0] == pytest.approx(diffs[40])


def test_hodges_lehmann_interval_inverts_the_mann_whitney_test():
    rng = np.random.default_rng(5)
    a = rng.normal(0.8, 1.0, 23)
    b = rng.normal(0.0, 1.2, 31)
    _, lo, hi = hodges_lehmann(a, b, 0.95)
    eps = 1e-9

    def p(d: float) -> float:
        return stats.mannwhitneyu(
            a - d, b, alternative="two-sided", method="asymptotic", use_continuity=False
        ).pvalue

    # Just inside the interval the test does not reject at 5 %; just outside it does.
    assert p(lo + eps) >= 0.05 and p(hi - eps) >= 0.05
    assert p(lo - eps) < 0.05 and p(hi + eps) < 0.05


def test_delong_hand_example():
    # pos = (3, 5), neg = (1, 4): psi = [[1, 0], [1, 1]], AUC = 3/4.
    # V10 = (0.5, 1), V01 = (1, 0.5); both sample variances 0.125;
    # Var = 0.125 / 2 + 0.125 / 2 = 0.125, se = sqrt(0.125).
    auc, se, lo, hi = delong_auc(np.array([3.0, 5.0]), np.array([1.0, 4.0]))
    assert auc == 0.75
    assert se == pytest.approx(math.sqrt(0.125))
    assert lo == pytest.approx(0.75 - 1.959963984540054 * math.sqrt(0.125))
    assert hi == 1.0  # clipped


def test_delong_against_proc_on_asah():
    # pROC (Robin et al. 2011) on its aSAH data, outcome Poor (cases) vs Good (controls):
    # tests/testthat/test-var.R gives var(roc(outcome, wfns)) = 0.00146991470882363,
    # var(roc(outcome, ndka)) = 0.0031908105493913, var(roc(outcome, s100b)) = 0.00266868245717244
    # (DeLong's method, the default), and tests/testthat/test-ci.auc.R the DeLong interval of
    # ndka: 0.501244999271703, 0.611957994579946 (AUC), 0.722670989888189. The printed AUC of
    # s100b in pROC's documentation is 0.7314 (95 % CI 0.6301-0.8326). wfns is ordinal (1-5):
    # many ties.
    data = pd.read_csv(Path(__file__).parent / "data" / "asah.csv", comment="#")
    poor = data["outcome"].to_numpy() == "Poor"
    assert len(data) == 113 and poor.sum() == 41
    for column, variance in (
        ("wfns", 0.00146991470882363),
        ("ndka", 0.0031908105493913),
        ("s100b", 0.00266868245717244),
    ):
        x = data[column].to_numpy(dtype=float)
        auc, se, lo, hi = delong_auc(x[poor], x[~poor])
        assert se**2 == pytest.approx(variance, rel=1e-12), column
    x = data["ndka"].to_numpy(dtype=float)
    auc, _, lo, hi = delong_auc(x[poor], x[~poor])
    np.testing.assert_allclose(
        [lo, auc, hi], [0.501244999271703, 0.611957994579946, 0.722670989888189], rtol=1e-12
    )
    x = data["s100b"].to_numpy(dtype=float)
    auc, _, lo, hi = delong_auc(x[poor], x[~poor])
    assert (round(auc, 4), round(lo, 4), round(hi, 4)) == (0.7314, 0.6301, 0.8326)


def test_rank_comparison_against_scipy_and_sklearn():
    rng = np.random.default_rng(2)
    a = np.round(rng.normal(0.5, 1, 40), 1)  # rounded: ties on purpose
    b = np.round(rng.normal(0.0, 1, 55), 1)
    res = rank_comparison(np.r_[a, np.nan], b)
    assert (res.n_a, res.n_b) == (40, 55)
    ref = stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")
    assert res.u_statistic == ref.statistic and res.p_value == pytest.approx(ref.pvalue)
    # Probability of superiority = AUC of the trapezoidal ROC curve (ties count half).
    status = np.r_[np.ones(40), np.zeros(55)]
    assert res.auc == pytest.approx(roc_auc_score(status, np.r_[a, b]))
    assert res.auc == pytest.approx(ref.statistic / (40 * 55))
    assert res.auc_lo < res.auc < res.auc_hi
    assert res.shift_lo < res.shift < res.shift_hi
    with pytest.raises(StudyError, match="at least 2"):
        rank_comparison(a[:1], b)


def test_roc_and_youden_against_brute_force():
    rng = np.random.default_rng(8)
    status = rng.random(120) < 0.4
    marker = np.round(rng.normal(status * 0.8, 1.0), 2)
    roc = roc_analysis(status.astype(float), marker)
    assert roc.auc == pytest.approx(roc_auc_score(status, marker))
    assert (roc.n_pos, roc.n_neg) == (status.sum(), (~status).sum())
    cut = youden_cutoff(status.astype(float), marker, n_boot=200, seed=1)
    # Brute force: every observed value as "positive if marker >= c", highest c on ties.
    best_j, best_c = -np.inf, None
    for c in sorted(set(marker), reverse=True):
        sens = np.mean(marker[status] >= c)
        spec = np.mean(marker[~status] < c)
        if sens + spec - 1 > best_j + 1e-12:
            best_j, best_c = sens + spec - 1, c
    assert cut.cutoff == best_c
    assert cut.youden_j == pytest.approx(best_j)
    assert cut.lo <= cut.cutoff <= cut.hi and cut.n_boot_used == 200
    again = youden_cutoff(status.astype(float), marker, n_boot=200, seed=1)
    assert (again.lo, again.hi) == (cut.lo, cut.hi)
    with pytest.raises(StudyError, match="at least 2"):
        roc_analysis(np.array([1.0, 0.0, 0.0]), np.array([1.0, 2.0, 3.0]))


def test_linear_regression_against_least_squares():
    rng = np.random.default_rng(4)
    n = 150
    X = np.column_stack([rng.random(n) < 0.5, rng.normal(60, 10, n), rng.random(n) < 0.2])
    y = 0.8 * X[:, 0] + 0.02 * X[:, 1] - 0.5 * X[:, 2] + rng.normal(0, 1, n)
    y[3] = np.nan
    X[7, 1] = np.nan
    fit = linear_regression(y, X, ["group", "age", "btt"])
    # Reference: numpy's least squares on the complete rows, textbook standard errors
    # sigma^2 (X'X)^-1 with sigma^2 = RSS / (n - p), t quantiles on n - p degrees of freedom.
    keep = np.isfinite(y) & np.isfinite(X).all(axis=1)
    X1 = np.column_stack([np.ones(keep.sum()), X[keep].astype(float)])
    coef, *_ = np.linalg.lstsq(X1, y[keep], rcond=None)
    df = keep.sum() - X1.shape[1]
    resid = y[keep] - X1 @ coef
    se = np.sqrt(np.diag(resid @ resid / df * np.linalg.inv(X1.T @ X1)))
    q = stats.t.isf(0.025, df)
    assert fit.terms == ["intercept", "group", "age", "btt"]
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-10)
    np.testing.assert_allclose(fit.se, se, rtol=1e-10)
    np.testing.assert_allclose(np.c_[fit.lo, fit.hi], np.c_[coef - q * se, coef + q * se])
    np.testing.assert_allclose(fit.p_value, 2 * stats.t.sf(np.abs(coef / se), df), rtol=1e-8)
    assert fit.n == 148 and fit.n_dropped == 2
    with pytest.raises(StudyError, match="collinear"):
        linear_regression(y, np.c_[X[:, 0], X[:, 0]])


# ----------------------------------------------------------------------------------------------
# Cox


def _breslow_score_and_schoenfeld(time, event, X, beta):
    """Score of the Breslow partial likelihood and Schoenfeld residuals, with explicit loops."""
    rows = []
    for i in np.flatnonzero(event):
        at_risk = time >= time[i]
        w = np.exp(X[at_risk] @ beta)
        rows.append(X[i] - w @ X[at_risk] / w.sum())
    resid = np.array(rows)
    return resid.sum(axis=0), resid


def test_cox_fit_reference_values():
    x, time, cause = competing_data(400, seed=3)
    rng = np.random.default_rng(3)
    z = (rng.random(400) < 0.4).astype(float)
    X = np.column_stack([x, z])
    event = cause == 1
    fit = cox_fit(time, event, X, ["log2_marker", "z"])
    # The values bonemet 0.1.0's hand-written Newton-Raphson (training/study.py, Breslow ties,
    # tolerance 1e-10 on the log-likelihood) gave on these data before statsmodels' PHReg
    # replaced it.
    np.testing.assert_allclose(fit.coef, [0.6641541911568357, -0.10488655577158523], rtol=1e-7)
    np.testing.assert_allclose(fit.se, [0.07452799693158903, 0.14717672051242991], rtol=1e-7)
    assert fit.loglik == pytest.approx(-1003.147320908251, rel=1e-12)
    np.testing.assert_allclose(
        fit.extra["ph_p_value"], [0.4967304177587397, 0.3864091126031376], rtol=1e-6
    )
    assert fit.extra["ph_global_statistic"] == pytest.approx(1.1181283539252342, rel=1e-6)
    assert fit.n_events == int(event.sum()) and fit.n == 400
    # At the maximum the Breslow score is zero and the log-likelihood is the project's own.
    score, resid = _breslow_score_and_schoenfeld(time, event, X, fit.coef)
    np.testing.assert_allclose(score, 0.0, atol=1e-6)
    assert fit.loglik == pytest.approx(cox_partial_loglik(X, time, event, fit.coef), rel=1e-12)
    # Proportional hazards: the Grambsch-Therneau formula on the loop residuals, the inverse
    # information as the covariance (fit.se squared on its diagonal).
    g = stats.rankdata(time[event])
    gc = g - g.mean()
    info = np.zeros((2, 2))
    for i in np.flatnonzero(event):
        at_risk = time >= time[i]
        w = np.exp(X[at_risk] @ fit.coef)
        xbar = w @ X[at_risk] / w.sum()
        info += (w[:, None] * (X[at_risk] - xbar)).T @ (X[at_risk] - xbar) / w.sum()
    V = np.linalg.inv(info)
    np.testing.assert_allclose(np.sqrt(np.diag(V)), fit.se, rtol=1e-6)
    u = gc @ resid
    d = event.sum()
    t_j = d * (V @ u) ** 2 / (np.diag(V) * (gc @ gc))
    np.testing.assert_allclose(fit.extra["ph_p_value"], stats.chi2.sf(t_j, 1), rtol=1e-5)
    t_glob = d * u @ V @ u / (gc @ gc)
    assert fit.extra["ph_global_statistic"] == pytest.approx(t_glob, rel=1e-5)
    # Incomplete rows are left out and counted.
    X_missing = X.copy()
    X_missing[[0, 5], 1] = np.nan
    partial = cox_fit(time, event, X_missing, ["log2_marker", "z"])
    assert (partial.n, partial.n_dropped) == (398, 2)
    keep = np.isfinite(X_missing).all(axis=1)
    ref = cox_fit(time[keep], event[keep], X[keep], ["log2_marker", "z"])
    np.testing.assert_allclose(partial.coef, ref.coef)


def test_cox_ph_check_detects_a_time_varying_effect():
    # Hazard ratio exp(1.5) for x = 1 during the first 300 days, 1 afterwards: non-proportional.
    rng = np.random.default_rng(10)
    n = 1500
    x = (rng.random(n) < 0.5).astype(float)
    rate = 1 / 800
    t_early = rng.exponential(1 / (rate * np.exp(1.5 * x)))
    t_late = 300 + rng.exponential(1 / rate, n)
    t = np.where(t_early < 300, t_early, t_late)
    cens = rng.uniform(100, 2500, n)
    time, event = np.minimum(t, cens), t <= cens
    assert cox_fit(time, event, x, ["x"]).extra["ph_global_p_value"] < 1e-3
    # The same design with a constant hazard ratio passes.
    t_ph = rng.exponential(1 / (rate * np.exp(0.7 * x)))
    ph = cox_fit(np.minimum(t_ph, cens), t_ph <= cens, x, ["x"])
    assert ph.extra["ph_global_p_value"] > 0.01


def test_cox_fit_refuses_what_it_cannot_estimate():
    time = np.arange(1.0, 21.0)
    event = np.zeros(20)
    event[:3] = 1
    with pytest.raises(StudyError, match="needs at least 5 events"):
        cox_fit(time, event, np.arange(20.0), ["x"])
    # Complete separation: every event has x = 1, every non-event x = 0.
    x = np.zeros(40)
    event = np.zeros(40)
    x[:10] = 1
    event[:10] = 1
    with pytest.raises(StudyError, match="did not converge"):
        cox_fit(np.arange(1.0, 41.0), event, x, ["x"])


# ----------------------------------------------------------------------------------------------
# Cumulative incidence and Gray's score


def test_gray_scores_hand_example():
    # Group A: (1, bone), (3, death), (4, bone); group B: (2, bone), (3, censored), (5, bone).
    # t=1: R_A = R_B = 3, A has the event: score_A += 1 - 3/6 = 0.5.
    # t=2: A: Y=2, S=2/3, F=1/3 -> R_A = 2 (2/3)/(2/3) = 2; R_B = 3; B's event: score_A -= 2/5.
    # t=3: a death (A) and a censoring (B): no bone metastasis, no contribution. After it
    #      S_A = 1/3, F_A = 1/3; S_B = 2/3, F_B = 1/3.
    # t=4: A: Y=1 -> R_A = 1 (2/3)/(1/3) = 2 (the patient who died stays in the subdistribution
    #      risk set); B: Y=1 -> R_B = 1 (2/3)/(2/3) = 1; A's event: score_A += 1 - 2/3.
    # t=5: only B at risk: contribution 0. Total score_A = 0.5 - 0.4 + 1/3 = 13/30.
    time = np.array([1.0, 2.0, 3.0, 3.0, 4.0, 5.0])
    cause = np.array([1, 1, 2, 0, 1, 1])
    group = np.array([0, 1, 0, 1, 0, 1])
    score = gray_scores(time, cause, group, 2)
    np.testing.assert_allclose(score, [13 / 30, -13 / 30])


def _just_before(steps: tuple[np.ndarray, np.ndarray], t: float, start: float) -> float:
    """A right-continuous step function (jump times, values) evaluated just before ``t``."""
    i = np.searchsorted(steps[0], t, side="left") - 1
    return start if i < 0 else float(steps[1][i])


def test_gray_scores_from_scikit_survival_estimates():
    # Gray (1988), rho = 0: score_k = sum over bone-metastasis times of d1_k - d1 R_k / sum R_l,
    # with the subdistribution risk set R_k = Y_k (1 - F_k(t-)) / S_k(t-). Here S_k (Kaplan-Meier
    # of either event) and F_k (Aalen-Johansen incidence of bone metastasis) come from
    # scikit-survival, an implementation independent of gray_scores' cumulative products, on
    # data with many tied times and three groups.
    _, time, cause = competing_data(300, seed=4)
    time = np.round(time / 30) * 30 + 1
    group = np.random.default_rng(1).integers(0, 3, 300)
    order = np.argsort(time, kind="mergesort")
    time, cause, group = time[order], cause[order], group[order]
    surv, inc = [], []
    for k in range(3):
        mine = group == k
        surv.append(kaplan_meier_estimator(cause[mine] > 0, time[mine]))
        days, cif = cumulative_incidence_competing_risks(cause[mine], time[mine])
        inc.append((days, cif[1]))
    expected = np.zeros(3)
    for t in np.unique(time[cause == 1]):
        at_risk = np.array([np.sum((group == k) & (time >= t)) for k in range(3)])
        r = np.array(
            [
                at_risk[k] * (1 - _just_before(inc[k], t, 0.0)) / _just_before(surv[k], t, 1.0)
                if at_risk[k]
                else 0.0
                for k in range(3)
            ]
        )
        d1 = np.array([np.sum((time == t) & (cause == 1) & (group == k)) for k in range(3)])
        expected += d1 - d1.sum() * r / r.sum()
    np.testing.assert_allclose(gray_scores(time, cause, group, 3), expected, rtol=1e-10)


def test_gray_scores_reduce_to_logrank_without_competing_events():
    # Log-rank observed minus expected for group 1, computed with explicit loops.
    x, time, cause = competing_data(60, seed=9, death_rate=0)
    group = (x > 0).astype(int)
    order = np.argsort(time, kind="mergesort")
    time, cause, group = time[order], cause[order], group[order]
    o_minus_e = 0.0
    for t in np.unique(time[cause == 1]):
        at_risk = time >= t
        d = np.sum((time == t) & (cause == 1))
        d1 = np.sum((time == t) & (cause == 1) & (group == 1))
        o_minus_e += d1 - d * np.sum(at_risk & (group == 1)) / np.sum(at_risk)
    assert gray_scores(time, cause, group, 2)[1] == pytest.approx(o_minus_e)


def test_gray_test_agrees_with_logrank_p_value_without_competing_events():
    # Without competing events Gray's test is the log-rank test: the permutation p value must be
    # close to statsmodels' asymptotic log-rank p value (Monte Carlo error about 0.01).
    x, time, cause = competing_data(300, seed=12, beta=0.1, death_rate=0)
    group = (x > 0).astype(int)
    chisq, p_ref = survdiff(time, (cause == 1).astype(float), group)
    res = gray_test(time, cause, group, n_perm=2000, seed=3)
    assert 0.01 < p_ref < 0.5  # a non-trivial case
    assert res.p_value == pytest.approx(p_ref, abs=0.03)
    assert res.statistic == pytest.approx(chisq, rel=0.1)


def test_gray_test_null_and_power():
    # Under the null (random labels) the p value is not small; a strong marker effect is found.
    x, time, cause = competing_data(500, seed=21)
    rng = np.random.default_rng(0)
    null = gray_test(time, cause, rng.integers(0, 3, 500), n_perm=499, seed=1)
    tertile = np.digitize(x, np.quantile(x, [1 / 3, 2 / 3]))
    alt = gray_test(time, cause, tertile, n_perm=499, seed=1)
    assert null.p_value > 0.05
    assert alt.p_value == pytest.approx(1 / 500)
    assert alt.df == 2 and sum(alt.n) == 500
    assert alt.score[2] > 0 > alt.score[0]  # more bone metastases than expected in the top third
    assert sum(alt.n_events) == int((cause == 1).sum())
    with pytest.raises(StudyError, match="at least 2 groups"):
        gray_test(time, cause, np.zeros(500), n_perm=99)


def test_incidence_by_group_reuses_aalen_johansen():
    x, time, cause = competing_data(300, seed=4)
    group = np.where(x > 0, "high", "low")
    grid = np.array([0.0, 365.25, 730.5])
    curves = incidence_by_group(time, cause, group, grid, order=["low", "high", "absent"])
    for name in ("low", "high"):
        mine = group == name
        events = np.array(["censored", "bone_metastasis", "death"])[cause[mine]]
        ref, _ = aalen_johansen(make_target(events, time[mine]), grid)
        np.testing.assert_allclose(curves.cif[name], ref)
        assert curves.n[name] == mine.sum()
        assert curves.n_events[name] == np.sum(cause[mine] == 1)
        assert (curves.lo[name] <= curves.cif[name] + 1e-12).all()
    assert curves.n["absent"] == 0 and np.isnan(curves.cif["absent"]).all()
    as_json = json_ready(curves)
    assert as_json["n"]["absent"] == 0 and as_json["cif"]["absent"][0] is None
