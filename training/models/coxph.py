"""Ridge Cox regression fitted with vectorised Newton-Raphson steps (scikit-survival's model).

:class:`FastCoxPH` is ``sksurv.linear_model.CoxPHSurvivalAnalysis`` (same parameters, same
attributes, same predictions, a subclass) whose ``fit`` runs the same Newton-Raphson
iterations, step halving and stopping rule (``|1 - loss_new / loss| < tol``) with Breslow's
ties, but forms each step's gradient, Hessian and partial likelihood with array operations over
the risk sets instead of scikit-survival's Python loop over the patients. With Breslow's
method, over the distinct times ``t_j`` (``d_j`` events, risk set ``R_j = {i: T_i >= t_j}``,
``w_i = exp(x_i b)``, ``S0_j = sum_{R_j} w_i``, ``z_j = sum_{R_j} w_i x_i / S0_j``):

    loss(b)  = -(1/n) sum_j [ sum_{events at t_j} x_i b - d_j log S0_j ] + sum(alpha b^2) / (2n)
    grad(b)  = -(1/n) [ sum_{events} x_i - sum_j d_j z_j ] + alpha b / n
    H(b)     = (1/n) [ sum_i w_i c_i x_i x_i' - sum_j d_j z_j z_j' ] + diag(alpha) / n,
               c_i = sum_{j: t_j <= T_i} d_j / S0_j

(the second-moment term regrouped by patient: a patient belongs to every risk set up to its
own time). The risk-set sums are suffix sums in time order; ``exp`` is shifted by the largest
linear predictor (the ratios do not change, the log adds it back) so it cannot overflow.

The results equal scikit-survival's up to floating-point summation order (coefficients within
1e-6 on the demo cohort, ``tests/models/test_coxph.py``); at 4,000 rows and 36 features a fit
took about 0.02 s against 0.5 s (docs/benchmarks.md, "Training the demo").
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from scipy.linalg import solve
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_array, validate_data
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import check_array_survival

__all__ = ["FastCoxPH"]


class _BreslowRiskSets:
    """Loss, gradient and Hessian of the penalised Breslow partial likelihood, vectorised."""

    def __init__(self, X: np.ndarray, event: np.ndarray, time: np.ndarray, alpha: np.ndarray):
        order = np.argsort(-time, kind="mergesort")  # descending, as scikit-survival
        self.x = X[order]
        self.event = event[order].astype(bool)
        t = time[order]
        n = t.size
        first = np.r_[True, t[1:] != t[:-1]]
        self.group = np.cumsum(first) - 1  # index of each row's distinct time
        starts = np.flatnonzero(first)
        self.last = np.r_[starts[1:] - 1, n - 1]  # last row of each distinct time
        self.deaths = np.bincount(self.group, weights=self.event, minlength=starts.size)
        self.with_events = self.deaths > 0
        self.event_x = self.x[self.event].sum(axis=0)
        self.alpha = alpha
        self.n = n

    def _sums(self, w: np.ndarray):
        xw = self.x @ w
        shift = float(xw.max())
        e = np.exp(xw - shift)
        s0 = np.cumsum(e)[self.last]  # shifted risk-set sums at each distinct time
        return xw, shift, e, s0

    def loss(self, w: np.ndarray) -> float:
        xw, shift, _, s0 = self._sums(w)
        d = self.deaths[self.with_events]
        log_s0 = np.log(s0[self.with_events]) + shift
        ll = float(xw[self.event].sum() - np.sum(d * log_s0))
        return -ll / self.n + float(np.sum(self.alpha * np.square(w))) / (2.0 * self.n)

    def gradient_hessian(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, _, e, s0 = self._sums(w)
        s1 = np.cumsum(e[:, None] * self.x, axis=0)[self.last]
        keep = self.with_events
        d = self.deaths[keep]
        z = s1[keep] / s0[keep, None]
        gradient = -(self.event_x - d @ z) / self.n + self.alpha * w / self.n
        ratio = np.zeros(s0.size)
        ratio[keep] = d / s0[keep]
        c = np.cumsum(ratio[::-1])[::-1][self.group]  # sum over the risk sets a row is in
        hessian = (self.x.T @ (self.x * (e * c)[:, None]) - z.T @ (z * d[:, None])) / self.n
        hessian[np.diag_indices_from(hessian)] += self.alpha / self.n
        return gradient, hessian


class FastCoxPH(CoxPHSurvivalAnalysis):
    """``CoxPHSurvivalAnalysis`` with a vectorised Newton-Raphson fit (Breslow's ties only).

    Parameters, attributes and predictions are scikit-survival's; ``ties="efron"`` falls back
    to its own fit.
    """

    def fit(self, X, y):
        """Fit the model (the iterations of ``CoxPHSurvivalAnalysis.fit``, vectorised).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : structured array of (event, time)

        Returns
        -------
        self
        """
        if self.ties != "breslow":
            return super().fit(X, y)
        self._validate_params()
        X = validate_data(self, X, ensure_min_samples=2, dtype=np.float64)
        event, time = check_array_survival(X, y)
        if isinstance(self.alpha, numbers.Real | numbers.Integral):
            alphas = np.full(X.shape[1], float(self.alpha))
        else:
            alphas = check_array(self.alpha, ensure_2d=False, ensure_min_samples=0)
        if np.any(alphas < 0):
            raise ValueError(f"alpha must be positive, but was {self.alpha!r}")
        if alphas.shape[0] != X.shape[1]:
            raise ValueError(
                f"Length alphas ({alphas.shape[0]}) must match number of features ({X.shape[1]})."
            )
        problem = _BreslowRiskSets(X, event, time, alphas)
        w = np.zeros(X.shape[1])
        w_prev = w
        i = 0
        loss = float("inf")
        while True:
            if i >= self.n_iter:
                warnings.warn(
                    "Optimization did not converge: Maximum number of iterations has been "
                    "exceeded.",
                    stacklevel=2,
                    category=ConvergenceWarning,
                )
                break
            gradient, hessian = problem.gradient_hessian(w)
            delta = solve(hessian, gradient, overwrite_a=True, check_finite=False)
            if not np.all(np.isfinite(delta)):
                raise ValueError("search direction contains NaN or infinite values")
            w_new = w - delta
            loss_new = problem.loss(w_new)
            if loss_new > loss:  # step halving when the loss does not decrease
                w = (w_prev + w) / 2
                loss = problem.loss(w)
                i += 1
                continue
            w_prev = w
            w = w_new
            if np.abs(1 - (loss_new / loss)) < self.tol:
                break
            loss = loss_new
            i += 1
        self.coef_ = w
        self._baseline_model.fit(np.dot(X, self.coef_), event, time)
        return self
