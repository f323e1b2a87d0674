"""Promotion gates on version tags, and the challenger's selection, both ways (no MLflow)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from training.config import lower_is_better
from training.tracking.gates import PromotionPolicy, check_gates, select_challenger

HORIZONS = (12, 24, 36)
GOOD = {
    "test_uno_c": "0.78",
    **{f"test_calibration_slope_{h}m": "0.95" for h in HORIZONS},
    **{f"test_calibration_in_the_large_{h}m": "-0.01" for h in HORIZONS},
}
CALIBRATION_GATES = [
    f"{kind}_{h}m" for h in HORIZONS for kind in ("calibration_slope", "calibration_in_the_large")
]


def verdicts(cand, champ=None, policy=None):
    return {g.name: g.passed for g in check_gates(cand, champ, policy or PromotionPolicy())}


def test_all_gates_pass_without_champion():
    assert verdicts(GOOD) == {"discrimination": True, **dict.fromkeys(CALIBRATION_GATES, True)}


@pytest.mark.parametrize(
    ("champion_c", "passes"), [("0.785", True), ("0.79", True), ("0.7901", False), ("0.85", False)]
)
def test_discrimination_margin(champion_c, passes):
    champ = dict(GOOD, test_uno_c=champion_c)
    assert verdicts(GOOD, champ)["discrimination"] is passes


@pytest.mark.parametrize("h", HORIZONS)
@pytest.mark.parametrize(
    ("slope", "passes"),
    [("0.8", True), ("1.2", True), ("0.79", False), ("1.25", False), ("nan", False)],
)
def test_slope_band_at_every_headline_horizon(h, slope, passes):
    got = verdicts(dict(GOOD, **{f"test_calibration_slope_{h}m": slope}))
    assert got[f"calibration_slope_{h}m"] is passes
    others = [g for g in CALIBRATION_GATES if g != f"calibration_slope_{h}m"]
    assert all(got[g] for g in others)


@pytest.mark.parametrize("h", HORIZONS)
def test_calibration_in_the_large_at_every_headline_horizon(h):
    gates = check_gates(
        dict(GOOD, **{f"test_calibration_in_the_large_{h}m": "0.08"}), None, PromotionPolicy()
    )
    failed = [g for g in gates if not g.passed]
    assert [g.name for g in failed] == [f"calibration_in_the_large_{h}m"]
    assert failed[0].detail == f"test_calibration_in_the_large_{h}m +0.080 beyond +/-0.05"


def test_missing_tags_fail_every_gate():
    gates = check_gates({}, None, PromotionPolicy())
    assert [g.passed for g in gates] == [False] * (1 + len(CALIBRATION_GATES))
    assert gates[0].detail == "test_uno_c is not recorded on the version"
    assert gates[1].detail == "test_calibration_slope_12m is not recorded on the version"


def test_policy_is_configurable():
    strict = PromotionPolicy(discrimination_margin=0.0, slope_band=(0.9, 1.1))
    assert (
        verdicts(dict(GOOD, test_calibration_slope_24m="0.85"), policy=strict)[
            "calibration_slope_24m"
        ]
        is False
    )
    assert verdicts(GOOD, dict(GOOD, test_uno_c="0.781"), strict)["discrimination"] is False
    only_24 = PromotionPolicy(horizons_months=(24,))
    assert set(verdicts(GOOD, policy=only_24)) == {
        "discrimination",
        "calibration_slope_24m",
        "calibration_in_the_large_24m",
    }


# -- selection of the challenger -------------------------------------------------------------


@dataclass
class Candidate:
    version: str
    metrics: dict[str, float]


def candidate(version: str, brier: float, c: float, slope: float = 0.95) -> Candidate:
    metrics = {k: float(v) for k, v in GOOD.items()}
    metrics.update(cv_brier_headline_mean=brier, cv_uno_c_mean=c, test_calibration_slope_24m=slope)
    return Candidate(version, metrics)


def test_metric_directions():
    assert lower_is_better("cv_brier_headline_mean") and lower_is_better("test_brier_24m")
    assert lower_is_better("test_ici_24m") and lower_is_better("integrated_brier")
    assert not lower_is_better("cv_uno_c_mean") and not lower_is_better("test_scaled_brier_24m")


def test_challenger_is_the_lowest_brier_not_the_highest_c():
    pool = [candidate("1", 0.080, 0.800), candidate("2", 0.075, 0.795), candidate("3", 0.079, 0.8)]
    assert select_challenger(pool, "cv_brier_headline_mean").version == "2"
    # The same candidates ranked by the old rule (Uno's C, higher is better).
    assert select_challenger(pool, "cv_uno_c_mean").version == "1"


def test_discrimination_is_a_gate_of_the_selection():
    # Version 2 has the best Brier score but ranks worse than the best by more than 0.01.
    pool = [candidate("1", 0.080, 0.800), candidate("2", 0.070, 0.785)]
    assert select_challenger(pool, "cv_brier_headline_mean").version == "1"
    loose = PromotionPolicy(discrimination_margin=0.02)
    assert select_challenger(pool, "cv_brier_headline_mean", loose).version == "2"


def test_calibration_at_any_headline_horizon_is_a_gate_of_the_selection():
    bad = candidate("2", 0.070, 0.800)
    bad.metrics["test_calibration_in_the_large_36m"] = 0.09
    pool = [candidate("1", 0.080, 0.800), bad]
    assert select_challenger(pool, "cv_brier_headline_mean").version == "1"
    # When no candidate is calibrated, the score decides among all.
    worse = candidate("1", 0.080, 0.800, slope=0.5)
    assert select_challenger([worse, bad], "cv_brier_headline_mean").version == "2"
