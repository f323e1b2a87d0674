"""The interval on every probability (contract 1.2 ``low``/``high``, level :data:`INTERVAL_LEVEL`).

Two sources of uncertainty are carried, each as a 90 % interval on the logit scale of the
probability, and added in quadrature on each side (independent errors):

1. **The model's estimation uncertainty** (:class:`Uncertainty`, computed once at training time by
   :func:`fit_uncertainty` and stored with the version). On the training rows, at each training
   horizon and for each event, the IPCW-weighted status by the horizon
   (:func:`training.models.ipcw.status_at_horizon`) is regressed (weighted logistic, a ridge on the
   feature terms whose prior variance, 1 / p per term, bounds the spread without data) on ``z = [1, logit p, x]``: the logit of the model's predicted
   cumulative incidence and the features the estimator sees. The inverse information of that
   regression, ``Sigma``, says how precisely the training data determine the risk of a patient
   with these features at this level (it grows with few events, with rare feature combinations,
   with far-out features): the interval's half-width on the logit scale is ``1.645 *
   sqrt(z' Sigma z)``. This is the delta method applied to a local refit of the model's
   prediction, so it serves every family alike; only ``Sigma`` (a small matrix per event and
   horizon) is stored. Serving computes one quadratic form per horizon (microseconds); a
   horizon between two training horizons interpolates the standard deviation, beyond them
   takes the nearest. Rows beyond ``max_rows`` are subsampled for the fit and ``Sigma``
   scaled by ``m / n``.

   It does not capture everything: a structure the family cannot represent (a misspecified
   model) is bias, not estimation noise, and a landmark model's rows of one patient are
   counted as independent. The benchmark against the simulator's truth
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
from scipy.special import expit, ndtri

from training.models.link import logit

#: Level of every interval of the API, the batch output and the page.
INTERVAL_LEVEL = 0.9
#: Warning on an answer whose version has no interval data.
NO_INTERVAL_WARNING = (
    "no interval: this model version was logged before intervals (contract 1.2) and carries "
    "no estimate of its uncertainty"
)
#: The standard normal quantile of the interval's upper end (1.645 for 90 %).
_Z = float(ndtri((1 + INTERVAL_LEVEL) / 2))


@dataclass(frozen=True)
class Uncertainty:
    """Estimation uncertainty of a version, per event and training horizon.

    Attributes
    ----------
    horizons_months : tuple of float
        Training horizons, increasing.
    cov : dict of str to numpy.ndarray
        Per event (``"bone"``, ``"death"``) a ``(horizons, q, q)`` covariance of the
        coefficients of the local recalibration model on ``z = [1, logit p, features]``.
    """

    horizons_months: tuple[float, ...]
    cov: dict[str, np.ndarray]

    def half_widths(
        self, event: str, L: np.ndarray, X: np.ndarray, horizons_months: Sequence[float]
    ) -> np.ndarray:
        """``(n, horizons)`` half-widths on the logit scale of the interval of ``event`` for
        logits ``L`` (``(n, horizons)``) and features ``X`` (``(n, p)``); zeros for an event
        without stored covariance."""
        if event not in self.cov:
            return np.zeros_like(L)
        return self.stacked_half_widths(self.cov[event][None], L[None], X, horizons_months)[0]

    def stacked_half_widths(
        self, cov: np.ndarray, L: np.ndarray, X: np.ndarray, horizons_months: Sequence[float]
    ) -> np.ndarray:
        """As :meth:`half_widths` for several events at once: ``cov`` ``(E, K, q, q)`` (the
        events' stored covariances, stacked), ``L`` ``(E, n, horizons)``; ``(E, n, horizons)``.
        """
        # z' S z = S00 + 2 x.S0x + x'Sxx x + 2 L (S01 + x.S1x) + L^2 S11, for every event and
        # stored horizon k at once; the requested horizons interpolate the standard deviation.
        # Matrix products (BLAS) rather than one three-operand einsum, whose loop over
        # n * p * p terms per event and horizon was most of a 1,000-patient batch's intervals;
        # the same sums in another order (the reference einsum is in the tests).
        fixed = cov[:, :, 0, 0, None] + 2 * (cov[:, :, 0, 2:] @ X.T)
        fixed += np.einsum("eknr,nr->ekn", X @ cov[:, :, 2:, 2:], X)
        linear = cov[:, :, 0, 1, None] + cov[:, :, 1, 2:] @ X.T
        lo, hi, w = self._interpolation(tuple(horizons_months))
        square = cov[:, :, 1, 1, None, None]  # (E, K, 1, 1)

        def sd(k: np.ndarray) -> np.ndarray:  # (E, n, horizons)
            var = fixed[:, k].transpose(0, 2, 1) + 2 * L * linear[:, k].transpose(0, 2, 1)
            var += L * L * square[:, k, 0, 0][:, None, :]
            return np.sqrt(np.maximum(var, 0.0))

        return _Z * (w * sd(lo) + (1.0 - w) * sd(hi))

    def _interpolation(self, horizons: tuple[float, ...]) -> tuple[np.ndarray, ...]:
        """Stored horizons below and above each requested one and the weight of the lower
        (cached per tuple of horizons: a service sees few)."""
        key = (self.horizons_months, horizons)
        found = _WEIGHTS.get(key)
        if found is None:
            known = np.asarray(self.horizons_months, dtype=float)
            h = np.asarray(horizons, dtype=float)
            hi = np.clip(np.searchsorted(known, h), 0, known.size - 1)
            lo = np.clip(hi - 1, 0, known.size - 1)
            span = known[hi] - known[lo]
            at = np.clip(h, known[0], known[-1])
            w = np.where(span > 0, (known[hi] - at) / np.where(span > 0, span, 1.0), 0.0)
            found = (lo, hi, w)
            if len(_WEIGHTS) < 256:
                _WEIGHTS[key] = found
        return found


#: Interpolation of requested horizons between stored ones, by (stored, requested) horizons.
_WEIGHTS: dict[tuple[tuple[float, ...], tuple[float, ...]], tuple[np.ndarray, ...]] = {}


def _recalibration_cov(
    Z: np.ndarray, label: np.ndarray, weight: np.ndarray, ridge: float, iterations: int = 30
) -> np.ndarray:
    """Inverse (penalised) information of a weighted logistic regression of ``label`` on
    ``Z``, at its fit by Newton's method."""
    q = Z.shape[1]
    beta = np.zeros(q)
    penalty = ridge * np.eye(q)
    penalty[0, 0] = penalty[1, 1] = 1e-6  # intercept and slope on the model's logit: free
    for _ in range(iterations):
        mu = expit(np.clip(Z @ beta, -30, 30))
        grad = Z.T @ (weight * (label - mu)) - penalty @ beta
        info = (Z * (weight * mu * (1 - mu))[:, None]).T @ Z + penalty
        step = np.linalg.solve(info, grad)
        beta += step
        if np.max(np.abs(step)) < 1e-8:
            break
    mu = expit(np.clip(Z @ beta, -30, 30))
    info = (Z * (weight * mu * (1 - mu))[:, None]).T @ Z + penalty
    return np.linalg.inv(info)


def fit_uncertainty(
    cif: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    horizons_months: Sequence[float],
    *,
    ridge: float | None = None,
    max_rows: int = 20000,
    seed: int = 0,
) -> Uncertainty:
    """The estimation uncertainty of a fitted model (module docstring, part 1).

    Parameters
    ----------
    cif : dict
        ``"bone"`` (and ``"death"`` when the model estimates it): ``(n, horizons)`` predicted
        cumulative incidences of the training rows.
    X : numpy.ndarray
        ``(n, p)`` the training rows' features as the estimator sees them.
    y : numpy.ndarray
        The training target (:func:`training.models.competing.make_target`).
    horizons_months : sequence of float
        The columns of ``cif``.
    """
    from training.models.competing import DAYS_PER_MONTH, censoring_survival
    from training.models.ipcw import status_at_horizon

    rng = np.random.default_rng(seed)
    n = y.shape[0]
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    scale = rows.size / n  # a variance shrinks as one over the sample size
    X = np.asarray(X, dtype=float)[rows]
    censoring = censoring_survival(y)
    order = np.argsort(np.asarray(horizons_months, dtype=float))
    horizons = tuple(float(horizons_months[j]) for j in order)
    q = X.shape[1] + 2
    # A prior variance of 1 / p per feature term: without data, a patient's logit would be
    # uncertain by about +-1.6 in all (90 %), not by p times that; with many events the data
    # dominate it.
    ridge = float(max(X.shape[1], 1)) if ridge is None else ridge
    cov: dict[str, np.ndarray] = {}
    for event, cause in (("bone", 1), ("death", 2)):
        if event not in cif:
            continue
        out = np.zeros((len(horizons), q, q))
        for k, j in enumerate(order):
            status = status_at_horizon(
                y, float(horizons_months[j]) * DAYS_PER_MONTH, cause=cause, censoring=censoring
            )
            label = status.label[rows].astype(float)
            weight = status.weight[rows]
            known = weight > 0
            if known.sum() < 10 or np.unique(label[known]).size < 2:
                continue  # nothing to learn from at this horizon: no stored spread
            L = logit(cif[event][rows, j])
            Z = np.column_stack([np.ones(rows.size), L, X])[known]
            out[k] = _recalibration_cov(Z, label[known], weight[known], ridge) * scale
        cov[event] = out
    return Uncertainty(horizons, cov)


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
    L: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``low``, ``high`` of ``(n, horizons)`` probabilities ``p``.

    ``estimation``: lower/upper logit half-widths (>= 0); ``marker``: the probabilities at the two
    marker percentiles (NaN where no counts); ``L``: ``logit(p)`` when the caller has it.
    Any shape, elementwise (several events may come stacked).
    """
    L = logit(p) if L is None else L
    dlo, dhi = -estimation[0], estimation[1]
    if marker is not None:
        m1, m2 = logit(np.where(np.isnan(marker[0]), p, marker[0])), logit(
            np.where(np.isnan(marker[1]), p, marker[1])
        )
        mlo = np.minimum(np.minimum(m1, m2) - L, 0.0)
        mhi = np.maximum(np.maximum(m1, m2) - L, 0.0)
        dlo = -np.sqrt(dlo**2 + mlo**2)
        dhi = np.sqrt(dhi**2 + mhi**2)
    # Each horizon's bounds are its own (not made monotone across the horizons asked for): the
    # answer at a horizon must not depend on which other horizons a request lists.
    low = np.minimum(expit(L + dlo), p)
    high = np.maximum(expit(L + dhi), p)
    return np.minimum(np.maximum(low, 0.0), 1.0), np.minimum(np.maximum(high, 0.0), 1.0)
