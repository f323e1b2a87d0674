"""Cumulative incidences of both causes on a grid, read as the cause-specific cumulative hazard.

With ``F1``, ``F2`` the cumulative incidences of bone metastasis and of death without it and
``S = 1 - F1 - F2`` the probability of being free of both, the cause-specific hazard of bone
metastasis is ``dF1(t) / S(t-)``, so on a grid ``t_0 = 0 < t_1 < ...``

    Lambda1(t_k) = sum_{j <= k} (F1(t_j) - F1(t_{j-1})) / Sbar_j,
    Sbar_j = (S(t_{j-1}) + S(t_j)) / 2

(the trapezoid in ``S``: exact for a constant hazard to second order in the step). Used by the
simulator's drift scenarios (a hazard multiplied after a date) and by the monitor's CUSUM.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cause_specific_cumhaz", "cumhaz_at"]


def cause_specific_cumhaz(f1: np.ndarray, f2: np.ndarray | None = None) -> np.ndarray:
    """``(n, g + 1)`` cumulative hazards (first column 0, at t = 0) from ``(n, g)`` incidences
    at the grid's ``g`` positive times (``f2`` None: no competing event)."""
    f1 = np.atleast_2d(np.asarray(f1, dtype=float))
    f2 = np.zeros_like(f1) if f2 is None else np.atleast_2d(np.asarray(f2, dtype=float))
    n = f1.shape[0]
    f1 = np.maximum.accumulate(np.column_stack([np.zeros(n), np.nan_to_num(f1)]), axis=1)
    f2 = np.maximum.accumulate(np.column_stack([np.zeros(n), np.nan_to_num(f2)]), axis=1)
    free = np.clip(1.0 - f1 - f2, 1e-6, 1.0)
    mid = (free[:, :-1] + free[:, 1:]) / 2.0
    return np.column_stack([np.zeros(n), np.cumsum(np.diff(f1, axis=1) / mid, axis=1)])


def cumhaz_at(grid: np.ndarray, cumhaz: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Each row's cumulative hazard at times ``t`` (``(n,)`` or ``(n, m)``, >= 0, the grid's
    unit), linear between grid points and extrapolated with the last segment's slope."""
    t = np.asarray(t, dtype=float)
    flat = t.ndim == 1
    t2 = t[:, None] if flat else t
    k = np.clip(np.searchsorted(grid, t2, side="right") - 1, 0, grid.size - 2)
    rows = np.arange(cumhaz.shape[0])[:, None]
    lo, hi = cumhaz[rows, k], cumhaz[rows, k + 1]
    frac = (t2 - grid[k]) / (grid[k + 1] - grid[k])
    out = lo + frac * (hi - lo)
    return out[:, 0] if flat else out
