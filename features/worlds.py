"""Generative worlds: how the latent marker signal and the covariates shape the hazard of bone
metastasis.

The simulator (:mod:`features.simulate`) draws the same covariates, enrollment draws and death
hazards in every world; a world only says how the cause-specific hazard of bone metastasis
depends on the latent micrometastatic signal ``eps`` (the persistent part of the marker) and the
covariates. ``baseline`` is the original structure, a proportional hazard log-linear in ``eps``,
under which a Cox model linear in the log marker is nearly correctly specified. The other worlds
are plausible biologies under which it is not (``docs/simulator.md``, section Worlds):

* ``threshold``: the signal matters only above a level near the published cut-off;
* ``interaction``: its effect differs by disease setting and is blunted on bone-targeted therapy;
* ``mixture``: a latent switching state (bone niche colonised or not) with different hazard
  shapes, so hazards are not proportional;
* ``waning``: effects change over follow-up (the marker's effect fades, ER-positive disease
  relapses late).

Every world writes an exact truth: the bone-metastasis hazard of each latent state is a
piecewise-Weibull hazard, the cumulative incidence is integrated numerically (:func:`world_cif`)
and event times are drawn by exact inversion (:func:`draw_bm_years`). This module does not import
the simulator; the simulator calls it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

__all__ = [
    "WORLDS",
    "BoneHazard",
    "World",
    "draw_bm_years",
    "get_world",
    "piece_cumhaz",
    "world_cif",
]

#: Reference time (years) at which a mixture state's cumulative hazard equals ``multiplier``
#: times the baseline one, whatever its Weibull shape: keeps incidences near domain.md's figures.
_MIXTURE_REFERENCE_YEARS = 3.0

Covariates = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class BoneHazard:
    """One latent state's hazard of bone metastasis, piecewise Weibull in time (years).

    ``h(t) = exp(log_rate + log_mult[j]) * shape * t^(shape - 1)`` for ``t`` in piece ``j``
    (pieces bounded by the world's ``breaks_years``), taken with probability ``weight``.
    Arrays broadcast against ``eps`` (shape ``(n,)`` or ``(n, nodes)``).
    """

    weight: np.ndarray | float
    log_rate: np.ndarray
    shape: np.ndarray
    #: ``log_rate.shape + (len(breaks) + 1,)``, or None for a single piece.
    log_mult: np.ndarray | None = None


@dataclass(frozen=True)
class World:
    """A named generative structure of the bone-metastasis hazard.

    Parameters
    ----------
    name : str
        What ``bonemet simulate --world`` takes.
    summary : str
        One line: the structure and why a PH model linear in the log marker is wrong under it.
    hazards : callable
        ``hazards(cov, log_r0, eps, shape_bm, beta) -> list[BoneHazard]``: ``cov`` holds the
        true covariates (shaped to broadcast with ``eps``), ``log_r0`` the baseline log rate
        without the marker term, ``shape_bm`` the baseline Weibull shape, ``beta`` the baseline
        log hazard ratio per SD of ``eps``. State weights sum to 1.
    breaks_years : tuple of float
        Boundaries of the time pieces (empty: effects constant over follow-up).
    """

    name: str
    summary: str
    hazards: Callable[..., list[BoneHazard]]
    breaks_years: tuple[float, ...] = ()


def _gauss_mean_exp(g: Callable[[np.ndarray], np.ndarray]) -> float:
    """E[exp(g(eps))] for eps ~ N(0, 1) (Gauss-Hermite, 80 nodes)."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float(np.sum(w * np.exp(g(x))) / math.sqrt(2 * math.pi))


def _baseline(cov: Covariates, log_r0, eps, shape_bm, beta) -> list[BoneHazard]:
    return [BoneHazard(1.0, log_r0 + beta * eps, shape_bm)]


# Threshold: little effect below the level of the published cut-off, a step above it. The step
# sits at eps = 0.7: a patient at the median a(x) (0.03 %) crosses 0.045 % at
# eps = log(0.045 / 0.03) / 0.60 = 0.68 (domain: "a cut-off of about 0.045 %").
THRESHOLD_EPS = 0.7
THRESHOLD_SLOPE = 0.4
THRESHOLD_STEP = 2.6
THRESHOLD_WIDTH = 0.15


def _threshold_effect(eps: np.ndarray) -> np.ndarray:
    return THRESHOLD_SLOPE * eps + THRESHOLD_STEP * expit((eps - THRESHOLD_EPS) / THRESHOLD_WIDTH)


def _threshold(cov: Covariates, log_r0, eps, shape_bm, beta) -> list[BoneHazard]:
    # Normalised so the population mean hazard multiplier equals the baseline's exp(beta^2/2):
    # incidences stay near domain.md's figures, only the shape of the marker effect changes.
    shift = 0.5 * beta**2 - np.log(_gauss_mean_exp(_threshold_effect))
    return [BoneHazard(1.0, log_r0 + _threshold_effect(eps) + shift, shape_bm)]


# Interaction: marker x disease setting, marker x bone-targeted therapy.
INTERACTION_BETA_EARLY = 1.2
INTERACTION_BETA_METASTATIC = 2.0
INTERACTION_BTT_FACTOR = 0.35


def _interaction(cov: Covariates, log_r0, eps, shape_bm, beta) -> list[BoneHazard]:
    b = np.where(cov["met"], INTERACTION_BETA_METASTATIC, INTERACTION_BETA_EARLY)
    b = b * np.where(cov["btt"] != 0, INTERACTION_BTT_FACTOR, 1.0)
    # Each group keeps the baseline's mean hazard multiplier: the interaction changes the slope,
    # not the group's incidence.
    return [BoneHazard(1.0, log_r0 + b * eps + 0.5 * (beta**2 - b**2), shape_bm)]


# Mixture: latent state "bone niche colonised" (disseminated tumour cells seeded in the marrow).
MIXTURE_INTERCEPT = -1.4
MIXTURE_SLOPE = 2.0
MIXTURE_SEEDED_SHAPE_RATIO = 0.65
MIXTURE_DORMANT_SHAPE_RATIO = 1.5
MIXTURE_DORMANT_MULTIPLIER = 0.5


def _mixture(cov: Covariates, log_r0, eps, shape_bm, beta) -> list[BoneHazard]:
    p = expit(MIXTURE_INTERCEPT + MIXTURE_SLOPE * eps)
    # The seeded state's multiplier makes the population mean cumulative hazard at the reference
    # time equal to the baseline's: mean(p) * M + (1 - mean(p)) * M_dormant = exp(beta^2 / 2).
    mean_p = _gauss_mean_exp(lambda x: np.log(expit(MIXTURE_INTERCEPT + MIXTURE_SLOPE * x)))
    seeded = (math.exp(0.5 * beta**2) - (1 - mean_p) * MIXTURE_DORMANT_MULTIPLIER) / mean_p
    log_t = math.log(_MIXTURE_REFERENCE_YEARS)
    states = []
    for weight, ratio, mult in (
        (p, MIXTURE_SEEDED_SHAPE_RATIO, seeded),
        (1 - p, MIXTURE_DORMANT_SHAPE_RATIO, MIXTURE_DORMANT_MULTIPLIER),
    ):
        k = shape_bm * ratio
        # r_state * t_ref^k = r0 * mult * t_ref^shape_bm: the same clinical factors in each state.
        log_rate = log_r0 + math.log(mult) + (shape_bm - k) * log_t
        states.append(BoneHazard(weight, log_rate, k))
    return states


# Waning: effects change over follow-up, in pieces [0, 1), [1, 2), [2, inf) years.
WANING_BREAKS = (1.0, 2.0)
WANING_BETA = (2.4, 1.6, 1.0)
WANING_HR_ER_POSITIVE = (1.0, 1.6, 2.5)


def _waning(cov: Covariates, log_r0, eps, shape_bm, beta) -> list[BoneHazard]:
    # log_r0 already holds log(2.0) for ER+ (the baseline); the pieces replace it.
    er = np.asarray(cov["er"], dtype=float)
    mult = [
        b * eps + 0.5 * (beta**2 - b**2) + (math.log(hr) - math.log(2.0)) * er
        for b, hr in zip(WANING_BETA, WANING_HR_ER_POSITIVE, strict=True)
    ]
    log_mult = np.stack(np.broadcast_arrays(*mult), axis=-1)
    return [BoneHazard(1.0, np.broadcast_to(log_r0, log_mult.shape[:-1]), shape_bm, log_mult)]


WORLDS: dict[str, World] = {
    w.name: w
    for w in (
        World(
            "baseline",
            "proportional hazards, log-linear in the latent marker (the original simulator)",
            _baseline,
        ),
        World(
            "threshold",
            "marker effect flat below the level of the 0.045 % cut-off, a step above it",
            _threshold,
        ),
        World(
            "interaction",
            "marker effect stronger in metastatic disease, blunted on bone-targeted therapy",
            _interaction,
        ),
        World(
            "mixture",
            "latent colonised/dormant state with early vs late hazard shapes (non-PH)",
            _mixture,
        ),
        World(
            "waning",
            "marker effect fades over follow-up; ER-positive relapses late",
            _waning,
            WANING_BREAKS,
        ),
    )
}


def get_world(name: str) -> World:
    """The world of that name.

    Raises
    ------
    ValueError
        Naming the known worlds when ``name`` is not one of them.
    """
    if name not in WORLDS:
        raise ValueError(f"unknown world {name!r}; known worlds: {', '.join(WORLDS)}")
    return WORLDS[name]


def piece_cumhaz(
    t: float, shape: np.ndarray, mult: np.ndarray | None, breaks: tuple[float, ...]
) -> np.ndarray:
    """Sum over pieces of mult_j * (clip(t, b_j, b_j+1)^k - b_j^k): H(t) / rate."""
    if mult is None:
        return np.power(t, shape)
    edges = (0.0, *breaks, math.inf)
    total = 0.0
    for j in range(len(edges) - 1):
        lo, hi = edges[j], edges[j + 1]
        if t <= lo:
            break
        total = total + mult[..., j] * (np.power(min(t, hi), shape) - np.power(lo, shape))
    return total


def world_cif(
    world: World,
    cov: Covariates,
    log_r0: np.ndarray,
    log_q: np.ndarray,
    eps: np.ndarray,
    shape_bm: float,
    shape_death: float,
    beta: float,
    horizons_years: tuple[float, ...],
    steps_per_year: int,
    death: bool = False,
) -> np.ndarray:
    """Cumulative incidence of bone metastasis (death competing) at each horizon.

    Sum over the world's latent states of ``weight * F_state``, with ``F = int h_bm S du``
    integrated on a grid of ``1/steps_per_year`` years: the cumulative hazards are exact on each
    interval, only the split of the interval's events between the causes assumes a constant
    hazard ratio within it (the same rule as the baseline's table, ``docs/simulator.md``).

    Parameters
    ----------
    world : World
    cov : mapping of str to numpy.ndarray
        True covariates, shaped to broadcast with ``eps``.
    log_r0, log_q : numpy.ndarray
        Baseline log rate of bone metastasis without the marker term; log rate of death.
    eps : numpy.ndarray
        Latent marker signal, ``(n,)`` or ``(n, nodes)``.
    shape_bm, shape_death, beta : float
        Baseline Weibull shapes and marker log hazard ratio of the disease setting.
    horizons_years : tuple of float
    steps_per_year : int
    death : bool, default False
        Also the cumulative incidence of death without bone metastasis, after the horizons
        of bone metastasis on the last axis (as :func:`features.simulate.truth.cif_direct`).

    Returns
    -------
    numpy.ndarray
        Shape ``eps.shape + (len(horizons_years),)``, ``(2 * len(horizons_years),)`` with
        ``death``.
    """
    out_shape = np.broadcast_shapes(np.shape(eps), np.shape(log_r0), np.shape(log_q))
    n_steps = int(round(max(horizons_years) * steps_per_year))
    stop = {int(round(h * steps_per_year)): k for k, h in enumerate(horizons_years)}
    grid = np.arange(n_steps + 1) / steps_per_year
    q = np.exp(log_q)
    n_h = len(horizons_years)
    result = np.zeros(out_shape + ((2 if death else 1) * n_h,))
    for state in world.hazards(cov, log_r0, eps, shape_bm, beta):
        rate = np.exp(state.log_rate)
        mult = None if state.log_mult is None else np.exp(state.log_mult)
        surv = np.ones(out_shape)
        cif = np.zeros(out_shape)
        prev = np.zeros(out_shape)
        for s in range(n_steps):
            now = rate * piece_cumhaz(grid[s + 1], state.shape, mult, world.breaks_years)
            da = now - prev
            prev = now
            tot = da + q * (grid[s + 1] ** shape_death - grid[s] ** shape_death)
            # F += S * dA / (dA + dB) * (1 - exp(-(dA + dB))); S *= exp(-(dA + dB)).
            decay = -np.expm1(-tot)
            cif += surv * np.divide(da * decay, tot, out=np.zeros(out_shape), where=tot > 0)
            surv = surv * (1.0 - decay)
            if s + 1 in stop:
                weight = np.asarray(state.weight)
                result[..., stop[s + 1]] += weight * cif
                if death:
                    # Everything that left the event-free state and is not bone metastasis.
                    result[..., n_h + stop[s + 1]] += weight * (1.0 - surv - cif)
    return result


def draw_bm_years(
    world: World,
    cov: Covariates,
    log_r0: np.ndarray,
    eps: np.ndarray,
    shape_bm: np.ndarray,
    beta: np.ndarray,
    unit_exponential: np.ndarray,
    state_uniform: np.ndarray,
) -> np.ndarray:
    """Latent time to bone metastasis (years) by exact inversion of the cumulative hazard.

    Parameters
    ----------
    world : World
    cov : mapping of str to numpy.ndarray
        True covariates, one value per patient.
    log_r0, eps, shape_bm, beta : numpy.ndarray
        Per patient: baseline log rate without the marker term, latent signal, Weibull shape and
        marker log hazard ratio of the patient's setting.
    unit_exponential : numpy.ndarray
        Exp(1) draws, one per patient (``H(T) = E``).
    state_uniform : numpy.ndarray
        U(0, 1) draws choosing each patient's latent state (unused with one state).

    Returns
    -------
    numpy.ndarray
        Years; ``inf`` when the hazard is zero.
    """
    n = len(eps)
    t = np.full(n, np.inf)
    # beta and the shape differ by setting: evaluate each setting's patients with its scalars.
    for setting in (False, True):
        idx = np.flatnonzero(np.asarray(cov["met"]) == setting)
        if len(idx) == 0:
            continue
        sub = {k: np.asarray(v)[idx] for k, v in cov.items()}
        states = world.hazards(
            sub, log_r0[idx], eps[idx], float(shape_bm[idx][0]), float(beta[idx][0])
        )
        cum = np.zeros(len(idx))
        u = state_uniform[idx]
        for state in states:
            w = np.broadcast_to(np.asarray(state.weight, dtype=float), (len(idx),))
            chosen = (u >= cum) & (u < cum + w)
            cum = cum + w
            rows = np.flatnonzero(chosen)
            t[idx[rows]] = _invert(
                world.breaks_years,
                np.broadcast_to(state.log_rate, (len(idx),))[rows],
                float(np.asarray(state.shape).flat[0]),
                None if state.log_mult is None else state.log_mult[rows],
                unit_exponential[idx[rows]],
            )
    return t


def _invert(
    breaks: tuple[float, ...],
    log_rate: np.ndarray,
    shape: float,
    log_mult: np.ndarray | None,
    e: np.ndarray,
) -> np.ndarray:
    """Solve H(t) = e for a piecewise-Weibull cumulative hazard, piece by piece."""
    target = e / np.exp(log_rate)  # in units of H / rate
    if log_mult is None:
        return target ** (1.0 / shape)
    edges = (0.0, *breaks, math.inf)
    t = np.full(len(e), np.inf)
    done = np.zeros(len(e), dtype=bool)
    below = np.zeros(len(e))  # H / rate at the start of the piece
    for j in range(len(edges) - 1):
        lo, hi = edges[j], edges[j + 1]
        m = np.exp(log_mult[:, j])
        width = m * (hi**shape - lo**shape) if math.isfinite(hi) else np.full(len(e), np.inf)
        here = ~done & (target <= below + width)
        t[here] = (lo**shape + (target[here] - below[here]) / m[here]) ** (1.0 / shape)
        done |= here
        below = below + width
    return t
