"""Model families for bone metastasis with death as a competing event, and their registry.

Every estimator here follows :mod:`training.models.competing`: ``fit(X, y)`` with ``y`` the
structured
competing-risks target (:func:`training.models.competing.make_target`), ``predict(X)`` a risk score
(higher = bone metastasis sooner) and ``predict_cumulative_incidence(X, times_days)`` the
cumulative incidence of bone metastasis with death competing, ``(n, len(times))``,
non-decreasing in time and in [0, 1]. ``X`` is the standardised float matrix produced by the
feature pipeline (:func:`features.transformers.make_feature_pipeline`).

Two kinds of family:

- ``survival``: :class:`CauseSpecificHazards` fits one survival model per cause (bone
  metastasis with death censored; death with bone metastasis censored) and combines their
  cumulative hazards with :func:`training.models.competing.competing_cumulative_incidence`, the
  formula
  of ``docs/modeling.md``. Bases: ``coxph``, ``coxnet``, ``gbsa``, ``xgb_cox`` (proportional
  hazards: a log relative hazard and a Breslow baseline) and ``rsf`` (a random survival forest:
  one cumulative hazard curve per patient, no proportional hazards).
- ``classifier``: one binary classifier per horizon with inverse probability of censoring
  weights (:class:`training.models.competing.IPCWHorizonBase`): logistic regression or XGBoost.

:data:`FAMILIES` maps each family name to a :class:`Family`: how to build its estimator from a
parameter dict and a small hyperparameter grid sized for nested cross-validation on about 2,000
patients on two cores (fit times in the comment above :data:`FAMILIES`).

Resource rules baked in: XGBoost always runs with one thread (two threads on a two-core machine
were erratically 10-100x slower), random survival forests are bounded (:data:`RSF_LIMITS`)
because every tree node stores a curve over the distinct training times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features.schema import DEFAULT_HORIZONS_MONTHS
from training.evaluation.concordance import fast_harrell_c
from training.models.competing import (
    BONE_METASTASIS,
    CENSORED,
    DAYS_PER_MONTH,
    DEATH,
    CauseSpecificCox,
    IPCWHorizonBase,
    IPCWHorizonClassifier,
    check_target,
    competing_cumulative_incidence,
    competing_cumulative_incidences,
    grid_steps_needed,
)

__all__ = [
    "BASES",
    "BASE_DEFAULTS",
    "RSF_LIMITS",
    "rsf_size_bound",
    "Family",
    "FAMILIES",
    "CauseSpecificHazards",
    "XGBIPCWClassifier",
    "breslow_cumulative_hazard",
    "feature_importance",
]

#: Bases with proportional hazards: a log relative hazard plus a Breslow baseline.
PH_BASES: tuple[str, ...] = ("coxph", "coxnet", "gbsa", "xgb_cox")
#: Every survival base of :class:`CauseSpecificHazards`.
BASES: tuple[str, ...] = PH_BASES + ("rsf",)

#: Parameters of each base when not given (merged under the caller's ``params``).
BASE_DEFAULTS: dict[str, dict[str, Any]] = {
    "coxph": {"alpha": 1.0},
    "coxnet": {"alpha": 0.01, "l1_ratio": 0.5},
    "gbsa": {
        # sksurv's Cox loss and gradient are O(n^2) per stage: few, subsampled stages.
        "n_estimators": 40,
        "learning_rate": 0.15,
        "max_depth": 2,
        "min_samples_leaf": 10,
        "subsample": 0.5,
        "random_state": 0,
        # Bound: each cause's boosting is fitted on at most this many patients (a seeded
        # random subset); the Breslow baseline still uses every patient. At 6,000 rows
        # a fit took 33 s (O(n^2) loss per stage; docs/benchmarks.md).
        "max_fit_rows": 5000,
    },
    "xgb_cox": {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "max_depth": 2,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "reg_lambda": 1.0,
        "random_state": 0,
    },
    "rsf": {
        "n_estimators": 50,
        "min_samples_leaf": 20,
        "max_samples": 2000,
        "max_features": "sqrt",
        "random_state": 0,
    },
}

#: Bounds on random survival forests. Each tree node stores its cumulative hazard and survival
#: curves over the distinct training times (float64, ``2 * n_times`` values), so a forest holds
#: at most about :func:`rsf_size_bound` bytes per cause, whatever the cohort size: trees see a
#: bootstrap sample of at most ``max_samples`` patients, leaves hold at least
#: ``min_samples_leaf`` of them and times are coarsened to a grid (one month by default) of at
#: most ``max_times`` distinct times. A configuration whose bound exceeds ``max_bytes_per_cause``
#: is refused before fitting. Measured with the defaults at 100,000 patients (72 monthly
#: times): 7 MB pickled and 1.0 s per cause, peak RSS 259 MB for both causes (217 MB with the
#: data loaded); the largest allowed kind of forest (200 trees, 5,000 draws, leaves of 10)
#: pickled to 116 MB per cause with peak RSS 466 MB.
RSF_LIMITS: dict[str, float] = {
    "min_samples_leaf": 10,  # at least
    "max_samples": 5000,  # at most (an absolute count of bootstrap draws per tree)
    "n_estimators": 300,  # at most
    "max_times": 240,  # at most: distinct grid times (20 years of follow-up on a monthly grid)
    "max_bytes_per_cause": 256e6,  # at most: rsf_size_bound of one cause's forest
}


def rsf_size_bound(
    n_estimators: int, max_samples: int, min_samples_leaf: int, n_times: int
) -> float:
    """Upper bound (bytes) on the node curves of one random survival forest.

    A tree grown on at most ``max_samples`` distinct patients with leaves of at least
    ``min_samples_leaf`` has at most ``2 * max_samples / min_samples_leaf`` nodes, each storing
    ``2 * n_times`` float64 values (cumulative hazard and survival).

    Parameters
    ----------
    n_estimators, max_samples, min_samples_leaf, n_times : int
        Trees, bootstrap draws per tree, minimum leaf size and distinct training times.

    Returns
    -------
    float
        Bytes.
    """
    nodes = 2.0 * max_samples / min_samples_leaf
    return float(n_estimators) * nodes * n_times * 2 * 8


#: Coxnet is fitted along alphas from this multiple of the target alpha down to it.
_COXNET_PATH_RATIO = 30.0

#: Rows predicted at a time, to bound the ``(rows, grid times)`` work arrays.
_CHUNK_ROWS = 2048
#: Largest number of distinct event times kept exact by the proportional-hazards bases; above
#: it times are rounded up to a day, a week or a month (``CauseSpecificHazards``).
MAX_EXACT_GRID_TIMES = 1000


def breslow_cumulative_hazard(
    linear_predictor: np.ndarray, event: np.ndarray, time: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Breslow estimate of the cumulative baseline hazard given a linear predictor.

    ``H0(t) = sum_{t_j <= t} d_j / sum_{i: T_i >= t_j} exp(eta_i)`` over the distinct observed
    times ``t_j`` with ``d_j`` events (Breslow 1972), the baseline for which
    ``H(t | x) = H0(t) exp(eta(x))``; the same estimator as scikit-survival's
    ``BreslowEstimator``.

    Parameters
    ----------
    linear_predictor : numpy.ndarray
        Log relative hazards ``eta`` of the training patients.
    event : numpy.ndarray of bool
        Event indicators.
    time : numpy.ndarray
        Event or censoring times.

    Returns
    -------
    times, cumhaz : numpy.ndarray
        Distinct observed times (events and censorings) and ``H0`` at each (right-continuous).
    """
    eta = np.asarray(linear_predictor, dtype=float)
    event = np.asarray(event, dtype=bool)
    time = np.asarray(time, dtype=float)
    if not (eta.shape == event.shape == time.shape and eta.ndim == 1):
        raise ValueError("linear_predictor, event and time must be 1-D of the same length")
    shift = float(eta.max(initial=0.0))  # exp(eta - shift) <= 1: no overflow
    order = np.argsort(time, kind="mergesort")
    t_sorted = time[order]
    weight = np.exp(eta[order] - shift)
    times, first, inverse = np.unique(t_sorted, return_index=True, return_inverse=True)
    at_risk = np.cumsum(weight[::-1])[::-1][first]  # sum of exp(eta) over T_i >= t_j
    deaths = np.bincount(inverse, weights=event[order].astype(float), minlength=times.size)
    return times, np.cumsum(deaths / at_risk) * np.exp(-shift)


