"""The competing-risks target and the one combination of cause-specific hazards.

Targets are structured arrays with fields ``cause`` (0 censored, 1 bone metastasis, 2 death
without bone metastasis) and ``time`` (days); see :func:`make_target`. Every family
(:mod:`training.models.cause_specific`, :mod:`training.models.ipcw`,
:mod:`training.models.ensemble`; named in :mod:`training.models.catalog`) exposes

- ``predict(X)``: a risk score, higher meaning bone metastasis sooner;
- ``predict_cumulative_incidence(X, times_days)``: an ``(n, len(times))`` array of the
  cumulative incidence of bone metastasis by each time, non-decreasing in time, in [0, 1].

Shared pieces here: :func:`competing_cumulative_incidence` (the one implementation of the
cause-specific-hazards combination), :func:`censoring_survival` (the Kaplan-Meier estimate of
the censoring distribution) and :func:`ipcw_labels` (status and censoring weight at a horizon;
:func:`training.models.ipcw.status_at_horizon` is the step callers use).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from features.vocabulary import BONE_METASTASIS, CAUSE_CODES, CENSORED, DAYS_PER_MONTH, DEATH

__all__ = [
    "make_target",
    "check_target",
    "competing_cumulative_incidence",
    "competing_cumulative_incidences",
    "grid_steps_needed",
    "censoring_survival",
    "ipcw_labels",
    "step_values",
    "DAYS_PER_MONTH",
    "CENSORED",
    "BONE_METASTASIS",
    "DEATH",
    "CAUSE_CODES",
]


def make_target(event: Sequence[str], time_days: Sequence[float]) -> np.ndarray:
    """Competing-risks target as a structured array.

    Parameters
    ----------
    event : sequence of str
        Contract ``event`` values: ``bone_metastasis``, ``death`` or ``censored``.
    time_days : sequence of float
        Contract ``time_days`` values (> 0).

    Returns
    -------
    numpy.ndarray
        Structured array with fields ``cause`` (int8) and ``time`` (float64).
    """
    event = np.asarray(event, dtype=object)
    time_days = np.asarray(time_days, dtype=float)
    if event.shape != time_days.shape:
        raise ValueError("event and time_days must have the same length")
    unknown = sorted({str(e) for e in event} - set(CAUSE_CODES))
    if unknown:
        raise ValueError(f"unknown event value(s): {', '.join(unknown)}")
    if not np.all(np.isfinite(time_days) & (time_days > 0)):
        raise ValueError("time_days must be finite and > 0")
    y = np.empty(event.shape[0], dtype=[("cause", "i1"), ("time", "f8")])
    y["cause"] = [CAUSE_CODES[str(e)] for e in event]
    y["time"] = time_days
    return y


def check_target(y: np.ndarray) -> np.ndarray:
    """Return ``y`` if it is a competing-risks target from :func:`make_target`.

    Raises
    ------
    TypeError
        When ``y`` is not a structured array with fields ``cause`` and ``time``.
    """
    if not (isinstance(y, np.ndarray) and y.dtype.names == ("cause", "time")):
        raise TypeError("y must be a structured array from training.models.competing.make_target")
    return y


def check_fit_data(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X as a float matrix, y)`` for ``fit``: ``y`` a target (:func:`check_target`), ``X``
    2-D with one row per target (ValueError otherwise)."""
    y = check_target(y)
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError("X must be 2-D with one row per target")
    return X, y


