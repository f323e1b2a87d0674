"""GBSG2 (scikit-survival's copy) mapped to the data contract: a real cohort with one event
type and no marker (issue 9, point 1)."""

from __future__ import annotations

import numpy as np

from features.public import RECEPTOR_POSITIVE_FMOL, gbsg2_cohort, gbsg2_patients


def test_gbsg2_maps_every_woman_to_a_valid_contract_row():
    from sksurv.datasets import load_gbsg2

    X, y = load_gbsg2()
    cohort = gbsg2_cohort()  # validates against the contract (raises on any violation)
    p = cohort.patients
    assert len(p) == len(X) == 686 and p["patient_id"].is_unique
    assert cohort.has_outcome and cohort.measurements is None
    assert (p["event"] == "bone_metastasis").sum() == int(y["cens"].sum()) == 299
    assert not (p["event"] == "death").any()  # one event type: no competing death recorded
    for column in ("oc_positive_percent", "oc_positive_events", "pbmc_events"):
        assert p[column].isna().all()  # no marker at all
    np.testing.assert_array_equal(p["time_days"].to_numpy(dtype=float), y["time"])
    np.testing.assert_array_equal(p["age_years"].to_numpy(dtype=float), X["age"].to_numpy())
    grade = X["tgrade"].astype(str).map({"I": 1, "II": 2, "III": 3}).to_numpy(dtype=float)
    np.testing.assert_array_equal(p["histologic_grade"].to_numpy(dtype=float), grade)
    er = X["estrec"].to_numpy(dtype=float) >= RECEPTOR_POSITIVE_FMOL
    assert ((p["er_status"] == "positive").to_numpy() == er).all()
    assert set(p["menopausal_status"]) == {"pre", "post"}
    assert (p["disease_setting"] == "early").all()


def test_raw_table_has_only_contract_columns():
    from features.schema import PATIENT_SPECS

    raw = gbsg2_patients()
    assert set(raw.columns) <= set(PATIENT_SPECS)
