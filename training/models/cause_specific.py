"""Cause-specific hazards: one survival model per cause, combined into cumulative incidences.

:class:`CauseSpecificHazards` fits one survival model per cause (bone metastasis with death
censored; death with bone metastasis censored) on a base of :mod:`training.models.bases` and
combines their cumulative hazards with
:func:`training.models.competing.competing_cumulative_incidence`, the formula of
``docs/modeling.md``. The proportional-hazards bases (``coxph``, ``coxnet``, ``gbsa``,
``xgb_cox``) give a log relative hazard and a Breslow baseline
(:func:`breslow_cumulative_hazard`); ``rsf`` (a random survival forest) one cumulative hazard
curve per patient.

``X`` is the standardised float matrix produced by the feature pipeline
(:func:`features.transformers.make_feature_pipeline`); ``y`` the structured competing-risks
target (:func:`training.models.competing.make_target`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.models.bases import PH_BASES, base_params, check_rsf_size, make_base_estimator
from training.models.competing import (
    BONE_METASTASIS,
    CENSORED,
    DAYS_PER_MONTH,
    DEATH,
    check_fit_data,
    competing_cumulative_incidence,
    competing_cumulative_incidences,
    grid_steps_needed,
    step_values,
)
from training.models.link import logit

__all__ = [
    "MAX_EXACT_GRID_TIMES",
    "CauseSpecificHazards",
    "breslow_cumulative_hazard",
    "forest_cumulative_hazard",
]

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
    ``sksurv.linear_model.coxph.BreslowEstimator`` (tested equal to 1e-9 relative).

    Kept rather than calling ``BreslowEstimator`` (issue 11 asked to use it where it is the
    same): its results are not identical and it is slower. It forms each risk-set sum by
    subtracting the leavers from the total, so the sums of the last, small risk sets carry the
    rounding of the total (relative differences from this exact suffix sum of 2e-13 at 1,500
    patients, 2e-11 at 100,000), and it exponentiates ``eta`` unshifted (overflow above
    ``eta`` = 709); its Python loop over the distinct times made it 1.5-3.5x slower (25 ms
    against 17 ms at 1,500 patients, 0.41 s against 0.13 s at 100,000, measured 2026-12).

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


def _continuous_cumhaz(nelson_aalen: np.ndarray) -> np.ndarray:
    """Cumulative hazard whose steps survive like the discrete hazards of a Nelson-Aalen curve.

    A Nelson-Aalen increment ``h = d / n`` is the probability of the event within the step;
    the combination formula takes hazards constant within a step, whose step survival is
    ``exp(-dA)``. ``dA = -log(1 - h)`` makes the two agree; it matters on a coarse grid (a
    month holds many events) and is the identity to first order on exact event times.
    """
    h = np.clip(np.diff(nelson_aalen, axis=1, prepend=0.0), 0.0, 1.0 - 1e-12)
    return np.cumsum(-np.log1p(-h), axis=1)


def forest_cumulative_hazard(forest, X: np.ndarray, n_times: int | None = None) -> np.ndarray:
    """scikit-survival's ``RandomSurvivalForest.predict_cumulative_hazard_function(X,
    return_array=True)``, its first ``n_times`` columns (all when None).

    The same sum over the trees, in the same order, of each tree's leaf curve (the Nelson-Aalen
    estimate stored in the leaf ``X`` falls in), divided by the number of trees: equal exactly
    (``tests/models/test_cause_specific.py``). Without the forest's per-tree input checks and
    thread pool, and copying only the columns needed: 2-4x faster on the scores of a
    permutation importance or a search, which read a few early times.
    """
    n_all = len(forest.unique_times_)
    n_times = n_all if n_times is None else min(int(n_times), n_all)
    X = np.ascontiguousarray(X, dtype=np.float32)  # the trees' own input type
    if X.ndim != 2 or X.shape[1] != forest.n_features_in_:
        raise ValueError(f"X must be 2-D with {forest.n_features_in_} features, got {X.shape}")
    out = np.zeros((X.shape[0], n_times))
    for tree in forest.estimators_:
        out += tree.tree_.value[tree.tree_.apply(X), :n_times, 0]
    out /= len(forest.estimators_)
    return out


class CauseSpecificHazards(BaseEstimator):
    """Two cause-specific survival models combined into a cumulative incidence.

    One model of the hazard of bone metastasis (death censored) and one of death without bone
    metastasis (bone metastasis censored), fitted with the same base and parameters. For a
    patient with cumulative hazards ``A1(t)``, ``A2(t)`` on the grid of event times ``t_j``, the
    cumulative incidence of bone metastasis is

        F1(t) = sum_{t_j <= t} S(t_{j-1}) * (dA1_j / dA_j) * (1 - exp(-dA_j)),
        dA_j = dA1_j + dA2_j,   S(t) = exp(-A1(t) - A2(t)),

    computed by :func:`training.models.competing.competing_cumulative_incidence`. For the
    proportional-hazards bases ``A_k(t | x) = H0_k(t) exp(eta_k(x))`` with ``H0_k`` the Breslow
    estimate given the fitted ``eta_k`` (:func:`breslow_cumulative_hazard`); for ``rsf``
    ``A_k`` is the forest's ensemble cumulative hazard (Nelson-Aalen in the leaves, averaged
    over trees), each step's increment ``h`` (a probability of the event within the step)
    taken as the constant hazard ``-log(1 - h)`` with the same step survival; on a monthly
    grid this removes an
    underestimate of order ``h / 2`` relative per step.

    Bases (parameters in ``params``, defaults :data:`training.models.bases.BASE_DEFAULTS`):

    - ``coxph``: ``sksurv.linear_model.CoxPHSurvivalAnalysis``, ridge ``alpha``;
    - ``coxnet``: ``sksurv.linear_model.CoxnetSurvivalAnalysis``, elastic net ``alpha``
      (coxnet's scale: penalty on the mean log partial likelihood) and ``l1_ratio``;
    - ``gbsa``: ``sksurv.ensemble.GradientBoostingSurvivalAnalysis`` with ``loss="coxph"``;
    - ``xgb_cox``: ``xgboost.XGBRegressor`` with ``objective="survival:cox"`` (label: time,
      negated for censored patients), always one thread;
    - ``rsf``: ``sksurv.ensemble.RandomSurvivalForest``, bounded by
      :data:`training.models.bases.RSF_LIMITS` (``max_samples`` is an absolute number of
      bootstrap draws per tree, capped at the number of training patients), always one job and
      ``low_memory=False`` (the low-memory mode cannot predict cumulative hazards).

    Parameters
    ----------
    base : str, default="coxph"
        One of :data:`training.models.bases.BASES`.
    params : dict or None, default=None
        Parameters of the base estimator, merged over :data:`training.models.bases.BASE_DEFAULTS`.
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
        return base_params(self.base, self.params)

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
        X, y = check_fit_data(X, y)
        if not np.any(y["cause"] == BONE_METASTASIS):
            raise ValueError(
                "no bone_metastasis events in the training data: cannot fit its hazard"
            )
        # A cohort that records no competing death (one event type, or deaths recoded as
        # censored by training.fitting.data.competing_deaths): the death hazard is zero, so the
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
            check_rsf_size(params, X.shape[0], np.unique(time).size, step)
        self.models_ = {}
        baselines = {}
        for code in causes:
            event = y["cause"] == code
            model = make_base_estimator(self.base, dict(params), X.shape[0])
            if self.base == "xgb_cox":
                # xgboost's survival:cox label: the time, negated when the patient is censored.
                model.fit(X, np.where(event, time, -time))
            else:
                from sksurv.util import Surv

                # sksurv's Newton-Raphson can overflow exp() in an early, overshooting step
                # when a rare missing-value indicator has a large standardised value; it
                # recovers (step halving) and warns ConvergenceWarning if it does not converge.
                # The overflowed step's inf/inf is the same event (invalid); coefficients that
                # stay non-finite are refused just below.
                with np.errstate(over="ignore", invalid="ignore"):
                    model.fit(X[rows], Surv.from_arrays(event[rows], time[rows]))
            self.models_[code] = model
            if self.base in ("coxph", "coxnet") and not np.all(np.isfinite(model.coef_)):
                raise ValueError(f"{self.base}: non-finite coefficients; increase alpha")
            if self.base in PH_BASES:
                b_times, b_cumhaz = breslow_cumulative_hazard(
                    self._linear_predictor(model, X), event, time
                )
                baselines[code] = step_values(b_times, b_cumhaz, grid)
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
                # The forest's curves up to the last grid time read (step_values reads no later).
                n_times = int(
                    np.searchsorted(model.unique_times_, grid.max(initial=-np.inf), "right")
                )
                chf = forest_cumulative_hazard(model, X, max(n_times, 1))
                out.append(
                    _continuous_cumhaz(step_values(model.unique_times_[: chf.shape[1]], chf, grid))
                )
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
        return logit(self.predict_cumulative_incidence(X, [horizon])[:, 0])

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
        return logit(found[0][:, -1]), found[0][:, :-1], found[1][:, :-1] if death else None