def censoring_survival(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of the censoring distribution G(t) = P(C > t).

    Any event (bone metastasis or death) censors the censoring time. The values of
    scikit-survival's ``kaplan_meier_estimator`` with censoring as the event (not its
    ``reverse=True`` form, which orders tied event and censoring times differently): at a time
    with both, the patients with an event are still at risk of being censored, the convention of
    the IPCW weights here. Computed with numpy's grouped counts (tested equal to
    scikit-survival's to 1e-15): scikit-survival counts the risk sets in a Python loop over the
    distinct times (40 ms for 2,000 patients, 0.3 s for 60,000), and the IPCW metrics ask for
    this estimate on every bootstrap resample.

    Returns
    -------
    times, surv : numpy.ndarray
        Step function: ``G(t) = surv[k]`` for ``times[k] <= t < times[k+1]``, 1 before.
    """
    y = check_target(y)
    if y.shape[0] == 0:
        return np.empty(0), np.empty(0)
    times, inverse = np.unique(y["time"].astype(float), return_inverse=True)
    at_time = np.bincount(inverse, minlength=times.size)
    censored = np.bincount(
        inverse, weights=(y["cause"] == CENSORED).astype(float), minlength=times.size
    )
    at_risk = y.shape[0] - np.concatenate(([0], np.cumsum(at_time)[:-1]))
    ratio = np.divide(censored, at_risk, out=np.zeros(times.size, dtype=float), where=censored != 0)
    return times, np.cumprod(1.0 - ratio)


def step_values(
    times: np.ndarray, values: np.ndarray, at: np.ndarray | float, before: float = 0.0
) -> np.ndarray:
    """A right-continuous step function read at ``at``.

    Parameters
    ----------
    times : numpy.ndarray
        Increasing jump times, shape ``(m,)``.
    values : numpy.ndarray
        Value from each jump time on: shape ``(m,)``, or ``(n, m)`` for ``n`` curves.
    at : array-like
        Times at which to read the function.
    before : float, default=0.0
        Value before the first jump time (and everywhere when there is none).

    Returns
    -------
    numpy.ndarray
        Shape ``values.shape[:-1] + np.shape(at)``, float.
    """
    values = np.asarray(values)
    idx = np.searchsorted(times, at, side="right") - 1
    if values.shape[-1] == 0:
        return np.full(values.shape[:-1] + np.shape(idx), float(before))
    read = values[..., np.clip(idx, 0, None)]
    return np.asarray(np.where(idx >= 0, read, before), dtype=float)


def grid_steps_needed(grid_days: np.ndarray, times_days: Sequence[float] | np.ndarray) -> int:
    """Number of leading grid times that can affect a step function read at ``times_days``.

    Parameters
    ----------
    grid_days : numpy.ndarray
        Increasing grid of times (days).
    times_days : array-like
        Times at which the step function will be read.

    Returns
    -------
    int
        Count of grid times ``<= max(times_days)`` (0 for no or only negative times).
    """
    latest = np.asarray(times_days, dtype=float).max(initial=0.0)
    return int(np.searchsorted(np.asarray(grid_days, dtype=float), latest, side="right"))


def competing_cumulative_incidence(
    grid_days: np.ndarray,
    cumhaz_bm: np.ndarray,
    cumhaz_death: np.ndarray,
    times_days: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Cumulative incidence of bone metastasis from two cause-specific cumulative hazards.

    The single implementation of the cause-specific combination used by every survival family.
    With ``A1``, ``A2`` a patient's cumulative hazards of bone metastasis and of death on the grid
    ``t_j``, increments ``dA1_j`` and ``dA_j = dA1_j + dA2_j``, and hazards taken constant within
    each step,

        S(t)  = exp(-sum_{t_j <= t} dA_j)                                (free of both events)
        F1(t) = sum_{t_j <= t} S(t_{j-1}) * (dA1_j / dA_j) * (1 - exp(-dA_j)),

    so ``F1 + F2 = 1 - S`` exactly and ``F1`` is non-decreasing and in [0, 1]. Without
    covariates (Nelson-Aalen or Breslow hazards) this is the Aalen-Johansen estimate up to
    ``exp(-dA)`` against ``1 - dA`` within a step.

    Parameters
    ----------
    grid_days : numpy.ndarray
        Increasing grid times ``t_j`` (days), shape ``(m,)``.
    cumhaz_bm, cumhaz_death : numpy.ndarray
        Cumulative hazards at the grid times, shape ``(n, m)`` (or ``(m,)`` for one curve).
        Negative increments (numerical noise) are treated as 0.
    times_days : array-like
        Times (days) at which to read the right-continuous incidence; 0 before the first grid
        time, held after the last.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, len(times_days))``.
    """
    return _competing_incidences(grid_days, cumhaz_bm, cumhaz_death, times_days, death=False)[0]


