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
