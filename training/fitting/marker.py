"""The osteocalcin marker in a training cohort: whether it is there, and its likelihood-ratio
test in a cause-specific Cox model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.contract import Cohort
from features.vocabulary import BONE_METASTASIS


def has_marker_values(cohort: Cohort) -> bool:
    """Whether any patients row or draw carries an osteocalcin marker value."""
    from features.draws import MARKER_FIELDS

    for table in (cohort.patients, cohort.measurements):
        if table is not None and len(table):
            if any(table[f].notna().any() for f in MARKER_FIELDS if f in table.columns):
                return True
    return False


#: A binary feature whose rarer level holds fewer patients, or no bone metastasis event, has
#: no finite maximum-likelihood coefficient in a small cohort (monotone likelihood): it is left
#: out of both models of the marker's likelihood-ratio test.
MIN_PATIENTS_PER_LEVEL = 5
#: A standardised coefficient beyond this is a separating feature running off, not an estimate
#: (the bound of :func:`training.study.stats.regression.cox_fit`).
MAX_ABS_COEFFICIENT = 20.0


def marker_lr_test(X: pd.DataFrame, y: np.ndarray) -> dict[str, float]:
    """Likelihood-ratio test of the osteocalcin features in a cause-specific Cox model.

    Two unpenalised cause-specific Cox models for bone metastasis (death censored), fitted by
    maximum partial likelihood (scikit-survival's ``CoxPHSurvivalAnalysis`` with ``alpha=0``,
    Breslow ties) on the same training rows: one on the standard features, one on the same
    features less the marker's, so the models are nested. The statistic is twice the
    difference of the maximised partial log-likelihoods
    (:func:`training.evaluation.likelihood.cox_partial_loglik`, which agrees with statsmodels'
    ``PHReg``), chi-squared under the null with as many degrees of freedom as the designs'
    ranks differ (Wilks 1938).

    Left out of both designs first, since they have no finite estimate and change neither
    likelihood's nesting: columns that are constant or a linear combination of others, and
    binary columns whose rarer level holds fewer than :data:`MIN_PATIENTS_PER_LEVEL` patients
    or no event. Returns NaNs when a fit still does not converge (a combination of features
    separating the events): a statistic at penalised or diverging coefficients would not
    follow the chi-squared distribution.
    """
    from features.transformers import make_feature_pipeline
    from training.evaluation.likelihood import likelihood_ratio_test

    event = y["cause"] == BONE_METASTASIS
    full = make_feature_pipeline(include_marker=True).fit(X)
    names = [str(n) for n in full.get_feature_names_out()]
    reduced = make_feature_pipeline(include_marker=False).fit(X)
    reduced_names = {str(n) for n in reduced.get_feature_names_out()}
    if not reduced_names < set(names):
        raise ValueError("the features without the marker are not a subset of those with it")
    Xt = np.asarray(full.transform(X), dtype=float)
    keep = [j for j in range(Xt.shape[1]) if _estimable(Xt[:, j], event)]
    is_reduced = np.array([names[j] in reduced_names for j in keep])
    Xf = Xt[:, keep]
    fits = [
        _cox_loglik(_independent_columns(design), y["time"], event)
        for design in (Xf, Xf[:, is_reduced])
    ]
    nan = float("nan")
    if any(f is None for f in fits):
        return {"marker_lr_statistic": nan, "marker_lr_df": nan, "marker_lr_p_value": nan}
    (ll_full, k_full), (ll_reduced, k_reduced) = fits
    df = k_full - k_reduced
    if df < 1:  # every marker column constant or redundant: nothing to test
        return {"marker_lr_statistic": nan, "marker_lr_df": float(df), "marker_lr_p_value": nan}
    test = likelihood_ratio_test(ll_full, ll_reduced, df)
    return {
        "marker_lr_statistic": float(test.statistic),
        "marker_lr_df": float(df),
        "marker_lr_p_value": float(test.p_value),
    }


def _estimable(column: np.ndarray, event: np.ndarray) -> bool:
    """Whether a column can have a finite coefficient: not binary, or both levels with at
    least :data:`MIN_PATIENTS_PER_LEVEL` patients and an event."""
    levels = np.unique(column)
    if levels.size != 2:
        return True
    return all(
        (column == v).sum() >= MIN_PATIENTS_PER_LEVEL and event[column == v].any() for v in levels
    )


def _independent_columns(X: np.ndarray) -> np.ndarray:
    """The columns of ``X`` spanning its centred column space (a Cox model has no intercept),
    chosen by QR with column pivoting, in their original order."""
    from scipy.linalg import qr

    centred = X - X.mean(axis=0)
    if not X.shape[1]:
        return X
    _, r, pivot = qr(centred, mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    if not diag.size or diag[0] == 0:
        return X[:, :0]
    rank = int(np.sum(diag > diag[0] * 1e-10))
    return X[:, np.sort(pivot[:rank])]


def _cox_loglik(X: np.ndarray, time: np.ndarray, event: np.ndarray) -> tuple[float, int] | None:
    """The maximised Breslow partial log-likelihood of an unpenalised Cox model and its number
    of coefficients, or None when the fit does not converge."""
    import warnings

    from scipy.linalg import LinAlgWarning
    from sklearn.exceptions import ConvergenceWarning
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    from training.evaluation.likelihood import cox_partial_loglik

    if X.shape[1] == 0:
        return cox_partial_loglik(np.zeros((len(time), 1)), time, event, np.zeros(1)), 0
    cox = CoxPHSurvivalAnalysis(alpha=0.0, ties="breslow", n_iter=200)
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", LinAlgWarning)
        try:
            cox.fit(X, Surv.from_arrays(event, time))
        except (ConvergenceWarning, LinAlgWarning, ValueError, np.linalg.LinAlgError):
            return None
    beta = np.asarray(cox.coef_, dtype=float)
    if not (np.isfinite(beta).all() and np.abs(beta).max() <= MAX_ABS_COEFFICIENT):
        return None
    return cox_partial_loglik(X, time, event, beta), X.shape[1]
