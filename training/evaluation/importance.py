"""Which features a fitted family relies on: coefficients of the linear families, permutation
importance (scikit-learn's) of the others."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.inspection import permutation_importance
from sklearn.utils.validation import check_is_fitted

from training.evaluation.concordance import fast_harrell_c
from training.models.cause_specific import CauseSpecificHazards
from training.models.competing import BONE_METASTASIS, check_target
from training.models.ipcw import IPCWHorizonClassifier

__all__ = ["feature_importance"]


def _harrell_c(estimator: BaseEstimator, X: np.ndarray, y: np.ndarray) -> float:
    """Scorer for ``permutation_importance``: Harrell's C for bone metastasis of the risk score."""
    return fast_harrell_c(y, estimator.predict(X))


def _bone_metastasis_coefficients(estimator: BaseEstimator) -> np.ndarray | None:
    """Bone-metastasis coefficients of a linear family, None for the others."""
    if isinstance(estimator, CauseSpecificHazards):
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
    - Other families: permutation importance (scikit-learn's
      ``sklearn.inspection.permutation_importance``), the mean drop in Harrell's C for bone
      metastasis (:func:`training.evaluation.concordance.fast_harrell_c` of ``estimator.predict``)
      when one column of ``X`` is shuffled, over ``n_repeats`` shuffles. Named
      ``"harrell_c_drop"``. Use held-out data: on training data it measures what the model
      memorised.

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
        Seed of the shuffles (``random_state`` of ``permutation_importance``: every column is
        shuffled with the same ``n_repeats`` row orders).

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
        X = np.asarray(X, dtype=float)
        y = check_target(y)
        if X.ndim != 2 or X.shape[1] != len(names) or X.shape[0] != y.shape[0]:
            raise ValueError(
                f"X must be 2-D with one row per target and {len(names)} columns (one per "
                f"feature name), got shape {X.shape}"
            )
        if n_repeats < 1:
            raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")
        found = permutation_importance(
            estimator, X, y, scoring=_harrell_c, n_repeats=n_repeats, random_state=seed
        )
        values = np.asarray(found.importances_mean, dtype=float)
        label = "harrell_c_drop"
    order = np.argsort(-np.abs(values), kind="stable")
    return pd.Series(values[order], index=pd.Index(np.asarray(names)[order]), name=label)
