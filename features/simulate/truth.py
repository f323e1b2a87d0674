"""The true cumulative incidences of each simulated patient, by numerical integration."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from features.simulate.config import (
    HORIZONS_MONTHS,
    OBS_COUNTS,
    OBS_PERCENT,
    STR_DTYPE,
    SimulationConfig,
)
from features.worlds import World, world_cif


def truth_columns(prefix: str = "", event: str = "bm") -> list[str]:
    """Names of the cumulative-incidence columns of the truth table.

    Parameters
    ----------
    prefix : str, default ""
        ``""`` for the columns given the observed enrollment draw, ``"oracle_"`` for the columns
        given the true latent marker.
    event : {"bm", "death"}, default "bm"
        Bone metastasis, or death without bone metastasis (the competing event).

    Returns
    -------
    list of str
        E.g. ``["cif_bm_12m", "cif_bm_24m", "cif_bm_36m", "cif_bm_60m"]``.
    """
    return [f"{prefix}cif_{event}_{h}m" for h in HORIZONS_MONTHS]


def cif_direct(
    log_r: np.ndarray,
    log_q: np.ndarray,
    shape_bm: float,
    shape_death: float,
    horizons_years: tuple[float, ...],
    steps_per_year: int,
    death: bool = False,
) -> np.ndarray:
    """CIF of bone metastasis at each horizon for Weibull cause-specific hazards.

    ``F(t) = int_0^t h_bm(u) S(u) du`` with ``S = exp(-H_bm - H_death)``, integrated on a grid
    of ``1/steps_per_year`` years. Cumulative hazards are exact on each interval; only the split
    of the interval's events between the causes assumes a constant hazard ratio within it.
    With ``death`` the CIF of death without bone metastasis, ``int_0^t h_death(u) S(u) du``,
    follows the horizons of bone metastasis on the last axis (the interval's other share).

    Returns
    -------
    numpy.ndarray
        Shape ``log_r.shape + (len(horizons_years),)``, ``(2 * len(horizons_years),)`` with
        ``death``.
    """
    r = np.exp(np.asarray(log_r, dtype=float))
    q = np.exp(np.asarray(log_q, dtype=float))
    shape = np.broadcast_shapes(r.shape, q.shape)
    n_steps = int(round(max(horizons_years) * steps_per_year))
    t = np.arange(n_steps + 1) / steps_per_year
    d_bm = np.diff(t**shape_bm)
    d_death = np.diff(t**shape_death)
    stop = {int(round(h * steps_per_year)): k for k, h in enumerate(horizons_years)}
    surv = np.ones(shape)
    cif = np.zeros(shape)
    tot = np.empty(shape)
    decay = np.empty(shape)
    gain = np.empty(shape)
    n_h = len(horizons_years)
    out = np.zeros(shape + ((2 if death else 1) * n_h,))
    # Per interval: dA = r dLambda_bm, dB = q dLambda_death (both > 0),
    # F += S * dA / (dA + dB) * (1 - exp(-(dA + dB))), S *= exp(-(dA + dB)). In place: this
    # loop builds the truth table and dominates its cost.
    for s in range(n_steps):
        da = r * d_bm[s]
        np.multiply(q, d_death[s], out=tot)
        tot += da
        np.negative(tot, out=decay)
        np.expm1(decay, out=decay)  # exp(-tot) - 1, in (-1, 0]
        np.multiply(surv, da, out=gain)
        gain *= decay
        gain /= tot
        cif -= gain
        decay *= surv
        surv += decay
        if s + 1 in stop:
            out[..., stop[s + 1]] = cif
            if death:
                # Everything that left the event-free state and is not bone metastasis.
                out[..., n_h + stop[s + 1]] = 1.0 - surv - cif
    return out


_LOG_R_RANGE = (-18.0, 7.0, 0.05)
_LOG_Q_RANGE = (-12.0, 5.0, 0.1)


@lru_cache(maxsize=8)
def cif_table(
    shape_bm: float, shape_death: float, steps_per_year: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tabulated CIFs on a (log r, log q) grid, bone metastasis then death on the last axis
    (:func:`cif_direct` with ``death``); cached per process (never built at import)."""
    lr = np.arange(_LOG_R_RANGE[0], _LOG_R_RANGE[1] + 1e-9, _LOG_R_RANGE[2])
    lq = np.arange(_LOG_Q_RANGE[0], _LOG_Q_RANGE[1] + 1e-9, _LOG_Q_RANGE[2])
    horizons = tuple(h / 12.0 for h in HORIZONS_MONTHS)
    table = cif_direct(
        lr[:, None], lq[None, :], shape_bm, shape_death, horizons, steps_per_year, death=True
    )
    table.setflags(write=False)
    return lr, lq, table


def interp_cif(
    lr: np.ndarray, lq: np.ndarray, table: np.ndarray, log_r: np.ndarray, log_q: np.ndarray
) -> np.ndarray:
    """Bilinear interpolation of the table (values outside the grid are clamped)."""
    fr = (np.clip(log_r, lr[0], lr[-1]) - lr[0]) / (lr[1] - lr[0])
    fq = (np.clip(log_q, lq[0], lq[-1]) - lq[0]) / (lq[1] - lq[0])
    i = np.minimum(fr.astype(np.int64), len(lr) - 2)
    j = np.minimum(fq.astype(np.int64), len(lq) - 2)
    tr = (fr - i)[..., None]
    tq = (fq - j)[..., None]
    return (
        (1 - tr) * (1 - tq) * table[i, j]
        + tr * (1 - tq) * table[i + 1, j]
        + (1 - tr) * tq * table[i, j + 1]
        + tr * tq * table[i + 1, j + 1]
    )


def truth_frame(
    ids: np.ndarray,
    cov: dict[str, np.ndarray],
    a: np.ndarray,
    log_r0: np.ndarray,
    log_q: np.ndarray,
    eps: np.ndarray,
    obs_kind: np.ndarray,
    events0: np.ndarray,
    pbmc0: np.ndarray,
    percent0: np.ndarray,
    cfg: SimulationConfig,
    world: World,
) -> pd.DataFrame:
    """True CIFs given the observed enrollment draw, and given the latent marker (oracle)."""
    n = len(ids)
    n_h = 2 * len(HORIZONS_MONTHS)  # bone metastasis, then death (the table's last axis)
    observed = np.full((n, n_h), np.nan)
    oracle = np.full((n, n_h), np.nan)
    sb, sw = cfg.marker_between_sdlog, cfg.marker_within_sdlog
    sv = math.hypot(sb, sw)

    # Grid of the enrollment deviation v = sb*eps + w0 (prior N(0, sv^2)) and of eps | v.
    v = np.linspace(-cfg.truth_grid_sds * sv, cfg.truth_grid_sds * sv, cfg.truth_v_nodes)
    log_prior_v = -0.5 * (v / sv) ** 2
    if sw > 0:
        e = np.linspace(-cfg.truth_grid_sds - 1, cfg.truth_grid_sds + 1, cfg.truth_eps_nodes)
        mu = sb * v / sv**2
        tau = sw / sv
        kernel = np.exp(-0.5 * ((e[None, :] - mu[:, None]) / tau) ** 2)
        kernel /= kernel.sum(axis=1, keepdims=True)
    else:
        e = v / sb
        kernel = np.eye(len(v))

    met = cov["met"]
    todo = ~cov["bone"]
    for is_met in (False, True):
        kb = cfg.bm_shape_metastatic if is_met else cfg.bm_shape_early
        kd = cfg.death_shape_metastatic if is_met else cfg.death_shape_early
        beta = (
            cfg.marker_log_hazard_per_sd_metastatic
            if is_met
            else cfg.marker_log_hazard_per_sd_early
        )
        if world.name == "baseline":
            lr, lq, table = cif_table(float(kb), float(kd), int(cfg.truth_steps_per_year))
        idx = np.flatnonzero(todo & (met == is_met))
        shapes = (float(kb), float(kd), float(beta))

        def world_truth(rows: np.ndarray, latent: np.ndarray, shapes=shapes) -> np.ndarray:
            # latent: eps per row (n,) or on the nodes (n, nodes); covariates shaped to match.
            at = (slice(None),) + (None,) * (latent.ndim - 1)
            sub = {key: col[rows][at] for key, col in cov.items()}
            horizons = tuple(h / 12.0 for h in HORIZONS_MONTHS)
            return world_cif(
                world,
                sub,
                log_r0[rows][at],
                log_q[rows][at],
                latent,
                *shapes,
                horizons,
                int(cfg.truth_steps_per_year),
                death=True,
            )

        for start in range(0, len(idx), cfg.truth_chunk):
            rows = idx[start : start + cfg.truth_chunk]
            if world.name == "baseline":
                oracle[rows] = interp_cif(
                    lr, lq, table, log_r0[rows] + beta * eps[rows], log_q[rows]
                )
            else:
                oracle[rows] = world_truth(rows, eps[rows])

            # Posterior over v given the observed enrollment draw.
            kind = obs_kind[rows]
            k = np.where(kind == OBS_COUNTS, events0[rows], 0.0).astype(float)
            trials = np.where(kind == OBS_COUNTS, pbmc0[rows], 0).astype(float)
            pct_only = kind == OBS_PERCENT
            trials[pct_only] = cfg.pbmc_median
            k[pct_only] = percent0[rows][pct_only] / 100.0 * cfg.pbmc_median
            log_p = np.minimum(a[rows][:, None] + v[None, :] - math.log(100.0), -1e-9)
            loglik = k[:, None] * log_p + (trials - k)[:, None] * np.log1p(-np.exp(log_p))
            logw = log_prior_v[None, :] + loglik
            logw -= logw.max(axis=1, keepdims=True)
            w = np.exp(logw)
            w /= w.sum(axis=1, keepdims=True)
            w_eps = w @ kernel  # posterior weights of eps on its grid

            if world.name == "baseline":
                cif_nodes = interp_cif(
                    lr,
                    lq,
                    table,
                    log_r0[rows][:, None] + beta * e[None, :],
                    np.broadcast_to(log_q[rows][:, None], (len(rows), len(e))),
                )
            else:
                cif_nodes = world_truth(rows, np.broadcast_to(e[None, :], (len(rows), len(e))))
            observed[rows] = np.einsum("pg,pgh->ph", w_eps, cif_nodes)

    data: dict[str, object] = {"patient_id": pd.array(ids, dtype=STR_DTYPE)}
    for h, name in enumerate(truth_columns("")):
        data[name] = np.clip(observed[:, h], 0.0, 1.0)
    for h, name in enumerate(truth_columns("oracle_")):
        data[name] = np.clip(oracle[:, h], 0.0, 1.0)
    k = len(HORIZONS_MONTHS)
    for h, name in enumerate(truth_columns("", "death")):
        data[name] = np.clip(observed[:, k + h], 0.0, 1.0)
    for h, name in enumerate(truth_columns("oracle_", "death")):
        data[name] = np.clip(oracle[:, k + h], 0.0, 1.0)
    return pd.DataFrame(data)
