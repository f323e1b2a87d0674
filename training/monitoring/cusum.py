"""Risk-adjusted CUSUM of bone metastases against the model's cause-specific hazard.

Calendar time ``c`` (days). Patient *i* enrolled on day ``e_i`` is at risk of a first bone
metastasis from ``e_i`` until ``e_i + time_days`` (bone metastasis, death: the competing event
ends the risk, censoring). The model's cause-specific cumulative hazard ``Lambda_i``
(:mod:`training.monitoring.curves`) gives the expected number of bone metastases by calendar
day ``c``:

    A(c) = sum_i Lambda_i(min(max(c - e_i, 0), time_days_i)),

and ``N(c)`` counts the observed ones. To detect hazards multiplied by ``rho`` (default 2), the
continuous-time CUSUM of Biswas & Kalbfleisch (2008) is

    G(c) = max_{s <= c} [ log(rho) (N(c) - N(s)) - (rho - 1) (A(c) - A(s)) ],

i.e. ``G`` jumps by ``log(rho)`` at each bone metastasis, falls at rate ``rho - 1`` per expected
one, and is held at 0. It signals when ``G >= h``. Under the model (in control) ``N`` run on the
clock ``A`` is a unit-rate Poisson process (the random time change of a counting process by its
compensator), so the in-control run length measured in *expected bone metastases* does not
depend on the case mix or on the accrual: :func:`control_limit` simulates that process to find
the ``h`` with the stated in-control average run length (ARL), once for any cohort. The run
length in days follows from the rate at which ``A`` grows.

The onset of a signal is the event that started the excursion of ``G`` which crossed ``h`` (the
first bone metastasis after ``G`` was last at 0).

References
----------
Biswas P, Kalbfleisch JD (2008). A risk-adjusted CUSUM in continuous time based on the Cox
model. Stat Med 27:3382-3406.
Gomon D, Putter H, Nelissen RGHH, van der Pas S (2022). CGR-CUSUM: a continuous time
generalized rapid response cumulative sum chart. Biostatistics 25:113-130.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from features.incidence import cumhaz_at

__all__ = ["CusumResult", "compensator", "cusum", "control_limit", "run_lengths"]


def compensator(
    enroll_day: np.ndarray,
    follow_days: np.ndarray,
    grid: np.ndarray,
    cumhaz: np.ndarray,
    at: np.ndarray,
    max_cells: int = 2_000_000,
) -> np.ndarray:
    """``A(c)`` at calendar days ``at``: expected bone metastases accrued by then."""
    at = np.asarray(at, dtype=float)
    out = np.zeros(at.size)
    rows = max(1, max_cells // max(at.size, 1))
    for start in range(0, len(enroll_day), rows):
        e = enroll_day[start : start + rows, None]
        t = follow_days[start : start + rows, None]
        u = np.clip(at[None, :] - e, 0.0, t)
        out += cumhaz_at(grid, cumhaz[start : start + rows], u).sum(axis=0)
    return out


@dataclass(frozen=True)
class CusumResult:
    """The chart and its signal (calendar days relative to the caller's origin)."""

    days: np.ndarray  # daily grid
    statistic: np.ndarray  # G on the grid
    expected: np.ndarray  # A on the grid
    observed: np.ndarray  # N on the grid
    limit: float
    signal_day: float | None
    onset_day: float | None
    expected_per_day: float


def cusum(
    enroll_day: np.ndarray,
    follow_days: np.ndarray,
    bone_met: np.ndarray,
    grid: np.ndarray,
    cumhaz: np.ndarray,
    hazard_ratio: float,
    limit: float,
) -> CusumResult:
    """The Biswas-Kalbfleisch CUSUM of one cohort.

    Parameters
    ----------
    enroll_day : numpy.ndarray
        Calendar day of each patient's enrollment.
    follow_days : numpy.ndarray
        ``time_days`` (follow-up until the first event or censoring).
    bone_met : numpy.ndarray of bool
        Whether follow-up ended with bone metastasis.
    grid, cumhaz : numpy.ndarray
        The model's cause-specific cumulative hazards
        (:func:`~training.monitoring.curves.cumulative_hazard`).
    hazard_ratio : float
        ``rho`` > 1, the increase to detect.
    limit : float
        Control limit ``h`` (:func:`control_limit`).
    """
    if not hazard_ratio > 1.0:
        raise ValueError(f"the CUSUM's hazard ratio must be > 1, got {hazard_ratio}")
    theta, k = float(np.log(hazard_ratio)), float(hazard_ratio - 1.0)
    end = float(np.max(enroll_day + follow_days))
    start = float(np.min(enroll_day))
    days = np.arange(np.floor(start), np.ceil(end) + 1.0)
    ev = np.sort((enroll_day + follow_days)[bone_met])
    a_days = compensator(enroll_day, follow_days, grid, cumhaz, days)
    a_ev = compensator(enroll_day, follow_days, grid, cumhaz, ev)
    g_after = np.empty(ev.size)
    g, prev, excursion, signal, onset = 0.0, 0.0, None, None, None
    for j, (c, a) in enumerate(zip(ev, a_ev, strict=True)):
        g = g - k * (a - prev)
        if g <= 0.0:
            g, excursion = 0.0, None
        if excursion is None:
            excursion = c
        g += theta
        prev = a
        g_after[j] = g
        if signal is None and g >= limit:
            signal, onset = float(c), float(excursion)
    last = np.searchsorted(ev, days, side="right") - 1
    base = (
        np.where(last >= 0, g_after[np.clip(last, 0, None)], 0.0)
        if ev.size
        else np.zeros(days.size)
    )
    a_last = (
        np.where(last >= 0, a_ev[np.clip(last, 0, None)], 0.0) if ev.size else np.zeros(days.size)
    )
    stat = np.maximum(0.0, base - k * (a_days - a_last))
    observed = np.searchsorted(ev, days, side="right").astype(float)
    rate = float(a_days[-1] / max(days[-1] - days[0], 1.0))
    return CusumResult(days, stat, a_days, observed, float(limit), signal, onset, rate)


def run_lengths(
    limit: float,
    hazard_ratio: float,
    rate: float = 1.0,
    n_runs: int = 2000,
    seed: int = 0,
    max_length: float = 1e6,
) -> np.ndarray:
    """Simulated run lengths (in expected bone metastases, the clock ``A``) of the CUSUM with
    limit ``h`` when events arrive at ``rate`` per expected one (1: in control; ``rho``: the
    hazard ratio it is tuned to). Runs longer than ``max_length`` are returned as it."""
    theta, k = np.log(hazard_ratio), hazard_ratio - 1.0
    rng = np.random.default_rng(seed)
    g = np.zeros(n_runs)
    t = np.zeros(n_runs)
    out = np.full(n_runs, float(max_length))
    active = np.arange(n_runs)
    while active.size:
        gap = rng.standard_exponential(active.size) / rate
        t[active] += gap
        g[active] = np.maximum(0.0, g[active] - k * gap) + theta
        hit = g[active] >= limit
        out[active[hit]] = t[active[hit]]
        over = t[active] >= max_length
        active = active[~hit & ~over]
    return out


def _records(hazard_ratio: float, n_runs: int, seed: int, horizon: float):
    """In-control paths of the CUSUM without a limit, up to ``horizon`` expected events: each
    run's successive record highs of ``G`` and when they happened, sorted by run then time."""
    theta, k = np.log(hazard_ratio), hazard_ratio - 1.0
    rng = np.random.default_rng(seed)
    g = np.zeros(n_runs)
    t = np.zeros(n_runs)
    best = np.zeros(n_runs)
    runs, values, times = [], [], []
    while (t < horizon).any():
        gap = rng.standard_exponential(n_runs)
        t += gap
        g = np.maximum(0.0, g - k * gap) + theta
        new = (g > best) & (t < horizon)
        if new.any():
            idx = np.flatnonzero(new)
            runs.append(idx)
            values.append(g[idx])
            times.append(t[idx])
            best[idx] = g[idx]
    run, value, time = (np.concatenate(x) for x in (runs, values, times))
    order = np.argsort(run, kind="stable")  # chronological within a run
    return run[order], value[order], time[order]


@lru_cache(maxsize=32)
def control_limit(arl: float, hazard_ratio: float, n_runs: int = 2000, seed: int = 0) -> float:
    """The control limit ``h`` whose simulated in-control ARL (expected bone metastases) is
    ``arl``, to 0.01.

    ``n_runs`` in-control paths are simulated once, to 10 times ``arl`` (a longer run has
    probability about exp(-10)), keeping each path's record highs; the run length for a limit
    ``h`` is when the path first reached it, so the ARL is known for every ``h`` and found by
    bisection.
    """
    if not arl > 1.0:
        raise ValueError(f"the in-control average run length must be > 1, got {arl}")
    horizon = 10.0 * arl
    run, value, time = _records(hazard_ratio, n_runs, seed, horizon)

    def mean_run_length(h: float) -> float:
        hit = value >= h
        first_runs, first = np.unique(run[hit], return_index=True)
        lengths = np.full(n_runs, horizon)
        lengths[first_runs] = time[hit][first]
        return float(lengths.mean())

    lo, hi = 0.0, float(value.max())
    if mean_run_length(hi) < arl:
        raise ValueError(f"cannot reach an in-control run length of {arl}: simulate longer")
    while hi - lo > 0.005:
        mid = (lo + hi) / 2
        if mean_run_length(mid) < arl:
            lo = mid
        else:
            hi = mid
    return round(hi, 2)
