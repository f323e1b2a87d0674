"""Landmark trajectory features: hand-computed values and no leakage from after the landmark.

References: the slope is checked against ``numpy.polyfit`` (an independent least-squares fit);
the other values are worked out by hand in the comments. The leakage tests change, add and delete
draws after the landmark (and on or after the outcome) and require every feature to stay equal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.contract import validate_cohort
from features.landmark import (
    DAYS_PER_YEAR,
    PERCENT_FLOOR,
    TRAJECTORY_FEATURES,
    draw_table,
    landmark_dataset,
    summarize_draws,
    trajectory_features,
)
from features.simulate import simulate_cohort
from features.transformers import marker_percent

LANDMARKS = (91.0, 183.0, 365.0)


def patient(pid: str, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "patient_id": pid,
        "age_years": 60,
        "disease_setting": "metastatic",
        "bone_metastasis_at_enrollment": False,
        "time_days": 1000.0,
        "event": "censored",
    }
    row.update(values)
    return row


def cohort(patients: list[dict], draws: list[dict] | None):
    frame = pd.DataFrame(patients)
    meas = None if draws is None else pd.DataFrame(draws)
    c = validate_cohort(frame, meas)
    return c.patients, c.measurements


@pytest.fixture(scope="module")
def sim():
    """A small simulated cohort (typed), with repeated draws for most patients."""
    s = simulate_cohort(150, seed=11)
    c = validate_cohort(s.patients, s.measurements)
    return c.patients, c.measurements


# ----------------------------------------------------------------------------------------------
# The kernel


def test_kernel_hand_computed_example():
    days = np.array([180.0, 0.0, 90.0, 400.0])  # unsorted on purpose
    pct = np.array([0.08, 0.04, 0.05, 1.0])
    out = summarize_draws(days, pct, 200.0)
    # Draws on days 0, 90, 180 are used (400 > 200). latest = log2(0.08), baseline = log2(0.04),
    # change = log2(0.08 / 0.04) = 1, three draws, 200 - 180 = 20 days since the latest.
    assert out[0] == pytest.approx(np.log2(0.08))
    assert out[1] == pytest.approx(np.log2(0.04))
    assert out[2] == pytest.approx(1.0)
    assert out[4] == 3
    assert out[5] == pytest.approx(20.0)
    # Independent reference: numpy's polynomial least squares on (years, log2 percent).
    ref = np.polyfit(np.array([0.0, 90.0, 180.0]) / DAYS_PER_YEAR, np.log2([0.04, 0.05, 0.08]), 1)
    assert out[3] == pytest.approx(ref[0], rel=1e-12)
    # Worked by hand: t = (0, 90, 180) / 365.25 with mean 90 / 365.25, so Sxx = 2 (90 / 365.25)^2
    # and Sxy = (90 / 365.25) (log2 0.08 - log2 0.04) = 90 / 365.25: slope = 365.25 / 180 per year.
    assert out[3] == pytest.approx(365.25 / 180.0, rel=1e-12)


def test_kernel_edge_cases():
    nan = np.nan
    # No usable draw: count 0, everything else undefined.
    none = summarize_draws(np.array([]), np.array([]), 100.0)
    assert none[4] == 0 and np.isnan(np.delete(none, 4)).all()
    # Only draws after the landmark, or without a percent: same as none.
    late = summarize_draws(np.array([0.0, 150.0]), np.array([nan, 0.05]), 100.0)
    np.testing.assert_array_equal(late, none)
    # One draw: change 0, slope undefined.
    one = summarize_draws(np.array([0.0]), np.array([0.05]), 100.0)
    np.testing.assert_allclose(one[[0, 1, 2, 4, 5]], [np.log2(0.05), np.log2(0.05), 0, 1, 100])
    assert np.isnan(one[3])
    # A 0 % draw is finite (the documented floor).
    zero = summarize_draws(np.array([0.0, 30.0]), np.array([0.05, 0.0]), 30.0)
    assert zero[0] == np.log2(PERCENT_FLOOR)
    assert np.isfinite(zero).all()
    # The landmark day itself is included ("on or before").
    on = summarize_draws(np.array([0.0, 30.0]), np.array([0.05, 0.1]), 30.0)
    assert on[4] == 2 and on[5] == 0.0
    # Bad landmarks are refused rather than silently giving "no draws".
    for bad in (np.nan, np.inf, -1.0):
        with pytest.raises(ValueError, match="landmark_day must be a finite number >= 0"):
            summarize_draws(np.array([0.0]), np.array([0.05]), bad)
    with pytest.raises(ValueError, match="one length"):
        summarize_draws(np.array([0.0, 1.0]), np.array([0.05]), 10.0)


# ----------------------------------------------------------------------------------------------
# The pandas path


def test_draw_table_sources_and_outcome_rule():
    patients, meas = cohort(
        [
            # Counts at enrollment, no measurements: the patients row is the day-0 draw.
            patient("A", oc_positive_events=40, pbmc_events=100_000, oc_positive_percent=0.04),
            # A day-0 measurement exists: it wins over the patients row.
            patient("B", oc_positive_percent=0.02, time_days=300.0, event="bone_metastasis"),
            # No marker at all and no draws.
            patient("C"),
        ],
        [
            {"patient_id": "B", "day": 0, "oc_positive_percent": 0.03},
            {"patient_id": "B", "day": 100, "oc_positive_events": 50, "pbmc_events": 100_000},
            {"patient_id": "B", "day": 300, "oc_positive_percent": 0.2},  # on the outcome day
            {"patient_id": "B", "day": 310, "oc_positive_percent": 0.3},  # after it
        ],
    )
    table = draw_table(patients, meas)
    assert list(table.columns) == ["patient_id", "day", "percent"]
    a = table[table.patient_id == "A"]
    # From counts with half an event of continuity: 100 * 40.5 / 100000.5.
    assert a["percent"].tolist() == pytest.approx([100 * 40.5 / 100_000.5])
    b = table[table.patient_id == "B"]
    assert b["day"].tolist() == [0.0, 100.0]  # days 300 and 310 are on/after the outcome
    assert b["percent"].tolist() == pytest.approx([0.03, 100 * 50.5 / 100_000.5])
    assert "C" not in set(table.patient_id)
    feats = trajectory_features(patients, meas, 1000.0)
    assert feats["oc_n_draws"].tolist() == [1, 2, 0]
    assert feats.loc[1, "oc_latest_log2"] == pytest.approx(np.log2(100 * 50.5 / 100_000.5))


def test_no_measurements_table_uses_enrollment_only():
    patients, _ = cohort([patient("A", oc_positive_percent=0.05), patient("B")], None)
    feats = trajectory_features(patients, None, 183.0)
    assert feats["oc_n_draws"].tolist() == [1, 0]
    assert feats.loc[0, "oc_latest_log2"] == pytest.approx(np.log2(0.05))
    assert feats.loc[0, "oc_days_since_latest"] == 183.0


def test_kernel_agrees_with_pandas_path(sim):
    patients, meas = sim
    rng = np.random.default_rng(3)
    landmarks = rng.choice([0.0, 91.0, 183.0, 365.0, 800.0], size=len(patients))
    feats = trajectory_features(patients, meas, landmarks)
    assert list(feats.columns) == list(TRAJECTORY_FEATURES)
    assert isinstance(feats.index, pd.RangeIndex) and len(feats) == len(patients)
    # Independent assembly of each patient's draws straight from the two tables.
    pct_m = marker_percent(
        meas["oc_positive_percent"].to_numpy(float),
        meas["oc_positive_events"].to_numpy(float),
        meas["pbmc_events"].to_numpy(float),
    )
    pct_p = marker_percent(
        patients["oc_positive_percent"].to_numpy(float),
        patients["oc_positive_events"].to_numpy(float),
        patients["pbmc_events"].to_numpy(float),
    )
    checked = 0
    for i, row in patients.iterrows():
        mine = (meas["patient_id"] == row["patient_id"]).to_numpy()
        days, pct = meas["day"].to_numpy(float)[mine], pct_m[mine]
        if not (days == 0).any():
            days, pct = np.r_[0.0, days], np.r_[pct_p[i], pct]
        t_out = row["time_days"]
        if np.isfinite(t_out):
            days, pct = days[days < t_out], pct[days < t_out]
        expected = summarize_draws(days, pct, landmarks[i])
        np.testing.assert_allclose(feats.iloc[i].to_numpy(), expected, rtol=1e-12, equal_nan=True)
        checked += np.count_nonzero(days <= landmarks[i]) >= 3
    assert checked > 20  # the comparison covered patients with real trajectories


# ----------------------------------------------------------------------------------------------
# No leakage


def _perturb_after(meas: pd.DataFrame, landmark: float, seed: int) -> pd.DataFrame:
    """Change, delete and add draws strictly after ``landmark``; earlier rows untouched."""
    rng = np.random.default_rng(seed)
    m = meas.copy()
    after = m["day"].to_numpy() > landmark
    # Change: new percent (counts dropped, so the percent is what counts), random magnitudes.
    change = after & (rng.random(len(m)) < 0.5)
    m.loc[change, "oc_positive_percent"] = rng.uniform(0.0, 5.0, change.sum())
    m.loc[change, ["oc_positive_events", "pbmc_events"]] = np.nan
    # Delete a third of the later draws.
    m = m.loc[~(after & (rng.random(len(m)) < 0.33))]
    # Add draws after the landmark (days not used by that patient yet).
    ids = rng.choice(m["patient_id"].unique(), size=40)
    extra = pd.DataFrame(
        {
            "patient_id": ids,
            "day": np.round(landmark + rng.uniform(0.1, 900, ids.size), 1),
            "oc_positive_percent": rng.uniform(0.0, 5.0, ids.size),
            "oc_positive_events": np.nan,
            "pbmc_events": np.nan,
            "alkaline_phosphatase_u_per_l": np.nan,
        }
    )
    m = pd.concat([m, extra], ignore_index=True).drop_duplicates(["patient_id", "day"])
    return m.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # order must not matter


@pytest.mark.parametrize("landmark", LANDMARKS)
@pytest.mark.parametrize("seed", [0, 1])
def test_draws_after_landmark_never_change_features(sim, landmark, seed):
    patients, meas = sim
    changed = _perturb_after(meas, landmark, seed)
    assert not changed.equals(meas)
    before = trajectory_features(patients, meas, landmark)
    after = trajectory_features(patients, changed, landmark)
    pd.testing.assert_frame_equal(before, after)
    ds_before = landmark_dataset(patients, meas, landmark)
    ds_after = landmark_dataset(patients, changed, landmark)
    pd.testing.assert_frame_equal(ds_before, ds_after)
    assert len(ds_before) > 30


def test_removing_all_later_draws_changes_nothing(sim):
    patients, meas = sim
    for landmark in LANDMARKS:
        kept = meas.loc[meas["day"] <= landmark].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            landmark_dataset(patients, meas, landmark), landmark_dataset(patients, kept, landmark)
        )


def test_draws_on_or_after_outcome_never_enter(sim):
    patients, meas = sim
    # A patient with an outcome and draws; add draws on and after the outcome, landmark far away.
    ids_with_draws = set(meas["patient_id"])
    cand = patients[
        patients["time_days"].notna()
        & patients["patient_id"].isin(ids_with_draws)
        & (patients["time_days"] > 100)
    ]
    pids = cand["patient_id"].to_numpy()[:10]
    t_out = cand["time_days"].to_numpy()[:10]
    outcome_of = patients.set_index("patient_id")["time_days"]
    t_draw_outcome = outcome_of.reindex(meas["patient_id"]).to_numpy()
    base = meas.loc[~(meas["day"].to_numpy() >= t_draw_outcome)]  # as simulated, minus late ones
    extra = pd.DataFrame(
        {
            "patient_id": np.r_[pids, pids],
            "day": np.r_[t_out, t_out + 7.0],  # on the outcome day and a week later
            "oc_positive_percent": 3.0,
            "oc_positive_events": np.nan,
            "pbmc_events": np.nan,
            "alkaline_phosphatase_u_per_l": np.nan,
        }
    )
    with_late = pd.concat([base, extra], ignore_index=True)
    far = np.full(len(patients), 5000.0)
    pd.testing.assert_frame_equal(
        trajectory_features(patients, base, far), trajectory_features(patients, with_late, far)
    )
    table = draw_table(patients, with_late).merge(
        patients[["patient_id", "time_days"]], on="patient_id"
    )
    assert not (table["day"] >= table["time_days"]).any()


def test_landmark_dataset_rows_and_columns(sim):
    patients, meas = sim
    landmark = 183.0
    ds = landmark_dataset(patients, meas, landmark)
    expected_ids = patients.loc[
        (patients["bone_metastasis_at_enrollment"] == 0)
        & patients["event"].notna()
        & (patients["time_days"] > landmark),
        "patient_id",
    ].tolist()
    assert ds["patient_id"].tolist() == expected_ids
    assert isinstance(ds.index, pd.RangeIndex)
    assert list(ds.columns) == list(patients.columns) + ["landmark_day", *TRAJECTORY_FEATURES]
    orig = patients.set_index("patient_id").loc[expected_ids]
    np.testing.assert_allclose(ds["time_days"], orig["time_days"].to_numpy() - landmark)
    assert (ds["time_days"] > 0).all()
    assert ds["event"].tolist() == orig["event"].tolist()
    assert (ds["landmark_day"] == landmark).all()
    # Features equal those of trajectory_features for the same patients.
    feats = trajectory_features(patients, meas, landmark)
    feats.index = patients["patient_id"]
    np.testing.assert_allclose(
        ds[list(TRAJECTORY_FEATURES)].to_numpy(),
        feats.loc[expected_ids].to_numpy(),
        equal_nan=True,
    )
    # Marker columns come from the latest draw on or before the landmark, as reported.
    for pid in ds["patient_id"].to_numpy()[:40]:
        mine = meas[(meas["patient_id"] == pid) & (meas["day"] <= landmark)]
        row = ds.loc[ds["patient_id"] == pid].iloc[0]
        if len(mine):
            last = mine.sort_values("day").iloc[-1]
            for c in ("oc_positive_percent", "oc_positive_events", "pbmc_events"):
                assert row[c] == last[c] or (np.isnan(row[c]) and np.isnan(last[c]))
            assert row["oc_days_since_latest"] == pytest.approx(landmark - last["day"])
    # The latest percent feature is the log2 of the best estimate from those columns.
    pct = marker_percent(
        ds["oc_positive_percent"].to_numpy(float),
        ds["oc_positive_events"].to_numpy(float),
        ds["pbmc_events"].to_numpy(float),
    )
    has = np.isfinite(pct)
    np.testing.assert_allclose(ds["oc_latest_log2"].to_numpy()[has], np.log2(pct[has]))


def test_landmark_dataset_refuses_bad_input(sim):
    patients, meas = sim
    with pytest.raises(ValueError, match="landmark_day"):
        landmark_dataset(patients, meas, -5.0)
    with pytest.raises(KeyError, match="time_days"):
        landmark_dataset(patients.drop(columns=["time_days"]), meas, 91.0)
    with pytest.raises(ValueError, match="one value per patient"):
        trajectory_features(patients, meas, np.array([1.0, 2.0]))


def test_landmark_at_risk_boundary():
    patients, meas = cohort(
        [
            patient("ON", time_days=183.0, event="death"),  # left follow-up on the landmark day
            patient("AFTER", time_days=183.5, event="bone_metastasis", oc_positive_percent=0.05),
            patient("BONE", bone_metastasis_at_enrollment=True, time_days=None, event=None),
        ],
        [{"patient_id": "AFTER", "day": 90, "oc_positive_percent": 0.07}],
    )
    ds = landmark_dataset(patients, meas, 183.0)
    assert ds["patient_id"].tolist() == ["AFTER"]
    assert ds.loc[0, "time_days"] == pytest.approx(0.5)
    assert ds.loc[0, "oc_positive_percent"] == 0.07
    assert np.isnan(ds.loc[0, "oc_positive_events"])
    # Day-0 from the patients row, day 90 from measurements: change log2(0.07 / 0.05).
    assert ds.loc[0, "oc_change_log2"] == pytest.approx(np.log2(0.07 / 0.05))
    assert ds.loc[0, "oc_n_draws"] == 2
