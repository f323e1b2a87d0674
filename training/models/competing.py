"""Model families that predict the cumulative incidence of bone metastasis, death competing.

Targets are structured arrays with fields ``cause`` (0 censored, 1 bone metastasis, 2 death
without bone metastasis) and ``time`` (days); see :func:`make_target`. Every family (here and
in :mod:`training.models.families`, which builds on the shared pieces below) exposes

- ``predict(X)``: a risk score, higher meaning bone metastasis sooner;
- ``predict_cumulative_incidence(X, times_days)``: an ``(n, len(times))`` array of the
  cumulative incidence of bone metastasis by each time, non-decreasing in time, in [0, 1].

Shared pieces: :func:`competing_cumulative_incidence` (the one implementation of the
cause-specific-hazards combination) and :class:`IPCWHorizonBase` (horizon labels, censoring
weights, running maximum and interpolation for any base classifier).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from features.schema import DEFAULT_HORIZONS_MONTHS

CENSORED, BONE_METASTASIS, DEATH = 0, 1, 2
CAUSE_CODES = {"censored": CENSORED, "bone_metastasis": BONE_METASTASIS, "death": DEATH}
DAYS_PER_MONTH = 365.25 / 12

__all__ = [
    "make_target",
    "check_target",
    "competing_cumulative_incidence",
    "competing_cumulative_incidences",
    "grid_steps_needed",
    "CauseSpecificCox",
    "IPCWHorizonBase",
    "IPCWHorizonClassifier",
    "censoring_survival",
    "ipcw_labels",
    "DAYS_PER_MONTH",
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


def censoring_survival(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate of the censoring distribution G(t) = P(C > t).

    Any event (bone metastasis or death) censors the censoring time.

    Returns
    -------
    times, surv : numpy.ndarray
        Step function: ``G(t) = surv[k]`` for ``times[k] <= t < times[k+1]``, 1 before.
    """
    y = check_target(y)
    t = y["time"]
    cens = y["cause"] == CENSORED
    times = np.unique(t[cens])
    order = np.sort(t)
    at_risk = order.size - np.searchsorted(order, times, side="left")
    cens_sorted = np.sort(t[cens])
    n_cens = np.searchsorted(cens_sorted, times, side="right") - np.searchsorted(
        cens_sorted, times, side="left"
    )
    surv = np.cumprod(1.0 - n_cens / np.maximum(at_risk, 1))
    return times, surv


def _step(times: np.ndarray, values: np.ndarray, at: np.ndarray, before: float) -> np.ndarray:
    """Right-continuous step function evaluated at ``at``."""
    idx = np.searchsorted(times, at, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)] if values.size else before, before)
    return np.asarray(out, dtype=float)


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
    d1 = np.maximum(np.diff(a1, axis=1, prepend=0.0), 0.0)
    d2 = np.maximum(np.diff(a2, axis=1, prepend=0.0), 0.0)
    d_all = d1 + d2
    cum_before = np.zeros_like(d_all)  # exclusive cumulative sum: A(t_{j-1})
    np.cumsum(d_all[:, :-1], axis=1, out=cum_before[:, 1:])
    # Each step's probability of any event, 1 - exp(-dA), shared in proportion to the
    # cause-specific increments: the two incidences then add up to 1 - S exactly.
    any_event = np.exp(-cum_before) * -np.expm1(-d_all)
    idx = np.searchsorted(grid, times, side="right") - 1
    out = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for d in (d1, d2) if death else (d1,):
            cif = np.cumsum(any_event * np.where(d_all > 0, d / d_all, 0.0), axis=1)
            read = np.where(idx[None, :] >= 0, cif[:, np.clip(idx, 0, None)], 0.0)
            out.append(np.clip(read, 0.0, 1.0))
    return tuple(out)


