"""The osteocalcin draws: PBMC denominators, counts, the pre-metastatic rise, repeated visits."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from features.simulate.config import (
    DAYS_PER_YEAR,
    SimulationConfig,
)
from features.simulate.tables import (
    int_column,
)
from features.vocabulary import BONE_METASTASIS


def positive_fraction(log_m: np.ndarray) -> np.ndarray:
    """Probability of a positive event from a log percent (capped below 1)."""
    return np.minimum(np.exp(log_m) / 100.0, 1.0 - 1e-9)


def draw_pbmc(rng: np.random.Generator, size: int, cfg: SimulationConfig) -> np.ndarray:
    raw = cfg.pbmc_median * np.exp(cfg.pbmc_sdlog * rng.standard_normal(size))
    return np.clip(np.round(raw), cfg.pbmc_min, cfg.pbmc_max).astype(np.int64)


def _round_sig(x: np.ndarray, digits: int = 6) -> np.ndarray:
    """Round to ``digits`` significant digits (0 and NaN unchanged)."""
    x = np.asarray(x, dtype=float)
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    mag = np.floor(np.log10(np.abs(x[ok])))
    scale = 10.0 ** (digits - 1 - mag)
    out[ok] = np.round(x[ok] * scale) / scale
    return out


def percent_of(events: np.ndarray, pbmc: np.ndarray) -> np.ndarray:
    return _round_sig(100.0 * events / pbmc, 6)


def _rise(day: np.ndarray, t_bm: np.ndarray, tau: float) -> np.ndarray:
    """Share (0-1) of the pre-metastatic rise reached at ``day``.

    ``expm1(day/tau) / expm1(T/tau)``: 0 at enrollment (so the enrollment draw carries only the
    baseline level and the truth stays exact), ~``exp(-(T - day)/tau)`` long after it, 1 at
    and after bone metastasis; 0 when it never comes (``T`` infinite).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        share = np.exp(-(t_bm - day) / tau) * (-np.expm1(-day / tau)) / (-np.expm1(-t_bm / tau))
    share = np.where(day >= t_bm, 1.0, share)
    return np.where(np.isfinite(share), np.clip(share, 0.0, 1.0), 0.0)


def draw_measurements(
    rng: np.random.Generator,
    cov: dict[str, np.ndarray],
    out: dict[str, np.ndarray],
    a: np.ndarray,
    eps: np.ndarray,
    pbmc0: np.ndarray,
    events0: np.ndarray,
    percent0: np.ndarray,
    measured0: np.ndarray,
    counts_kept0: np.ndarray,
    alp_missing0: np.ndarray,
    cfg: SimulationConfig,
) -> pd.DataFrame:
    """The ``oc_measurements`` table (with a private ``_row`` column: the patient's row)."""
    n = len(a)
    repeated = measured0 & (rng.random(n) < cfg.p_repeated_draws)
    rows = np.flatnonzero(repeated)
    n_rep = len(rows)
    span = cfg.max_follow_up_years * DAYS_PER_YEAR + cfg.post_event_draw_max_days
    n_slots = int(math.ceil(span / (cfg.draw_interval_days - cfg.draw_jitter_days))) + 1

    steps = cfg.draw_interval_days + rng.uniform(
        -cfg.draw_jitter_days, cfg.draw_jitter_days, (n_rep, n_slots - 1)
    )
    days = np.round(np.concatenate([np.zeros((n_rep, 1)), np.cumsum(steps, axis=1)], axis=1), 1)
    end = out["draw_end_days"][rows]
    keep = days < end[:, None]
    keep[:, 0] = True

    # Confirmatory draw on the day of bone metastasis or shortly after.
    at_bone = out["event"][rows] == BONE_METASTASIS
    extra = at_bone & (rng.random(n_rep) < cfg.p_draw_at_bone_metastasis)
    extra_day = np.round(end + rng.uniform(0.0, cfg.post_event_draw_max_days, n_rep), 1)
    days = np.concatenate([days, extra_day[:, None]], axis=1)
    keep = np.concatenate([keep, extra[:, None]], axis=1)

    slot = np.broadcast_to(np.arange(n_slots + 1), days.shape)[keep]
    row = np.broadcast_to(rows[:, None], days.shape)[keep]
    day = days[keep]
    later = slot > 0
    m = int(later.sum())
    r_later = row[later]
    d_later = day[later]

    # Later draws: baseline level, fresh visit noise, the pre-metastatic rise, fresh counting.
    share = _rise(d_later, out["t_bm_days"][r_later], cfg.marker_rise_tau_days)
    log_m = (
        a[r_later]
        + cfg.marker_between_sdlog * eps[r_later]
        + cfg.marker_within_sdlog * rng.standard_normal(m)
        + math.log(cfg.marker_rise_ratio) * share
    )
    pbmc_l = draw_pbmc(rng, m, cfg)
    events_l = rng.binomial(pbmc_l, positive_fraction(log_m))
    counts_l = ~(rng.random(m) < cfg.p_counts_missing)
    alp_l_present = rng.random(m) < cfg.p_alp_at_later_draw
    log_alp = (
        np.log(cov["alp"][r_later])
        + cfg.alp_within_sdlog * rng.standard_normal(m)
        + math.log(cfg.alp_rise_ratio) * share
    )
    alp_l = np.round(np.clip(np.exp(log_alp), 5.0, 5000.0), 1)

    total = len(row)
    pct = np.empty(total)
    ev = np.empty(total, dtype=np.int64)
    pb = np.empty(total, dtype=np.int64)
    has_counts = np.empty(total, dtype=bool)
    alp = np.empty(total)
    first = ~later
    r0 = row[first]
    pct[first] = percent0[r0]
    ev[first] = events0[r0]
    pb[first] = pbmc0[r0]
    has_counts[first] = counts_kept0[r0]
    alp[first] = np.where(alp_missing0[r0], np.nan, cov["alp"][r0])
    pct[later] = percent_of(events_l, pbmc_l)
    ev[later] = events_l
    pb[later] = pbmc_l
    has_counts[later] = counts_l
    alp[later] = np.where(alp_l_present, alp_l, np.nan)

    return pd.DataFrame(
        {
            "_row": row,
            "day": day,
            "oc_positive_percent": pct,
            "oc_positive_events": int_column(ev, ~has_counts),
            "pbmc_events": int_column(pb, ~has_counts),
            "alkaline_phosphatase_u_per_l": alp,
        }
    )