def _coarsen(time: np.ndarray, step: float | None) -> np.ndarray:
    """Round times up to the next multiple of ``step`` (unchanged when ``step`` is None)."""
    if step is None:
        return time
    # Rounding the ratio first keeps exact multiples (730.5 / 30.4375 = 24) on their own step.
    return np.ceil(np.round(time / step, 9)) * step


def _step_values(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step function through ``values`` read at ``at`` (0 before)."""
    idx = np.searchsorted(times, at, side="right") - 1
    if values.ndim == 1:
        return np.where(idx >= 0, values[np.clip(idx, 0, None)], 0.0)
    return np.where(idx[None, :] >= 0, values[:, np.clip(idx, 0, None)], 0.0)


def _continuous_cumhaz(nelson_aalen: np.ndarray) -> np.ndarray:
    """Cumulative hazard whose steps survive like the discrete hazards of a Nelson-Aalen curve.

    A Nelson-Aalen increment ``h = d / n`` is the probability of the event within the step;
    the combination formula takes hazards constant within a step, whose step survival is
    ``exp(-dA)``. ``dA = -log(1 - h)`` makes the two agree; it matters on a coarse grid (a
    month holds many events) and is the identity to first order on exact event times.
    """
    h = np.clip(np.diff(nelson_aalen, axis=1, prepend=0.0), 0.0, 1.0 - 1e-12)
    return np.cumsum(-np.log1p(-h), axis=1)


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1.0 - 1e-6)
    return np.log(q) - np.log1p(-q)


class CauseSpecificHazards(BaseEstimator):
    """Two cause-specific survival models combined into a cumulative incidence.

    One model of the hazard of bone metastasis (death censored) and one of death without bone
    metastasis (bone metastasis censored), fitted with the same base and parameters. For a
    patient with cumulative hazards ``A1(t)``, ``A2(t)`` on the grid of event times ``t_j``, the
    cumulative incidence of bone metastasis is

        F1(t) = sum_{t_j <= t} S(t_{j-1}) * (dA1_j / dA_j) * (1 - exp(-dA_j)),
        dA_j = dA1_j + dA2_j,   S(t) = exp(-A1(t) - A2(t)),

    computed by :func:`training.models.competing.competing_cumulative_incidence` (the formula of
    ``CauseSpecificCox``). For the proportional-hazards bases ``A_k(t | x) = H0_k(t)
    exp(eta_k(x))`` with ``H0_k`` the Breslow estimate given the fitted ``eta_k``
    (:func:`breslow_cumulative_hazard`); for ``rsf`` ``A_k`` is the forest's ensemble
    cumulative hazard (Nelson-Aalen in the leaves, averaged over trees), each step's increment
    ``h`` (a probability of the event within the step) taken as the constant hazard
    ``-log(1 - h)`` with the same step survival; on a monthly grid this removes an
    underestimate of order ``h / 2`` relative per step.

    Bases (parameters in ``params``, defaults :data:`BASE_DEFAULTS`):

    - ``coxph``: ``sksurv.linear_model.CoxPHSurvivalAnalysis``, ridge ``alpha``;
    - ``coxnet``: ``sksurv.linear_model.CoxnetSurvivalAnalysis``, elastic net ``alpha``
      (coxnet's scale: penalty on the mean log partial likelihood) and ``l1_ratio``;
    - ``gbsa``: ``sksurv.ensemble.GradientBoostingSurvivalAnalysis`` with ``loss="coxph"``;
    - ``xgb_cox``: ``xgboost.XGBRegressor`` with ``objective="survival:cox"`` (label: time,
      negated for censored patients), always one thread;
    - ``rsf``: ``sksurv.ensemble.RandomSurvivalForest``, bounded by :data:`RSF_LIMITS`
      (``max_samples`` is an absolute number of bootstrap draws per tree, capped at the number
      of training patients), always one job and ``low_memory=False`` (the low-memory mode
      cannot predict cumulative hazards).

    Parameters
    ----------
    base : str, default="coxph"
        One of :data:`BASES`.
    params : dict or None, default=None
        Parameters of the base estimator, merged over :data:`BASE_DEFAULTS`.
    time_grid_days : float or None, default=None
        When set, event and censoring times are rounded *up* to multiples of this step before
        fitting (fewer distinct times: smaller forests, faster fits). With one month
        (``DAYS_PER_MONTH`` = 30.4375 days) every whole-month horizon is a grid time, so the
        incidence at 12, 24, 36 or 60 months counts exactly the events up to the horizon;
        between grid times the incidence lags by less than one step. None keeps exact times
        when there are at most :data:`MAX_EXACT_GRID_TIMES` distinct event times, and else
        takes the first of one day, one week, one month that brings them under it (the
        combination grid, and so prediction time and memory, grow with it: 1.2 s per 1,000
        patients from 100,000 exact times); ``rsf`` always uses one month. 0 keeps exact times
        whatever their number (not for ``rsf``).
    score_horizon_months : float, default=24
        Horizon of the ``rsf`` risk score.

    Attributes
    ----------
    models_ : dict
        Fitted base estimator per cause code (1 bone metastasis, 2 death). Without death
        events in the training data there is no death model: its hazard is zero and the
        incidence of bone metastasis is ``1 - S(t)``.
    grid_days_ : numpy.ndarray
        Distinct (coarsened) event times of either cause: the combination grid.
    baseline_cumhaz_ : dict
        Proportional-hazards bases only: Breslow ``H0_k`` on ``grid_days_`` per cause.
    coef_ : dict
        ``coxph`` and ``coxnet`` only: coefficients per cause (standardised features).
    time_step_days_ : float or None
        The coarsening step used.
    n_features_in_ : int

    Notes
    -----
    The risk score (:meth:`predict`) is the bone-metastasis log relative hazard ``eta_1(x)``
    for the proportional-hazards bases; for ``rsf``, which has no such quantity, it is the
    logit of the predicted cumulative incidence at ``score_horizon_months`` (monotone in that
    incidence, so it ranks patients by it).
    """

    def __init__(
        self,
        base: str = "coxph",
        params: Mapping[str, Any] | None = None,
        time_grid_days: float | None = None,
        score_horizon_months: float = 24,
    ) -> None:
        self.base = base
        self.params = params
        self.time_grid_days = time_grid_days
        self.score_horizon_months = score_horizon_months

    # -- construction -------------------------------------------------------------------------

    def _base_params(self) -> dict[str, Any]:
        if self.base not in BASES:
            raise ValueError(f"unknown base {self.base!r}: expected one of {', '.join(BASES)}")
        merged = {**BASE_DEFAULTS[self.base], **dict(self.params or {})}
        for key in ("n_jobs", "nthread"):
            if key in merged and merged[key] != 1:
                raise ValueError(
                    f"{self.base}: {key}={merged[key]!r} is not allowed; the families run "
                    "single-threaded (parallelism belongs to the cross-validation loop)"
                )
            merged.pop(key, None)
        if self.base == "rsf":
            _check_rsf_bounds(merged)
        return merged

    def _time_step(self, time: np.ndarray, event: np.ndarray) -> float | None:
        if self.time_grid_days is not None:
            step = float(self.time_grid_days)
            if not (np.isfinite(step) and step >= 0):
                raise ValueError(f"time_grid_days must be >= 0, got {self.time_grid_days!r}")
            if step == 0:
                if self.base == "rsf":
                    raise ValueError("rsf needs a time grid: time_grid_days must be > 0")
                return None  # exact times, however many
            return step
        if self.base == "rsf":
            return DAYS_PER_MONTH
        # Exact times unless they are many: then the first of a day, a week, a month that
        # bounds the grid (prediction cost and memory grow with it, the fit hardly changes).
        if np.unique(time[event]).size <= MAX_EXACT_GRID_TIMES:
            return None
        for step in (1.0, 7.0):
            if np.unique(_coarsen(time[event], step)).size <= MAX_EXACT_GRID_TIMES:
                return step
        return DAYS_PER_MONTH

    def _make_base(self, params: dict[str, Any], n_samples: int):
        if self.base == "coxph":
            from sksurv.linear_model import CoxPHSurvivalAnalysis

            return CoxPHSurvivalAnalysis(**{"ties": "breslow", "n_iter": 200, **params})
        if self.base == "coxnet":
            from sksurv.linear_model import CoxnetSurvivalAnalysis

            # A short warm-start path down to alpha: a single small alpha fitted from zero can
            # fail ("weights are too large"); predictions use the last (target) alpha.
            alphas = float(params.pop("alpha")) * np.geomspace(_COXNET_PATH_RATIO, 1.0, 8)
            return CoxnetSurvivalAnalysis(alphas=alphas, fit_baseline_model=True, **params)
        if self.base == "gbsa":
            from sksurv.ensemble import GradientBoostingSurvivalAnalysis

            return GradientBoostingSurvivalAnalysis(loss="coxph", **params)
        if self.base == "xgb_cox":
            from xgboost import XGBRegressor

            return XGBRegressor(
                objective="survival:cox", n_jobs=1, tree_method="hist", verbosity=0, **params
            )
        from sksurv.ensemble import RandomSurvivalForest

        params["max_samples"] = min(int(params["max_samples"]), n_samples)
        return RandomSurvivalForest(bootstrap=True, n_jobs=1, low_memory=False, **params)

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, X: np.ndarray, y: np.ndarray) -> CauseSpecificHazards:
        """Fit the two cause-specific models.

        Parameters
        ----------
        X : numpy.ndarray
            Standardised features, one row per target.
        y : numpy.ndarray
            Structured target from :func:`training.models.competing.make_target`.

        Returns
        -------
        self
        """
        y = check_target(y)
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] != y.shape[0]:
            raise ValueError("X must be 2-D with one row per target")
        if not np.any(y["cause"] == BONE_METASTASIS):
            raise ValueError(
                "no bone_metastasis events in the training data: cannot fit its hazard"
            )
        # A cohort that records no competing death (one event type, or deaths recoded as
        # censored by training.fitting.train.competing_deaths): the death hazard is zero, so the
        # incidence is 1 - S(t) of bone metastasis.
        causes = (BONE_METASTASIS, DEATH) if np.any(y["cause"] == DEATH) else (BONE_METASTASIS,)
        params = self._base_params()
        fit_rows = params.pop("max_fit_rows", None)
        rows = np.arange(X.shape[0])
        if fit_rows is not None and X.shape[0] > int(fit_rows):
            rng = np.random.default_rng(int(params.get("random_state", 0)))
            rows = np.sort(rng.choice(X.shape[0], int(fit_rows), replace=False))
        step = self._time_step(y["time"].astype(float), y["cause"] != CENSORED)
        time = _coarsen(y["time"].astype(float), step)
        grid = np.unique(time[y["cause"] != CENSORED])
        if self.base == "rsf":
            _check_rsf_size(params, X.shape[0], np.unique(time).size, step)
        self.models_ = {}
        baselines = {}
        for code in causes:
            event = y["cause"] == code
            model = self._make_base(dict(params), X.shape[0])
            if self.base == "xgb_cox":
                # xgboost's survival:cox label: the time, negated when the patient is censored.
                model.fit(X, np.where(event, time, -time))
            else:
                from sksurv.util import Surv

                # sksurv's Newton-Raphson can overflow exp() in an early, overshooting step
                # when a rare missing-value indicator has a large standardised value; it
                # recovers (step halving) and warns ConvergenceWarning if it does not converge.
                with np.errstate(over="ignore"):
                    model.fit(X[rows], Surv.from_arrays(event[rows], time[rows]))
            self.models_[code] = model
            if self.base in ("coxph", "coxnet") and not np.all(np.isfinite(model.coef_)):
                raise ValueError(f"{self.base}: non-finite coefficients; increase alpha")
            if self.base in PH_BASES:
                b_times, b_cumhaz = breslow_cumulative_hazard(
                    self._linear_predictor(model, X), event, time
                )
                baselines[code] = _step_values(b_times, b_cumhaz, grid)
        if self.base in PH_BASES:
            self.baseline_cumhaz_ = baselines
        if self.base in ("coxph", "coxnet"):
            self.coef_ = {
                code: np.asarray(m.coef_, dtype=float).reshape(X.shape[1], -1)[:, -1]
                for code, m in self.models_.items()
            }
            # coxnet's predict subtracts a centring offset; read it off the model's own output.
            self.lp_offset_ = {
                code: float(X[0] @ self.coef_[code] - self._linear_predictor(m, X[:1])[0])
                for code, m in self.models_.items()
            }
        self.grid_days_ = grid
        self.time_step_days_ = step
        self.n_features_in_ = X.shape[1]
        return self

    # -- prediction ---------------------------------------------------------------------------

    def _linear_predictor(self, model, X: np.ndarray) -> np.ndarray:
        if self.base == "xgb_cox":
            return np.asarray(model.predict(X, output_margin=True), dtype=float)
        # coxnet's predict subtracts its training offset, to which its baseline also refers;
        # the Breslow baseline here is computed from the same predictor, so either is fine.
        return np.asarray(model.predict(X), dtype=float)

    def _check_X(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "models_")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X must be 2-D with {self.n_features_in_} features, got shape {X.shape}"
            )
        return X

    def linear_predictors(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Log relative hazards of bone metastasis and of death (proportional-hazards bases).

        Parameters
        ----------
        X : numpy.ndarray
            Standardised features.

        Returns
        -------
        eta_bm, eta_death : numpy.ndarray
        """
        X = self._check_X(X)
        if self.base not in PH_BASES:
            raise AttributeError(f"base {self.base!r} has no linear predictor")
        return tuple(
            self._linear_predictor(self.models_[c], X) if c in self.models_ else np.zeros(len(X))
            for c in (BONE_METASTASIS, DEATH)
        )

    def _fast_linear_predictor(self, code: int, X: np.ndarray) -> np.ndarray:
        """The linear predictor of one cause; ``X @ coef - offset`` for the Cox bases.

        The arithmetic of sksurv's ``predict`` without its per-call input validation (the
        serving hot path); the offset (coxnet's centring, 0 for coxph) is recorded at fit.
        """
        if code not in self.models_:  # no death events in training: zero hazard
            return np.zeros(X.shape[0])
        offsets = getattr(self, "lp_offset_", None)
        if offsets is None or self.base not in ("coxph", "coxnet"):
            return self._linear_predictor(self.models_[code], X)
        return X @ self.coef_[code] - offsets[code]

    def cumulative_hazards(self, X: np.ndarray, n_steps: int | None = None):
        """Cause-specific cumulative hazards on ``grid_days_[:n_steps]``.

        Parameters
        ----------
        X : numpy.ndarray
            Standardised features.
        n_steps : int or None
            Leading grid times to return (all when None).

        Returns
        -------
        cumhaz_bm, cumhaz_death : numpy.ndarray
            Shape ``(n, n_steps)`` each.
        """
        X = self._check_X(X)
        grid = self.grid_days_[: len(self.grid_days_) if n_steps is None else n_steps]
        out = []
        for code in (BONE_METASTASIS, DEATH):
            model = self.models_.get(code)
            if model is None:  # no death events in training: zero hazard
                out.append(np.zeros((X.shape[0], grid.size)))
            elif self.base in PH_BASES:
                risk = np.exp(self._fast_linear_predictor(code, X))
                out.append(risk[:, None] * self.baseline_cumhaz_[code][None, : grid.size])
            else:
                chf = model.predict_cumulative_hazard_function(X, return_array=True)
                out.append(_continuous_cumhaz(_step_values(model.unique_times_, chf, grid)))
        return out[0], out[1]

    def predict_cumulative_incidence(
        self, X: np.ndarray, times_days: Sequence[float] | np.ndarray
    ) -> np.ndarray:
        """Cumulative incidence of bone metastasis by each time, death competing.

        Parameters
        ----------
        X : numpy.ndarray
            Standardised features.
        times_days : array-like
            Times since enrollment (days).

        Returns
        -------
        numpy.ndarray
            Shape ``(n, len(times_days))``, non-decreasing along times, in [0, 1].
        """
        return self._incidences(X, times_days, death=False)[0]

    def predict_incidences(
        self, X: np.ndarray, times_days: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative incidences of bone metastasis and of death without it, by each time.

        Both from the same cause-specific hazards
        (:func:`training.models.competing.competing_cumulative_incidences`): each non-decreasing,
        their
        sum ``1 - S(t)`` at most 1.

        Returns
        -------
        cif_bm, cif_death : numpy.ndarray
            Shape ``(n, len(times_days))`` each.
        """
        cif_bm, cif_death = self._incidences(X, times_days, death=True)
        return cif_bm, cif_death

    def _incidences(
        self, X: np.ndarray, times_days: Sequence[float] | np.ndarray, death: bool
    ) -> list[np.ndarray]:
        """Bone metastasis (and with ``death`` the competing death) incidences, in row chunks."""
        X = self._check_X(X)
        times = np.atleast_1d(np.asarray(times_days, dtype=float))
        last = grid_steps_needed(self.grid_days_, times)
        out = [np.zeros((X.shape[0], times.size)) for _ in range(2 if death else 1)]
        if last == 0:
            return out
        combine = competing_cumulative_incidences if death else competing_cumulative_incidence
        for start in range(0, X.shape[0], _CHUNK_ROWS):
            rows = slice(start, start + _CHUNK_ROWS)
            a1, a2 = self.cumulative_hazards(X[rows], last)
            found = combine(self.grid_days_[:last], a1, a2, times)
            for target, part in zip(out, found if death else (found,), strict=True):
                target[rows] = part
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: bone-metastasis log relative hazard (``rsf``: logit of the incidence).

        Parameters
        ----------
        X : numpy.ndarray
            Standardised features.

        Returns
        -------
        numpy.ndarray
            One score per row, higher meaning bone metastasis sooner.
        """
        X = self._check_X(X)
        if self.base in PH_BASES:
            return self._fast_linear_predictor(BONE_METASTASIS, X)
        horizon = float(self.score_horizon_months) * DAYS_PER_MONTH
        return _logit(self.predict_cumulative_incidence(X, [horizon])[:, 0])

    def predict_with_incidence(
        self, X: np.ndarray, times_days: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` and :meth:`predict_cumulative_incidence` of the same rows, together.

        ``rsf`` reads its score horizon from the same forest pass as the requested times.
        """
        score, cif, _ = self._with_incidences(X, times_days, death=False)
        return score, cif

    def predict_with_incidences(
        self, X: np.ndarray, times_days: Sequence[float] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`predict` and :meth:`predict_incidences` of the same rows, together.

        Returns
        -------
        score, cif_bm, cif_death : numpy.ndarray
        """
        return self._with_incidences(X, times_days, death=True)

    def _with_incidences(
        self, X: np.ndarray, times_days: Sequence[float] | np.ndarray, death: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        X = self._check_X(X)
        times = np.atleast_1d(np.asarray(times_days, dtype=float))
        if self.base in PH_BASES:
            found = self._incidences(X, times, death)
            return self.predict(X), found[0], found[1] if death else None
        # rsf reads its score horizon from the same forest pass as the requested times.
        horizon = float(self.score_horizon_months) * DAYS_PER_MONTH
        found = self._incidences(X, np.append(times, horizon), death)
        return _logit(found[0][:, -1]), found[0][:, :-1], found[1][:, :-1] if death else None


def _check_rsf_bounds(params: Mapping[str, Any]) -> None:
    """Refuse forest settings whose size would grow without bound (see :data:`RSF_LIMITS`)."""
    leaf = params.get("min_samples_leaf")
    if not isinstance(leaf, int | np.integer) or leaf < RSF_LIMITS["min_samples_leaf"]:
        raise ValueError(
            f"rsf: min_samples_leaf must be an integer >= {RSF_LIMITS['min_samples_leaf']:g}, "
            f"got {leaf!r}"
        )
    draws = params.get("max_samples")
    if not isinstance(draws, int | np.integer) or not 1 <= draws <= RSF_LIMITS["max_samples"]:
        raise ValueError(
            "rsf: max_samples must be an integer number of bootstrap draws per tree, at most "
            f"{RSF_LIMITS['max_samples']:g}, got {draws!r}"
        )
    trees = params.get("n_estimators")
    if not isinstance(trees, int | np.integer) or not 1 <= trees <= RSF_LIMITS["n_estimators"]:
        raise ValueError(
            f"rsf: n_estimators must be an integer in [1, {RSF_LIMITS['n_estimators']:g}], "
            f"got {trees!r}"
        )
    for key in ("low_memory", "bootstrap"):
        if key in params:
            raise ValueError(f"rsf: {key} is fixed by the family and cannot be set")


def _check_rsf_size(params: Mapping[str, Any], n_samples: int, n_times: int, step: float) -> None:
    """Refuse a forest whose node curves could exceed the memory bound."""
    if n_times > RSF_LIMITS["max_times"]:
        raise ValueError(
            f"rsf: {n_times} distinct times on a {step:g}-day grid exceed "
            f"{RSF_LIMITS['max_times']:g}; raise time_grid_days"
        )
    draws = min(int(params["max_samples"]), n_samples)
    bound = rsf_size_bound(params["n_estimators"], draws, params["min_samples_leaf"], n_times)
    if bound > RSF_LIMITS["max_bytes_per_cause"]:
        raise ValueError(
            f"rsf: up to {bound / 1e6:.0f} MB of node curves per cause exceeds "
            f"{RSF_LIMITS['max_bytes_per_cause'] / 1e6:.0f} MB; lower n_estimators or "
            "max_samples, or raise min_samples_leaf or time_grid_days"
        )


class XGBIPCWClassifier(IPCWHorizonBase):
    """XGBoost classifiers for bone metastasis by each horizon, censoring handled by IPCW.

    The labels, censoring weights, running maximum and interpolation are those of
    :class:`training.models.competing.IPCWHorizonBase` (shared with the logistic family); each
    horizon's
    classifier is an ``xgboost.XGBClassifier`` (binary logistic loss, one thread) fitted with
    the IPCW sample weights.

    Parameters
    ----------
    horizons_months : sequence of float, default=(12, 24, 36, 60)
        Horizons at which a classifier is fitted.
    n_estimators, learning_rate, max_depth, min_child_weight, subsample, colsample_bytree, \
reg_lambda : XGBoost parameters
        Passed to every horizon's classifier.
    score_horizon_months : float, default=24
        Horizon whose log-odds (the XGBoost margin) is the risk score.
    random_state : int, default=0
        Seed of the row and column subsampling.
    """

    def __init__(
        self,
        horizons_months: Sequence[float] = DEFAULT_HORIZONS_MONTHS,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        max_depth: int = 2,
        min_child_weight: float = 1.0,
        subsample: float = 0.8,
        colsample_bytree: float = 0.8,
        reg_lambda: float = 1.0,
        score_horizon_months: float = 24,
        random_state: int = 0,
    ) -> None:
        self.horizons_months = horizons_months
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.score_horizon_months = score_horizon_months
        self.random_state = random_state

    def _make_classifier(self):
        from xgboost import XGBClassifier

        return XGBClassifier(
            objective="binary:logistic",
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            random_state=self.random_state,
            n_jobs=1,
            tree_method="hist",
            verbosity=0,
        )

    def _log_odds(self, classifier, X: np.ndarray) -> np.ndarray:
        return np.asarray(classifier.predict(X, output_margin=True), dtype=float)


# ---------------------------------------------------------------------------------------------
# Feature importance


def _bone_metastasis_coefficients(estimator: BaseEstimator) -> np.ndarray | None:
    """Bone-metastasis coefficients of a linear family, None for the others."""
    if isinstance(estimator, CauseSpecificHazards | CauseSpecificCox):
        check_is_fitted(estimator, "models_")
        coef = getattr(estimator, "coef_", None)
        return None if coef is None else np.asarray(coef[BONE_METASTASIS], dtype=float)
    if isinstance(estimator, IPCWHorizonClassifier):
        check_is_fitted(estimator, "classifiers_")
        horizons = estimator.fitted_horizons_months_
        k = int(np.flatnonzero(horizons == estimator.score_horizon_months)[0])
        return np.asarray(estimator.classifiers_[k].coef_[0], dtype=float)
    return None


def feature_importance(
    estimator: BaseEstimator,
    X: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    n_repeats: int = 3,
    seed: int = 0,
) -> pd.Series:
    """Importance of each feature for a fitted family, largest in absolute value first.

    - Linear families (``cox_ridge``, ``cox_elasticnet``: the bone-metastasis cause-specific
      log hazard ratio; ``logistic_ipcw``: the log-odds ratio at the score horizon): the
      coefficient per standard deviation of the feature (features are standardised). The
      Series is named ``"coefficient"``; ``X`` and ``y`` are not used.
    - Other families: permutation importance, the mean drop in Harrell's C for bone metastasis
      (:func:`~training.evaluation.concordance.fast_harrell_c` of ``predict``) when one column
      of
      ``X`` is shuffled, over ``n_repeats`` shuffles. Named ``"harrell_c_drop"``. Use held-out
      data: on training data it measures what the model memorised.

    Parameters
    ----------
    estimator : BaseEstimator
        A fitted family estimator (the model step, not the feature pipeline).
    X : numpy.ndarray
        Standardised features (the feature pipeline's output).
    y : numpy.ndarray
        Structured target for ``X``.
    feature_names : sequence of str
        One name per column of ``X``.
    n_repeats : int, default=3
        Shuffles per feature (permutation importance).
    seed : int, default=0
        Seed of the shuffles.

    Returns
    -------
    pandas.Series
        Indexed by feature name, sorted by descending absolute value.
    """
    names = [str(n) for n in feature_names]
    coef = _bone_metastasis_coefficients(estimator)
    if coef is not None:
        if coef.shape != (len(names),):
            raise ValueError(f"{len(names)} feature names for {coef.shape[0]} coefficients")
        values, label = coef, "coefficient"
    else:
        X = np.array(X, dtype=float)  # a copy: columns are shuffled in place
        y = check_target(y)
        if X.ndim != 2 or X.shape[1] != len(names) or X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X must be 2-D with one row per target and {len(names)} columns (one per "
                f"feature name), got shape {X.shape}"
            )
        if n_repeats < 1:
            raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
        rng = np.random.default_rng(seed)
        reference = fast_harrell_c(y, estimator.predict(X))
        values = np.empty(len(names))
        for j in range(len(names)):
            original = X[:, j].copy()
            drops = []
            for _ in range(n_repeats):
                X[:, j] = rng.permutation(original)
                drops.append(reference - fast_harrell_c(y, estimator.predict(X)))
            X[:, j] = original
            values[j] = float(np.mean(drops))
        label = "harrell_c_drop"
    order = np.argsort(-np.abs(values), kind="stable")
    return pd.Series(values[order], index=pd.Index(np.asarray(names)[order]), name=label)


# ---------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class Family:
    """A model family: how to build its estimator and which configurations to search.

    Parameters
    ----------
    name : str
        Registry key (also the ``family`` tag of registered versions).
    kind : {"survival", "classifier"}
        ``survival``: cause-specific hazards combined (any time); ``classifier``: one IPCW
        classifier per horizon (interpolated between horizons).
    make : callable
        ``make(params) -> estimator``: an unfitted estimator for one configuration; ``{}``
        gives the defaults.
    grid : tuple of dict
        Configurations to search (at most four), each a ``params`` for ``make``; the most
        plausible first, so that a search truncating the grid keeps it.
    description : str
        One line for reports.
    flexible : bool, default=False
        Fitted on flexible features: restricted cubic splines and the pre-specified marker
        interactions (:class:`features.transformers.FlexibleFeatures`), degrees of freedom
        bounded by the events (:func:`training.fitting.search.flexible_df`).
    """

    name: str
    kind: Literal["survival", "classifier"]
    make: Callable[[Mapping[str, Any]], BaseEstimator]
    grid: tuple[dict[str, Any], ...]
    description: str
    flexible: bool = False


_WRAPPER_KEYS = ("time_grid_days", "score_horizon_months")


def _survival_maker(base: str) -> Callable[[Mapping[str, Any]], CauseSpecificHazards]:
    def make(params: Mapping[str, Any]) -> CauseSpecificHazards:
        params = dict(params)
        wrapper = {k: params.pop(k) for k in _WRAPPER_KEYS if k in params}
        return CauseSpecificHazards(base=base, params=params, **wrapper)

    make.__doc__ = f"CauseSpecificHazards(base={base!r}) from a parameter dict."
    return make


def _make_logistic_ipcw(params: Mapping[str, Any]) -> IPCWHorizonClassifier:
    return IPCWHorizonClassifier(**params)


def _make_xgb_ipcw(params: Mapping[str, Any]) -> XGBIPCWClassifier:
    return XGBIPCWClassifier(**params)


# Grids are sized for nested cross-validation on ~2,000 patients on two cores. Fit + predict per
# configuration on the 1,227-row, 36-feature training split of simulate_cohort(2000, 42), one
# BLAS thread: cox_ridge 0.37-0.46 s, cox_elasticnet 0.10-0.13 s, rsf 0.36-0.61 s (3-6 MB),
# gbsa 1.2 s, xgb_cox 0.09-0.15 s, logistic_ipcw 0.02-0.04 s, xgb_ipcw 0.12-0.19 s. All 7
# families in 3 x 3 nested CV (264 fits) took 40 s on two workers, 5 x 5 (710 fits) 154 s.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="cox_ridge",
            kind="survival",
            make=_survival_maker("coxph"),
            grid=tuple({"alpha": a} for a in (1.0, 5.0, 25.0, 100.0)),
            description="cause-specific Cox models, ridge penalty (sksurv CoxPHSurvivalAnalysis)",
        ),
        Family(
            name="cox_elasticnet",
            kind="survival",
            make=_survival_maker("coxnet"),
            grid=(
                {"alpha": 0.01, "l1_ratio": 0.5},
                {"alpha": 0.03, "l1_ratio": 0.5},
                {"alpha": 0.003, "l1_ratio": 0.5},
                {"alpha": 0.01, "l1_ratio": 0.9},
            ),
            description="cause-specific Cox models, elastic net (sksurv CoxnetSurvivalAnalysis)",
        ),
        Family(
            name="rsf",
            kind="survival",
            make=_survival_maker("rsf"),
            grid=(
                {"min_samples_leaf": 20, "max_features": "sqrt"},
                {"min_samples_leaf": 40, "max_features": "sqrt"},
                {"min_samples_leaf": 20, "max_features": 0.33},
                {"min_samples_leaf": 40, "max_features": 0.33},
            ),
            description="cause-specific random survival forests on a monthly time grid, bounded",
        ),
        Family(
            name="gbsa",
            kind="survival",
            make=_survival_maker("gbsa"),
            grid=(
                {"learning_rate": 0.1, "max_depth": 2},
                {"learning_rate": 0.2, "max_depth": 2},
                {"learning_rate": 0.2, "max_depth": 3},
            ),
            description="cause-specific gradient-boosted Cox models (sksurv, loss='coxph')",
        ),
        Family(
            name="xgb_cox",
            kind="survival",
            make=_survival_maker("xgb_cox"),
            grid=(
                {"n_estimators": 200, "learning_rate": 0.03, "max_depth": 2},
                {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 2},
                {"n_estimators": 200, "learning_rate": 0.03, "max_depth": 3},
                {"n_estimators": 200, "learning_rate": 0.05, "max_depth": 1},
            ),
            description="cause-specific XGBoost Cox models (survival:cox) with Breslow baselines",
        ),
        Family(
            name="logistic_ipcw",
            kind="classifier",
            make=_make_logistic_ipcw,
            grid=tuple({"C": c} for c in (1.0, 0.1, 0.01, 10.0)),
            description="IPCW logistic regression per horizon, death before h = no event",
        ),
        Family(
            name="xgb_ipcw",
            kind="classifier",
            make=_make_xgb_ipcw,
            grid=(
                {"n_estimators": 150, "learning_rate": 0.03, "max_depth": 2},
                {"n_estimators": 150, "learning_rate": 0.05, "max_depth": 2},
                {"n_estimators": 150, "learning_rate": 0.03, "max_depth": 3},
                {"n_estimators": 150, "learning_rate": 0.05, "max_depth": 1},
            ),
            description="IPCW XGBoost classifiers per horizon, death before h = no event",
        ),
    )
}


def _flexible_variant(base: str, name: str, description: str) -> Family:
    """The family ``base`` (same estimator and grid) fitted on flexible features."""
    fam = FAMILIES[base]
    return Family(name, fam.kind, fam.make, fam.grid, description, flexible=True)


#: Members of the stacked ensemble: a linear PH model, a direct per-horizon model and two
#: tree ensembles (one PH, one not), each with its family's first (most plausible) configuration.
ENSEMBLE_MEMBERS = ("cox_ridge", "logistic_ipcw", "xgb_cox", "rsf")


def _make_stacked_ensemble(params: Mapping[str, Any]) -> BaseEstimator:
    from training.models.ensemble import StackedEnsemble

    return StackedEnsemble(**{"members": ENSEMBLE_MEMBERS, **params})


FAMILIES.update(
    (f.name, f)
    for f in (
        Family(
            name="stacked_ensemble",
            kind="survival",
            make=_make_stacked_ensemble,
            grid=({},),
            description="super learner: out-of-fold incidences of cox_ridge, logistic_ipcw, "
            "xgb_cox and rsf (flexible features) weighted to minimise the IPCW Brier score",
            flexible=True,
        ),
        _flexible_variant(
            "cox_ridge",
            "cox_spline",
            "cause-specific ridge Cox models with restricted cubic splines and marker interactions",
        ),
        _flexible_variant(
            "logistic_ipcw",
            "logistic_ipcw_spline",
            "IPCW logistic regression per horizon (effects free to change over follow-up) "
            "with restricted cubic splines and marker interactions",
        ),
    )
)