class CauseSpecificCox(BaseEstimator):
    """Two penalised Cox models, one per cause, combined into a cumulative incidence.

    The cause-specific hazard of bone metastasis is fitted treating death as censoring, and the
    cause-specific hazard of death treating bone metastasis as censoring (both ridge-penalised
    ``sksurv.linear_model.CoxPHSurvivalAnalysis`` with Breslow baselines). The cumulative
    incidence of bone metastasis for covariates x is

        F1(t | x) = sum_{t_j <= t} S(t_{j-1} | x) * (dA1_j / dA_j) * (1 - exp(-dA_j)),
        dA1_j = dH1(t_j) exp(x b1),  dA_j = dA1_j + dH2(t_j) exp(x b2),
        S(t | x)  = exp(-H1(t) exp(x b1) - H2(t) exp(x b2)),

    (hazards constant within each step, so F1 + F2 = 1 - S exactly),

    which accounts for patients who die first (a 1 - S1(t) that censors death overstates it).

    Parameters
    ----------
    alpha : float, default=1.0
        Ridge penalty of both Cox models (sksurv's ``alpha``).
    l1_ratio : float or None, default=None
        When set, both models are elastic-net Cox (``CoxnetSurvivalAnalysis``) with this
        ``l1_ratio`` and penalty ``alpha`` scaled to coxnet's parameterisation.
    """

    def __init__(self, alpha: float = 1.0, l1_ratio: float | None = None) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio

    def _make(self):
        if self.l1_ratio is None:
            from sksurv.linear_model import CoxPHSurvivalAnalysis

            return CoxPHSurvivalAnalysis(alpha=self.alpha, ties="breslow", n_iter=200)
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        return CoxnetSurvivalAnalysis(
            l1_ratio=self.l1_ratio, alphas=[self.alpha], fit_baseline_model=True
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> CauseSpecificCox:
        from sksurv.util import Surv

        y = check_target(y)
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError("X must be 2-D with one row per target")
        for code in (BONE_METASTASIS, DEATH):
            if not np.any(y["cause"] == code):
                name = "bone_metastasis" if code == BONE_METASTASIS else "death"
                raise ValueError(f"no {name} events in the training data: cannot fit its hazard")
        self.models_ = {}
        for code in (BONE_METASTASIS, DEATH):
            model = self._make()
            model.fit(X, Surv.from_arrays(y["cause"] == code, y["time"]))
            self.models_[code] = model
        # Baseline cumulative hazards on the union grid of event times.
        grid = np.unique(y["time"][y["cause"] != CENSORED])
        self.grid_days_ = grid
        self.baseline_cumhaz_ = {}
        for code, model in self.models_.items():
            est = (
                model.cum_baseline_hazard_
                if hasattr(model, "cum_baseline_hazard_")
                else (model._baseline_models[0].cum_baseline_hazard_)
            )
            self.baseline_cumhaz_[code] = _step(est.x, est.y, grid, 0.0)
        self.coef_ = {code: self._coef(m) for code, m in self.models_.items()}
        self.n_features_in_ = X.shape[1]
        return self

    @staticmethod
    def _coef(model) -> np.ndarray:
        coef = np.asarray(model.coef_, dtype=float)
        return coef[:, 0] if coef.ndim == 2 else coef

    def linear_predictors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log relative hazards of bone metastasis and of death."""
        check_is_fitted(self, "coef_")
        X = np.asarray(X, dtype=float)
        if self.l1_ratio is None:
            return X @ self.coef_[BONE_METASTASIS], X @ self.coef_[DEATH]
        # Coxnet's baseline is relative to its own offset (training mean of X @ coef).
        return tuple(self.models_[c].predict(X) for c in (BONE_METASTASIS, DEATH))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Log relative hazard of bone metastasis (the risk score)."""
        return self.linear_predictors(X)[0]

    def predict_cumulative_incidence(
        self, X: np.ndarray, times_days: Sequence[float]
    ) -> np.ndarray:
        """Cumulative incidence of bone metastasis by each time (death competing)."""
        return competing_cumulative_incidence(*self._hazards(X, times_days), times_days)

    def predict_incidences(
        self, X: np.ndarray, times_days: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative incidences of bone metastasis and of death without it by each time."""
        return competing_cumulative_incidences(*self._hazards(X, times_days), times_days)

    def _hazards(self, X: np.ndarray, times_days: Sequence[float]):
        """The grid and both cumulative hazards up to the latest of ``times_days``."""
        lp_bm, lp_d = self.linear_predictors(X)
        last = grid_steps_needed(self.grid_days_, times_days)
        h1 = self.baseline_cumhaz_[BONE_METASTASIS][:last]
        h2 = self.baseline_cumhaz_[DEATH][:last]
        return (
            self.grid_days_[:last],
            np.exp(lp_bm)[:, None] * h1[None, :],
            np.exp(lp_d)[:, None] * h2[None, :],
        )


def _logistic_margin(classifier, X: np.ndarray) -> np.ndarray | None:
    """A binary ``LogisticRegression``'s linear predictor (its ``decision_function``), computed
    directly to skip per-call input validation on the serving path; None for other classifiers.
    """
    if isinstance(classifier, LogisticRegression) and classifier.coef_.shape[0] == 1:
        return X @ classifier.coef_[0] + classifier.intercept_[0]
    return None


def _probability(classifier, X: np.ndarray) -> np.ndarray:
    """Positive-class probability of a fitted binary classifier (``expit`` of the margin of a
    binary logistic regression, the arithmetic of its ``predict_proba``)."""
    margin = _logistic_margin(classifier, X)
    return classifier.predict_proba(X)[:, 1] if margin is None else expit(margin)


class IPCWHorizonBase(BaseEstimator):
    """Binary classifiers for bone metastasis by each horizon, censoring handled by IPCW.

    The horizon, weighting and interpolation logic shared by the classifier families; a
    subclass supplies the per-horizon classifier through :meth:`_make_classifier` (any
    scikit-learn classifier whose ``fit`` accepts ``sample_weight`` and that has
    ``predict_proba``) and stores ``horizons_months`` and ``score_horizon_months`` as
    parameters.

    For horizon h a patient's status is known when bone metastasis or death happened by h
    (death first counts as *no* bone metastasis by h: the competing event) or when follow-up
    passed h event-free. A patient censored before h has unknown status: instead of being
    dropped silently (which biases the estimate down), the known patients are weighted by the
    inverse probability of remaining uncensored, ``1 / G(min(T, h))``, with G the Kaplan-Meier
    estimate of the censoring distribution (:func:`ipcw_labels`). The weighted proportion then
    estimates the cumulative incidence with death competing.

    Predictions are made non-decreasing across horizons by a running maximum; between fitted
    horizons they are interpolated linearly (0 at time 0); past the last fitted horizon they
    are held at the last value (the model cannot know more).

    The competing event (:meth:`predict_incidences`): a second classifier per horizon, same
    base, same known patients and weights, labelled death without bone metastasis by h (the
    weighted proportion estimates the cumulative incidence of death with bone metastasis
    competing; a horizon where no known patient died gets that weighted proportion, 0, as a
    constant). Its predictions get the same running maximum and are then capped at one minus
    the bone-metastasis probability at the last fitted horizon, the largest cap that keeps
    death non-decreasing and bone metastasis plus death at most 1 at every fitted horizon;
    linear interpolation between horizons keeps both properties. The two sets of classifiers
    are fitted separately, so the cap is a guard: on the simulated cohorts it does not bind.
    """

    horizons_months: Sequence[float]
    score_horizon_months: float

    def _make_classifier(self):  # pragma: no cover - abstract
        raise NotImplementedError("subclasses return an unfitted binary classifier")

    def _log_odds(self, classifier, X: np.ndarray) -> np.ndarray:
        """Log-odds of one fitted horizon classifier (``decision_function`` when it has one)."""
        margin = _logistic_margin(classifier, X)
        if margin is not None:
            return margin
        if hasattr(classifier, "decision_function"):
            return classifier.decision_function(X)
        p = np.clip(classifier.predict_proba(X)[:, 1], 1e-12, 1.0 - 1e-12)
        return np.log(p) - np.log1p(-p)

    def fit(self, X: np.ndarray, y: np.ndarray) -> IPCWHorizonBase:
        """Fit one weighted classifier per horizon.

        Parameters
        ----------
        X : numpy.ndarray
            Feature matrix, one row per target.
        y : numpy.ndarray
            Structured target from :func:`make_target`.

        Returns
        -------
        self
        """
        y = check_target(y)
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError("X must be 2-D with one row per target")
        horizons = np.sort(np.asarray(self.horizons_months, dtype=float))
        if self.score_horizon_months not in set(horizons.tolist()):
            raise ValueError("score_horizon_months must be one of horizons_months")
        g_times, g_surv = censoring_survival(y)
        self.classifiers_ = []
        self.death_classifiers_ = []
        self.n_known_ = []
        for h in horizons * DAYS_PER_MONTH:
            label, weight = ipcw_labels(y, h, g_times, g_surv)
            known = weight > 0
            self.n_known_.append(int(known.sum()))
            if np.unique(label[known]).size < 2:
                raise ValueError(
                    f"horizon {h / DAYS_PER_MONTH:g} months: need patients with and without "
                    "bone metastasis among those with known status"
                )
            clf = self._make_classifier()
            clf.fit(X[known], label[known], sample_weight=weight[known])
            self.classifiers_.append(clf)
            died, _ = ipcw_labels(y, h, g_times, g_surv, cause=DEATH)
            if np.unique(died[known]).size < 2:
                # No death (or only deaths) among the known: the weighted proportion.
                self.death_classifiers_.append(
                    float(np.average(died[known], weights=weight[known]))
                )
                continue
            clf = self._make_classifier()
            clf.fit(X[known], died[known], sample_weight=weight[known])
            self.death_classifiers_.append(clf)
        self.fitted_horizons_months_ = horizons
        self.n_features_in_ = X.shape[1]
        return self

    def _at_fitted(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "classifiers_")
        X = np.asarray(X, dtype=float)
        # float64: XGBoost answers float32, and 1 - p must be exact for the death cap.
        p = np.column_stack([_probability(c, X) for c in self.classifiers_]).astype(float)
        return np.maximum.accumulate(p, axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Log-odds of bone metastasis by ``score_horizon_months`` (the risk score)."""
        check_is_fitted(self, "classifiers_")
        k = int(np.flatnonzero(self.fitted_horizons_months_ == self.score_horizon_months)[0])
        return self._log_odds(self.classifiers_[k], np.asarray(X, dtype=float))

    def predict_cumulative_incidence(
        self, X: np.ndarray, times_days: Sequence[float]
    ) -> np.ndarray:
        """Probability of bone metastasis by each time, interpolated between fitted horizons."""
        return self._interpolate(self._at_fitted(X), times_days)

    def predict_incidences(
        self, X: np.ndarray, times_days: Sequence[float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of bone metastasis and of death without it by each time.

        Raises
        ------
        AttributeError
            For an estimator fitted before the death classifiers existed (no
            ``death_classifiers_``): it cannot estimate death.
        """
        bm = self._at_fitted(X)
        X = np.asarray(X, dtype=float)
        death = np.column_stack(
            [
                np.full(X.shape[0], c) if isinstance(c, float) else _probability(c, X)
                for c in self.death_classifiers_
            ]
        ).astype(float)
        death = np.minimum(np.maximum.accumulate(death, axis=1), 1.0 - bm[:, -1:])
        return self._interpolate(bm, times_days), self._interpolate(death, times_days)

    def _interpolate(self, p: np.ndarray, times_days: Sequence[float]) -> np.ndarray:
        knots = np.concatenate([[0.0], self.fitted_horizons_months_ * DAYS_PER_MONTH])
        values = np.concatenate([np.zeros((p.shape[0], 1)), p], axis=1)
        t = np.atleast_1d(np.asarray(times_days, dtype=float))
        out = np.empty((p.shape[0], t.size))
        for j, tj in enumerate(t):
            k = np.searchsorted(knots, tj, side="right") - 1
            if k >= knots.size - 1:
                out[:, j] = values[:, -1]
            else:
                w = (tj - knots[k]) / (knots[k + 1] - knots[k])
                out[:, j] = (1 - w) * values[:, k] + w * values[:, k + 1]
        return np.clip(out, 0.0, 1.0)


class IPCWHorizonClassifier(IPCWHorizonBase):
    """L2-penalised logistic regression for bone metastasis by each horizon, with IPCW.

    See :class:`IPCWHorizonBase` for the labels, weights, running maximum and interpolation.

    Parameters
    ----------
    horizons_months : sequence of float, default=(12, 24, 36, 60)
        Horizons at which a classifier is fitted.
    C : float, default=1.0
        Inverse L2 penalty of the logistic regressions.
    score_horizon_months : float, default=24
        Horizon whose log-odds is the risk score.
    """

    def __init__(
        self,
        horizons_months: Sequence[float] = DEFAULT_HORIZONS_MONTHS,
        C: float = 1.0,
        score_horizon_months: float = 24,
    ) -> None:
        self.horizons_months = horizons_months
        self.C = C
        self.score_horizon_months = score_horizon_months

    def _make_classifier(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, max_iter=1000)


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
    g_event = _step(g_times, g_surv, np.nextafter(t, -np.inf), 1.0)
    g_h = float(_step(g_times, g_surv, np.array([horizon_days]), 1.0)[0])
    weight = np.zeros(t.shape[0])
    weight[event_by_h] = 1.0 / np.maximum(g_event[event_by_h], 1e-3)
    weight[past_h] = 1.0 / max(g_h, 1e-3)
    return label, weight
