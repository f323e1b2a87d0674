"""What a split's evaluation computes: names, and one definition of the observed incidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.evaluation.cohorts import simulate
from training.evaluation.incidence import aalen_johansen
from training.evaluation.suite import HEADLINE, evaluate_split, point_metrics
from training.models.competing import DAYS_PER_MONTH


@pytest.fixture(scope="module")
def split():
    x_train, y_train, _ = simulate(500, seed=11)
    x, y, true_cif = simulate(400, seed=12)
    return y_train, y, x, {h: true_cif(h) for h in (12, 24, 36)}


def test_observed_incidence_is_aalen_johansen_in_the_metrics_and_the_subgroups(split):
    # One definition: observed_incidence_<h>m is the Aalen-Johansen estimate wherever it is
    # logged, and calibration-in-the-large is the mean prediction minus it (scikit-survival's
    # curve as the reference; observed_incidence sums the same terms directly: to rounding).
    y_train, y, x, cif = split
    rows = pd.DataFrame(
        {
            "disease_setting": np.where(x > 0, "metastatic", "early"),
            "menopausal_status": "post",
            "er_status": "positive",
        }
    )
    evaluation = evaluate_split(y_train, y, x, cif, rows, n_boot=0, seed=0)
    overall = evaluation.subgroups.query("variable == 'all'").set_index("metric")["value"]
    for h in cif:
        aj = aalen_johansen(y, h * DAYS_PER_MONTH)[0][0]
        assert evaluation.metrics[f"observed_incidence_{h}m"] == pytest.approx(aj, rel=1e-12)
        assert overall[f"observed_incidence_{h}m"] == pytest.approx(aj, rel=1e-12)
        assert evaluation.metrics[f"calibration_in_the_large_{h}m"] == pytest.approx(
            np.mean(cif[h]) - aj, abs=1e-14
        )


def test_point_metrics_names_every_headline_metric(split):
    y_train, y, x, cif = split
    names = set(point_metrics(y_train, y, x, cif))
    assert set(HEADLINE) <= names
    assert {"integrated_brier", "brier_headline", "ici_24m", "scaled_brier_36m"} <= names


@pytest.mark.parametrize("max_resample", [None, 300])
def test_joint_intervals_equal_the_one_by_one_bootstraps(split, max_resample):
    # joint_intervals draws each resample once for every statistic (headline, calibration at
    # 12 and 36 months, the marker's paired increments) and counts Harrell's and Uno's pairs
    # once: the intervals must be exactly those of the functions it replaces, called one by
    # one with the same seed (scipy's percentile bootstrap at n = 400; the m-out-of-n one
    # with 300 patients per resample).
    from training.evaluation.accuracy import cumulative_dynamic_auc
    from training.evaluation.bootstrap import paired_bootstrap_difference
    from training.evaluation.concordance import censoring_estimator, fast_harrell_c, uno_c
    from training.evaluation.suite import (
        INCREMENTS,
        bootstrap_intervals,
        calibration_intervals,
        joint_intervals,
    )

    y_train, y, x, cif = split
    reference = x + np.random.default_rng(1).normal(scale=0.8, size=x.size)
    intervals, increments = joint_intervals(
        y_train, y, x, cif, 60, 7, reference_risk=reference, max_resample=max_resample
    )
    expected = {
        **bootstrap_intervals(y_train, y, x, cif[24], 60, 7, max_resample=max_resample),
        **calibration_intervals(y, cif, 60, 7, max_resample),
    }
    assert intervals == expected  # Interval: estimate, bounds, resamples used, size
    assert len(intervals) == 11
    cens = censoring_estimator(y_train)
    fns = {
        "harrell_c": fast_harrell_c,
        "uno_c": lambda yy, r: uno_c(y_train, yy, r, 60 * DAYS_PER_MONTH, cens),
        "td_auc_24m": lambda yy, r: cumulative_dynamic_auc(y_train, yy, r, 24, cens),
    }
    assert tuple(increments) == INCREMENTS
    for name, fn in fns.items():
        alone = paired_bootstrap_difference(
            fn, y, x, reference, n_boot=60, seed=7, max_resample=max_resample
        )
        assert increments[name] == alone
        assert increments[name].lo < increments[name].estimate < increments[name].hi
    # No resamples: no intervals, the increments' estimates without bounds.
    none, estimates = joint_intervals(y_train, y, x, cif, 0, 7, reference_risk=reference)
    assert none == {}
    assert estimates["uno_c"].estimate == increments["uno_c"].estimate
    assert np.isnan(estimates["uno_c"].lo) and estimates["uno_c"].n_boot_used == 0


def test_concordance_pair_is_harrell_and_uno_from_one_count(split):
    from training.evaluation.concordance import (
        censoring_estimator,
        concordance_pair,
        fast_harrell_c,
        uno_c,
    )

    y_train, y, x, _ = split
    cens = censoring_estimator(y_train)
    tau = 60 * DAYS_PER_MONTH
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = rng.integers(0, len(y), len(y))
        risk = np.round(x[idx], 1)  # tied risks
        assert concordance_pair(y_train, y[idx], risk, tau, cens) == (
            fast_harrell_c(y[idx], risk),
            uno_c(y_train, y[idx], risk, tau, cens),
        )
    # Undefined (no bone metastasis among the patients): NaN for both, where each raises.
    none = y[y["cause"] != 1][:50]
    assert np.isnan(concordance_pair(y_train, none, np.arange(50.0), tau, cens)).all()
