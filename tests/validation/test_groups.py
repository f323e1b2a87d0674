"""Per-group metrics: a site whose baseline risk is doubled is flagged, the others are not.

The model is the truth of the reference population: the same patients (same seed, so the same
covariates and draws) simulated with every site at the reference baseline hazard give each
patient's true risk under a model that does not know the site; the outcomes come from the cohort
where one site's baseline hazard of bone metastasis is doubled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.simulate.sites import Site, simulate_sites
from training.models.competing import make_target
from training.validation.groups import check_group_column, group_file_name, group_metrics


def _sites(hr: float) -> tuple[Site, ...]:
    return (Site("A"), Site("B"), Site("C"), Site("D"), Site("DOUBLED", hr_bone_metastasis=hr))


@pytest.fixture(scope="module")
def table():
    data = simulate_sites(2500, 8, _sites(2.0), 1)
    reference = simulate_sites(2500, 8, _sites(1.0), 1)
    pd.testing.assert_series_equal(data.patients["age_years"], reference.patients["age_years"])
    free = ~data.patients["bone_metastasis_at_enrollment"].astype(bool).to_numpy()
    p, truth = data.patients[free], reference.truth[free]
    y = make_target(p["event"].to_numpy(object), p["time_days"].to_numpy(float))
    cif = {h: truth[f"cif_bm_{h}m"].to_numpy() for h in (12, 24, 36)}
    return group_metrics(y, cif[24], cif, p["site_id"].to_numpy(object), n_boot=100)


def test_only_the_doubled_site_is_flagged(table):
    assert table.loc[table["flagged"], "site_id"].tolist() == ["DOUBLED"]
    row = table.set_index("site_id").loc["DOUBLED"]
    assert row["oe_ratio_24m_low"] > 1 and row["oe_ratio_24m"] > 1.3
    others = table[table["site_id"] != "DOUBLED"]
    assert ((others["oe_ratio_24m_low"] < 1) & (others["oe_ratio_24m_high"] > 1)).all()


def test_columns_of_the_issue_and_finite_variances(table):
    for h in (12, 24, 36):
        for name in ("oe_ratio", "calibration_slope", "calibration_intercept", "ici"):
            assert f"{name}_{h}m" in table
        assert f"oe_ratio_{h}m_low" in table and f"log_oe_ratio_{h}m_var" in table
    assert (table["logit_c_index_var"] > 0).all() and (table["log_oe_ratio_24m_var"] > 0).all()
    assert (table["c_index_low"] < table["c_index"]).all()
    assert (table["c_index"] < table["c_index_high"]).all()


def test_empty_single_and_short_groups_get_a_row_that_says_why():
    y = make_target(
        ["censored", "death", "censored", "bone_metastasis", "censored", "censored"],
        [900.0, 400.0, 300.0, 200.0, 250.0, 100.0],
    )
    p = np.array([0.1, 0.2, 0.1, 0.3, 0.2, 0.1])
    cif = {12: p / 2, 24: p, 36: p * 1.2}
    groups = ["NONE", "NONE", "NONE", "SHORT", "SHORT", None]
    t = group_metrics(y, p, cif, groups, n_boot=10).set_index("site_id")
    assert list(t.index) == ["NONE", "SHORT", "(missing)"]
    assert t.loc["NONE", "n_bone_metastasis"] == 0 and np.isnan(t.loc["NONE", "c_index"])
    assert "no bone metastasis" in t.loc["NONE", "note"]
    assert t.loc["NONE", "oe_ratio_24m"] == 0 and np.isnan(t.loc["NONE", "oe_ratio_24m_low"])
    assert "follow-up shorter than 12 months" in t.loc["SHORT", "note"]
    assert np.isnan(t.loc["SHORT", "oe_ratio_24m"])
    assert "a single patient" in t.loc["(missing)", "note"]
    assert not t["flagged"].any()


@pytest.mark.parametrize("by", ["site_id", "lab_id", "instrument_id", "reagent_lot", "er_status",
                                "chemotherapy"])
def test_grouping_columns(by):
    check_group_column(by)


@pytest.mark.parametrize(
    ("by", "message"),
    [
        ("site", "--by site: not a column of the data contract's patients table; use one of "
         "menopausal_status"),
        ("age_years", "cannot group by age_years: it is a number, not a grouping"),
        ("patient_id", "each patient would be a group of one"),
        ("time_days", "it is a number"),
    ],
)
def test_bad_grouping_columns(by, message):
    with pytest.raises(ValueError, match=message):
        check_group_column(by)


def test_file_names():
    assert group_file_name("site_id") == "by_site.csv"
    assert group_file_name("lab_id") == "by_lab.csv"
    assert group_file_name("reagent_lot") == "by_reagent_lot.csv"
