"""The monitor on simulated scenarios whose answer is known (features/simulate/drift.py):
a lot read x1.3 is flagged in its lab and no other, with the day it began; a null run raises no
alarm (seeded; each check's false-alarm rate is in docs/monitoring.md, measured in
benchmarks/bench_monitor.py); the CUSUM signals after a hazard increase and not before."""

from __future__ import annotations

import numpy as np
import pytest

from features.simulate.drift import (
    change_hazard,
    monitoring_scenario,
    qc_results,
    shift_marker,
    split_at,
    truth_predictions,
    write_tables,
)
from training.monitoring.inputs import load_monitor_cohort
from training.monitoring.monitor import MonitorCohort, MonitorConfig, run_checks

SPLIT = "2025-01-01"  # reference: enrolled before; current: on or after
CONFIG = MonitorConfig(n_boot=30)


@pytest.fixture(scope="module")
def scenario():
    """3,000 patients enrolled over 3 years in 2 labs, lots changing yearly (seed 0): about
    450 enrollment draws per lot, enough to find x1.3 (docs/monitoring.md, "How large a shift")."""
    return monitoring_scenario(3000, seed=0, n_labs=2, lot_days=365)


def _cohorts(scn, tmp_path, predictions: bool):
    """Reference and current cohorts read back through the contract (patients tables)."""
    rp, _, cp, _ = split_at(scn, SPLIT)
    out = []
    for name, p in (("reference", rp), ("current", cp)):
        paths = write_tables(p, None, tmp_path / name)
        cohort, dates = load_monitor_cohort(paths["patients"])
        pred = truth_predictions(scn, cohort.patients["patient_id"]) if predictions else None
        out.append(MonitorCohort(cohort, dates, pred))
    return out


def _lot_start(scn, lab, lot):
    p = scn.patients
    return str(p.loc[(p["lab_id"] == lab) & (p["reagent_lot"] == lot), "enrollment_date"].min())


def test_a_lot_read_higher_is_flagged_in_its_lab_and_no_other(scenario, tmp_path):
    start = _lot_start(scenario, "L2", "L2-LOT03")
    assert start > SPLIT
    shifted = shift_marker(scenario, 1.3, start, "L2", "L2-LOT03")
    ref, cur = _cohorts(shifted, tmp_path, predictions=False)
    qc = qc_results(shifted, every_days=14, since=SPLIT)
    from training.monitoring.inputs import check_qc

    result = run_checks(ref, cur, check_qc(qc.astype(str)), CONFIG)
    marker = [a for a in result.alarms if a["kind"] == "marker_shift"]
    assert [(a["lab_id"], a["reagent_lot"]) for a in marker] == [("L2", "L2-LOT03")]
    assert abs((np.datetime64(marker[0]["began"]) - np.datetime64(start)).astype(int)) <= 30
    row = next(
        r for r in result.numbers["marker"]["marker_shift"] if r["reagent_lot"] == "L2-LOT03"
    )
    assert 1.15 < row["ratio"] < 1.5
    qc_lots = {
        (a["lab_id"], a["reagent_lot"]): a["began"]
        for a in result.alarms
        if a["kind"] == "westgard"
    }
    assert qc_lots.get(("L2", "L2-LOT03")) is not None
    assert np.datetime64(qc_lots[("L2", "L2-LOT03")]) - np.datetime64(start) <= np.timedelta64(
        14, "D"
    )


def test_a_lab_shifted_from_a_day_says_the_day(scenario, tmp_path):
    day = "2026-02-01"
    shifted = shift_marker(scenario, 1.4, day, "L1")
    ref, cur = _cohorts(shifted, tmp_path, predictions=False)
    result = run_checks(ref, cur, None, MonitorConfig(by=("lab_id",)))
    marker = [a for a in result.alarms if a["kind"] == "marker_shift"]
    assert [a["lab_id"] for a in marker] == ["L1"]
    assert abs((np.datetime64(marker[0]["began"]) - np.datetime64(day)).astype(int)) <= 60


def test_a_null_run_raises_no_alarm(scenario, tmp_path):
    ref, cur = _cohorts(scenario, tmp_path, predictions=True)
    # The last two months' controls (weekly): Westgard rules reject about 0.7 % of in-control
    # results (test_statistics), so a monitor is given the controls since its previous run.
    qc = qc_results(scenario, every_days=7, since="2028-11-01")
    from training.monitoring.inputs import check_qc

    result = run_checks(ref, cur, check_qc(qc.astype(str)), CONFIG)
    assert result.alarms == []
    assert set(result.not_computed) <= {"marker_onset"}  # everything was checked
    ratios = [r for r in result.numbers["observed_expected"] if r["site_id"] == "all"]
    assert all(r["ratio_lo"] <= 1.0 <= r["ratio_hi"] for r in ratios)


def test_the_cusum_signals_after_a_hazard_increase_and_not_before(scenario, tmp_path):
    change = "2026-01-01"
    ref, cur = _cohorts(change_hazard(scenario, 2.0, change), tmp_path, predictions=True)
    result = run_checks(ref, cur, None, CONFIG)
    cusum = result.numbers["cusum"]
    assert cusum["signal"] is not None and cusum["signal"] > change
    assert cusum["began"] >= "2025-10-01"  # the excursion that signalled began near the change
    assert any(a["kind"] == "cusum" for a in result.alarms)


def test_predictions_moved_in_one_site_are_flagged_there_and_nowhere_else(scenario, tmp_path):
    """Known answer for the prediction-drift check: the current predictions of site S2 (its one
    lab L2) moved by an odds ratio of 2 (as a model reading a shifted input would), S1's left
    as they were. The check flags S2 and L2 and nothing else, with the current mean above the
    reference's."""
    from scipy.special import expit, logit

    ref, cur = _cohorts(scenario, tmp_path, predictions=True)
    site = cur.cohort.patients["site_id"].to_numpy(dtype=object)
    moved = cur.predictions.copy()
    in_s2 = moved["patient_id"].isin(cur.cohort.patients.loc[site == "S2", "patient_id"])
    assert in_s2.sum() > 300 and (~in_s2).sum() > 300
    for col in [c for c in moved.columns if c.startswith("p_bone_met_")]:
        moved.loc[in_s2, col] = expit(logit(moved.loc[in_s2, col].clip(1e-6, 1 - 1e-6)) + np.log(2))
    shifted = MonitorCohort(cur.cohort, cur.enrollment, moved)
    result = run_checks(ref, shifted, None, CONFIG)
    drift = [a for a in result.alarms if a["kind"] == "prediction_drift"]
    assert sorted(f"{a.get('site_id')}/{a.get('lab_id')}" for a in drift) == [
        "None/L2",
        "S2/None",
    ]
    by_site = {r["site_id"]: r for r in result.numbers["prediction_drift"]["site_id"]}
    assert by_site["S2"]["alarm"] and not by_site["S1"]["alarm"]
    assert by_site["S2"]["current_mean"] > by_site["S1"]["current_mean"]
    # The same predictions unmoved: no prediction-drift alarm (the null run checks every kind).
    assert not [
        a for a in run_checks(ref, cur, None, CONFIG).alarms if a["kind"] == "prediction_drift"
    ]
