"""Sites and labs of the simulator: documented differences, provenance, truth per site."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from features.contract import validate_cohort
from features.simulate.sites import Lab, Lot, Site, random_labs, random_sites, simulate_sites


@pytest.fixture(scope="module")
def cohort():
    sites = (
        Site("REF"),
        Site("HIGH", hr_bone_metastasis=2.0, labs=("LB",)),
        Site("SHORT", min_follow_up_years=0.5, labs=("LA",)),
    )
    labs = (Lab("LA", 1.0, (Lot("A1"),)), Lab("LB", 2.0, (Lot("B1", 1.0), Lot("B2", 1.5))))
    return simulate_sites(1500, 4, sites, labs)


def test_the_cohort_is_valid_and_says_where_everything_comes_from(cohort):
    typed = validate_cohort(cohort.patients, cohort.measurements)
    p = typed.patients
    assert p["patient_id"].is_unique and len(p) == 1500
    assert p["site_id"].value_counts().to_dict() == {"REF": 500, "HIGH": 500, "SHORT": 500}
    assert set(p.loc[p["site_id"] == "HIGH", "lab_id"]) == {"LB"}
    assert set(p.loc[p["site_id"] == "REF", "lab_id"]) == {"LA", "LB"}
    assert set(p["reagent_lot"]) == {"A1", "B1", "B2"}
    assert set(p["instrument_id"]) == {"LA-CYT", "LB-CYT"}
    # Each draw carries its patient's lab, instrument and lot.
    m = typed.measurements.merge(p, on="patient_id", suffixes=("", "_p"))
    for c in ("lab_id", "instrument_id", "reagent_lot"):
        assert (m[c] == m[f"{c}_p"]).all()
    assert (cohort.truth["patient_id"] == cohort.patients["patient_id"]).all()
    assert (cohort.truth["site_id"] == cohort.patients["site_id"]).all()


def test_sites_differ_as_declared(cohort):
    s = cohort.sites.set_index("site_id")
    assert s.loc["HIGH", "hr_bone_metastasis"] == 2.0
    # Doubled baseline hazard: the true incidence by 24 months rises, by less than twice (death
    # competes, and high risks saturate).
    ratio = s.loc["HIGH", "true_cif_bm_24m"] / s.loc["REF", "true_cif_bm_24m"]
    assert 1.3 < ratio < 2.0
    # Short follow-up: nobody followed beyond accrual + 0.5 years.
    p = cohort.patients
    short = p.loc[p["site_id"] == "SHORT", "time_days"].dropna()
    assert short.max() <= 3.5 * 365.25 + 1e-6
    assert p.loc[p["site_id"] == "REF", "time_days"].max() > 3.5 * 365.25


def test_a_lab_bias_multiplies_the_measured_marker(cohort):
    p = cohort.patients
    ref = p[p["site_id"] == "REF"]
    by_lab = ref.groupby(ref["reagent_lot"].astype(str))["oc_positive_percent"].median()
    assert 1.5 < by_lab["B1"] / by_lab["A1"] < 2.7  # lab ratio 2
    assert 2.2 < by_lab["B2"] / by_lab["A1"] < 4.0  # lab 2 x lot 1.5
    labs = cohort.labs.set_index("reagent_lot")
    assert labs.loc["B2", "marker_ratio"] == pytest.approx(3.0)


def test_random_sites_and_labs_are_reproducible_and_named():
    a, b = random_sites(12, 7), random_sites(12, 7)
    assert a == b and [s.site_id for s in a][:2] == ["S01", "S02"]
    assert len({s.hr_bone_metastasis for s in a}) == 12
    labs = random_labs(2, 3, 7)
    assert [lot.reagent_lot for lot in labs[1].lots] == ["L02-LOT1", "L02-LOT2", "L02-LOT3"]
    one = simulate_sites(40, 1, 2, 2, lots_per_lab=2)
    two = simulate_sites(40, 1, 2, 2, lots_per_lab=2)
    pd.testing.assert_frame_equal(one.patients, two.patients)
    pd.testing.assert_frame_equal(one.measurements, two.measurements)


@pytest.mark.parametrize(
    ("sites", "labs", "message"),
    [
        ((Site("A"), Site("A")), (Lab("L"),), "site_ids must be unique"),
        ((Site("A B"),), (Lab("L"),), "site_id 'A B' must be 1-64 characters"),
        ((Site("A", labs=("X",)),), (Lab("L"),), "site A: unknown lab(s) ['X']"),
        ((Site("A", hr_death=0.0),), (Lab("L"),), "site A: hr_death must be > 0"),
        ((Site("A"),), (Lab("L", -1.0),), "lab L: marker ratios must be > 0"),
        ((Site("A"),), (Lab("L", lots=()),), "lab L: at least one reagent lot is needed"),
        ((), (Lab("L"),), "at least one site is needed"),
    ],
)
def test_bad_sites_and_labs_are_refused(sites, labs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_sites(10, 1, sites, labs)
