"""Units of the monitor's statistics: Holm, the onset of a shift, the hazard read from
incidences, the CUSUM's control limit, Westgard rules and the qc table's errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.incidence import cause_specific_cumhaz, cumhaz_at
from training.monitoring.cusum import control_limit, run_lengths
from training.monitoring.groups import compare_groups, holm, onset_index
from training.monitoring.inputs import MonitorInputError, check_qc, split_enrollment
from training.monitoring.westgard import westgard


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5, 0.2])
    assert np.allclose(holm(p), multipletests(p, method="holm")[1])


def test_onset_is_where_the_step_begins():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 60), rng.normal(1.5, 1, 40)])
    assert abs(onset_index(x, 0.0, 1.0, 1.0) - 60) <= 3


def test_a_shifted_group_is_flagged_alone_with_its_onset():
    rng = np.random.default_rng(1)
    dates = np.datetime64("2025-01-01") + np.arange(300).astype("timedelta64[D]")
    ref = pd.DataFrame({"lab_id": rng.choice(["A", "B"], 600), "x": rng.normal(0, 0.5, 600)})
    cur = pd.DataFrame(
        {
            "lab_id": np.repeat(["A", "B"], 150),
            "date": np.concatenate([dates[:150]] * 2),
            "x": rng.normal(0, 0.5, 300),
        }
    )
    cur.loc[(cur["lab_id"] == "B") & (cur["date"] >= np.datetime64("2025-03-02")), "x"] += np.log(
        1.6
    )
    rows = {
        r["lab_id"]: r for r in compare_groups(cur, ref, "x", ["lab_id"], ["lab_id"], "rank", 0.01)
    }
    assert not rows["A"]["alarm"] and rows["B"]["alarm"]
    began = np.datetime64(rows["B"]["began"])
    assert abs((began - np.datetime64("2025-03-02")).astype(int)) <= 10


def test_cumulative_hazard_of_constant_hazards():
    # Constant cause-specific hazards l1, l2: F1(t) = l1 / (l1 + l2) (1 - exp(-(l1 + l2) t)).
    l1, l2 = 0.02, 0.03
    t = np.arange(1.0, 61.0)
    f1 = l1 / (l1 + l2) * (1 - np.exp(-(l1 + l2) * t))
    f2 = l2 / (l1 + l2) * (1 - np.exp(-(l1 + l2) * t))
    cumhaz = cause_specific_cumhaz(f1[None, :], f2[None, :])
    grid = np.concatenate([[0.0], t])
    assert np.allclose(cumhaz[0], l1 * grid, rtol=1e-3)
    assert cumhaz_at(grid, cumhaz, np.array([30.5]))[0] == pytest.approx(l1 * 30.5, rel=1e-3)


def test_control_limit_gives_the_stated_run_length():
    h = control_limit(200.0, 2.0)
    # Independent runs (another seed) have the stated in-control ARL within their error.
    lengths = run_lengths(h, 2.0, 1.0, n_runs=3000, seed=123)
    se = lengths.std() / np.sqrt(lengths.size)
    assert abs(lengths.mean() - 200.0) < 3 * se + 0.02 * 200.0
    # ... and a doubled hazard is found far sooner.
    assert run_lengths(h, 2.0, 2.0, n_runs=500, seed=1).mean() < 20


def _series(z, lot="LOT1", level="low", start="2025-01-01"):
    dates = (np.datetime64(start) + np.arange(len(z)).astype("timedelta64[D]")).astype(str)
    return pd.DataFrame(
        {
            "lab_id": "L1",
            "instrument_id": "C1",
            "reagent_lot": lot,
            "date": dates,
            "control_level": level,
            "value": 1.0 + 0.1 * np.asarray(z),
            "target_mean": 1.0,
            "target_sd": 0.1,
        }
    )


@pytest.mark.parametrize(
    ("z", "rule", "began"),
    [
        ([0, 0.5, -3.5, 0], "1-3s", 2),
        ([0, 2.5, 2.2, 0], "2-2s", 1),
        ([0, -1.5, -1.2, -1.8, -1.1, 0], "4-1s", 1),
        ([-0.5] + [0.3] * 10, "10x", 1),
    ],
)
def test_each_westgard_rule_fires_where_it_should(z, rule, began):
    _, violations = westgard(check_qc(_series(z)))
    assert [v["rule"] for v in violations] == [rule]
    assert violations[0]["began"] == str(np.datetime64("2025-01-01") + began)


def test_r4s_is_within_a_run_and_a_new_lot_restarts_the_count():
    both = pd.concat([_series([0, 2.5]), _series([0, -2.5], level="high")], ignore_index=True)
    _, violations = westgard(check_qc(both))
    assert [v["rule"] for v in violations] == ["R-4s"]
    split = pd.concat([_series([0.3] * 6), _series([0.3] * 6, lot="LOT2", start="2025-01-07")])
    assert westgard(check_qc(split))[1] == []


def test_without_targets_the_first_20_results_set_them():
    rng = np.random.default_rng(3)
    qc = _series(np.concatenate([rng.normal(0, 1, 20), [0.0, 8.0]])).drop(
        columns=["target_mean", "target_sd"]
    )
    chart, violations = westgard(check_qc(qc))
    assert chart["baseline"].sum() == 20 and [v["rule"] for v in violations] == ["1-3s"]
    short = check_qc(qc.iloc[:15])
    chart, violations = westgard(short)
    assert violations == [] and "more than 20" in chart["note"].iloc[0]


def test_bad_qc_tables_name_every_problem():
    bad = _series([0, 0, 0]).astype(object)
    bad.loc[0, "date"] = "2025-13-45"
    bad.loc[1, "value"] = "-1"
    bad.loc[2, "lab_id"] = "-L1"
    with pytest.raises(MonitorInputError) as err:
        check_qc(bad.assign(extra=1))
    assert "unknown column" in str(err.value)
    with pytest.raises(MonitorInputError) as err:
        check_qc(bad)
    text = str(err.value)
    assert "row 1, column date: not a date YYYY-MM-DD" in text
    assert "row 2, column value: must be a finite number > 0" in text
    assert "row 3, column lab_id" in text
    with pytest.raises(MonitorInputError, match="the table has no rows"):
        check_qc(bad.iloc[:0])
    with pytest.raises(MonitorInputError, match="column value: required column missing"):
        check_qc(bad.drop(columns=["value"]))


def test_enrollment_dates_all_or_none():
    raw = pd.DataFrame({"patient_id": ["A", "B"], "enrollment_date": ["2025-01-01", ""]})
    with pytest.raises(MonitorInputError, match="row 2, column enrollment_date: missing"):
        split_enrollment(raw)
    rest, dates = split_enrollment(raw.assign(enrollment_date=["2025-01-01", "2025-02-01"]))
    assert list(rest.columns) == ["patient_id"] and str(dates[1]) == "2025-02-01"


def test_westgard_false_rejections_of_in_control_results():
    # Two levels, two labs, daily for five years, on target: the multirule rejects 0.3-1.5 % of
    # results (1-3s alone 0.27 %; Westgard et al. 1981 give about 1 % per run for this set).
    from features.simulate.drift import monitoring_scenario, qc_results

    scn = monitoring_scenario(50, seed=0, n_labs=2)
    chart, _ = westgard(check_qc(qc_results(scn, every_days=1).astype(str)))
    assert len(chart) > 7000
    assert 0.003 < (chart["rules"] != "").mean() < 0.015
