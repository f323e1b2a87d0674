"""The interval on every probability (contract 1.2 ``low``/``high``, level :data:`INTERVAL_LEVEL`).

Two sources of uncertainty are carried, each as a 90 % interval on the logit scale of the
probability, and added in quadrature on each side (independent errors):

1. **The model's estimation uncertainty** (:class:`Uncertainty`, computed once at training time by
   :func:`fit_uncertainty` and stored with the version). On the training rows, at each training
   horizon and for each event, the IPCW-weighted status by the horizon
   (:func:`training.models.ipcw.status_at_horizon`) is regressed on the logit of the model's
   predicted cumulative incidence (a two-parameter calibration line: intercept and slope). The
   regression is refitted on ``n_boot`` patient-level bootstrap resamples (a patient's landmark
   rows resampled together), and the 5th and 95th percentiles of each resample's line minus the
   full-data line are stored on a grid of the logit: how far the absolute risk at that level
   could be off given how many patients and events the version learnt from. Rows beyond
   ``max_rows`` are subsampled for this fit and the deviations scaled by ``sqrt(m / n)`` (a
   bootstrap deviation shrinks as one over the square root of the sample size).
   Serving reads the grid by linear interpolation (microseconds); a horizon between two training
   horizons interpolates between them, beyond them takes the nearest.

   It does not capture everything: a structure the family cannot represent (a misspecified
   model) is bias, not estimation noise. The benchmark against the simulator's truth
   (``benchmarks/bench_intervals.py``, ``docs/benchmarks.md``) says how often the interval
   covers the true incidence in each simulated world.

2. **The counting noise of the marker's draw.** When the draw gives ``oc_positive_events`` ``k``
   and ``pbmc_events`` ``n``, the true fraction has the Jeffreys posterior ``Beta(k + 1/2, n - k +
   1/2)``; the model is evaluated at its 5th and 95th percentiles (one batched call with the
   patient's own row) and the spread of the predictions is this part of the interval. A draw
   given as a percent without its counts adds no counting noise (unknown: it is not invented).
   For a landmark model the perturbed value is the latest draw (``oc_positive_percent``); the
   trajectory features are kept.

A version logged before intervals existed has no :class:`Uncertainty`: its answers carry no
bounds and a warning says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Level of every interval of the API, the batch output and the page.
INTERVAL_LEVEL = 0.9
#: Warning on an answer whose version has no interval data.
NO_INTERVAL_WARNING = (
    "no interval: this model version was logged before intervals (contract 1.2) and carries "
    "no estimate of its uncertainty"
)
_EPS = 1e-6
_GRID = np.linspace(-12.0, 12.0, 97)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def expit(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


@dataclass(frozen=True)
class Uncertainty:
    """Estimation uncertainty of a version, per event and training horizon, on a logit grid.

    Attributes
    ----------
    horizons_months : tuple of float
        Training horizons, increasing.
    grid : numpy.ndarray
        Logit values at which the deviations are stored.
    lower, upper : dict of str to numpy.ndarray
        Per event (``"bone"``, ``"death"``) a ``(horizons, grid)`` array of the lower (<= 0) and
        upper (>= 0) deviation on the logit scale.
    n_boot : int
        Bootstrap resamples behind the percentiles.
    """

    horizons_months: tuple[float, ...]
    grid: np.ndarray
    lower: dict[str, np.ndarray]
    upper: dict[str, np.ndarray]
    n_boot: int

    def deviations(
        self, event: str, L: np.ndarray, horizons_months: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper logit deviations for ``(n, horizons)`` logits ``L`` of ``event``
        (zeros for an event without stored deviations)."""
        if event not in self.lower:
            return np.zeros_like(L), np.zeros_like(L)
        known = np.asarray(self.horizons_months, dtype=float)
        lo = np.empty_like(L)
        hi = np.empty_like(L)
        for j, h in enumerate(horizons_months):
            k = int(np.searchsorted(known, h))
            if k == 0 or k == known.size:
                k = min(k, known.size - 1)
                w, a, b = 1.0, k, k
            else:
                a, b = k - 1, k
                w = (known[b] - h) / (known[b] - known[a])
            for out, table in ((lo, self.lower[event]), (hi, self.upper[event])):
                ya = np.interp(L[:, j], self.grid, table[a])
                yb = np.interp(L[:, j], self.grid, table[b])
                out[:, j] = w * ya + (1.0 - w) * yb
        return lo, hi


def _calibration_line(
    L: np.ndarray, label: np.ndarray, weight: np.ndarray, iterations: int = 25
) -> np.ndarray:
    """Weighted logistic regression of ``label`` on ``[1, L]`` per column of ``weight``
    (``(n, B)``); ``(B, 2)`` coefficients by Newton's method (a tiny ridge keeps it finite)."""
    B = weight.shape[1]
    beta = np.zeros((B, 2))
    beta[:, 1] = 1.0
    X = np.column_stack([np.ones_like(L), L])
    for _ in range(iterations):
        eta = np.clip(X @ beta.T, -30, 30)  # (n, B)
        mu = expit(eta)
        r = weight * (label[:, None] - mu)
        g = X.T @ r  # (2, B)
        v = weight * mu * (1 - mu)
        h00 = v.sum(0) + 1e-6
        h01 = (v * L[:, None]).sum(0)
        h11 = (v * (L * L)[:, None]).sum(0) + 1e-6
        det = h00 * h11 - h01 * h01
        step0 = (h11 * g[0] - h01 * g[1]) / det
        step1 = (h00 * g[1] - h01 * g[0]) / det
        beta[:, 0] += step0
        beta[:, 1] += step1
        if np.max(np.abs(np.concatenate([step0, step1]))) < 1e-8:
            break
    return beta


