"""Classifiers for bone metastasis by each horizon, censoring handled by inverse probability
of censoring weights (IPCW), and the one "status known at the horizon" step they rest on.

:func:`status_at_horizon` is the single definition of who has a known status at a horizon, their
label and their weight; the classifiers here, the stacked ensemble's weights and the evaluation's
IPCW metrics call it. :class:`IPCWHorizonBase` holds the horizon, weighting and interpolation
logic for any scikit-learn classifier; :class:`IPCWHorizonClassifier` (logistic regression) and
:class:`XGBIPCWClassifier` (XGBoost) are the two families built on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.special import expit, logit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from features.schema import DEFAULT_HORIZONS_MONTHS
from training.models.competing import (
    BONE_METASTASIS,
    DAYS_PER_MONTH,
    DEATH,
    censoring_survival,
    check_fit_data,
    check_target,
    ipcw_labels,
)

__all__ = [
    "HorizonStatus",
    "status_at_horizon",
    "IPCWHorizonBase",
    "IPCWHorizonClassifier",
    "XGBIPCWClassifier",
]

_CAUSE_WORDS = {BONE_METASTASIS: "bone metastasis", DEATH: "death"}


class HorizonStatus(NamedTuple):
    """Each patient's status at one horizon, censoring handled by IPCW.

    Attributes
    ----------
    known : numpy.ndarray of bool
        The status is known: the event (either cause) happened by the horizon, or follow-up
        passed it event-free. False for censoring before the horizon.
    label : numpy.ndarray of int
        1 for the cause asked for by the horizon, else 0 (death first is 0 for bone metastasis:
        the competing event).
    weight : numpy.ndarray of float
        Inverse probability of remaining uncensored (:func:`training.models.competing.ipcw_labels`),
        0 where the status is unknown.
    """

    known: np.ndarray
    label: np.ndarray
    weight: np.ndarray


def status_at_horizon(
    y: np.ndarray,
    horizon_days: float,
    *,
    cause: int = BONE_METASTASIS,
    censoring: tuple[np.ndarray, np.ndarray] | None = None,
    require_both: bool = False,
) -> HorizonStatus:
    """Who has a known status at a horizon, their label and their censoring weight.

    The weighted proportion ``sum(weight * label) / n`` estimates the cumulative incidence of
    ``cause`` by the horizon with the other cause competing.

    Parameters
    ----------
    y : numpy.ndarray
        Structured target (:func:`training.models.competing.make_target`).
    horizon_days : float
        The horizon (days; ``months * DAYS_PER_MONTH``).
    cause : int, default=BONE_METASTASIS
        The event labelled 1 (``DEATH`` for the competing event); the weights do not depend on it.
    censoring : (times, surv) or None, default=None
        The censoring distribution of ``y``
        (:func:`training.models.competing.censoring_survival`), when already estimated (a loop
        over horizons); estimated from ``y`` when None.
    require_both : bool, default=False
        Raise unless the known patients include some with and some without the event.

    Returns
    -------
    HorizonStatus
        ``(known, label, weight)``.

    Raises
    ------
    ValueError
        With ``require_both``, when every known patient has the same label.
    """
    y = check_target(y)
    g_times, g_surv = censoring_survival(y) if censoring is None else censoring
    label, weight = ipcw_labels(y, horizon_days, g_times, g_surv, cause=cause)
    known = weight > 0
    if require_both and np.unique(label[known]).size < 2:
        raise ValueError(
            f"horizon {horizon_days / DAYS_PER_MONTH:g} months: need patients with and without "
            f"{_CAUSE_WORDS.get(cause, f'cause {cause}')} among those with known status"
        )
    return HorizonStatus(known, label, weight)


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
    estimate of the censoring distribution (:func:`status_at_horizon`). The weighted proportion then
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
        return logit(p)

    def fit(self, X: np.ndarray, y: np.ndarray, *, death: bool = True) -> IPCWHorizonBase:
        """Fit one weighted classifier per horizon.

        Parameters
        ----------
        X : numpy.ndarray
            Feature matrix, one row per target.
        y : numpy.ndarray
            Structured target from :func:`training.models.competing.make_target`.
        death : bool, default=True
            Also fit the competing death's classifiers. False: bone metastasis only (the
            search's and the folds' fits, scored on it alone); its classifiers are the same,
            fitted separately, and the model cannot answer :meth:`predict_incidences`.

        Returns
        -------
        self
        """
        X, y = check_fit_data(X, y)
        horizons = np.sort(np.asarray(self.horizons_months, dtype=float))
        if self.score_horizon_months not in set(horizons.tolist()):
            raise ValueError("score_horizon_months must be one of horizons_months")
        censoring = censoring_survival(y)
        self.classifiers_ = []
        self.death_classifiers_ = []
        self.n_known_ = []
        for h in horizons * DAYS_PER_MONTH:
            known, label, weight = status_at_horizon(y, h, censoring=censoring, require_both=True)
            self.n_known_.append(int(known.sum()))
            clf = self._make_classifier()
            clf.fit(X[known], label[known], sample_weight=weight[known])
            self.classifiers_.append(clf)
            if not death:
                continue
            died = status_at_horizon(y, h, cause=DEATH, censoring=censoring).label
            if np.unique(died[known]).size < 2:
                # No death (or only deaths) among the known: the weighted proportion.
                self.death_classifiers_.append(
                    float(np.average(died[known], weights=weight[known]))
                )
                continue
            clf = self._make_classifier()
            clf.fit(X[known], died[known], sample_weight=weight[known])
            self.death_classifiers_.append(clf)
        if not death:
            del self.death_classifiers_  # no competing death: estimates_death() is False
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


class XGBIPCWClassifier(IPCWHorizonBase):
    """XGBoost classifiers for bone metastasis by each horizon, censoring handled by IPCW.

    The labels, censoring weights, running maximum and interpolation are those of
    :class:`IPCWHorizonBase` (shared with the logistic family); each horizon's classifier is an
    ``xgboost.XGBClassifier`` (binary logistic loss, one thread) fitted with the IPCW sample
    weights.

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
