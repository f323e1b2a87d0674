"""Promotion gates on version tags, both ways (no MLflow needed)."""

from __future__ import annotations

import pytest

from training.registry import PromotionPolicy, check_gates

GOOD = {
    "test_uno_c": "0.78",
    "test_calibration_slope_24m": "0.95",
    "test_calibration_in_the_large_24m": "-0.01",
}


def verdicts(cand, champ=None, policy=None):
    return {g.name: g.passed for g in check_gates(cand, champ, policy or PromotionPolicy())}


def test_all_gates_pass_without_champion():
    assert verdicts(GOOD) == {
        "discrimination": True,
        "calibration_slope": True,
        "calibration_in_the_large": True,
    }


@pytest.mark.parametrize(
    ("champion_c", "passes"), [("0.785", True), ("0.79", True), ("0.7901", False), ("0.85", False)]
)
def test_discrimination_margin(champion_c, passes):
    champ = dict(GOOD, test_uno_c=champion_c)
    assert verdicts(GOOD, champ)["discrimination"] is passes


@pytest.mark.parametrize(
    ("slope", "passes"),
    [("0.8", True), ("1.2", True), ("0.79", False), ("1.25", False), ("nan", False)],
)
def test_slope_band(slope, passes):
    assert verdicts(dict(GOOD, test_calibration_slope_24m=slope))["calibration_slope"] is passes


def test_calibration_in_the_large_and_missing_tags():
    assert not verdicts(dict(GOOD, test_calibration_in_the_large_24m="0.08"))[
        "calibration_in_the_large"
    ]
    gates = check_gates({}, None, PromotionPolicy())
    assert [g.passed for g in gates] == [False, False, False]
    assert gates[0].detail == "test_uno_c is not recorded on the version"


def test_policy_is_configurable():
    strict = PromotionPolicy(discrimination_margin=0.0, slope_band=(0.9, 1.1))
    assert (
        verdicts(dict(GOOD, test_calibration_slope_24m="0.85"), policy=strict)["calibration_slope"]
        is False
    )
    assert verdicts(GOOD, dict(GOOD, test_uno_c="0.781"), strict)["discrimination"] is False
