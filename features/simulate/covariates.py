"""Covariates of the simulated patients and which of them go missing."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logit

from features.simulate.config import (
    BTT_BISPHOSPHONATE,
    BTT_DENOSUMAB,
    BTT_NONE,
    PERI,
    POST,
    PRE,
    SimulationConfig,
)


def _categorical(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Index of the category for uniforms ``u`` (n,) and row probabilities ``probs`` (n, k)."""
    cum = np.cumsum(probs, axis=1)
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def _odds_intercepts(p_marginal: float, odds_ratio: float, share_exposed: float) -> float:
    """Logit of the unexposed group so that the marginal probability is ``p_marginal``."""
    if p_marginal <= 0.0 or p_marginal >= 1.0 or share_exposed in (0.0, 1.0):
        return float(logit(min(max(p_marginal, 1e-12), 1 - 1e-12)))
    lor = math.log(odds_ratio)

    def gap(b: float) -> float:
        return share_exposed * expit(b + lor) + (1 - share_exposed) * expit(b) - p_marginal

    return float(brentq(gap, -40.0, 40.0, xtol=1e-12))


def draw_covariates(
    rng: np.random.Generator, n: int, cfg: SimulationConfig
) -> dict[str, np.ndarray]:
    """True covariate values, rounded as they are written (so truth and file agree)."""
    met = rng.random(n) < cfg.metastatic_share
    age = rng.normal(np.where(met, cfg.age_mean_metastatic, cfg.age_mean_early), cfg.age_sd)
    age = np.round(np.clip(age, cfg.age_min, cfg.age_max), 1)

    meno_age = rng.normal(cfg.menopause_age_mean, cfg.menopause_age_sd, n)
    half = cfg.perimenopause_half_width_years
    meno = np.where(age < meno_age - half, PRE, np.where(age < meno_age + half, PERI, POST))

    er = rng.random(n) < cfg.p_er_positive
    pr = rng.random(n) < np.where(
        er, cfg.p_pr_positive_if_er_positive, cfg.p_pr_positive_if_er_negative
    )
    her2 = rng.random(n) < np.where(
        er, cfg.p_her2_positive_if_er_positive, cfg.p_her2_positive_if_er_negative
    )

    gp = np.where(
        (~er)[:, None],
        np.asarray(cfg.grade_probs_er_negative)[None, :],
        np.where(
            her2[:, None],
            np.asarray(cfg.grade_probs_er_positive_her2_positive)[None, :],
            np.asarray(cfg.grade_probs_er_positive_her2_negative)[None, :],
        ),
    )
    grade = _categorical(rng.random(n), gp) + 1
    ki67_med = np.asarray(cfg.ki67_median_by_grade)[grade - 1]
    ki67 = np.round(np.clip(ki67_med * np.exp(cfg.ki67_sdlog * rng.standard_normal(n)), 1, 95))

    size_med = np.where(met, cfg.tumor_median_mm_metastatic, cfg.tumor_median_mm_early)
    size = np.round(np.clip(size_med * np.exp(cfg.tumor_sdlog * rng.standard_normal(n)), 1, 250))

    p_np = np.where(met, cfg.p_node_positive_metastatic, cfg.p_node_positive_early)
    lp_np = logit(p_np) + math.log(cfg.or_node_positive_per_size_doubling) * np.log2(size / 20.0)
    node_pos = rng.random(n) < expit(lp_np)
    extra_mean = np.where(met, cfg.extra_nodes_mean_metastatic, cfg.extra_nodes_mean_early)
    k = cfg.extra_nodes_dispersion
    extra = rng.negative_binomial(k, k / (k + extra_mean))
    nodes = np.where(node_pos, np.minimum(1 + extra, 80), 0)

    b_bone = _odds_intercepts(
        cfg.p_bone_metastasis_if_metastatic, cfg.or_bone_metastasis_er_positive, cfg.p_er_positive
    )
    p_bone = expit(b_bone + math.log(cfg.or_bone_metastasis_er_positive) * er)
    bone = met & (rng.random(n) < p_bone)
    p_visc = expit(
        logit(cfg.p_visceral_if_metastatic) + math.log(cfg.or_visceral_er_negative) * ~er
    )
    visceral = met & (rng.random(n) < p_visc)

    post = meno == POST
    p_btt = np.where(
        bone,
        cfg.p_btt_if_bone_metastasis,
        np.where(
            met,
            cfg.p_btt_if_metastatic_no_bone,
            np.where(post, cfg.p_btt_if_early_post, cfg.p_btt_if_early_pre),
        ),
    )
    on_btt = rng.random(n) < p_btt
    p_deno = np.where(bone, cfg.denosumab_share_if_bone_metastasis, cfg.denosumab_share_otherwise)
    deno = rng.random(n) < p_deno
    btt = np.where(on_btt, np.where(deno, BTT_DENOSUMAB, BTT_BISPHOSPHONATE), BTT_NONE)

    p_endo = np.where(
        met, cfg.p_endocrine_if_er_positive_metastatic, cfg.p_endocrine_if_er_positive_early
    )
    endocrine = er & (rng.random(n) < p_endo)
    lp_chemo = (
        logit(np.where(met, cfg.p_chemo_metastatic, cfg.p_chemo_early))
        + math.log(cfg.or_chemo_er_negative) * ~er
        + math.log(cfg.or_chemo_her2_positive) * her2
        + math.log(cfg.or_chemo_grade3) * (grade == 3)
        + math.log(cfg.or_chemo_node_positive) * (nodes > 0)
        + math.log(cfg.or_chemo_visceral) * visceral
    )
    chemo = rng.random(n) < expit(lp_chemo)

    log_alp = (
        math.log(cfg.alp_median)
        + math.log(cfg.alp_bone_metastasis_ratio) * bone
        + math.log(cfg.alp_visceral_ratio) * visceral
        + cfg.alp_sdlog * rng.standard_normal(n)
    )
    alp = np.round(np.clip(np.exp(log_alp), 5.0, 5000.0), 1)

    return {
        "met": met,
        "age": age,
        "meno": meno,
        "er": er,
        "pr": pr,
        "her2": her2,
        "grade": grade,
        "ki67": ki67,
        "size": size,
        "nodes": nodes,
        "bone": bone,
        "visceral": visceral,
        "btt": btt,
        "endocrine": endocrine,
        "chemo": chemo,
        "alp": alp,
    }


def draw_missingness(
    rng: np.random.Generator, cov: dict[str, np.ndarray], cfg: SimulationConfig
) -> dict[str, np.ndarray]:
    n = len(cov["age"])
    names = {
        "meno": cfg.p_missing_menopausal,
        "er": cfg.p_missing_er,
        "pr": cfg.p_missing_pr,
        "her2": cfg.p_missing_her2,
        "ki67": cfg.p_missing_ki67,
        "grade": cfg.p_missing_grade,
        "size": cfg.p_missing_tumor_size,
        "nodes": cfg.p_missing_nodes,
        "visceral": cfg.p_missing_visceral_metastatic,
        "btt": cfg.p_missing_btt,
        "endocrine": cfg.p_missing_endocrine,
        "chemo": cfg.p_missing_chemo,
        "alp": cfg.p_missing_alp,
        "marker": cfg.p_marker_not_measured,
        "counts": cfg.p_counts_missing,
    }
    miss = {key: rng.random(n) < p for key, p in names.items()}
    # Early disease has no visceral metastasis by definition: always known (false).
    miss["visceral"] &= cov["met"]
    return miss
