"""Generative worlds of the simulator: exact truth, exact event times, the intended structures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from features.simulate import SimulationConfig, simulate_cohort
from features.simulate.truth import cif_direct
from features.vocabulary import DAYS_PER_MONTH
from features.worlds import WORLDS, draw_bm_years, get_world, piece_cumhaz, world_cif
from tests.features.simulate.outcomes import aalen_johansen, outcome

HORIZONS = (1.0, 2.0, 3.0, 5.0)
CFG = SimulationConfig()
BETA = CFG.marker_log_hazard_per_sd_early


def _cov(n: int, *, met: bool = False, btt: int = 0, er: bool = True) -> dict[str, np.ndarray]:
    return {
        "met": np.full(n, met),
        "btt": np.full(n, btt),
        "er": np.full(n, er),
    }


def _oracle(world: str, eps: np.ndarray, **cov) -> np.ndarray:
    n = len(eps)
    return world_cif(
        get_world(world),
        _cov(n, **cov),
        np.full(n, math.log(CFG.bm_rate_early)),
        np.full(n, math.log(CFG.death_rate_early)),
        eps,
        CFG.bm_shape_early,
        CFG.death_shape_early,
        BETA,
        HORIZONS,
        120,
    )


def test_baseline_world_integral_equals_the_simulator_integral():
    rng = np.random.default_rng(3)
    log_r0 = rng.uniform(-8, 1, 300)
    log_q = rng.uniform(-7, 1, 300)
    eps = rng.standard_normal(300)
    got = world_cif(
        WORLDS["baseline"], _cov(300), log_r0, log_q, eps, 1.1, 1.2, BETA, HORIZONS, 120
    )
    want = cif_direct(log_r0 + BETA * eps, log_q, 1.1, 1.2, HORIZONS, 120)
    assert np.abs(got - want).max() < 1e-12


def test_world_integral_matches_closed_form_for_constant_hazards():
    # Baseline world, shape 1, eps = 0: F(t) = r / (r + q) * (1 - exp(-(r + q) t)).
    r, q = 0.2, 0.1
    got = world_cif(
        WORLDS["baseline"],
        _cov(1),
        np.log([r]),
        np.log([q]),
        np.zeros(1),
        1.0,
        1.0,
        0.0,
        (1.0, 5.0),
        12,
    )[0]
    want = [r / (r + q) * (1 - math.exp(-(r + q) * t)) for t in (1.0, 5.0)]
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_drawn_times_solve_the_cumulative_hazard(name):
    # Exact inversion: H(T) = E for the state each patient was put in; checked on one-state
    # worlds by evaluating the piecewise cumulative hazard at the drawn time.
    world = get_world(name)
    rng = np.random.default_rng(5)
    n = 400
    cov = {"met": np.zeros(n, bool), "btt": rng.integers(0, 3, n), "er": rng.random(n) < 0.7}
    log_r0 = rng.uniform(-6, -2, n)
    eps = rng.standard_normal(n)
    unit = rng.standard_exponential(n)
    t = draw_bm_years(
        world, cov, log_r0, eps, np.full(n, 1.1), np.full(n, BETA), unit, rng.random(n)
    )
    assert np.all(t > 0)
    states = world.hazards(cov, log_r0, eps, 1.1, BETA)
    if len(states) == 1:
        s = states[0]
        mult = None if s.log_mult is None else np.exp(s.log_mult)
        h = np.array(
            [
                np.exp(s.log_rate[i])
                * piece_cumhaz(
                    t[i], s.shape, None if mult is None else mult[i], world.breaks_years
                )
                for i in range(n)
            ]
        )
        assert h == pytest.approx(unit, rel=1e-9)


def test_threshold_world_is_flat_below_the_cut_off_and_steep_above():
    low = _oracle("threshold", np.array([-1.5, -0.5]))[:, 3]
    high = _oracle("threshold", np.array([0.3, 1.1]))[:, 3]
    base_low = _oracle("baseline", np.array([-1.5, -0.5]))[:, 3]
    # Below the cut-off one SD of the signal changes the risk far less than in the baseline
    # world; across the cut-off far more than below it.
    assert low[1] / low[0] < 0.5 * base_low[1] / base_low[0]
    assert high[1] / high[0] > 2.5 * low[1] / low[0]


def test_interaction_world_blunts_the_marker_on_bone_targeted_therapy():
    eps = np.array([0.0, 1.0])
    off = _oracle("interaction", eps, btt=0)[:, 3]
    on = _oracle("interaction", eps, btt=1)[:, 3]
    met_off = _oracle("interaction", eps, btt=0, met=True)[:, 3]
    assert on[1] / on[0] < 0.7 * off[1] / off[0]
    assert met_off[1] / met_off[0] > off[1] / off[0]


@pytest.mark.parametrize("name", ["mixture", "waning"])
def test_marker_effect_is_not_proportional_over_follow_up(name):
    # Ratio of hazards high vs low signal, averaged over each year: constant in the baseline
    # world (proportional hazards), falling over follow-up in the mixture and waning worlds.
    eps = np.array([-0.5, 1.5])

    def yearly_hr(world: str) -> np.ndarray:
        surv_free = 1 - _oracle(world, eps)  # approximates exp(-H) (death is rare early)
        cumhaz = -np.log(surv_free)
        yearly = np.diff(np.concatenate([np.zeros((2, 1)), cumhaz], axis=1), axis=1)
        return yearly[1] / yearly[0]

    base = yearly_hr("baseline")
    other = yearly_hr(name)
    assert base.max() / base.min() < 1.1
    assert other[0] / other[-1] > 1.5


def test_same_seed_gives_the_same_patients_in_every_world():
    base = simulate_cohort(300, seed=9)
    for name in WORLDS:
        other = simulate_cohort(300, seed=9, world=name)
        again = simulate_cohort(300, seed=9, world=name)
        pd.testing.assert_frame_equal(other.patients, again.patients)
        pd.testing.assert_frame_equal(other.truth, again.truth)
        same = [c for c in base.patients.columns if c not in ("time_days", "event")]
        pd.testing.assert_frame_equal(base.patients[same], other.patients[same])
        if name != "baseline":
            assert not base.truth.equals(other.truth)


def test_unknown_world_is_refused():
    with pytest.raises(ValueError, match="unknown world 'linear'; known worlds: baseline"):
        simulate_cohort(10, seed=1, world="linear")


@pytest.mark.slow
@pytest.mark.parametrize("name", [w for w in WORLDS if w != "baseline"])
def test_truth_agrees_with_aalen_johansen_in_every_world(name):
    # 5,000 patients: the AJ-minus-truth SD is about 0.7 points at 60 months in early disease
    # and 1.1 points at 24 months in metastatic disease; tolerances are about 4 SD.
    cohort = simulate_cohort(5000, seed=77, world=name)
    p = cohort.patients
    time, code = outcome(p)
    early = (p["disease_setting"] == "early").to_numpy()
    free = ~early & ~p["bone_metastasis_at_enrollment"].to_numpy(dtype=bool)
    for rows, months, tol in ((early, 60, 0.03), (free, 24, 0.045)):
        observed = aalen_johansen(time[rows], code[rows], months * DAYS_PER_MONTH)
        truth = cohort.truth[f"cif_bm_{months}m"].to_numpy()[rows]
        assert truth.mean() == pytest.approx(observed, abs=tol)
