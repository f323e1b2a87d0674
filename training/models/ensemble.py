"""Stacked ensemble (super learner) of model families, weighted on the served probability.

The members' out-of-fold predicted cumulative incidences at the headline horizons are combined
with non-negative weights summing to one that minimise the IPCW Brier score summed over those
horizons (van der Laan, Polley and Hubbard 2007, "Super learner"; the loss is the one the
clinician's probability is judged by, ``docs/modeling.md``). A convex combination of
cumulative incidence curves is one: in [0, 1] and non-decreasing in time, at any time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import logit
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from features.vocabulary import SELECTION_HORIZONS_MONTHS
from training.models.competing import DAYS_PER_MONTH, censoring_survival, check_target
from training.models.ipcw import status_at_horizon

__all__ = ["StackedEnsemble", "brier_weights", "combine_incidences"]


def brier_weights(predictions: np.ndarray, y: np.ndarray, horizons_days: Sequence[float]):
    """Simplex weights minimising the IPCW Brier score of the combined prediction.

    Minimises ``sum_h sum_i w_ih (Y_i(h) - sum_m a_m P_imh)^2`` over ``a >= 0``,
    ``sum a = 1``, where ``Y_i(h)`` is "bone metastasis by h" (death = 0) and ``w_ih`` the inverse
    probability of censoring weight (:func:`training.models.ipcw.status_at_horizon`).

    Parameters
    ----------
    predictions : numpy.ndarray
        ``(n, members, horizons)`` predicted cumulative incidences (out of fold).
    y : numpy.ndarray
        Structured target of the same patients.
    horizons_days : sequence of float

    Returns
    -------
    numpy.ndarray
        One weight per member.
    """
    y = check_target(y)
    n, m, n_h = predictions.shape
    if n != y.shape[0] or n_h != len(horizons_days):
        raise ValueError("predictions must be (patients, members, horizons) matching y")
    censoring = censoring_survival(y)
    gram = np.zeros((m, m))
    lin = np.zeros(m)
    for k, h in enumerate(horizons_days):
        _, label, weight = status_at_horizon(y, float(h), censoring=censoring)
        p = predictions[:, :, k]
        gram += (p * weight[:, None]).T @ p
        lin += p.T @ (weight * label)
    scale = max(np.abs(gram).max(), 1e-12)  # conditioning of the optimiser only

    def loss(a: np.ndarray) -> tuple[float, np.ndarray]:
        return float(a @ gram @ a - 2 * lin @ a) / scale, (2 * gram @ a - 2 * lin) / scale

    start = np.full(m, 1.0 / m)
    result = minimize(
        loss,
        start,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * m,
        constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1.0, "jac": lambda a: np.ones(m)}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    a = np.clip(result.x, 0.0, None)
    return a / a.sum()


def combine_incidences(
    weights: Sequence[float],
    bone: Sequence[np.ndarray],
    death: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The weighted combination of members' cumulative incidences (the one code path of every
    stacked model: :class:`StackedEnsemble` and the run's out-of-fold stack,
    :class:`training.artifact.stacked.StackedRiskModel`).

    ``bone`` (and ``death``): one array per member, all of the same shape. Bone metastasis is
    ``sum_m w_m P_m`` clipped to [0, 1]; death without it the same sum, capped at ``1 - bone``
    (each member's pair sums to at most 1, so the cap only acts on rounding or on weights that
    do not sum to exactly 1). ``death`` is None when not given.
    """
    w = np.asarray(weights, dtype=float)
    if len(bone) != w.size or (death is not None and len(death) != w.size):
        raise ValueError("one weight per member's incidences")
    bm = sum(wi * np.asarray(b, dtype=float) for wi, b in zip(w, bone, strict=True))
    bm = np.clip(bm, 0.0, 1.0)
    if death is None:
        return bm, None
    dd = sum(wi * np.asarray(d, dtype=float) for wi, d in zip(w, death, strict=True))
    return bm, np.clip(np.minimum(dd, 1.0 - bm), 0.0, 1.0)