def competing_cumulative_incidences(
    grid_days: np.ndarray,
    cumhaz_bm: np.ndarray,
    cumhaz_death: np.ndarray,
    times_days: Sequence[float] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative incidences of bone metastasis and of death without it, from the same hazards.

    As :func:`competing_cumulative_incidence`, plus the competing event's incidence

        F2(t) = sum_{t_j <= t} S(t_{j-1}) * (dA2_j / dA_j) * (1 - exp(-dA_j)),

    so ``F1 + F2 = 1 - S <= 1`` at every time and both are non-decreasing.

    Returns
    -------
    cif_bm, cif_death : numpy.ndarray
        Shape ``(n, len(times_days))`` each.
    """
    return _competing_incidences(grid_days, cumhaz_bm, cumhaz_death, times_days, death=True)


def _competing_incidences(
    grid_days: np.ndarray,
    cumhaz_bm: np.ndarray,
    cumhaz_death: np.ndarray,
    times_days: Sequence[float] | np.ndarray,
    death: bool,
) -> tuple[np.ndarray, ...]:
    """``(F1,)`` or ``(F1, F2)`` read at the times (the arithmetic of both public functions)."""
    grid = np.asarray(grid_days, dtype=float)
    times = np.atleast_1d(np.asarray(times_days, dtype=float))
    a1 = np.atleast_2d(np.asarray(cumhaz_bm, dtype=float))
    a2 = np.atleast_2d(np.asarray(cumhaz_death, dtype=float))
    if a1.shape != a2.shape or a1.shape[1] != grid.shape[0]:
        raise ValueError(
            f"cumulative hazards must both have one column per grid time: shapes {a1.shape}, "
            f"{a2.shape}, grid {grid.shape}"
        )
    if grid.size == 0:
        return (np.zeros((a1.shape[0], times.size)),) * (2 if death else 1)
    idx = np.searchsorted(grid, times, side="right") - 1
    # Only the steps up to the latest time read matter (the sums run forwards in time).
    steps = int(idx.max(initial=-1)) + 1
    if steps == 0:
        return (np.zeros((a1.shape[0], times.size)),) * (2 if death else 1)
    a1, a2 = a1[:, :steps], a2[:, :steps]
    # In place, one (n, m) buffer per quantity: the same operations on the same numbers as
    # the formula written with temporaries (tests/models/test_competing.py keeps that one).
    d1 = np.diff(a1, axis=1, prepend=0.0)
    np.maximum(d1, 0.0, out=d1)
    d2 = np.diff(a2, axis=1, prepend=0.0)
    np.maximum(d2, 0.0, out=d2)
    d_all = d1 + d2
    any_event = np.zeros_like(d_all)  # exclusive cumulative sum first: A(t_{j-1})
    np.cumsum(d_all[:, :-1], axis=1, out=any_event[:, 1:])
    # Each step's probability of any event, 1 - exp(-dA), shared in proportion to the
    # cause-specific increments: the two incidences then add up to 1 - S exactly.
    np.negative(any_event, out=any_event)
    np.exp(any_event, out=any_event)  # S(t_{j-1})
    step = np.negative(d_all)
    np.expm1(step, out=step)
    np.negative(step, out=step)  # 1 - exp(-dA_j)
    any_event *= step
    positive = d_all > 0
    read_at = np.clip(idx, 0, None)
    out = []
    for d in (d1, d2) if death else (d1,):
        share = np.zeros_like(d_all)
        np.divide(d, d_all, out=share, where=positive)
        share *= any_event
        np.cumsum(share, axis=1, out=share)
        read = np.where(idx[None, :] >= 0, share[:, read_at], 0.0)
        out.append(np.clip(read, 0.0, 1.0))
    return tuple(out)


def ipcw_labels(
    y: np.ndarray,
    horizon_days: float,
    g_times: np.ndarray,
    g_surv: np.ndarray,
    cause: int = BONE_METASTASIS,
) -> tuple[np.ndarray, np.ndarray]:
    """Binary status at a horizon and its inverse-probability-of-censoring weight.

    ``cause`` is the event labelled 1 (default bone metastasis; ``DEATH`` for the competing
    event); the weights do not depend on it.

    Returns
    -------
    label : numpy.ndarray of int
        1 for ``cause`` by the horizon, else 0.
    weight : numpy.ndarray of float
        ``1 / G(T-)`` for an event by the horizon, ``1 / G(h)`` for follow-up past it event-free,
        0 for censoring before it (status unknown).
    """
    t = y["time"]
    event_by_h = (t <= horizon_days) & (y["cause"] != CENSORED)
    past_h = t > horizon_days
    label = (event_by_h & (y["cause"] == cause)).astype(int)
    # G evaluated just before the event time for events, at the horizon for survivors.
    g_event = step_values(g_times, g_surv, np.nextafter(t, -np.inf), 1.0)
    g_h = float(step_values(g_times, g_surv, np.array([horizon_days]), 1.0)[0])
    weight = np.zeros(t.shape[0])
    weight[event_by_h] = 1.0 / np.maximum(g_event[event_by_h], 1e-3)
    weight[past_h] = 1.0 / max(g_h, 1e-3)
    return label, weight