def fit_uncertainty(
    cif: dict[str, np.ndarray],
    y: np.ndarray,
    horizons_months: Sequence[float],
    groups: np.ndarray | None = None,
    *,
    n_boot: int = 200,
    max_rows: int = 20000,
    seed: int = 0,
) -> Uncertainty:
    """The estimation-uncertainty grid of a fitted model (module docstring, part 1).

    Parameters
    ----------
    cif : dict
        ``"bone"`` (and ``"death"`` when the model estimates it): ``(n, horizons)`` predicted
        cumulative incidences of the training rows.
    y : numpy.ndarray
        The training target (:func:`training.models.competing.make_target`).
    horizons_months : sequence of float
        The columns of ``cif``.
    groups : numpy.ndarray, optional
        The patient of each row (landmark rows of one patient are resampled together).
    """
    from training.models.competing import DAYS_PER_MONTH, censoring_survival
    from training.models.ipcw import status_at_horizon

    rng = np.random.default_rng(seed)
    n = y.shape[0]
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    scale = np.sqrt(rows.size / n)
    codes = np.unique(groups[rows], return_inverse=True)[1] if groups is not None else None
    n_groups = int(codes.max()) + 1 if codes is not None else rows.size
    counts = rng.poisson(1.0, size=(n_groups, n_boot)).astype(float)
    boot = counts[codes] if codes is not None else counts
    censoring = censoring_survival(y)
    order = np.argsort(np.asarray(horizons_months, dtype=float))
    horizons = tuple(float(horizons_months[j]) for j in order)
    lower: dict[str, np.ndarray] = {}
    upper: dict[str, np.ndarray] = {}
    for event, cause in (("bone", 1), ("death", 2)):
        if event not in cif:
            continue
        lo = np.zeros((len(horizons), _GRID.size))
        hi = np.zeros_like(lo)
        for k, j in enumerate(order):
            status = status_at_horizon(
                y, float(horizons_months[j]) * DAYS_PER_MONTH, cause=cause, censoring=censoring
            )
            label = status.label[rows].astype(float)
            weight = status.weight[rows]
            known = weight > 0
            if known.sum() < 10 or np.unique(label[known]).size < 2:
                continue  # nothing to learn the level from: no stored spread at this horizon
            L = logit(cif[event][rows, j])[known]
            full = _calibration_line(L, label[known], weight[known][:, None])[0]
            lines = _calibration_line(L, label[known], weight[known][:, None] * boot[known])
            dev = (lines[:, :1] - full[0]) + (lines[:, 1:] - full[1]) * _GRID[None, :]
            q = np.quantile(dev, [(1 - INTERVAL_LEVEL) / 2, (1 + INTERVAL_LEVEL) / 2], axis=0)
            lo[k] = np.minimum(q[0], 0.0) * scale
            hi[k] = np.maximum(q[1], 0.0) * scale
        lower[event], upper[event] = lo, hi
    return Uncertainty(horizons, _GRID.copy(), lower, upper, n_boot)


def marker_bounds(events: np.ndarray, pbmc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """5th and 95th percent of the osteocalcin-positive fraction (percent) from the counts
    (Jeffreys posterior); NaN where the counts are not both given."""
    from scipy.special import betaincinv

    k = np.asarray(events, dtype=float)
    n = np.asarray(pbmc, dtype=float)
    ok = np.isfinite(k) & np.isfinite(n) & (n > 0) & (k <= n)
    lo = np.full(k.shape, np.nan)
    hi = np.full(k.shape, np.nan)
    if ok.any():
        a, b = k[ok] + 0.5, n[ok] - k[ok] + 0.5
        lo[ok] = 100.0 * betaincinv(a, b, (1 - INTERVAL_LEVEL) / 2)
        hi[ok] = 100.0 * betaincinv(a, b, (1 + INTERVAL_LEVEL) / 2)
    return lo, hi


def combine(
    p: np.ndarray,
    estimation: tuple[np.ndarray, np.ndarray],
    marker: tuple[np.ndarray, np.ndarray] | None,
    order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``low``, ``high`` of ``(n, horizons)`` probabilities ``p``.

    ``estimation``: lower/upper logit deviations; ``marker``: the probabilities at the two
    marker percentiles (NaN where no counts); ``order``: the horizons' increasing order (the
    bounds are made non-decreasing along it, as the probabilities are).
    """
    L = logit(p)
    dlo, dhi = estimation
    if marker is not None:
        m1, m2 = logit(np.where(np.isnan(marker[0]), p, marker[0])), logit(
            np.where(np.isnan(marker[1]), p, marker[1])
        )
        mlo = np.minimum(np.minimum(m1, m2) - L, 0.0)
        mhi = np.maximum(np.maximum(m1, m2) - L, 0.0)
        dlo = -np.sqrt(dlo**2 + mlo**2)
        dhi = np.sqrt(dhi**2 + mhi**2)
    low = np.minimum(expit(L + dlo), p)
    high = np.maximum(expit(L + dhi), p)
    low[:, order] = np.maximum.accumulate(low[:, order], axis=1)
    high[:, order] = np.maximum.accumulate(high[:, order], axis=1)
    return np.clip(np.minimum(low, p), 0.0, 1.0), np.clip(np.maximum(high, p), 0.0, 1.0)
