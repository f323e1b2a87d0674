"""The marker's mean and the cause-specific Weibull hazards; latent event times and censoring."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from features.simulate.config import (
    BTT_BISPHOSPHONATE,
    BTT_DENOSUMAB,
    BTT_NONE,
    DAYS_PER_YEAR,
    POST,
    REFERENCE_AGE,
    SimulationConfig,
)
from features.vocabulary import BONE_METASTASIS, CENSORED, DEATH


def marker_mean(cov: dict[str, np.ndarray], cfg: SimulationConfig) -> np.ndarray:
    """a(x): mean log true marker (log percent) given the covariates."""
    return (
        math.log(cfg.marker_median_percent)
        + math.log(cfg.marker_ratio_per_decade) * (cov["age"] - REFERENCE_AGE) / 10.0
        + math.log(cfg.marker_bone_metastasis_ratio) * cov["bone"]
        + math.log(cfg.marker_bisphosphonate_ratio) * (cov["btt"] == BTT_BISPHOSPHONATE)
        + math.log(cfg.marker_denosumab_ratio) * (cov["btt"] == BTT_DENOSUMAB)
    )


def bm_log_rate(cov: dict[str, np.ndarray], cfg: SimulationConfig) -> np.ndarray:
    """log r without the marker term: Weibull rate of bone metastasis (per year^shape)."""
    met = cov["met"]
    nodes = cov["nodes"]
    on_btt = cov["btt"] != BTT_NONE
    btt_hr = np.where(
        met,
        cfg.hr_bm_btt_metastatic,
        np.where(cov["meno"] == POST, cfg.hr_bm_btt_early_post, cfg.hr_bm_btt_early_pre),
    )
    return (
        np.log(np.where(met, cfg.bm_rate_metastatic, cfg.bm_rate_early))
        + math.log(cfg.hr_bm_nodes_1_4) * ((nodes >= 1) & (nodes <= 4))
        + math.log(cfg.hr_bm_nodes_over_4) * (nodes > 4)
        + math.log(cfg.hr_bm_tumor_over_20mm) * (cov["size"] > 20)
        + math.log(cfg.hr_bm_er_positive) * cov["er"]
        + math.log(cfg.hr_bm_pr_positive) * cov["pr"]
        + math.log(cfg.hr_bm_her2_positive) * cov["her2"]
        + math.log(cfg.hr_bm_per_decade_younger) * (REFERENCE_AGE - cov["age"]) / 10.0
        + math.log(cfg.hr_bm_visceral) * cov["visceral"]
        + math.log(cfg.hr_bm_alp_per_doubling) * np.log2(cov["alp"] / cfg.alp_median)
        + np.log(btt_hr) * on_btt
    )


def death_log_rate(cov: dict[str, np.ndarray], cfg: SimulationConfig) -> np.ndarray:
    """log q: Weibull rate of death without bone metastasis (per year^shape)."""
    met = cov["met"]
    per_decade = np.where(
        met, cfg.hr_death_per_decade_older_metastatic, cfg.hr_death_per_decade_older_early
    )
    return (
        np.log(np.where(met, cfg.death_rate_metastatic, cfg.death_rate_early))
        + np.log(per_decade) * (cov["age"] - REFERENCE_AGE) / 10.0
        + math.log(cfg.hr_death_visceral) * cov["visceral"]
        + math.log(cfg.hr_death_er_negative) * ~cov["er"]
        + math.log(cfg.hr_death_nodes_over_4_early) * (~met & (cov["nodes"] > 4))
    )


def marker_log_hazard(met: np.ndarray, cfg: SimulationConfig) -> np.ndarray:
    """beta: log hazard ratio of bone metastasis per SD of the latent marker signal."""
    return np.where(
        met, cfg.marker_log_hazard_per_sd_metastatic, cfg.marker_log_hazard_per_sd_early
    )


def weibull_shapes(met: np.ndarray, cfg: SimulationConfig) -> tuple[np.ndarray, np.ndarray]:
    kb = np.where(met, cfg.bm_shape_metastatic, cfg.bm_shape_early)
    kd = np.where(met, cfg.death_shape_metastatic, cfg.death_shape_early)
    return kb, kd


def draw_outcomes(
    rng: np.random.Generator,
    cov: dict[str, np.ndarray],
    log_r: np.ndarray,
    log_q: np.ndarray,
    cfg: SimulationConfig,
    bm_years: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Latent event times, censoring and the observed outcome (days).

    ``bm_years`` maps Exp(1) draws to times of bone metastasis for a non-baseline world; when
    None, the Weibull of rate ``exp(log_r)``.
    """
    n = len(log_r)
    kb, kd = weibull_shapes(cov["met"], cfg)
    # Inversion of H(t) = rate * t^shape for each cause; independent latent times give exactly
    # the cause-specific hazards.
    unit_bm = rng.standard_exponential(n)
    t_bm = (unit_bm / np.exp(log_r)) ** (1.0 / kb) if bm_years is None else bm_years(unit_bm)
    t_death = (rng.standard_exponential(n) / np.exp(log_q)) ** (1.0 / kd)
    entry = rng.uniform(0.0, cfg.accrual_years, n)
    admin = cfg.max_follow_up_years - entry
    unit = rng.standard_exponential(n)
    rate = cfg.loss_rate_per_year
    loss = unit / rate if rate > 0 else np.full(n, np.inf)
    censor = np.minimum(admin, loss)

    bone = cov["bone"]
    t_end = np.minimum(np.minimum(t_bm, t_death), censor)
    event = np.where(t_end == t_bm, BONE_METASTASIS, np.where(t_end == t_death, DEATH, CENSORED))
    time_days = np.maximum(np.round(t_end * DAYS_PER_YEAR, 1), 0.1)
    # Patients with bone metastasis at enrollment have no outcome; their draws still stop at
    # death or censoring (hidden).
    hidden_end = np.maximum(np.round(np.minimum(t_death, censor) * DAYS_PER_YEAR, 1), 0.1)
    return {
        "time_days": np.where(bone, np.nan, time_days),
        "event": np.where(bone, -1, event),
        "draw_end_days": np.where(bone, hidden_end, time_days),
        "t_bm_days": np.where(bone, np.inf, t_bm * DAYS_PER_YEAR),
    }