class StackedEnsemble(BaseEstimator):
    """Super learner over member estimators fitted on the same features.

    Parameters
    ----------
    members : sequence of (str, estimator)
        Named unfitted member estimators (as scikit-learn's ``StackingClassifier`` takes its
        ``estimators``); the family registry (:data:`training.models.catalog.FAMILIES`) gives
        each member family's estimator with the first (most plausible) configuration of its
        grid. Fitting clones them: the parameters are left unfitted.
    horizons_months : sequence of float, default=(12, 24, 36)
        Horizons of the Brier loss the weights minimise (the headline horizons).
    n_folds : int, default=3
        Folds of the out-of-fold predictions (stratified by outcome).
    score_horizon_months : float, default=24
        The risk score (``predict``) is the log-odds of the incidence by this horizon.
    random_state : int, default=0
    """

    def __init__(
        self,
        members: Sequence[tuple[str, BaseEstimator]] = (),
        horizons_months: Sequence[float] = SELECTION_HORIZONS_MONTHS,
        n_folds: int = 3,
        score_horizon_months: float = 24,
        random_state: int = 0,
    ) -> None:
        self.members = members
        self.horizons_months = horizons_months
        self.n_folds = n_folds
        self.score_horizon_months = score_horizon_months
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> StackedEnsemble:
        """Out-of-fold member predictions, Brier-optimal weights, members refitted on all rows."""
        y = check_target(y)
        X = np.asarray(X, dtype=float)
        if not self.members:
            raise ValueError("StackedEnsemble needs at least one member")
        members = list(self.members)
        times = np.asarray(self.horizons_months, dtype=float) * DAYS_PER_MONTH
        oof = np.zeros((X.shape[0], len(members), len(times)))
        splitter = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        for train_idx, test_idx in splitter.split(X, y["cause"]):
            for j, (_, member) in enumerate(members):
                fitted = clone(member).fit(X[train_idx], y[train_idx])
                oof[test_idx, j, :] = fitted.predict_cumulative_incidence(X[test_idx], times)
        weights = brier_weights(oof, y, times)
        # Members with no weight are not refitted: they cost nothing at prediction time.
        keep = np.flatnonzero(weights > 1e-4)
        self.weights_ = weights[keep] / weights[keep].sum()
        self.member_names_ = tuple(members[j][0] for j in keep)
        self.all_weights_ = dict(zip((n for n, _ in members), weights.tolist(), strict=True))
        self.members_ = [clone(members[j][1]).fit(X, y) for j in keep]
        self.n_features_in_ = X.shape[1]
        return self

    def predict_cumulative_incidence(self, X: np.ndarray, times_days) -> np.ndarray:
        """Weighted sum of the members' cumulative incidences, ``(n, len(times_days))``."""
        check_is_fitted(self, "members_")
        times = np.asarray(times_days, dtype=float)
        parts = [member.predict_cumulative_incidence(X, times) for member in self.members_]
        return combine_incidences(self.weights_, parts)[0]

    def predict_incidences(self, X: np.ndarray, times_days) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative incidences of bone metastasis and of death without it, by each time.

        The members' two incidences combined with the same weights (each member's pair sums
        to at most 1); death is capped at ``1 - bone metastasis`` should the weights sum past 1.

        Returns
        -------
        cif_bm, cif_death : numpy.ndarray
            Shape ``(n, len(times_days))`` each.
        """
        check_is_fitted(self, "members_")
        times = np.asarray(times_days, dtype=float)
        pairs = [member.predict_incidences(X, times) for member in self.members_]
        return combine_incidences(self.weights_, [b for b, _ in pairs], [d for _, d in pairs])

    def predict_with_incidence(self, X: np.ndarray, times_days) -> tuple[np.ndarray, np.ndarray]:
        """Risk score and incidences in one pass over the members."""
        times = np.asarray(times_days, dtype=float)
        both = np.append(times, self.score_horizon_months * DAYS_PER_MONTH)
        cif = self.predict_cumulative_incidence(X, both)
        return self._score(cif[:, -1]), cif[:, :-1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Risk score: log-odds of the incidence by ``score_horizon_months``."""
        at = np.array([self.score_horizon_months * DAYS_PER_MONTH])
        return self._score(self.predict_cumulative_incidence(X, at)[:, 0])

    @staticmethod
    def _score(p: np.ndarray) -> np.ndarray:
        return logit(np.clip(p, 1e-9, 1 - 1e-9))
