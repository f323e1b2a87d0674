"""Batch rows at a prediction day: the draws known by then, by the API's rule (issue 9, 2)."""

from __future__ import annotations

import numpy as np
import pytest

from features.contract import validate_cohort
from features.draws import MARKER_FIELDS, rows_at, trajectory_at
from features.landmark import TRAJECTORY_FEATURES
from features.simulate import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(60, seed=11)
    return validate_cohort(sim.patients, sim.measurements)


def test_only_draws_known_by_the_day_feed_each_row(cohort):
    day = 200.0
    rows, notes = rows_at(cohort.patients, cohort.measurements, day, landmark=True)
    assert len(rows) == len(cohort.patients)
    assert (rows["landmark_day"] == day).all()
    m = cohort.measurements
    checked = 0
    for i, pid in enumerate(cohort.patients["patient_id"]):
        mine = m.loc[m["patient_id"] == pid]
        known = mine.loc[mine["day"] <= day]
        later = len(mine) - len(known)
        assert any(f"{later} draw(s) after" in n for n in notes[i]) == (later > 0)
        enrollment = tuple(float(cohort.patients.iloc[i][f]) for f in MARKER_FIELDS)
        draws = (known["day"].to_numpy(float),) + tuple(
            known[f].to_numpy(float) for f in MARKER_FIELDS
        )
        expected = trajectory_at(enrollment, draws, day)
        got = rows.loc[i, list(TRAJECTORY_FEATURES)].to_numpy(dtype=float)
        np.testing.assert_allclose(got, expected, equal_nan=True)
        usable = known.loc[known["oc_positive_percent"].notna()]
        if len(usable):
            latest = usable.loc[usable["day"].idxmax()]
            assert rows.loc[i, "oc_positive_percent"] == latest["oc_positive_percent"]
            checked += 1
    assert checked > 10


def test_a_model_at_enrollment_and_a_clinical_model(cohort):
    rows, notes = rows_at(cohort.patients, cohort.measurements, 100.0, landmark=False)
    assert "landmark_day" not in rows.columns
    assert all(any("trained at enrollment" in n for n in ns) for ns in notes)
    clinical, notes = rows_at(
        cohort.patients, cohort.measurements, 100.0, landmark=False, uses_marker=False
    )
    for f in MARKER_FIELDS:  # draws ignored: the enrollment values stay
        np.testing.assert_array_equal(
            clinical[f].to_numpy(float), cohort.patients[f].to_numpy(float)
        )
    with pytest.raises(ValueError, match="prediction_day must be"):
        rows_at(cohort.patients, cohort.measurements, -1.0, landmark=True)


def test_latest_usable_draw_is_the_last_known_with_a_marker():
    from features.landmark import latest_usable_draw

    days = np.array([0.0, 90.0, 180.0, 270.0])
    percent = np.array([0.04, 0.05, np.nan, 0.06])
    assert latest_usable_draw(days, percent, 200.0) == 1  # day 180 has no usable marker
    assert latest_usable_draw(days, percent, 270.0) == 3
    assert latest_usable_draw(days[::-1], percent[::-1], 1000.0) == 0  # any order
    assert latest_usable_draw(days, np.full(4, np.nan), 1000.0) == -1
    assert latest_usable_draw(np.empty(0), np.empty(0), 0.0) == -1
    assert latest_usable_draw(np.array([5.0, 5.0]), np.array([0.1, 0.2]), 9.0) == 1  # tie: last


def test_draws_at_gives_the_rows_at_answer_for_one_patient(cohort):
    from features.draws import DRAW_FIELDS, draws_at

    m = cohort.measurements
    rows, notes = rows_at(cohort.patients, m, 150.0, landmark=True)
    for i, pid in enumerate(cohort.patients["patient_id"][:10]):
        mine = m.loc[m["patient_id"] == pid]
        enrollment = tuple(cohort.patients.loc[i, f] for f in MARKER_FIELDS)
        draws = {f: mine[f].to_numpy(dtype=float) for f in DRAW_FIELDS}
        used = draws_at(enrollment, draws, 150.0, landmark=True)
        assert used.notes == notes[i]
        trajectory = rows.loc[i, list(TRAJECTORY_FEATURES)].to_numpy(dtype=float)
        np.testing.assert_array_equal(used.trajectory, trajectory)
        if used.latest >= 0:
            expected = [draws[f][used.latest] for f in MARKER_FIELDS]
            got = rows.loc[i, list(MARKER_FIELDS)].to_numpy(dtype=float)
            np.testing.assert_array_equal(got, expected)


def test_one_floor_for_the_log2_marker():
    from features import landmark
    from features.transformers import PERCENT_FLOOR, MarkerFeatures

    assert MarkerFeatures().floor_percent == PERCENT_FLOOR == landmark.PERCENT_FLOOR
    zero = landmark.summarize_draws(np.array([0.0]), np.array([0.0]), 0.0)
    assert zero[0] == np.log2(PERCENT_FLOOR)
